"""``vinfo reproduce``: the paper's experiments end to end (see vinfo.experiments.reproduce)."""

from __future__ import annotations

from pathlib import Path

import typer

from vinfo.experiments.plan import Executor, ProcessExecutor, executor_for
from vinfo.experiments.presets import REPRODUCE_PRESETS, describe_plan, get_preset
from vinfo.experiments.reproduce import reproduce
from vinfo.experiments.results import BD_MARKDOWN_FILE, RUNS_DIR, SLURM_DIR
from vinfo.experiments.slurm import SlurmExecutor, cell_states

EXECUTORS = ("local", "processes", "slurm")

_PRESETS = "; ".join(f"{name}: {preset.description}" for name, preset in REPRODUCE_PRESETS.items())


def reproduce_command(
    preset: str = typer.Option("tiny", "--preset", help=f"Preset. {_PRESETS}."),
    out: Path = typer.Option(None, "--out", "-o", help="Output directory \\[default: "
                             "results/<preset>/].", show_default=False),
    data_root: Path = typer.Option(None, "--data-root", help="Dataset root (paper preset)."),
    plan: bool = typer.Option(False, "--plan", help="Print the plan and stop (no training)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary."),
    executor: str = typer.Option(None, "--executor", help="Where models train: local (this "
                                 "process), processes (worker processes of this machine), "
                                 "slurm (one SLURM job per model, through submitit) "
                                 "\\[default: processes on a CPU preset with 2+ cores, else "
                                 "local].", show_default=False),
    workers: int = typer.Option(None, "--workers", min=1, help="Worker processes of "
                                "--executor processes \\[default: one per core, at most 2].",
                                show_default=False),
    slurm_partition: str = typer.Option(None, "--slurm-partition", help="sbatch --partition."),
    slurm_gpus_per_node: int = typer.Option(None, "--slurm-gpus-per-node", min=0,
                                            help="sbatch --gpus-per-node."),
    slurm_time: int = typer.Option(None, "--slurm-time", min=1,
                                   help="sbatch --time, in minutes."),
    slurm_cpus_per_task: int = typer.Option(None, "--slurm-cpus-per-task", min=1,
                                            help="sbatch --cpus-per-task (also the torch "
                                            "threads of a job)."),
    slurm_folder: Path = typer.Option(None, "--slurm-folder", help="Jobs' logs and pickles "
                                      "\\[default: OUT/slurm/<job id>/].", show_default=False),
    status: bool = typer.Option(False, "--status", help="List every model of OUT with its "
                                "state (done, running, pending, failed, not submitted), job id "
                                "and log, and stop."),
) -> None:
    """Train and evaluate the base curves (beta = 0 and 0.1), pick the similar-rate pair, train
    the secondary tasks (direct, scalable, standalone), probe the base representations
    (V-information), and write RD CSVs, the BD table, the Fig. 2/3 plots and a report
    (Markdown + HTML). Rerunning skips finished models and resumes interrupted ones."""
    settings = get_preset(preset)
    out = out or Path("results") / preset
    if status:
        _print_status(out)
        return
    if executor is not None and executor not in EXECUTORS:
        raise typer.BadParameter(f"{executor!r}; valid: {', '.join(EXECUTORS)}",
                                 param_hint="--executor")
    chosen = _executor(executor, workers, out, slurm_partition, slurm_gpus_per_node,
                       slurm_time, slurm_cpus_per_task, slurm_folder)
    if not quiet or plan:
        typer.echo(describe_plan(settings, out))
    if plan:
        return
    result = reproduce(settings, out, data_root=data_root, quiet=quiet,
                       progress=None if quiet else typer.echo, workers=workers,
                       executor=chosen)
    typer.echo((out / BD_MARKDOWN_FILE).read_text(encoding="utf-8"))
    typer.echo(f"wall time {result.seconds:.0f} s; results in {result.out}")
    typer.echo(f"report: {result.report} (and {result.report.with_suffix('.html').name})")


def _executor(name: str | None, workers: int | None, out: Path, partition: str | None,
              gpus_per_node: int | None, time_min: int | None, cpus_per_task: int | None,
              folder: Path | None) -> Executor | None:
    """The executor the options name (``None``: the library's default for the preset)."""
    if name == "slurm":
        return SlurmExecutor(folder or out / SLURM_DIR, partition=partition,
                             gpus_per_node=gpus_per_node, time_min=time_min,
                             cpus_per_task=cpus_per_task)
    if name == "local":
        return executor_for(1)
    if name == "processes":
        return ProcessExecutor(workers) if workers else None
    return None


def _print_status(out: Path) -> None:
    runs = out / RUNS_DIR
    if not runs.is_dir():
        raise typer.BadParameter(f"{out}: no runs yet", param_hint="--out")
    rows = cell_states(runs)
    width = max(len(row["run"]) for row in rows) if rows else 3
    for row in rows:
        job = f" job {row['job_id']}" if row["job_id"] else ""
        log = f" log {row['log']}" if row["state"] == "failed" and row["log"] else ""
        typer.echo(f"{row['run']:<{width}}  {row['state']}{job}{log}")
    counts = {state: sum(row["state"] == state for row in rows) for state in
              dict.fromkeys(row["state"] for row in rows)}
    typer.echo(", ".join(f"{n} {state}" for state, n in counts.items()) or "no runs")
