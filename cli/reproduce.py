"""``vinfo reproduce``: the paper's experiments end to end (see vinfo.experiments.reproduce)."""

from __future__ import annotations

from pathlib import Path

import typer

from vinfo.experiments.reproduce import REPRODUCE_PRESETS, describe_plan, get_preset, reproduce
from vinfo.experiments.results import BD_MARKDOWN_FILE

_PRESETS = "; ".join(f"{name}: {preset.description}" for name, preset in REPRODUCE_PRESETS.items())


def reproduce_command(
    preset: str = typer.Option("tiny", "--preset", help=f"Preset. {_PRESETS}."),
    out: Path = typer.Option(None, "--out", "-o", help="Output directory \\[default: "
                             "results/<preset>/].", show_default=False),
    data_root: Path = typer.Option(None, "--data-root", help="Dataset root (paper preset)."),
    plan: bool = typer.Option(False, "--plan", help="Print the plan and stop (no training)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary."),
) -> None:
    """Train and evaluate the base curves (beta = 0 and 0.1), pick the similar-rate pair, train
    the secondary tasks (direct, scalable, standalone), probe the base representations
    (V-information), and write RD CSVs, the BD table, the Fig. 2/3 plots and a report
    (Markdown + HTML). Rerunning skips finished models and resumes interrupted ones."""
    settings = get_preset(preset)
    out = out or Path("results") / preset
    if not quiet or plan:
        typer.echo(describe_plan(settings, out))
    if plan:
        return
    result = reproduce(settings, out, data_root=data_root, quiet=quiet,
                       progress=None if quiet else typer.echo)
    typer.echo((out / BD_MARKDOWN_FILE).read_text(encoding="utf-8"))
    typer.echo(f"wall time {result.seconds:.0f} s; results in {result.out}")
    typer.echo(f"report: {result.report} (and {result.report.with_suffix('.html').name})")
