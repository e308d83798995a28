"""Help texts and option checks shared by several commands (one definition, the same words
everywhere)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from vinfo.data import PRESETS
from vinfo.experiments.slurm import SlurmExecutor
from vinfo.models.base import check_beta, check_lmbda

SYNTHETIC_PRESET_HELP = f"Synthetic preset: {', '.join(PRESETS)}."


def _checked(check: Callable[[float], float]) -> Callable[..., object]:
    """A typer callback applying the library's ``check`` to an option (one value or a list).

    Typer's ``min=`` cannot say "> 0" and lets NaN through; this runs while the command line is
    parsed, so a bad value is one usage line (exit 2) before any work or file.
    """

    def callback(value: float | list[float] | None) -> float | list[float] | None:
        try:
            for item in value if isinstance(value, list) else [] if value is None else [value]:
                check(item)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        return value

    return callback


check_lmbda_option = _checked(check_lmbda)
"""Callback of every ``--lmbda`` option: each λ finite and > 0."""

check_beta_option = _checked(check_beta)
"""Callback of every ``--beta`` option: β finite and ≥ 0."""


EXECUTORS = ("local", "processes", "slurm")
"""Values of every ``--executor`` option."""


def executor_option(what: str, default: str) -> object:
    """``--executor``: where ``what`` run (``default`` says what happens without it)."""
    return typer.Option(None, "--executor", show_default=False,
                        help=f"Where {what}: local (this process), processes (worker processes "
                        "of this machine), slurm (SLURM jobs through submitit) "
                        f"\\[default: {default}].")


def workers_option(default: str) -> object:
    """``--workers`` of ``--executor processes``."""
    return typer.Option(None, "--workers", min=1, show_default=False,
                        help=f"Worker processes of --executor processes \\[default: {default}].")


def slurm_partition_option() -> object:
    return typer.Option(None, "--slurm-partition", help="sbatch --partition.")


def slurm_gpus_per_node_option() -> object:
    return typer.Option(None, "--slurm-gpus-per-node", min=0, help="sbatch --gpus-per-node.")


def slurm_time_option() -> object:
    return typer.Option(None, "--slurm-time", min=1, help="sbatch --time, in minutes.")


def slurm_cpus_per_task_option() -> object:
    return typer.Option(None, "--slurm-cpus-per-task", min=1,
                        help="sbatch --cpus-per-task (also the torch threads of a job).")


def slurm_tasks_per_node_option() -> object:
    return typer.Option(None, "--slurm-tasks-per-node", min=1,
                        help="sbatch --ntasks-per-node: every model trains as a DDP job of "
                        "that many ranks (one per GPU), as under torchrun.")


def slurm_folder_option(default: str) -> object:
    return typer.Option(None, "--slurm-folder", show_default=False,
                        help=f"Jobs' logs and pickles \\[default: {default}/<job id>/].")


def check_executor(name: str | None) -> str | None:
    """``name`` if it is one of :data:`EXECUTORS` (or ``None``), else a usage error."""
    if name is not None and name not in EXECUTORS:
        raise typer.BadParameter(f"{name!r}; valid: {', '.join(EXECUTORS)}",
                                 param_hint="--executor")
    return name


def slurm_executor(executor: str | None, default_folder: Path, folder: Path | None = None,
                   **options: int | str | None) -> SlurmExecutor | None:
    """The :class:`~vinfo.experiments.slurm.SlurmExecutor` of ``--executor slurm`` and the
    ``--slurm-*`` options, or ``None`` for another executor.

    Args:
        executor: the ``--executor`` value.
        default_folder: the jobs' folder without ``--slurm-folder``.
        folder: ``--slurm-folder``.
        options: the other fields of the executor (``partition``, ``time_min``…): the ones not
            given (``None``) are left to submitit and SLURM.

    Raises:
        ValueError: a ``--slurm-*`` option given without ``--executor slurm``.
    """
    given = [f"--slurm-{name.removesuffix('_min').replace('_', '-')}"
             for name, value in {**options, "folder": folder}.items() if value is not None]
    if executor != "slurm":
        if given:
            raise ValueError(f"{', '.join(given)}: only with --executor slurm")
        return None
    return SlurmExecutor(folder or default_folder, **options)  # type: ignore[arg-type]
