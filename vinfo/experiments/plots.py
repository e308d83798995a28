"""Seaborn RD figures laid out like the paper's Fig. 2 and Fig. 3: one panel per comparison;
:func:`save_figure` (files) and :func:`figure_png` (bytes) for any figure.

No backend is selected here: the CLI selects ``Agg`` (``cli/main.py``), notebooks keep their
inline backend, and without a display pyplot falls back to ``Agg`` by itself."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bdrate.directions import is_known_metric, metric_direction
from vinfo.io import atomic_path


@dataclass(frozen=True)
class Panel:
    """One panel: some curves of an RD table on one metric.

    Attributes:
        title: panel title, e.g. ``"(b) reconstruction, scalable"``.
        metric: metric column for the y axis.
        labels: curve labels to draw (rows of the RD table with these ``label`` values).
    """

    title: str
    metric: str
    labels: tuple[str, ...]


def plot_rd_panels(
    frame: pd.DataFrame, panels: Sequence[Panel], *, columns: int = 2, rate_column: str = "bpp"
) -> matplotlib.figure.Figure:
    """Draw ``panels`` from the RD table ``frame``; the caller saves the figure.

    Raises:
        ValueError: a panel names a label or metric that the table does not have.
    """
    if not panels:
        raise ValueError("no panels to draw")
    rows = math.ceil(len(panels) / columns)
    sns.set_theme(style="whitegrid", context="paper")
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False, layout="constrained"
    )
    for axis, panel in zip(axes.flat, panels, strict=False):
        missing = sorted(set(panel.labels) - set(frame["label"]))
        if missing or panel.metric not in frame.columns:
            raise ValueError(f"panel {panel.title!r}: RD table lacks {missing or [panel.metric]}")
        data = frame[frame["label"].isin(panel.labels)].sort_values(["label", rate_column])
        sns.lineplot(
            data=data,
            x=rate_column,
            y=panel.metric,
            hue="label",
            style="label",
            hue_order=list(panel.labels),
            style_order=list(panel.labels),
            markers=True,
            dashes=False,
            sort=False,
            estimator=None,
            ax=axis,
        )
        unit = metric_direction(panel.metric).unit if is_known_metric(panel.metric) else ""
        axis.set(
            title=panel.title,
            xlabel=rate_column,
            ylabel=f"{panel.metric} [{unit}]" if unit else panel.metric,
        )
        axis.legend(title=None, fontsize="small")
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    return figure


def save_figure(
    figure: matplotlib.figure.Figure, stem: str | Path, formats: Sequence[str] = ("png", "pdf")
) -> list[Path]:
    """Save ``figure`` as ``stem.png``, ``stem.pdf``… atomically, close it, return the paths."""
    paths = []
    try:
        for suffix in formats:
            path = Path(stem).with_suffix(f".{suffix}")
            with atomic_path(path) as temporary:
                figure.savefig(temporary, dpi=150)
            paths.append(path)
    finally:
        plt.close(figure)
    return paths


def figure_png(figure: matplotlib.figure.Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (for notebooks: ``display(Image(figure_png(fig)))``, the same
    under any matplotlib backend, ``Agg`` included); closes it."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return buffer.getvalue()
