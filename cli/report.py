"""``vinfo report``: a Markdown + HTML report of a ``vinfo reproduce`` results directory."""

from __future__ import annotations

from pathlib import Path

import typer

from vinfo.experiments.report import write_report


def report_command(
    results: Path = typer.Argument(..., help="A results directory of 'vinfo reproduce' "
                                   "(holds reproduce.json)."),
    out: Path = typer.Option(None, "--out", "-o", show_default=False,
                             help="Report directory \\[default: RESULTS/report]."),
) -> None:
    """Write report.md and report.html (same content) with the BD table, RD figures, probe
    tables with CIs, the paired ΔI_V, the co-adaptation figure, configs and software versions.
    Sections whose inputs are missing (e.g. no probes.csv yet) are replaced by a note."""
    path = write_report(results, out)
    typer.echo(f"wrote {path.with_suffix('.html')}")
    typer.echo(str(path))
