"""``vinfo reproduce``: the paper's experiments end to end (see vinfo.experiments.reproduce)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.options import (
    check_executor,
    executor_option,
    slurm_cpus_per_task_option,
    slurm_executor,
    slurm_folder_option,
    slurm_gpus_per_node_option,
    slurm_partition_option,
    slurm_tasks_per_node_option,
    slurm_time_option,
    workers_option,
)
from vinfo.experiments.plan import Executor, ProcessExecutor, executor_for
from vinfo.experiments.presets import REPRODUCE_PRESETS, describe_plan, get_preset
from vinfo.experiments.reproduce import reproduce
from vinfo.experiments.results import BD_MARKDOWN_FILE, RUNS_DIR, SLURM_DIR
from vinfo.experiments.slurm import cell_states

_PRESETS = "; ".join(f"{name}: {preset.description}" for name, preset in REPRODUCE_PRESETS.items())


def reproduce_command(
    preset: str = typer.Option("tiny", "--preset", help=f"Preset. {_PRESETS}."),
    out: Path = typer.Option(None, "--out", "-o", help="Output directory \\[default: "
                             "results/<preset>/].", show_default=False),
    data_root: Path = typer.Option(None, "--data-root", help="Dataset root (paper preset)."),
    plan: bool = typer.Option(False, "--plan", help="Print the plan and stop (no training)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary."),
    executor: str = executor_option("models train", "processes on a CPU preset with 2+ cores, "
                                    "else local"),
    workers: int = workers_option("one per core, at most 2"),
    slurm_partition: str = slurm_partition_option(),
    slurm_gpus_per_node: int = slurm_gpus_per_node_option(),
    slurm_time: int = slurm_time_option(),
    slurm_cpus_per_task: int = slurm_cpus_per_task_option(),
    slurm_tasks_per_node: int = slurm_tasks_per_node_option(),
    slurm_folder: Path = slurm_folder_option("OUT/slurm"),
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
    chosen = slurm_executor(check_executor(executor), out / SLURM_DIR, slurm_folder,
                            partition=slurm_partition, gpus_per_node=slurm_gpus_per_node,
                            time_min=slurm_time, cpus_per_task=slurm_cpus_per_task,
                            tasks_per_node=slurm_tasks_per_node) or _executor(executor, workers)
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


def _executor(name: str | None, workers: int | None) -> Executor | None:
    """The executor of this machine the options name (``None``: the preset's default)."""
    if name == "local":
        return executor_for(1)
    if name == "processes" and workers:
        return ProcessExecutor(workers)
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
