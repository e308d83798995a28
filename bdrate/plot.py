"""Rate-distortion plots with seaborn: one panel per metric, one line per curve."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.axes
import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bdrate.curves import RDCurve, metric_values
from bdrate.directions import is_known_metric, metric_direction


def tidy_points(curves: list[RDCurve], metrics: list[str]) -> pd.DataFrame:
    """Long-format table ``(label, metric, rate, value)`` of ``curves`` for plotting."""
    frames = []
    for curve in curves:
        for metric in metrics:
            rate, value = metric_values(curve, metric)
            frames.append(
                pd.DataFrame({"label": curve.label, "metric": metric, "rate": rate, "value": value})
            )
    return pd.concat(frames, ignore_index=True)


def plot_rd_curves(
    curves: list[RDCurve], metrics: list[str], *, rate_label: str = "bpp"
) -> matplotlib.figure.Figure:
    """Plot ``curves`` as RD curves, one panel per metric; the caller saves or shows the figure.

    Args:
        curves: curves to draw; the legend uses their labels.
        metrics: metric columns, one panel each.
        rate_label: x-axis label.

    Returns:
        The figure (not shown; the library never calls ``plt.show``).
    """
    data = tidy_points(curves, metrics).sort_values(["label", "metric", "rate"])
    sns.set_theme(style="whitegrid", context="paper")
    figure, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False, layout="constrained"
    )
    for axis, metric in zip(axes[0], metrics, strict=True):
        draw_rd_axis(axis, data[data["metric"] == metric], metric, x="rate", y="value",
                     rate_label=rate_label)
    return figure


def draw_rd_axis(axis: matplotlib.axes.Axes, data: pd.DataFrame, metric: str, *, x: str,
                 y: str, labels: Sequence[str] | None = None, title: str | None = None,
                 rate_label: str | None = None) -> None:
    """Draw RD curves on ``axis``, one line with markers per ``label`` of ``data`` in the
    order of its rows (every RD figure of vinfo draws its curves with this).

    Args:
        axis: where to draw.
        data: the points, with a ``label`` column, the rate column ``x`` and the value ``y``.
        metric: what ``y`` measures (its unit labels the axis).
        labels: the curves, in legend order (default: as they come).
        title: the axis title.
        rate_label: the x-axis label (default ``x``).
    """
    order = None if labels is None else list(labels)
    sns.lineplot(data=data, x=x, y=y, hue="label", style="label", hue_order=order,
                 style_order=order, markers=True, dashes=False, sort=False, estimator=None,
                 ax=axis)
    unit = metric_direction(metric).unit if is_known_metric(metric) else ""
    axis.set(xlabel=rate_label or x, ylabel=f"{metric} [{unit}]" if unit else metric)
    if title is not None:
        axis.set_title(title)
    axis.legend(title=None, fontsize="small")
