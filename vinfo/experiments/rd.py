"""Rate-distortion tables: tidy RD CSVs, the similar-rate picker and BD tables.

An RD table has one row per trained model (one point of a curve) with the columns

``label`` (curve name, e.g. ``"proposed (beta=0.1)"``), ``beta``, ``lmbda``, ``task``,
``strategy`` (``base``, ``direct``, ``scalable`` or ``standalone``), ``bpp_base``,
``bpp_enhancement`` (0 where there is none), ``bpp`` (the total the curve is plotted against;
for scalable coding base + enhancement, as in the paper's Fig. 2 and 3) and one column per
metric (``psnr``, ``rmse``, ``miou``, …, named as in :mod:`bdrate.directions`).

``vinfo bdrate`` reads these files directly: each ``label`` is a curve.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bdrate import compare_curves
from bdrate.core import DEFAULT_METHOD, DEFAULT_MIN_OVERLAP, get_method
from bdrate.curves import RDCurve, format_overlap, overlap_legend
from bdrate.directions import metric_direction
from vinfo.io import write_json_atomic, write_text_atomic

RD_COLUMNS = ("label", "beta", "lmbda", "task", "strategy", "bpp_base", "bpp_enhancement", "bpp")
"""The fixed leading columns of an RD table; metric columns follow."""


@dataclass(frozen=True)
class RDPoint:
    """One trained model's place on an RD curve.

    Attributes:
        label: curve name.
        beta: reconstruction reward of the base representation (eq. 3).
        lmbda: rate-distortion trade-off λ of this model.
        task: the task the metrics measure.
        strategy: ``base``, ``direct``, ``scalable`` or ``standalone``.
        bpp_base: bits per pixel of the base representation (of the original image).
        bpp_enhancement: bits per pixel of the enhancement representation (0 if none).
        metrics: metric name → value.
    """

    label: str
    beta: float
    lmbda: float
    task: str
    strategy: str
    bpp_base: float
    bpp_enhancement: float = 0.0
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def bpp(self) -> float:
        """Total rate the curve is plotted against: base + enhancement."""
        return self.bpp_base + self.bpp_enhancement


def rd_frame(points: Iterable[RDPoint]) -> pd.DataFrame:
    """Tidy RD table of ``points`` (one row each, columns :data:`RD_COLUMNS` + metrics)."""
    return rd_frame_with_order(points)[0]


def rd_frame_with_order(points: Iterable[RDPoint]) -> tuple[pd.DataFrame, list[int]]:
    """:func:`rd_frame` and its row order: row ``i`` of the frame is ``points[order[i]]``
    (the rows are sorted by label, then rate)."""
    rows = [
        {
            "label": p.label,
            "beta": p.beta,
            "lmbda": p.lmbda,
            "task": p.task,
            "strategy": p.strategy,
            "bpp_base": p.bpp_base,
            "bpp_enhancement": p.bpp_enhancement,
            "bpp": p.bpp,
            **dict(p.metrics),
        }
        for p in points
    ]
    if not rows:
        raise ValueError("no RD points")
    frame = pd.DataFrame(rows).sort_values(["label", "bpp"], kind="stable")
    return frame.reset_index(drop=True), frame.index.tolist()


def write_rd_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write an RD table atomically as CSV; returns the path."""
    missing = [c for c in RD_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"RD table lacks column(s) {', '.join(missing)}")
    write_text_atomic(path, frame.to_csv(index=False))
    return Path(path)


def write_compressai_json(frame: pd.DataFrame, label: str, path: str | Path) -> Path:
    """Write one curve of an RD table in CompressAI's results-JSON format."""
    rows = frame[frame["label"] == label].sort_values("bpp")
    if rows.empty:
        raise ValueError(
            f"no curve labelled {label!r}; labels: {', '.join(frame['label'].unique())}"
        )
    metrics = [c for c in rows.columns if c not in RD_COLUMNS]
    results = {"bpp": rows["bpp"].tolist(), **{m: rows[m].tolist() for m in metrics}}
    write_json_atomic(path, {"name": label, "description": "vinfo RD curve", "results": results})
    return Path(path)


def pick_similar_rate_pair(
    first: pd.DataFrame, second: pd.DataFrame, *, rate_column: str = "bpp"
) -> tuple[pd.Series, pd.Series]:
    """The pair of models, one from each curve, whose rates are closest (§4).

    Closeness is measured in log-rate (the ratio of the two rates), the axis BD metrics use,
    so 0.10 vs 0.11 bpp is as close as 1.0 vs 1.1 bpp. Ties go to the lower rate.

    Returns:
        The chosen row of ``first`` and the chosen row of ``second``.
    """
    for name, frame in (("first", first), ("second", second)):
        if frame.empty:
            raise ValueError(f"the {name} curve has no models")
        rates = frame[rate_column].to_numpy(float)
        if not np.all(np.isfinite(rates)) or np.any(rates <= 0):
            raise ValueError(f"the {name} curve has non-positive or non-finite rates: {rates}")
    log_a = np.log(first[rate_column].to_numpy(float))[:, None]
    log_b = np.log(second[rate_column].to_numpy(float))[None, :]
    distance = np.abs(log_a - log_b) + 1e-12 * (log_a + log_b)  # tie-break: lower rate wins
    i, j = np.unravel_index(np.argmin(distance), distance.shape)
    return first.iloc[int(i)], second.iloc[int(j)]


@dataclass(frozen=True)
class Comparison:
    """One row of a BD table: the test curve against the anchor curve on one metric.

    Attributes:
        figure: where the comparison appears (e.g. ``"Fig. 2b"``).
        anchor: label of the anchor curve (the baseline, β = 0).
        test: label of the test curve (the proposed method, β = 0.1).
        metric: metric column.
    """

    figure: str
    anchor: str
    test: str
    metric: str


def pareto_front(
    frame: pd.DataFrame, metric: str, *, rate_column: str = "bpp"
) -> pd.DataFrame:
    """The rows of one curve that no other row dominates (lower or equal rate and better or
    equal metric), sorted by rate: the operational RD curve, monotone by construction."""
    higher = metric_direction(metric).higher_is_better
    rows = frame.sort_values([rate_column, metric], ascending=[True, not higher], kind="stable")
    keep, best = [], -math.inf
    for index, value in zip(rows.index, rows[metric], strict=True):
        score = value if higher else -value
        if score > best:
            keep.append(index)
            best = score
    return rows.loc[keep]


def bd_table(
    frame: pd.DataFrame,
    comparisons: Iterable[Comparison],
    *,
    method: str = DEFAULT_METHOD,
    prune_dominated: bool = False,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> pd.DataFrame:
    """BD-rate and BD-metric of each comparison, one row each, with the overlaps they rest on.

    A BD value that is undefined (e.g. the curves do not overlap, as on COCO in the paper, or
    an interpolant the data cannot support) is NaN with the reason in ``note`` instead of
    failing the whole table; the other value of the row stays when it is defined (curves apart
    in the metric but not in rate have a BD-metric and no BD-rate).

    Args:
        frame: the RD table.
        comparisons: the rows to compute.
        method: BD interpolation method (:data:`bdrate.core.METHODS` or an alias).
        prune_dominated: when a curve is not monotone (noisy short training produces them),
            compute BD-rate, which needs monotone curves, on the curves' :func:`pareto_front`
            and say so in ``note``; BD-metric keeps every point.
        min_overlap: overlaps below this fraction are flagged in :func:`bd_table_markdown`.

    Returns:
        One row per comparison: the comparison's fields, ``method``, ``bd_rate_percent``,
        ``bd_metric``, ``bd_rate_overlap`` (fraction of the union metric range both curves
        cover), ``bd_metric_overlap`` (the same in log10(rate)), ``min_overlap``, ``note``.
        Overlaps are NaN where the value is undefined.
    """
    get_method(method)  # one method per table: an unknown name fails the table, not each row
    rows: list[dict[str, Any]] = []
    for comparison in comparisons:
        anchor, test = _rows(frame, comparison.anchor), _rows(frame, comparison.test)
        values = _bd_values(anchor, test, comparison, method, min_overlap)
        fronts = [pareto_front(c, comparison.metric) for c in (anchor, test)]
        if prune_dominated and (len(fronts[0]) < len(anchor) or len(fronts[1]) < len(test)):
            # BD-rate inverts each curve, so it needs them monotone: it is computed on the
            # operational (Pareto) curves. BD-metric needs distinct rates only and keeps every
            # point, as bjontegaard computes it.
            on_fronts = _bd_values(*fronts, comparison, method, min_overlap)
            dropped = (f"BD-rate on the Pareto fronts (dominated points dropped: anchor "
                       f"{len(fronts[0])} of {len(anchor)} kept, test {len(fronts[1])} of "
                       f"{len(test)})")
            rate_reason = _reasons(on_fronts["note"], "BD-rate")
            if values["bd_rate_overlap"] == 0:  # the deeper reason, whatever the fronts
                spans = ", ".join(
                    f"{label} spans [{c[comparison.metric].min():.6g}, "
                    f"{c[comparison.metric].max():.6g}]"
                    for label, c in (("anchor", anchor), ("test", test))
                )
                rate_reason = (f"BD-rate: the curves do not overlap in {comparison.metric} "
                               f"({spans})")
            values |= {key: on_fronts[key] for key in ("bd_rate_percent", "bd_rate_overlap")}
            values["note"] = _join(dropped, rate_reason, _reasons(values["note"], "BD-metric"))
        rows.append({**comparison.__dict__, "method": method} | values)
    return pd.DataFrame(rows)


def _bd_values(
    anchor: pd.DataFrame,
    test: pd.DataFrame,
    comparison: Comparison,
    method: str,
    min_overlap: float,
) -> dict[str, Any]:
    """The BD columns of one comparison; NaN where undefined, with the reason in ``note``."""
    try:
        result = _compare(anchor, test, comparison, method, min_overlap)
    except ValueError as error:
        return _undefined(str(error), min_overlap)
    return {
        "bd_rate_percent": result.bd_rate_percent,
        "bd_metric": result.bd_metric,
        "bd_rate_overlap": result.bd_rate_overlap,
        "bd_metric_overlap": result.bd_metric_overlap,
        "min_overlap": result.min_overlap,
        "note": result.note,
    }


def _reasons(note: str, value: str) -> str:
    """The reason in ``note`` that concerns ``value`` (``"BD-rate"`` or ``"BD-metric"``).

    :func:`~bdrate.compare_curves` writes ``"BD-rate: …; BD-metric: …"`` (either part may be
    missing); a note without these labels (both values failed for one reason) concerns both.
    """
    rate_at, metric_at = note.find("BD-rate: "), note.find("BD-metric: ")
    if rate_at < 0 and metric_at < 0:
        return note
    if value == "BD-metric":
        return note[metric_at:] if metric_at >= 0 else ""
    if rate_at < 0:
        return ""
    return note[rate_at:metric_at - 2] if metric_at > rate_at else note[rate_at:]


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _compare(
    anchor: pd.DataFrame,
    test: pd.DataFrame,
    comparison: Comparison,
    method: str,
    min_overlap: float,
):
    curves = [
        RDCurve(label, rows.drop(columns="label").reset_index(drop=True), "bpp", "<rd table>")
        for label, rows in ((comparison.anchor, anchor), (comparison.test, test))
    ]
    (result,) = compare_curves(
        curves, metrics=[comparison.metric], method=method, min_overlap=min_overlap
    )
    return result


def _undefined(reason: str, min_overlap: float) -> dict[str, Any]:
    return {
        "bd_rate_percent": math.nan,
        "bd_metric": math.nan,
        "bd_rate_overlap": math.nan,
        "bd_metric_overlap": math.nan,
        "min_overlap": min_overlap,
        "note": reason,
    }


def bd_table_markdown(table: pd.DataFrame) -> str:
    """The BD table as Markdown (each value beside its overlap, low overlap flagged), with the
    sign convention and the meaning of the overlap stated under it."""
    lines = [
        "| figure | anchor | test | metric | BD-rate [%] | overlap [%] | BD-metric "
        "| overlap [%] | note |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    with_ci = "bd_rate_ci_low" in table.columns
    for row in table.itertuples():
        rate = "n/a" if math.isnan(row.bd_rate_percent) else f"{row.bd_rate_percent:+.2f}"
        if with_ci and not math.isnan(row.bd_rate_percent) and not math.isnan(row.bd_rate_ci_low):
            rate += f" [{row.bd_rate_ci_low:+.2f}, {row.bd_rate_ci_high:+.2f}]"
        gain = "n/a" if math.isnan(row.bd_metric) else f"{row.bd_metric:+.4f}"
        rate_overlap = format_overlap(row.bd_rate_overlap, row.min_overlap)
        metric_overlap = format_overlap(row.bd_metric_overlap, row.min_overlap)
        lines.append(
            f"| {row.figure} | {row.anchor} | {row.test} | {row.metric} | {rate} | "
            f"{rate_overlap} | {gain} | {metric_overlap} | {row.note} |"
        )
    lines.append("")
    methods = ", ".join(dict.fromkeys(table["method"]))
    lines.append(
        "BD-rate < 0: the test curve needs fewer bits. BD-metric > 0: the test curve is "
        f"better at equal rate. Interpolation: {methods}. "
        + overlap_legend(float(table["min_overlap"].iloc[0]))
    )
    if with_ci and table["bd_rate_ci_low"].notna().any():
        defined = table.dropna(subset=["bd_rate_ci_low"]).iloc[0]
        lines.append("")
        lines.append(
            f"[low, high]: {float(defined['ci_confidence']):.0%} bootstrap interval of the "
            f"BD-rate over the {int(defined['ci_images'])} test images "
            f"({int(defined['ci_resamples'])} draws, paired across curves; the curves' training "
            "seed is not resampled)."
        )
    return "\n".join(lines) + "\n"


def _rows(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    rows = frame[frame["label"] == label]
    if rows.empty:
        raise ValueError(
            f"no curve labelled {label!r}; labels: {', '.join(frame['label'].unique())}"
        )
    return rows
