"""Synthetic data throughput: samples per second for the ``tiny`` and ``small`` presets.

Absolute rates depend on the machine, so each is also given relative to two anchors measured in
the same run on the same image size: decoding an in-memory PNG with PIL (what a disk-backed
loader pays per image at least) and ``torch.rand`` of the image tensor (a floor for any
generator). ``x png`` > 1 means generating a scene is faster than decoding one PNG (no goal).

Timed with :mod:`timing` (this folder): the three interleaved, each call ``--calls`` samples,
``--rounds`` rounds after a warm-up round, CPU time of the process (wall time beside it); the
rates are samples per CPU second (medians), the ratios per round.

Run: ``python benchmarks/bench_data.py [--calls 20] [--rounds 5] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from timing import goal_line, interleaved, session

from vinfo.data import PRESETS, SyntheticScenes


def batch(fn: Callable[[int], object], count: int) -> Callable[[], None]:
    """A call that runs ``fn(i)`` for ``count`` successive ``i`` (new ones every call)."""
    state = [0]

    def run() -> None:
        for _ in range(count):
            fn(state[0])
            state[0] += 1

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="samples per timed call")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one core: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with session(f"synthetic data throughput, {args.calls} samples per call, {args.rounds} "
                 "interleaved rounds after 1 warm-up"):
        for name in ("tiny", "small"):
            cfg = PRESETS[name]
            ds = SyntheticScenes(cfg)
            # anchor 1: PIL decode of a PNG of the same size and content statistics
            buf = io.BytesIO()
            img = (ds[0].image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(img).save(buf, format="PNG")
            data = buf.getvalue()
            shape = (3, cfg.height, cfg.width)
            rounds = interleaved({
                "synthetic": batch(lambda i, ds=ds: ds[i % len(ds)], args.calls),
                "png decode": batch(lambda i, data=data: np.asarray(
                    Image.open(io.BytesIO(data)).convert("RGB")), args.calls),
                # anchor 2: drawing the image tensor alone
                "torch.rand": batch(lambda i, shape=shape: torch.rand(shape), args.calls),
            }, args.rounds)
            rates = {side: args.calls / rounds.spread(side).median for side in rounds.cpu}
            print(f"{name} {cfg.height}x{cfg.width}: synthetic {rates['synthetic']:.0f}/s, "
                  f"png decode {rates['png decode']:.0f}/s, torch.rand "
                  f"{rates['torch.rand']:.0f}/s (per CPU second, medians)")
            print(goal_line(f"{name}: synthetic samples/s / png decodes/s",
                            rounds.ratios("png decode", "synthetic"), None))
            print(goal_line(f"{name}: synthetic samples/s / torch.rand/s",
                            rounds.ratios("torch.rand", "synthetic"), None, spec=".4f"))


if __name__ == "__main__":
    main()
