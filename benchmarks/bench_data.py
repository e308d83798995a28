"""Synthetic data throughput: samples per second for the ``tiny`` and ``small`` presets.

Absolute rates depend on the machine, so each is also given relative to two anchors measured in
the same run on the same image size: decoding an in-memory PNG with PIL (what a disk-backed
loader pays per image at least) and ``torch.rand`` of the image tensor (a floor for any
generator). ``x png`` > 1 means generating a scene is faster than decoding one PNG.

Run: ``python benchmarks/bench_data.py [--seconds 2] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from vinfo.data import PRESETS, SyntheticScenes


def rate(fn: Callable[[int], object], seconds: float) -> float:
    """Calls per second of ``fn(i)`` over about ``seconds`` of wall time (after one warm-up)."""
    fn(0)
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(10):
            fn(n)
            n += 1
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one core: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"{'preset':<8}{'size':>10}{'samples/s':>12}{'png dec/s':>12}{'x png':>8}"
          f"{'rand/s':>12}{'x rand':>9}")
    for name in ("tiny", "small"):
        cfg = PRESETS[name]
        ds = SyntheticScenes(cfg)
        synth = rate(lambda i, ds=ds: ds[i % len(ds)], args.seconds)
        # anchor 1: PIL decode of a PNG of the same size and content statistics
        buf = io.BytesIO()
        img = (ds[0].image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(img).save(buf, format="PNG")
        data = buf.getvalue()
        png = rate(lambda i, data=data: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
                   args.seconds)
        # anchor 2: drawing the image tensor alone
        shape = (3, cfg.height, cfg.width)
        rnd = rate(lambda i, shape=shape: torch.rand(shape), args.seconds)
        print(f"{name:<8}{f'{cfg.height}x{cfg.width}':>10}{synth:>12.0f}{png:>12.0f}"
              f"{synth / png:>8.2f}{rnd:>12.0f}{synth / rnd:>9.4f}")


if __name__ == "__main__":
    main()
