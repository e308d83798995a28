"""Seaborn RD figures laid out like the paper's Fig. 2 and Fig. 3: one panel per comparison
(saved with :func:`vinfo.figures.save_figure`).

No backend is selected here: the CLI selects ``Agg`` (``cli/main.py``), notebooks keep their
inline backend, and without a display pyplot falls back to ``Agg`` by itself."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bdrate.plot import draw_rd_axis


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
        draw_rd_axis(axis, data, panel.metric, x=rate_column, y=panel.metric,
                     labels=panel.labels, title=panel.title)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    return figure


