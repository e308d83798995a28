"""``vinfo train base|enhancement``: one warm-started λ curve of codecs (eq. 3 or eq. 4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from cli.options import SYNTHETIC_PRESET_HELP, check_beta_option, check_lmbda_option
from vinfo.data import experiment_datasets
from vinfo.experiments.sweep import train_curve
from vinfo.models import CODEC_PRESETS, STRATEGIES, TASKS
from vinfo.progress import silent
from vinfo.train import LR_SCHEDULES, TrainConfig
from vinfo.train.distributed import is_main_process

app = typer.Typer(
    help="Train codecs: a base curve (eq. 3) or an enhancement curve (eq. 4), highest lambda "
    "first, the others warm-started from it (paper §4.1). Finished models are skipped and "
    "interrupted ones resumed when the command is run again.",
    no_args_is_help=True,
)

_LMBDA = typer.Option(..., "--lmbda", callback=check_lmbda_option,
                      help="Lambda value, > 0 (repeat for a curve).")
_OUT = typer.Option(..., "--out", "-o", help="Curve directory (one sub-directory per lambda).")
_DATASET = typer.Option("synthetic", "--dataset",
                        help=f"One of {', '.join(experiment_datasets())}.")
_ROOT = typer.Option(None, "--data-root", help="Root of a real dataset (coco, cityscapes).")
_SYNTHETIC = typer.Option("tiny", "--synthetic", help=SYNTHETIC_PRESET_HELP)
_CODEC = typer.Option("tiny", "--codec", help=f"Codec preset: {', '.join(CODEC_PRESETS.names())}.")
_DOWNSCALE = typer.Option(1, "--downscale", min=1,
                          help="Shrink inputs by this factor (Cityscapes: 2).")
_AUGMENT = typer.Option(True, "--augment/--no-augment", help="Random flips and colour jitter.")
_RESUME = typer.Option(True, "--resume/--no-resume", help="Continue interrupted runs.")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.")
# Optimisation options default to None and are dropped, so TrainConfig's defaults (the
# paper's: Adam 1e-4, patience 10, up to 1000 epochs) and its range checks stay the one source
# of truth, which the help reads; it is built before any work, so a bad value fails first.
_DEFAULT = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
_LR = typer.Option(None, "--lr", help=f"Adam learning rate \\[default: {_DEFAULT['lr']:g}].",
                 show_default=False)
_SCHEDULE = typer.Option(None, "--lr-schedule", help="Learning-rate schedule: "
                         f"{', '.join(LR_SCHEDULES)} \\[default: {_DEFAULT['lr_schedule']}].",
                         show_default=False)
_EPOCHS = typer.Option(None, "--max-epochs",
                       help=f"Epochs of the first model \\[default: {_DEFAULT['max_epochs']}].",
                       show_default=False)
_WARM = typer.Option(None, "--warm-epochs",
                     help="Epochs of warm-started models \\[default: as "
                     "--max-epochs].", show_default=False)
_STEPS = typer.Option(None, "--max-steps",
                      help="Optimizer steps per model.", show_default=False)
_PATIENCE = typer.Option(None, "--patience", help="Early-stopping patience in epochs "
                         f"\\[default: {_DEFAULT['patience']}].", show_default=False)
_BATCH = typer.Option(None, "--batch-size", show_default=False,
                      help=f"Global batch size \\[default: {_DEFAULT['batch_size']}].")
_SEED = typer.Option(None, "--seed", help=f"Seed \\[default: {_DEFAULT['seed']}].",
                     show_default=False)
_DEVICE = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:1 "
                       f"\\[default: {_DEFAULT['device']}].",
                       show_default=False)


def _configs(
    quiet: bool, warm_epochs: int | None, **options: object
) -> tuple[TrainConfig, TrainConfig | None]:
    first = TrainConfig(quiet=quiet, **{k: v for k, v in options.items() if v is not None})
    warm = None if warm_epochs is None else TrainConfig.from_dict(
        {**first.to_dict(), "max_epochs": warm_epochs}
    )
    return first, warm


@app.command()
def base(
    task: str = typer.Option(..., "--task", help=f"Base task: {', '.join(TASKS.names())}."),
    beta: float = typer.Option(0.0, "--beta", callback=check_beta_option,
                               help="Reconstruction reward, >= 0 (paper: 0.1)."),
    lmbda: list[float] = _LMBDA,
    out: Path = _OUT,
    dataset: str = _DATASET,
    data_root: Path = _ROOT,
    synthetic: str = _SYNTHETIC,
    codec: str = _CODEC,
    downscale: int = _DOWNSCALE,
    augment: bool = _AUGMENT,
    lr: float = _LR,
    lr_schedule: str = _SCHEDULE,
    max_epochs: int = _EPOCHS,
    warm_epochs: int = _WARM,
    max_steps: int = _STEPS,
    patience: int = _PATIENCE,
    batch_size: int = _BATCH,
    seed: int = _SEED,
    device: str = _DEVICE,
    resume: bool = _RESUME,
    quiet: bool = _QUIET,
) -> None:
    """Train base codecs: L = lambda * d(Z_b, Z_b^) + R_b + beta * ||X - X^|| (eq. 3)."""
    first, warm = _configs(quiet, warm_epochs, lr=lr, lr_schedule=lr_schedule,
                           max_epochs=max_epochs,
                           max_steps=max_steps, patience=patience, batch_size=batch_size,
                           seed=seed, device=device)
    runs = train_curve(out, task=task, lmbdas=lmbda, beta=beta, dataset=dataset,
                       data_root=data_root, synthetic=synthetic, codec=codec, train=first,
                       warm=warm, downscale=downscale, augment=augment, resume=resume,
                       progress=_echo(quiet))
    for run in runs:
        _report(f"lambda={run.spec.lmbda:g}: {run.checkpoint}")


@app.command()
def enhancement(
    base: Path = typer.Option(..., "--base", help="Base checkpoint (model.safetensors)."),
    strategy: str = typer.Option(..., "--strategy",
                                 help=f"One of {', '.join(STRATEGIES.names())}."),
    task: str = typer.Option(..., "--task", help="Secondary task, e.g. reconstruction."),
    lmbda: list[float] = _LMBDA,
    out: Path = _OUT,
    init: Path = typer.Option(None, "--init", help="Checkpoint that initialises the first model "
                              "(e.g. a scalable model for standalone)."),
    train_only: str = typer.Option(None, "--train-only", help="Optimise only this submodule, "
                                   "e.g. entropy_model (the paper's standalone method)."),
    dataset: str = _DATASET,
    data_root: Path = _ROOT,
    synthetic: str = _SYNTHETIC,
    codec: str = _CODEC,
    downscale: int = _DOWNSCALE,
    augment: bool = _AUGMENT,
    lr: float = _LR,
    lr_schedule: str = _SCHEDULE,
    max_epochs: int = _EPOCHS,
    warm_epochs: int = _WARM,
    max_steps: int = _STEPS,
    patience: int = _PATIENCE,
    batch_size: int = _BATCH,
    seed: int = _SEED,
    device: str = _DEVICE,
    resume: bool = _RESUME,
    quiet: bool = _QUIET,
) -> None:
    """Train enhancement codecs on a frozen base: L = lambda * d(Z_e, Z_e^) + R(Y_e | Y_b)
    (eq. 4)."""
    first, warm = _configs(quiet, warm_epochs, lr=lr, lr_schedule=lr_schedule,
                           max_epochs=max_epochs,
                           max_steps=max_steps, patience=patience, batch_size=batch_size,
                           seed=seed, device=device)
    runs = train_curve(out, task=task, lmbdas=lmbda, strategy=strategy, base=base, init=init,
                       train_only=train_only, dataset=dataset, data_root=data_root,
                       synthetic=synthetic, codec=codec, train=first, warm=warm,
                       downscale=downscale, augment=augment, resume=resume,
                       progress=_echo(quiet))
    for run in runs:
        _report(f"lambda={run.spec.lmbda:g}: {run.checkpoint}")


def _report(message: str) -> None:
    """Print on rank 0 only: under torchrun every process runs this command."""
    if is_main_process():
        typer.echo(message)


def _echo(quiet: bool):
    return silent if quiet else _report
