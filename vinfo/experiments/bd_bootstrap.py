"""Confidence intervals of BD-rates over the test images: a paired bootstrap.

A BD-rate compares two RD curves whose every point is a mean over the same test images. Its
uncertainty from the choice of those images is what a bootstrap over them measures (Efron and
Tibshirani 1993, ch. 13, percentile interval): draw the test images with replacement, recompute
every point of every curve on that draw — its rate as the mean of its images' rates, its
metric from the sum of their additive statistics
(:class:`vinfo.metrics.task_scores.ImageStatistics`) — and recompute the BD table with the same
code, method and Pareto pruning as the table itself (:func:`vinfo.experiments.paper_layout.
bd_rows`). One draw serves all curves at once (they were scored on the same images), so the
interval is that of the difference, not of each curve apart.

A draw on which a BD-rate is undefined (curves that no longer overlap, an interpolant the data
cannot support) is counted, not dropped silently: :func:`bd_intervals` reports how many, and
gives no interval when more than :data:`MAX_UNDEFINED` of the draws are undefined (an interval
of the draws that happen to overlap would describe another population of test sets).

This is the uncertainty of the test set only: the curves are trained once, so the spread
across training seeds is not in it (the similar-rate pair's seeds measure that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from probes.uncertainty import MIN_BOOTSTRAP_IMAGES
from vinfo.experiments.evaluate import Evaluation
from vinfo.experiments.rd import Comparison
from vinfo.metrics.task_scores import ImageStatistics
from vinfo.models.config import CodecConfig
from vinfo.models.tasks import get_task

RESAMPLES = 1000
"""Bootstrap draws of the test images per BD table."""

MAX_UNDEFINED = 0.05
"""Largest fraction of draws with an undefined BD-rate for which an interval is reported."""


@dataclass(frozen=True)
class CurvePoints:
    """The per-image data behind one RD frame: row ``i`` of the frame is ``evaluations[i]``.

    Attributes:
        frame: the RD table of one task (:func:`vinfo.experiments.rd_collect.collect_rd`).
        evaluations: the evaluation of each row, with :attr:`Evaluation.image_bpp` and
            :attr:`Evaluation.image_statistics`.
        scores: the task's scores (for :meth:`ImageStatistics.metric_from_statistics`).
    """

    frame: pd.DataFrame
    evaluations: Sequence[Evaluation]
    scores: ImageStatistics

    def __post_init__(self) -> None:
        if len(self.frame) != len(self.evaluations):
            raise ValueError(f"{len(self.frame)} RD rows but {len(self.evaluations)} "
                             "evaluations")
        if any(e.image_bpp is None or e.image_statistics is None for e in self.evaluations):
            raise ValueError("an evaluation has no per-image statistics (evaluate it again)")
        rates = [e.bpp for e in self.evaluations]
        if not np.allclose(self.frame["bpp"].to_numpy(), rates, rtol=1e-12, atol=0):
            raise ValueError("the evaluations are not those of the frame's rows, in order")

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rates (rows, images), statistics (rows, images, S))``, float64."""
        rates = np.array([e.image_bpp for e in self.evaluations], dtype=np.float64)
        statistics = np.array([e.image_statistics for e in self.evaluations], dtype=np.float64)
        if rates.ndim != 2 or statistics.ndim != 3:
            raise ValueError("the rows were not scored on the same number of images")
        return rates, statistics


def bd_intervals(
    curves: Mapping[str, CurvePoints],
    comparisons: Sequence[tuple[str, Comparison]],
    method: str,
    *,
    resamples: int = RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Percentile bootstrap intervals of the BD-rates of a BD table.

    Args:
        curves: per task, its RD frame with the per-image data of each row.
        comparisons: the ``(task, comparison)`` rows of the table
            (:func:`vinfo.experiments.paper_layout.paper_comparisons`).
        method: the table's BD method.
        resamples: bootstrap draws.
        confidence: level of the intervals.
        seed: of the draws (the same seed gives the same intervals).

    Returns:
        One row per comparison: ``task, figure, anchor, test, bd_rate_ci_low,
        bd_rate_ci_high`` (percent; NaN where more than :data:`MAX_UNDEFINED` of the draws, or
        all but one, are undefined),
        ``resamples``, ``undefined`` (draws with no BD-rate), ``images``, ``confidence``.

    Raises:
        ValueError: no resample, a confidence outside (0, 1), or tasks scored on different
            numbers of images.
    """
    from vinfo.experiments.paper_layout import bd_rows  # paper_layout imports the presets

    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tasks = list(dict.fromkeys(task for task, _ in comparisons))
    # bd_rows returns its rows grouped by task, in first-appearance order: the same order here
    comparisons = [(t, c) for task in tasks for t, c in comparisons if t == task]
    for task, comparison in comparisons:
        if comparison.metric != curves[task].scores.statistic_metric:
            raise ValueError(f"{comparison.figure}: BD on {comparison.metric!r}, but the "
                             f"per-image statistics give {curves[task].scores.statistic_metric!r}")
    data = {task: curves[task].arrays() for task in tasks}
    counts = {rates.shape[1] for rates, _ in data.values()}
    if len(counts) != 1:
        raise ValueError(f"the tasks were scored on different numbers of images: {counts}")
    images = counts.pop()
    generator = np.random.default_rng(seed)
    values = np.full((resamples, len(comparisons)), np.nan)
    for draw in range(resamples):
        chosen = generator.integers(0, images, size=images)
        frames = {}
        for task, (rates, statistics) in data.items():
            points = curves[task]
            totals = torch.from_numpy(statistics[:, chosen].sum(axis=1))
            frame = points.frame.copy()
            frame["bpp"] = rates[:, chosen].mean(axis=1)
            frame[points.scores.statistic_metric] = [
                points.scores.metric_from_statistics(total, images) for total in totals
            ]
            frames[task] = frame
        values[draw] = bd_rows(frames, comparisons, method)["bd_rate_percent"].to_numpy()
    tail = 100 * (1 - confidence) / 2
    rows = []
    for index, (task, comparison) in enumerate(comparisons):
        defined = values[:, index][~np.isnan(values[:, index])]
        enough = len(defined) >= 2 and resamples - len(defined) <= MAX_UNDEFINED * resamples
        low, high = np.percentile(defined, [tail, 100 - tail]) if enough else (np.nan, np.nan)
        rows.append({
            "task": task, "figure": comparison.figure, "anchor": comparison.anchor,
            "test": comparison.test, "bd_rate_ci_low": float(low),
            "bd_rate_ci_high": float(high), "resamples": resamples,
            "undefined": int(resamples - len(defined)), "images": images,
            "confidence": confidence,
        })
    return pd.DataFrame(rows)


CI_COLUMNS = ("bd_rate_ci_low", "bd_rate_ci_high", "ci_resamples", "ci_undefined", "ci_images",
              "ci_confidence")
"""The columns :func:`with_intervals` adds to a BD table."""


def with_intervals(
    table: pd.DataFrame,
    frames: Mapping[str, pd.DataFrame],
    evaluations: Mapping[str, Sequence[Evaluation]],
    comparisons: Sequence[tuple[str, Comparison]],
    method: str,
    config: CodecConfig,
    **options,
) -> pd.DataFrame:
    """The BD table (``table``, from :func:`~vinfo.experiments.paper_layout.bd_rows` on the
    same ``frames`` and ``comparisons``) with the bootstrap interval of each BD-rate in
    :data:`CI_COLUMNS`; NaN for the rows of a task whose scores have no per-image statistics
    (detection) or that were scored on fewer than
    :data:`probes.uncertainty.MIN_BOOTSTRAP_IMAGES` test images (the probes' rule; e.g. the
    ``micro`` preset). ``options`` go to :func:`bd_intervals`."""
    curves = {}
    for task in frames:
        spec = get_task(task)
        scores = spec.scores(spec.num_classes(config))
        if hasattr(scores, "image_statistics"):
            curves[task] = CurvePoints(frames[task], evaluations[task], scores)
    covered = [(task, c) for task, c in comparisons if task in curves
               and min(e.num_images for e in curves[task].evaluations) >= MIN_BOOTSTRAP_IMAGES]
    keys = ["task", "figure", "anchor", "test"]
    if not covered:
        return table.assign(**{column: np.nan for column in CI_COLUMNS})
    intervals = bd_intervals(curves, covered, method, **options).rename(columns={
        "resamples": "ci_resamples", "undefined": "ci_undefined", "images": "ci_images",
        "confidence": "ci_confidence"})
    return table.merge(intervals[keys + list(CI_COLUMNS)], on=keys, how="left")


__all__ = ["CI_COLUMNS", "MAX_UNDEFINED", "RESAMPLES", "CurvePoints", "bd_intervals",
           "with_intervals"]
