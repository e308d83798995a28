"""The paper's layout: which figure shows which comparison (Fig. 2 a–f, Fig. 3), the BD rows
of a preset's curves, and the Fig. 2/3 RD figures of a reproduce run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bdrate.core import DEFAULT_METHOD
from vinfo.experiments.plots import Panel, plot_rd_panels
from vinfo.experiments.presets import ReproducePreset
from vinfo.experiments.rd import Comparison, bd_table
from vinfo.experiments.results import BASE_STRATEGY, FIG2_STEM, FIG3_STEM, FIGURE_FORMATS
from vinfo.experiments.sweep import curve_label
from vinfo.figures import save_figure
from vinfo.models.tasks import get_task


def paper_figure(task: str, strategy: str, base_task: str) -> str:
    """Where the paper shows a comparison: Fig. 2 (left COCO/detection: a, c, e; right
    Cityscapes/depth: b, d, f) for the base task and reconstruction, Fig. 3 otherwise."""
    column = {"detection": 0, "depth": 1}.get(base_task)
    row = {"direct": 0, "scalable": 1, BASE_STRATEGY: 2}.get(strategy)
    if task == "reconstruction" or task == base_task:
        letter = "" if column is None or row is None else "abcdef"[2 * row + column]
        return f"Fig. 2{letter}"
    return "Fig. 3"


def paper_comparisons(preset: ReproducePreset) -> list[tuple[str, Comparison]]:
    """``(task, comparison)``: proposed vs baseline for every curve pair, as in the paper;
    plus standalone vs each scalable curve (the paper's Fig. 3 remark)."""
    b0, b1 = preset.betas
    metric = get_task(preset.base_task).metric
    rows = [
        (
            preset.base_task,
            Comparison(
                paper_figure(preset.base_task, BASE_STRATEGY, preset.base_task),
                curve_label(BASE_STRATEGY, b0),
                curve_label(BASE_STRATEGY, b1),
                metric,
            ),
        )
    ]
    for secondary in preset.secondary:
        metric = get_task(secondary.task).metric
        for strategy in ("direct", "scalable"):
            if strategy in secondary.strategies:
                figure = paper_figure(secondary.task, strategy, preset.base_task)
                labels = curve_label(strategy, b0), curve_label(strategy, b1)
                comparison = Comparison(figure, *labels, metric)
                rows.append((secondary.task, comparison))
        if "standalone" in secondary.strategies:
            figure = paper_figure(secondary.task, "scalable", preset.base_task)
            for beta in (b0, b1):
                comparison = Comparison(figure, "standalone", curve_label("scalable", beta), metric)
                rows.append((secondary.task, comparison))
    return rows


def bd_rows(
    frames: dict[str, pd.DataFrame],
    comparisons: Sequence[tuple[str, Comparison]],
    method: str = DEFAULT_METHOD,
) -> pd.DataFrame:
    """The BD table of ``(task, comparison)`` rows, each computed on ``frames[task]``.

    Where ``method`` needs monotone curves and one is not (noisy short training), the row is
    computed on the curves' Pareto fronts and says so in ``note``; undefined values (no
    overlap, too few points, an interpolant the data cannot support) are NaN with the reason in
    ``note``. Each row carries the overlaps of its curves (:func:`vinfo.experiments.rd.bd_table`).
    """
    tables = []
    for task in dict.fromkeys(task for task, _ in comparisons):
        rows = [c for t, c in comparisons if t == task]
        table = bd_table(frames[task], rows, method=method, prune_dominated=True)
        tables.append(table.assign(task=task))
    return pd.concat(tables, ignore_index=True)


def write_paper_figures(preset: ReproducePreset, frames: dict[str, pd.DataFrame],
                        out: Path) -> list[Path]:
    """Write the Fig. 2 (base task and reconstruction) and Fig. 3 (other secondary tasks) RD
    figures, PNG and PDF, and return their files."""
    b0, b1 = preset.betas
    base_metric = get_task(preset.base_task).metric
    files: list[Path] = []
    fig2_frames = [frames[preset.base_task]]
    panels: list[Panel] = []
    secondary_panels: list[tuple[pd.DataFrame, Panel]] = []
    for secondary in preset.secondary:
        metric = get_task(secondary.task).metric
        for strategy in ("direct", "scalable"):
            if strategy not in secondary.strategies:
                continue
            labels = (curve_label(strategy, b0), curve_label(strategy, b1))
            if strategy == "scalable" and "standalone" in secondary.strategies:
                labels += ("standalone",)
            figure = paper_figure(secondary.task, strategy, preset.base_task)
            panel = Panel(f"{figure}: {secondary.task}, {strategy}", metric, labels)
            if figure.startswith("Fig. 2"):
                panels.append(panel)
            else:
                secondary_panels.append((frames[secondary.task], panel))
        if secondary.task == "reconstruction":
            fig2_frames.append(frames[secondary.task])
    base_figure = paper_figure(preset.base_task, BASE_STRATEGY, preset.base_task)
    panels.append(
        Panel(
            f"{base_figure}: {preset.base_task} (base task)",
            base_metric,
            (curve_label(BASE_STRATEGY, b0), curve_label(BASE_STRATEGY, b1)),
        )
    )
    files += save_figure(plot_rd_panels(pd.concat(fig2_frames), panels),
                         *(out / f"{FIG2_STEM}{suffix}" for suffix in FIGURE_FORMATS))
    if secondary_panels:
        frame = pd.concat([f for f, _ in secondary_panels]).drop_duplicates()
        figure = plot_rd_panels(frame, [p for _, p in secondary_panels], columns=1)
        files += save_figure(figure,
                             *(out / f"{FIG3_STEM}{suffix}" for suffix in FIGURE_FORMATS))
    return files


__all__ = ["bd_rows", "paper_comparisons", "paper_figure", "write_paper_figures"]
