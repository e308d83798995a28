"""``vinfo bdrate``: Bjøntegaard deltas between RD curves stored as tidy CSV or CompressAI JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
import typer

from bdrate import (
    ALL_METHODS,
    DEFAULT_METHOD,
    DEFAULT_MIN_OVERLAP,
    METHOD_ALIASES,
    METHODS,
    compare_curves,
    format_overlap,
    overlap_legend,
    read_curve_files,
)
from bdrate.curves import BDResult, RDCurve
from bdrate.directions import known_metrics
from vinfo.io import FIGURE_SUFFIXES, check_output_file

METHOD_HELP = (
    "; ".join(f"{name}: {entry.description}" for name, entry in METHODS.items())
    + "; "
    + "; ".join(f"{alias}: same as {target}" for alias, target in METHOD_ALIASES.items())
    + f"; {ALL_METHODS}: every method side by side"
)
"""Every interpolation method of the registry with its description, the aliases and ``all``:
the one text both ``vinfo --help`` and ``vinfo bdrate --help`` show."""


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
    method: str = typer.Option(
        DEFAULT_METHOD,
        "--method",
        help=f"Interpolation method, named as in the bjontegaard package. {METHOD_HELP}.",
    ),
    min_overlap: float = typer.Option(
        DEFAULT_MIN_OVERLAP,
        "--min-overlap",
        help="Flag results whose curves overlap on less than this fraction of their union "
        "range (in the metric for BD-rate, in log10(rate) for BD-metric), as bjontegaard's "
        "min_overlap warns.",
    ),
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
    lower-is-better metrics such as RMSE too. Each value comes with the overlap of the two
    curves on the axis it averages over; a result the data cannot support (an interpolant
    swinging far beyond the points) is an error, not a number. Example:

        vinfo bdrate examples/anchor.csv examples/test.csv --metric psnr --method all
    """
    check_output_file(plot, FIGURE_SUFFIXES, "a plot")
    curves = read_curve_files(files, rate_column=rate_col, group_column=group_col or None)
    if anchor is not None:
        curves = _anchor_first(curves, anchor)
    results = compare_curves(
        curves,
        metrics=metric or None,
        method=method,
        higher_is_better=_direction(direction),
        min_overlap=min_overlap,
    )
    if plot is not None:
        _write_plot(curves, list(dict.fromkeys(r.metric for r in results)), plot, rate_col)
    if as_json:
        typer.echo(json.dumps([_record(r) for r in results], indent=2, allow_nan=False))
    else:
        show_labels = len(curves) > 2 or _labels_differ(results)
        if method == ALL_METHODS:
            _print_wide_table(results, show_labels=show_labels)
        else:
            _print_table(results, show_labels=show_labels)


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


def _record(result: BDResult) -> dict:
    """A JSON record: the result's fields (NaN as null) and its ``low_overlap`` flag."""
    record = {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in dataclasses.asdict(result).items()
    }
    return record | {"low_overlap": result.low_overlap}


def _value(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.{digits}f}"


def _print_table(results: list[BDResult], *, show_labels: bool) -> None:
    header = (["anchor", "test"] if show_labels else []) + ["metric", "method"]
    header += ["BD-rate [%]", "overlap [%]", "BD-metric", "overlap [%]"]
    rows = [
        ([r.anchor, r.test] if show_labels else [])
        + [r.metric, r.method, _value(r.bd_rate_percent, 3)]
        + [format_overlap(r.bd_rate_overlap, r.min_overlap), _value(r.bd_metric, 4)]
        + [format_overlap(r.bd_metric_overlap, r.min_overlap)]
        for r in results
    ]
    _echo(pd.DataFrame(rows, columns=header), results, show_labels=show_labels)


def _print_wide_table(results: list[BDResult], *, show_labels: bool) -> None:
    """One row per comparison: its overlaps, then every method's BD-rate and BD-metric."""
    keys = ["anchor", "test", "metric"] if show_labels else ["metric"]
    methods = list(dict.fromkeys(r.method for r in results))
    columns = [("", key) for key in keys]
    for value in ("BD-rate [%]", "BD-metric"):
        columns += [(value, "overlap"), *((value, name) for name in methods)]
    rows: dict[tuple, dict] = {}
    for r in results:
        key = tuple(getattr(r, k) for k in keys)
        row = rows.setdefault(key, {("", k): v for k, v in zip(keys, key, strict=True)})
        row[("BD-rate [%]", "overlap")] = format_overlap(r.bd_rate_overlap, r.min_overlap)
        row[("BD-rate [%]", r.method)] = _value(r.bd_rate_percent, 3)
        row[("BD-metric", "overlap")] = format_overlap(r.bd_metric_overlap, r.min_overlap)
        row[("BD-metric", r.method)] = _value(r.bd_metric, 4)
    table = pd.DataFrame([[row[c] for c in columns] for row in rows.values()])
    table.columns = pd.MultiIndex.from_tuples(columns)
    _echo(table, results, show_labels=show_labels)


def _echo(table: pd.DataFrame, results: list[BDResult], *, show_labels: bool) -> None:
    if not show_labels:
        typer.echo(f"anchor: {results[0].anchor}    test: {results[0].test}")
    typer.echo("\n".join(line.rstrip() for line in table.to_string(index=False).splitlines()))
    for r in results:
        if r.note:
            typer.echo(f"n/a: {r.metric}, {r.method}, {r.test!r}: {r.note}")
    typer.echo("BD-rate < 0: test needs fewer bits. BD-metric > 0: test is better at equal rate.")
    typer.echo(overlap_legend(results[0].min_overlap))


def _write_plot(
    curves: list[RDCurve], metrics: list[str], destination: Path, rate_col: str
) -> None:
    from bdrate.plot import plot_rd_curves
    from vinfo.figures import save_figure

    save_figure(plot_rd_curves(curves, metrics, rate_label=rate_col), destination)
