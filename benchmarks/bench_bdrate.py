"""Speed of vinfo's BD-rate against the `bjontegaard` package, measured in the same run.

Prints, per method, the time of one BD-rate call and the ratio vinfo / bjontegaard (< 1 means
vinfo is faster). vinfo validates each curve (finite, positive, monotone, overlapping) and
guards the interpolants (module docstring of ``bdrate.core``), which bjontegaard does not; the
ratio shows what that costs.

    .venv/bin/python benchmarks/bench_bdrate.py
"""

from __future__ import annotations

import timeit
import warnings

import bjontegaard
import numpy as np

from bdrate import bd_rate

METHODS = ("akima", "pchip", "cubic")  # the names mean the same in both packages


def curve_pairs(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        log_rate = np.sort(rng.uniform(-1, 0.5, size=(2, 6)), axis=1)
        psnr = 30 + 8 * log_rate - log_rate**2 + rng.normal(0, 0.01, size=(2, 1))
        pairs.append((10 ** log_rate[0], psnr[0], 10 ** log_rate[1], psnr[1]))
    return pairs


def main() -> None:
    pairs = curve_pairs(200)
    warnings.simplefilter("ignore")
    print(f"{'method':8} {'vinfo [us]':>11} {'bjontegaard [us]':>17} {'ratio':>6}")
    for name in METHODS:

        def run_vinfo(method=name):
            for pair in pairs:
                bd_rate(*pair, method=method, min_overlap=0)

        def run_reference(method=name):
            for pair in pairs:
                bjontegaard.bd_rate(*pair, method=method, min_overlap=0)

        vinfo_s = min(timeit.repeat(run_vinfo, number=1, repeat=5)) / len(pairs)
        reference_s = min(timeit.repeat(run_reference, number=1, repeat=5)) / len(pairs)
        print(
            f"{name:8} {vinfo_s * 1e6:11.1f} {reference_s * 1e6:17.1f} {vinfo_s / reference_s:6.2f}"
        )


if __name__ == "__main__":
    main()
