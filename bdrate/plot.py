"""Rate-distortion plots with seaborn: one panel per metric, one line per curve."""

from __future__ import annotations

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
        sns.lineplot(
            data=data[data["metric"] == metric],
            x="rate",
            y="value",
            hue="label",
            style="label",
            markers=True,
            dashes=False,
            sort=False,
            estimator=None,
            ax=axis,
        )
        unit = metric_direction(metric).unit if is_known_metric(metric) else ""
        axis.set_xlabel(rate_label)
        axis.set_ylabel(f"{metric} [{unit}]" if unit else metric)
        axis.legend(title=None)
    return figure
