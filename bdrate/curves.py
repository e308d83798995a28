"""Rate-distortion curves on disk: tidy CSV and CompressAI results JSON → :class:`RDCurve`.

A tidy CSV has one row per RD point, a rate column (``bpp`` by default), one or more metric
columns and optionally a grouping column (``label`` by default) when one file holds several
curves. CompressAI's ``compressai.utils.eval_model`` writes
``{"name": ..., "results": {"bpp": [...], "psnr-rgb": [...], ...}}``; such files are read as one
curve named after ``name``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from bdrate.core import (
    DEFAULT_METHOD,
    DEFAULT_MIN_OVERLAP,
    METHODS,
    BDError,
    bd_metric,
    bd_metric_overlap,
    bd_rate,
    bd_rate_overlap,
    validate_min_overlap,
)
from bdrate.directions import is_known_metric, metric_direction


class CurveFileError(ValueError):
    """A curve file is missing, unreadable, empty or lacks the columns asked for."""


@dataclass(frozen=True)
class RDCurve:
    """One rate-distortion curve.

    Attributes:
        label: name of the curve (the grouping value, the JSON ``name`` or the file stem).
        points: one row per RD point; the rate column and numeric metric columns.
        rate_column: name of the rate column in ``points``.
        source: the file the curve came from.
    """

    label: str
    points: pd.DataFrame
    rate_column: str
    source: str

    @property
    def metric_columns(self) -> list[str]:
        """Columns of ``points`` that are known quality metrics (see ``bdrate.directions``)."""
        return [c for c in self.points.columns if c != self.rate_column and is_known_metric(c)]


def _read_table(path: Path) -> tuple[pd.DataFrame, str | None]:
    """Return the file's points and, for CompressAI JSON, the curve name."""
    if not path.exists():
        raise CurveFileError(f"{path}: no such file")
    if path.is_dir():
        raise CurveFileError(f"{path}: is a directory, expected a CSV or JSON file")
    if path.suffix.lower() == ".json":
        # bdrate sits below vinfo (no vinfo.io.read_json here); the same message as there
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise CurveFileError(f"{path}: not valid JSON (line {error.lineno}, column "
                                 f"{error.colno}: {error.msg})") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CurveFileError(f"{path}: not readable as JSON ({error})") from None
        results = document.get("results") if isinstance(document, dict) else None
        if not isinstance(results, dict):
            raise CurveFileError(
                f'{path}: expected CompressAI results JSON {{"name": ..., "results": {{"bpp": '
                "[...], ...}}}"
            )
        try:
            frame = pd.DataFrame(results)
        except ValueError as error:
            raise CurveFileError(
                f"{path}: results lists have different lengths ({error})"
            ) from None
        name = document.get("name")
        return frame, str(name) if name else None
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CurveFileError(f"{path}: file is empty") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise CurveFileError(f"{path}: not readable as CSV ({error})") from None
    return frame, None


def read_curves(
    path: str | Path, *, rate_column: str = "bpp", group_column: str | None = "label"
) -> list[RDCurve]:
    """Read every RD curve in a tidy CSV or a CompressAI results JSON.

    Args:
        path: ``.csv`` (tidy, one row per point) or ``.json`` (CompressAI results).
        rate_column: the rate column, e.g. ``bpp``.
        group_column: split the rows into curves by this column when it exists; a file without
            it is one curve named after the file stem (or the JSON ``name``).

    Returns:
        The curves in order of first appearance.

    Raises:
        CurveFileError: missing/unreadable/empty file, missing rate column (the message lists
            the columns that exist), non-numeric rates.
    """
    path = Path(path)
    frame, json_name = _read_table(path)
    if frame.empty:
        raise CurveFileError(f"{path}: no data rows")
    if rate_column not in frame.columns:
        raise CurveFileError(
            f"{path}: no rate column {rate_column!r}; columns are "
            + ", ".join(map(str, frame.columns))
        )
    frame[rate_column] = _numeric(frame[rate_column], path, rate_column)
    if group_column and group_column in frame.columns:
        groups = [
            (str(label), rows.drop(columns=group_column).reset_index(drop=True))
            for label, rows in frame.groupby(group_column, sort=False)
        ]
    else:
        groups = [(json_name or path.stem, frame)]
    return [RDCurve(label, rows, rate_column, str(path)) for label, rows in groups]


def read_curve_files(
    paths: list[str | Path], *, rate_column: str = "bpp", group_column: str | None = "label"
) -> list[RDCurve]:
    """Read the curves of several files (see :func:`read_curves`), in order.

    Labels that occur in more than one file get the file name appended (``"proposed [b.csv]"``)
    so that every curve keeps its own name in tables and plot legends.
    """
    curves = [
        curve
        for path in paths
        for curve in read_curves(path, rate_column=rate_column, group_column=group_column)
    ]
    counts = Counter(curve.label for curve in curves)
    return [
        replace(curve, label=f"{curve.label} [{Path(curve.source).name}]")
        if counts[curve.label] > 1
        else curve
        for curve in curves
    ]


def _numeric(column: pd.Series, path: Path, name: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CurveFileError(
            f"{path}: column {name!r} has a non-numeric value {column.iloc[row]!r} (row {row + 1})"
        )
    return values


def find_metric_column(curve: RDCurve, metric: str) -> str | None:
    """The column of ``curve`` holding ``metric``: the exact name, else any spelling of the same
    known metric (``psnr`` finds CompressAI's ``psnr-rgb``), else ``None``."""
    if metric in curve.points.columns:
        return metric
    if not is_known_metric(metric):
        return None
    canonical = metric_direction(metric).name
    for column in curve.metric_columns:
        if metric_direction(column).name == canonical:
            return column
    return None


def metric_values(curve: RDCurve, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(rate, metric)`` arrays of ``curve`` for one metric (see :func:`find_metric_column`).

    Raises:
        CurveFileError: no such column (the message lists the columns that exist) or
            non-numeric values.
    """
    column = find_metric_column(curve, metric)
    if column is None:
        columns = ", ".join(map(str, curve.points.columns))
        raise CurveFileError(
            f"{curve.source}: curve {curve.label!r} has no column {metric!r}; columns are {columns}"
        )
    values = _numeric(curve.points[column], Path(curve.source), column)
    return curve.points[curve.rate_column].to_numpy(float), values.to_numpy(float)


ALL_METHODS = "all"
"""The ``method`` value of :func:`compare_curves` that computes every method of
:data:`bdrate.core.METHODS`."""


@dataclass(frozen=True)
class BDResult:
    """One BD comparison of a test curve against an anchor, as one tidy row.

    Attributes:
        anchor: label of the anchor curve.
        test: label of the test curve.
        metric: metric column compared.
        method: interpolation method, as asked for (an alias such as ``polyfit`` stays).
        higher_is_better: direction of the metric used.
        bd_rate_percent: BD-rate in percent (negative = test needs fewer bits); NaN only when
            ``note`` says why (with :data:`ALL_METHODS`, a method that fails).
        bd_metric: BD-metric in the metric's unit (positive = test better); NaN as above.
        bd_rate_overlap: fraction in [0, 1] of the union of the two metric ranges that both
            curves cover, the range BD-rate averages over (``bjontegaard``'s overlap).
        bd_metric_overlap: the same in ``log10(rate)``, the range BD-metric averages over.
            (Both default to NaN, unknown, for rows built by hand; :func:`compare_curves`
            always fills them.)
        min_overlap: overlaps below this fraction are flagged (:attr:`low_overlap`).
        note: why a value is NaN; empty otherwise.
    """

    anchor: str
    test: str
    metric: str
    method: str
    higher_is_better: bool
    bd_rate_percent: float
    bd_metric: float
    bd_rate_overlap: float = math.nan
    bd_metric_overlap: float = math.nan
    min_overlap: float = DEFAULT_MIN_OVERLAP
    note: str = ""

    @property
    def low_overlap(self) -> bool:
        """Whether either overlap is below :attr:`min_overlap`."""
        return min(self.bd_rate_overlap, self.bd_metric_overlap) < self.min_overlap


def format_overlap(overlap: float, min_overlap: float = DEFAULT_MIN_OVERLAP) -> str:
    """An overlap fraction as a table cell: percent with one decimal, ``" (low)"`` appended
    below ``min_overlap``, ``"n/a"`` for NaN (e.g. ``0.412`` → ``"41.2 (low)"``)."""
    if math.isnan(overlap):
        return "n/a"
    return f"{overlap * 100:.1f}" + (" (low)" if overlap < min_overlap else "")


def overlap_legend(min_overlap: float = DEFAULT_MIN_OVERLAP) -> str:
    """One sentence explaining the overlap columns, for under a table."""
    return (
        "overlap [%]: share of the curves' union range that both cover (in the metric for "
        f"BD-rate, in log10(rate) for BD-metric); (low): below min_overlap {min_overlap:.0%}."
    )


def shared_metrics(curves: list[RDCurve]) -> list[str]:
    """Known metrics present in every curve (under any spelling), in the first curve's order."""
    return [
        column
        for column in curves[0].metric_columns
        if all(find_metric_column(curve, column) is not None for curve in curves[1:])
    ]


def compare_curves(
    curves: list[RDCurve],
    *,
    metrics: list[str] | None = None,
    method: str = DEFAULT_METHOD,
    higher_is_better: bool | None = None,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> list[BDResult]:
    """BD-rate and BD-metric of every later curve against the first (the anchor).

    Args:
        curves: at least two curves; ``curves[0]`` is the anchor.
        metrics: metric columns to compare; default: every known metric column all curves share.
        method: interpolation method (see :data:`bdrate.core.METHODS`, aliases included), or
            :data:`ALL_METHODS` for every method side by side.
        higher_is_better: override the metric direction (needed for metrics not in
            ``bdrate.directions``); ``None`` looks each metric up.
        min_overlap: overlaps below this fraction are flagged in the results
            (:attr:`BDResult.low_overlap`) instead of warned about.

    Returns:
        One :class:`BDResult` per (test curve, metric, method), tests in order, then metrics,
        then methods. A value a method cannot give (the curves do not overlap in the metric
        though they do in rate, its guard refuses, the curve is too short for it, ...) is NaN
        with the reason in ``note``; only when no method gives either value is the error
        raised.

    Raises:
        ValueError: fewer than two curves, no shared metric, an unknown metric without a
            direction override, or any :class:`bdrate.core.BDError` (with the curves named).
    """
    if len(curves) < 2:
        raise ValueError(f"need at least two curves to compare, got {len(curves)}")
    methods = list(METHODS) if method == ALL_METHODS else [method]
    min_overlap = validate_min_overlap(min_overlap)
    if metrics is None:
        metrics = shared_metrics(curves)
        if not metrics:
            columns = ", ".join(map(str, curves[0].points.columns))
            raise CurveFileError(
                f"no known metric column shared by all curves (first curve's columns: {columns}); "
                "name one with --metric"
            )
    anchor = curves[0]
    results = []
    for test in curves[1:]:
        for metric in metrics:
            direction = (
                higher_is_better
                if higher_is_better is not None
                else metric_direction(metric).higher_is_better
            )
            rate_a, metric_a = metric_values(anchor, metric)
            rate_t, metric_t = metric_values(test, metric)
            curve_arrays = (rate_a, metric_a, rate_t, metric_t)
            where = f"{metric}, {test.label!r} vs anchor {anchor.label!r}"
            row = dict(anchor=anchor.label, test=test.label, metric=metric)
            computed = {name: _bd_values(curve_arrays, name, direction) for name in methods}
            errors = [error for _, failed in computed.values() for _, error in failed]
            if len(errors) == 2 * len(methods):
                reasons = "; ".join(
                    f"{what}: {error}" for _, failed in computed.values() for what, error in failed
                )
                if len({str(error) for error in errors}) == 1:
                    reasons = str(errors[0])
                raise type(errors[0])(f"{where}: {reasons}") from None
            overlaps = dict(
                bd_rate_overlap=bd_rate_overlap(*curve_arrays),
                bd_metric_overlap=bd_metric_overlap(*curve_arrays),
            )
            results += [
                BDResult(
                    **row, method=name, higher_is_better=direction, **values, **overlaps,
                    min_overlap=min_overlap,
                    note="; ".join(f"{what}: {error}" for what, error in failed),
                )
                for name, (values, failed) in computed.items()
            ]
    return results


def _bd_values(
    curve_arrays: tuple[np.ndarray, ...], method: str, higher_is_better: bool
) -> tuple[dict[str, float], list[tuple[str, BDError]]]:
    """BD-rate and BD-metric of one comparison with one method; a value that raises
    :class:`BDError` is NaN, and ``("BD-rate" or "BD-metric", error)`` is listed for it."""
    kwargs = dict(method=method, higher_is_better=higher_is_better, min_overlap=0.0)
    values, failed = {}, []
    for field, what, function in (
        ("bd_rate_percent", "BD-rate", bd_rate),
        ("bd_metric", "BD-metric", bd_metric),
    ):
        try:
            values[field] = function(*curve_arrays, **kwargs)
        except BDError as error:
            values[field] = math.nan
            failed.append((what, error))
    return values, failed
