"""Training throughput of vinfo's codec next to CompressAI's ``mbt2018``, for context.

Both are trained on the same random 64×64 images with Adam, a rate-distortion loss and the
same ``N, M`` (N = 96, M = 192, vinfo's ``linear`` layout; ``--layout authors``: the ``paper``
preset against the same anchor, see ``anchors.py``): vinfo's base codec for reconstruction
(eq. 3 with β = 0: autoregressive context model without hyperprior, straight-through
rounding, residual bottleneck transforms) and CompressAI's Minnen et al. (2018) joint
autoregressive + hierarchical prior model (GDN transforms, hyperprior, additive noise).
Timed with :mod:`timing` (this folder): one training step (forward, backward, optimizer
step) of each model per round, interleaved, ``--rounds`` rounds after a warm-up round, CPU
time of the process (wall time beside it), one torch thread by default. Prints images per
second of each, the per-round throughput ratio vinfo / mbt2018 (goal ≥ 1.0), the FLOPs of one
step of each (forward + backward, counted by :class:`torch.utils.flop_counter.FlopCounterMode`:
convolutions and matrix products) and the ratio per FLOP (FLOP/s of vinfo / FLOP/s of
mbt2018, the issue's alternative goal ≥ 1.0).

    .venv/bin/python benchmarks/bench_codec_training.py [--rounds 5] [--threads 1]
        [--layout linear|authors]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from anchors import ANCHOR_M, ANCHOR_N, LAYOUT_CONFIGS, add_layout_argument
from compressai.models import JointAutoregressiveHierarchicalPriors
from timing import flops, goal_line, interleaved, session

from vinfo.models import BaseCodec

BATCH, SIZE = 4, 64
GOAL = 1.0  # vinfo's training images/s over mbt2018's, or the same per FLOP
LMBDA = 0.01


def vinfo_step(model: BaseCodec, x: torch.Tensor) -> torch.Tensor:
    out = model(x, x)
    return model.loss(out, x, x, LMBDA).loss


def mbt2018_step(model: JointAutoregressiveHierarchicalPriors, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    bits = sum(-torch.log2(p).sum() for p in out["likelihoods"].values())
    bpp = bits / (x.shape[0] * x.shape[-2] * x.shape[-1])
    return LMBDA * (out["x_hat"] - x).square().mean().sqrt() + bpp


def trainer_step(model: torch.nn.Module, step, x: torch.Tensor) -> Callable[[], None]:
    """One training step (forward, backward, Adam) of ``model`` on ``x``, as a call."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()

    def run() -> None:
        loss = step(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return run


def step_flops(model: torch.nn.Module, step, x: torch.Tensor) -> int:
    """FLOPs of one forward + backward pass (no optimizer step)."""
    counted = flops(lambda: step(model, x).backward())
    model.zero_grad(set_to_none=True)
    return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    add_layout_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = LAYOUT_CONFIGS[args.layout]
    x = torch.rand(BATCH, 3, SIZE, SIZE)
    ours = BaseCodec(config, "reconstruction")
    reference = JointAutoregressiveHierarchicalPriors(N=ANCHOR_N, M=ANCHOR_M)
    per_step = {"vinfo": step_flops(ours, vinfo_step, x),
                "mbt2018": step_flops(reference, mbt2018_step, x)}
    with session(f"training step on {BATCH}x3x{SIZE}x{SIZE}, vinfo {config.describe_transforms()}, "
                 f"mbt2018 N={ANCHOR_N}, M={ANCHOR_M}, {args.rounds} interleaved rounds after "
                 "1 warm-up"):
        rounds = interleaved({"vinfo codec": trainer_step(ours, vinfo_step, x),
                              "compressai mbt2018": trainer_step(reference, mbt2018_step, x)},
                             args.rounds)
        print(rounds.table())
        for name, key in (("vinfo codec", "vinfo"), ("compressai mbt2018", "mbt2018")):
            print(f"{name}: {BATCH / rounds.spread(name).median:.1f} img/s (CPU), "
                  f"{per_step[key] / 1e9:.2f} GFLOP per step (forward + backward)")
        throughput = rounds.ratios("compressai mbt2018", "vinfo codec")
        print(goal_line("training images/s vinfo / mbt2018, CPU", throughput, GOAL))
        print(goal_line("training images/s vinfo / mbt2018, wall clock",
                        rounds.ratios("compressai mbt2018", "vinfo codec", "wall"), None))
        flop_ratio = per_step["vinfo"] / per_step["mbt2018"]
        print(goal_line(f"training FLOP/s vinfo / mbt2018 (FLOPs per step {flop_ratio:.2f}x)",
                        [r * flop_ratio for r in throughput], GOAL))


if __name__ == "__main__":
    main()
