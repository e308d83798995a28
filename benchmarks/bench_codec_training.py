"""Training throughput of the ``paper`` codec next to CompressAI's ``mbt2018``, for context.

Both are trained on the same random 64×64 images with Adam, a rate-distortion loss and the
same ``N, M`` (the ``paper`` preset: N = 96, M = 192): vinfo's base codec for reconstruction
(eq. 3 with β = 0: autoregressive context model without hyperprior, straight-through
rounding, residual bottleneck transforms) and CompressAI's Minnen et al. (2018) joint
autoregressive + hierarchical prior model (GDN transforms, hyperprior, additive noise).
Prints images per second of training (forward, backward, optimizer step) of each and their
ratio, measured in one run.

    .venv/bin/python benchmarks/bench_codec_training.py
"""

from __future__ import annotations

import time

import torch
from compressai.models import JointAutoregressiveHierarchicalPriors

from vinfo.models import BaseCodec, codec_preset

BATCH, SIZE, WARMUP, STEPS = 4, 64, 2, 5
LMBDA = 0.01


def vinfo_step(model: BaseCodec, x: torch.Tensor) -> torch.Tensor:
    out = model(x, x)
    return model.loss(out, x, x, LMBDA).loss


def mbt2018_step(model: JointAutoregressiveHierarchicalPriors, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    bits = sum(-torch.log2(p).sum() for p in out["likelihoods"].values())
    bpp = bits / (x.shape[0] * x.shape[-2] * x.shape[-1])
    return LMBDA * (out["x_hat"] - x).square().mean().sqrt() + bpp


def images_per_second(model: torch.nn.Module, step, x: torch.Tensor) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    for index in range(WARMUP + STEPS):
        if index == WARMUP:
            started = time.perf_counter()
        loss = step(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return STEPS * x.shape[0] / (time.perf_counter() - started)


def main() -> None:
    torch.manual_seed(0)
    config = codec_preset("paper")
    x = torch.rand(BATCH, 3, SIZE, SIZE)
    ours = images_per_second(BaseCodec(config, "reconstruction"), vinfo_step, x)
    reference = images_per_second(
        JointAutoregressiveHierarchicalPriors(N=config.N, M=config.M), mbt2018_step, x
    )
    print(
        f"training on {BATCH}x3x{SIZE}x{SIZE}, N={config.N}, M={config.M}, "
        f"{torch.get_num_threads()} threads: vinfo paper codec {ours:.1f} img/s, "
        f"compressai mbt2018 {reference:.1f} img/s, ratio vinfo/mbt2018 {ours / reference:.2f}"
    )


if __name__ == "__main__":
    main()
