"""Speed of vinfo's BD-rate against the `bjontegaard` package, measured in the same run.

Prints, per method, the time of one BD-rate call and the ratio vinfo / bjontegaard (< 1 means
vinfo is faster). vinfo validates each curve (finite, positive, monotone, overlapping) and
guards the interpolants (module docstring of ``bdrate.core``), which bjontegaard does not; the
ratio shows what that costs (no goal). Timed with :mod:`timing` (this folder): the two sides
interleaved, each call 200 curve pairs, ``--rounds`` rounds after a warm-up round, CPU time of
the process (wall time beside it).

    .venv/bin/python benchmarks/bench_bdrate.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import warnings

import bjontegaard
import numpy as np
from timing import goal_line, interleaved, session

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds kept")
    args = parser.parse_args()
    pairs = curve_pairs(200)
    warnings.simplefilter("ignore")
    title = (f"BD-rate: vinfo vs bjontegaard, {len(pairs)} curve pairs per call, {args.rounds} "
             f"interleaved rounds after 1 warm-up; numpy threads: OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    with session(title, with_torch=False):
        for name in METHODS:

            def run_vinfo(method=name):
                for pair in pairs:
                    bd_rate(*pair, method=method, min_overlap=0)

            def run_reference(method=name):
                for pair in pairs:
                    bjontegaard.bd_rate(*pair, method=method, min_overlap=0)

            rounds = interleaved({"vinfo": run_vinfo, "bjontegaard": run_reference}, args.rounds)
            per_call = {side: 1e6 * rounds.spread(side).median / len(pairs)
                        for side in ("vinfo", "bjontegaard")}
            print(f"{name}: vinfo {per_call['vinfo']:.1f} us, bjontegaard "
                  f"{per_call['bjontegaard']:.1f} us per BD-rate (CPU, median)")
            print(goal_line(f"{name}: time vinfo / bjontegaard, CPU",
                            rounds.ratios("vinfo", "bjontegaard"), None))


if __name__ == "__main__":
    main()
