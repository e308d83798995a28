"""``vinfo bdrate``: Bjøntegaard deltas between RD curves stored as tidy CSV or CompressAI JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import typer

from bdrate import METHODS, compare_curves, read_curve_files
from bdrate.curves import BDResult, RDCurve
from bdrate.directions import known_metrics

_METHOD_HELP = "; ".join(f"{name}: {entry.description}" for name, entry in METHODS.items())


def bdrate(
    files: list[Path] = typer.Argument(
        ...,
        help="Two or more RD files (tidy CSV or CompressAI JSON). The first curve is the anchor; "
        "every later curve is compared against it.",
        show_default=False,
    ),
    metric: list[str] = typer.Option(
        None,
        "--metric",
        "-m",
        help="Metric column(s) to compare (repeatable). Default: every known metric column all "
        f"curves share. Known metrics: {', '.join(known_metrics())}.",
        show_default=False,
    ),
    method: str = typer.Option("akima", "--method", help=f"Interpolation method. {_METHOD_HELP}."),
    rate_col: str = typer.Option("bpp", "--rate-col", help="Rate column (any positive unit)."),
    group_col: str = typer.Option(
        "label", "--group-col", help="Column that splits one file into several curves, if present."
    ),
    anchor: str = typer.Option(
        None,
        "--anchor",
        help="Label of the anchor curve. Default: the first curve read.",
        show_default=False,
    ),
    direction: str = typer.Option(
        None,
        "--direction",
        help="'higher' or 'lower' is better, for metrics vinfo does not know. Default: looked up.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON records."),
    plot: Path = typer.Option(
        None,
        "--plot",
        help="Write a seaborn RD plot of all curves (.png, .pdf, .svg).",
        show_default=False,
    ),
) -> None:
    """Bjøntegaard delta rate and metric of each test curve against the anchor.

    BD-rate is the average rate difference at equal quality, in percent: negative means the
    test curve needs fewer bits (better). BD-metric is the average quality difference at equal
    rate in the metric's unit (dB for PSNR): positive means the test curve is better, for
    lower-is-better metrics such as RMSE too. Example:

        vinfo bdrate examples/anchor.csv examples/test.csv --metric psnr --method akima
    """
    curves = read_curve_files(files, rate_column=rate_col, group_column=group_col or None)
    if anchor is not None:
        curves = _anchor_first(curves, anchor)
    results = compare_curves(
        curves, metrics=metric or None, method=method, higher_is_better=_direction(direction)
    )
    if plot is not None:
        _write_plot(curves, list(dict.fromkeys(r.metric for r in results)), plot, rate_col)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
    else:
        _print_table(results, show_labels=len(curves) > 2 or _labels_differ(results))


def _anchor_first(curves: list[RDCurve], label: str) -> list[RDCurve]:
    matches = [c for c in curves if c.label == label]
    if not matches:
        raise ValueError(
            f"no curve labelled {label!r}; labels are {', '.join(c.label for c in curves)}"
        )
    return [matches[0], *(c for c in curves if c is not matches[0])]


def _direction(direction: str | None) -> bool | None:
    if direction is None:
        return None
    choices = {"higher": True, "lower": False}
    if direction not in choices:
        raise ValueError(f"--direction must be 'higher' or 'lower', got {direction!r}")
    return choices[direction]


def _labels_differ(results: list[BDResult]) -> bool:
    return any(r.anchor != results[0].anchor or r.test != results[0].test for r in results)


def _print_table(results: list[BDResult], *, show_labels: bool) -> None:
    columns = (["anchor", "test"] if show_labels else []) + ["metric", "method"]
    table = pd.DataFrame([dataclasses.asdict(r) for r in results])
    table = table[columns].assign(
        **{
            "BD-rate [%]": [f"{r.bd_rate_percent:+.3f}" for r in results],
            "BD-metric": [f"{r.bd_metric:+.4f}" for r in results],
        }
    )
    if not show_labels:
        typer.echo(f"anchor: {results[0].anchor}    test: {results[0].test}")
    typer.echo(table.to_string(index=False))
    typer.echo("BD-rate < 0: test needs fewer bits. BD-metric > 0: test is better at equal rate.")


def _write_plot(
    curves: list[RDCurve], metrics: list[str], destination: Path, rate_col: str
) -> None:
    import matplotlib.pyplot as plt

    from bdrate.plot import plot_rd_curves
    from vinfo.io import atomic_path

    figure = plot_rd_curves(curves, metrics, rate_label=rate_col)
    try:
        with atomic_path(destination) as temporary:
            figure.savefig(temporary, dpi=150)
    finally:
        plt.close(figure)
