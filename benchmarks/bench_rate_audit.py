"""Rate audit of a trained base codec: entropy-coded payload against the estimate −Σ log2 p.

Trains a small base codec (``--preset small``: N = 32, M = 64, reconstruction task) briefly on
synthetic ``--size``×``--size`` scenes with the library's own training path
(:func:`vinfo.experiments.sweep.train_run`: eq. 3 objective, :class:`vinfo.train.Trainer`) —
or loads ``--checkpoint`` — then codes the ``--test-images`` images of the test split into
real bitstreams and prints, summed over them:

- the model's estimate ``−Σ log2 p(ŷ)`` (bits),
- the rANS payload (bits) and the fixed header (bits, :data:`vinfo.coding.HEADER_BYTES`),
- the payload overhead ``payload / estimate − 1`` (goal: ≤ 1 % at 256×256 and above),

and the same figure as ``vinfo eval`` reports it (:func:`vinfo.experiments.evaluate.evaluate`).
The payload includes the rANS coder's final state flush (about 60 bits per stream), a fixed
cost that weighs more the fewer bits an image takes.

Next to it, CompressAI's ``mbt2018`` (:class:`JointAutoregressiveHierarchicalPriors`) at the
same ``N, M``, trained for ``--mbt-steps`` steps (default: as many as vinfo's codec; ``0``:
untrained) on the same images with the same loss (``λ · RMSE + bpp``, plus its auxiliary
quantile loss; ``--mbt-lmbda`` sets its own λ, to compare at similar rates). Its estimate
is ``−Σ log2`` of the ``y`` and ``z`` likelihoods of its forward pass in eval mode, its
payload the ``y`` and ``z`` strings of ``compress`` (two streams, so two flushes; the shape
it returns beside them is its "header"); ``y`` alone (Gaussian conditional, autoregressive
means) is the part comparable to vinfo's latent, ``z`` is coded by its factorized hyperprior,
whose quantiles a short training leaves far from converged.

The header (thread counts, load average at start and end), the training times (CPU and
wall, one run each) and the goal line come from :mod:`timing` (this folder); the goal is
judged on the median of the per-image overheads, their range beside it.

Run (a few minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_rate_audit.py [--steps 60] [--test-images 4]
    .venv/bin/python benchmarks/bench_rate_audit.py --checkpoint run/model.safetensors
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from anchors import anchor_n
from compressai.models import JointAutoregressiveHierarchicalPriors
from timing import goal_line, once, session
from torch import Tensor
from torch.utils.data import DataLoader

from vinfo.coding.bitstream import HEADER_BYTES, RateAudit, rate_audit
from vinfo.data import SyntheticConfig
from vinfo.data.sample import collate
from vinfo.experiments.datasets import Splits, synthetic_splits
from vinfo.experiments.evaluate import evaluate
from vinfo.experiments.sweep import RunSpec, train_run
from vinfo.models.base import BaseCodec
from vinfo.models.checkpoint import load_checkpoint
from vinfo.models.config import codec_preset
from vinfo.train import TrainConfig, seed_everything

OVERHEAD_GOAL = 1.0
"""Payload overhead over the estimate, in %, at most (at 256×256 and above)."""
GOAL_SIZE = 256


def coded_images(splits: Splits, count: int) -> list[Tensor]:
    """The first ``count`` test images, each ``(1, 3, H, W)``."""
    return [splits.test[i].image[None] for i in range(min(count, len(splits.test)))]


def train_vinfo(args: argparse.Namespace, splits: Splits, run_dir: Path) -> BaseCodec:
    """Train (or load) the base codec with the library's training path."""
    if args.checkpoint is not None:
        codec = load_checkpoint(args.checkpoint)
        if not isinstance(codec, BaseCodec):
            raise SystemExit(f"{args.checkpoint}: not a base codec checkpoint")
        return codec.eval()
    spec = RunSpec("reconstruction", args.lmbda)
    train = TrainConfig(
        lr=args.lr,
        max_steps=args.steps,
        max_epochs=10_000,
        patience=10_000,  # stop on max_steps only
        batch_size=args.batch_size,
        seed=args.seed,
        device="cpu",
        quiet=True,
    )
    finished = train_run(spec, codec_preset(args.preset), splits, train, run_dir)
    return load_checkpoint(finished.checkpoint).eval()


def mbt2018_loss(
    model: JointAutoregressiveHierarchicalPriors, x: Tensor, lmbda: float
) -> Tensor:
    """``λ · RMSE(x̂, x) + bpp`` (y and z), the rate-distortion loss of vinfo's eq. 3."""
    out = model(x)
    bits = sum(-torch.log2(p).sum() for p in out["likelihoods"].values())
    bpp = bits / (x.shape[0] * x.shape[-2] * x.shape[-1])
    return lmbda * (out["x_hat"] - x).square().mean().sqrt() + bpp


def train_mbt2018(
    args: argparse.Namespace, splits: Splits, N: int, M: int
) -> JointAutoregressiveHierarchicalPriors:
    """CompressAI's mbt2018 trained on the same images, steps, batch size and learning rate."""
    seed_everything(args.seed)
    model = JointAutoregressiveHierarchicalPriors(N=N, M=M)
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(main, lr=args.lr)
    aux_optimizer = torch.optim.Adam(aux, lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    step = 0
    model.train()
    while step < args.mbt_steps:
        loader = DataLoader(
            splits.train, args.batch_size, shuffle=True, collate_fn=collate, generator=generator
        )
        for images, _ in loader:
            loss = mbt2018_loss(model, images, args.mbt_lmbda)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            aux_loss = model.aux_loss()
            aux_optimizer.zero_grad(set_to_none=True)
            aux_loss.backward()
            aux_optimizer.step()
            step += 1
            if step >= args.mbt_steps:
                break
    return model.eval()


@torch.no_grad()
def mbt2018_audit(
    model: JointAutoregressiveHierarchicalPriors, x: Tensor
) -> tuple[RateAudit, RateAudit]:
    """``(y, z)`` audits: estimate from the likelihoods of the eval-mode forward pass against
    the strings of ``compress``; the shape ``compress`` returns beside them (2 × 16 bits) is
    counted as the header of ``z``."""
    out = model(x)
    strings = model.compress(x)["strings"]  # [y strings, z strings]
    pixels = x.shape[-2] * x.shape[-1]
    audits = []
    for name, coded, header in zip(("y", "z"), strings, (0, 32), strict=True):
        estimate = float(-torch.log2(out["likelihoods"][name]).sum())
        audits.append(RateAudit(estimate, 8 * len(coded[0]), header, pixels))
    return audits[0], audits[1]


def total(audits: list[RateAudit]) -> RateAudit:
    """The audits of several images summed into one."""
    return RateAudit(
        sum(a.estimated_bits for a in audits),
        sum(a.payload_bits for a in audits),
        sum(a.header_bits for a in audits),
        sum(a.num_pixels for a in audits),
    )


def describe(name: str, audits: list[RateAudit]) -> str:
    summed = total(audits)
    per_image = [100 * a.payload_overhead for a in audits]
    return (
        f"{name}: estimate {summed.estimated_bits:10.0f} bits "
        f"({summed.estimated_bits / summed.num_pixels:.4f} bpp), payload "
        f"{summed.payload_bits:8d} bits, header {summed.header_bits:5d} bits | payload overhead "
        f"{100 * summed.payload_overhead:+.3f} % (per image {min(per_image):+.3f} … "
        f"{max(per_image):+.3f} %; payload − estimate "
        f"{(summed.payload_bits - summed.estimated_bits) / len(audits):.0f} bits per image)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="audit this base codec")
    parser.add_argument("--preset", default="small", help="codec preset to train")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--images", type=int, default=48, help="synthetic images in all")
    parser.add_argument("--test-images", type=int, default=4, help="images coded")
    parser.add_argument("--steps", type=int, default=60, help="training steps (vinfo)")
    parser.add_argument("--mbt-steps", type=int, default=None,
                        help="training steps of mbt2018 (default: --steps; 0: untrained)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lmbda", type=float, default=16.0, help="λ of λ · RMSE + bpp")
    parser.add_argument("--mbt-lmbda", type=float, default=None,
                        help="λ of mbt2018 (default: --lmbda; raise it to match vinfo's rate)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="run directory of the training (default: a temporary one)")
    args = parser.parse_args()
    if args.mbt_steps is None:
        args.mbt_steps = args.steps
    if args.mbt_lmbda is None:
        args.mbt_lmbda = args.lmbda
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    with session(f"rate audit: {args.test_images} synthetic test images "
                 f"{args.size}x{args.size}"):
        audit(args)


def audit(args: argparse.Namespace) -> None:
    """Train (or load) both codecs, code the test images, print the audits and the goal."""
    data = SyntheticConfig(height=args.size, width=args.size, num_images=args.images)
    fraction = max(args.test_images, 2) / args.images
    splits = synthetic_splits(data, val_fraction=2 / args.images, test_fraction=fraction)
    images = coded_images(splits, args.test_images)

    with tempfile.TemporaryDirectory() as scratch:
        trained = once(lambda: train_vinfo(args, splits, args.run_dir or Path(scratch) / "run"))
    codec = trained.value
    ours = [rate_audit(codec, x) for x in images]
    evaluation = evaluate(codec, torch.utils.data.Subset(splits.test, range(len(images))),
                          bitstream_images=len(images))

    def train_reference() -> JointAutoregressiveHierarchicalPriors:
        model = train_mbt2018(args, splits, anchor_n(codec.config), codec.config.M)
        model.update(force=True)
        return model

    reference_trained = once(train_reference)
    reference = reference_trained.value
    theirs_y, theirs_z = zip(*(mbt2018_audit(reference, x) for x in images), strict=True)
    theirs = [  # y and z of one image: one image's pixels
        RateAudit(y.estimated_bits + z.estimated_bits, y.payload_bits + z.payload_bits,
                  y.header_bits + z.header_bits, y.num_pixels)
        for y, z in zip(theirs_y, theirs_z, strict=True)
    ]

    source = args.checkpoint or (
        f"trained {args.steps} steps × {args.batch_size} images, λ = {args.lmbda:g}, "
        f"{trained.wall:.0f} s wall, {trained.cpu:.0f} s CPU"
    )
    print(f"{len(images)} synthetic test images {args.size}x{args.size}, "
          f"vinfo {codec.config.describe_transforms()}, M = {codec.config.M}, "
          f"{torch.get_num_threads()} threads")
    print(f"vinfo base codec ({source}); header {8 * HEADER_BYTES} bits per stream")
    print(describe("vinfo    ", ours))
    print(f"  as `vinfo eval` reports it: payload overhead "
          f"{100 * evaluation.payload_overhead:+.3f} %, header {evaluation.bpp_header:.5f} bpp, "
          f"PSNR {evaluation.metrics.get('psnr', float('nan')):.2f} dB")
    state = (
        f"trained {args.mbt_steps} steps, λ = {args.mbt_lmbda:g}, "
        f"{reference_trained.wall:.0f} s wall, {reference_trained.cpu:.0f} s CPU"
        if args.mbt_steps
        else "untrained"
    )
    print(f"compressai mbt2018 ({state}):")
    print(describe("mbt2018  ", theirs))
    print(describe("  y only ", list(theirs_y)))
    print(describe("  z only ", list(theirs_z)))
    goal = OVERHEAD_GOAL if args.size >= GOAL_SIZE else None
    print(goal_line(f"vinfo payload overhead over the estimate per image, {args.size}x{args.size}",
                    [100 * a.payload_overhead for a in ours], goal, higher_is_better=False,
                    spec="+.3f", unit=" %"))
    print(goal_line(f"mbt2018 payload overhead over the estimate per image (y and z), "
                    f"{args.size}x{args.size}", [100 * a.payload_overhead for a in theirs], None,
                    spec="+.3f", unit=" %"))


if __name__ == "__main__":
    main()
