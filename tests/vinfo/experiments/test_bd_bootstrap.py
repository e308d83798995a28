"""The paired bootstrap of BD-rates over test images (vinfo.experiments.bd_bootstrap)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from vinfo.experiments.bd_bootstrap import CI_COLUMNS, CurvePoints, bd_intervals, with_intervals
from vinfo.experiments.evaluate import Evaluation
from vinfo.experiments.paper_layout import bd_rows
from vinfo.experiments.rd import Comparison
from vinfo.metrics.task_scores import ReconstructionScores
from vinfo.models import codec_preset

COMPARISON = ("reconstruction", Comparison("Fig. 2d", "anchor", "test", "psnr"))
RATES = {"anchor": (0.2, 0.4, 0.8, 1.6), "test": (0.18, 0.36, 0.72, 1.44)}


def _psnr(label: str, bpp: float) -> float:
    return 20 + 4 * math.log2(bpp / 0.2) + (0.5 if label == "test" else 0.0)


def _curves(images: int, noise: float, seed: int = 0) -> tuple[pd.DataFrame, list[Evaluation]]:
    """Two RD curves; each point's per-image PSNR and rate spread by ``noise`` around it."""
    generator = np.random.default_rng(seed)
    rows, evaluations = [], []
    for label, rates in RATES.items():
        for bpp in rates:
            psnr = _psnr(label, bpp) + noise * generator.standard_normal(images)
            image_bpp = bpp * (1 + noise * 0.1 * generator.standard_normal(images))
            evaluations.append(Evaluation(
                "reconstruction", images, {"psnr": float(psnr.mean())}, float(image_bpp.mean()),
                0.0, None, None, 0, image_bpp=image_bpp.tolist(),
                image_statistics=psnr[:, None].tolist()))
            rows.append({"label": label, "bpp": float(image_bpp.mean()),
                         "psnr": float(psnr.mean())})
    return pd.DataFrame(rows), evaluations


def _intervals(images=32, noise=0.0, **options):
    frame, evaluations = _curves(images, noise)
    curves = {"reconstruction": CurvePoints(frame, evaluations, ReconstructionScores())}
    point = bd_rows({"reconstruction": frame}, [COMPARISON], "cubic")["bd_rate_percent"][0]
    return bd_intervals(curves, [COMPARISON], "cubic", **options), point


def test_identical_images_give_a_zero_width_interval_at_the_table_value():
    intervals, point = _intervals(noise=0.0, resamples=20)
    row = intervals.iloc[0]
    assert point < 0  # the test curve is 0.5 dB better at every rate
    assert row["bd_rate_ci_low"] == pytest.approx(point, abs=1e-9)
    assert row["bd_rate_ci_high"] == pytest.approx(point, abs=1e-9)
    assert (row["undefined"], row["images"], row["resamples"]) == (0, 32, 20)


def test_noisy_images_give_an_interval_around_the_value_that_narrows_with_more_images():
    few, point = _intervals(images=16, noise=2.0, resamples=200)
    many, _ = _intervals(images=256, noise=2.0, resamples=200)
    low, high = few.iloc[0][["bd_rate_ci_low", "bd_rate_ci_high"]]
    assert low < point < high
    width = {name: t.iloc[0]["bd_rate_ci_high"] - t.iloc[0]["bd_rate_ci_low"]
             for name, t in (("few", few), ("many", many))}
    assert width["many"] < width["few"] / 2  # ~1/sqrt(n): a 4x narrower interval expected
    again, _ = _intervals(images=16, noise=2.0, resamples=200)
    pd.testing.assert_frame_equal(few, again)  # the seed fixes the draws


def test_with_intervals_adds_the_columns_to_the_table_rows():
    frame, evaluations = _curves(32, 1.0)
    table = bd_rows({"reconstruction": frame}, [COMPARISON], "cubic")
    merged = with_intervals(table, {"reconstruction": frame}, {"reconstruction": evaluations},
                            [COMPARISON], "cubic", codec_preset("tiny"), resamples=50)
    assert list(merged.columns) == [*table.columns, *CI_COLUMNS]
    assert merged["bd_rate_percent"].equals(table["bd_rate_percent"])
    assert merged["bd_rate_ci_low"][0] < merged["bd_rate_ci_high"][0]


def test_evaluations_that_do_not_match_the_rows_are_refused():
    frame, evaluations = _curves(8, 1.0)
    with pytest.raises(ValueError, match="not those of the frame"):
        CurvePoints(frame, evaluations[::-1], ReconstructionScores())
    stale = [Evaluation("reconstruction", 8, {}, e.bpp_base, 0.0, None, None, 0)
             for e in evaluations]
    with pytest.raises(ValueError, match="per-image"):
        CurvePoints(frame, stale, ReconstructionScores())
    curves = {"reconstruction": CurvePoints(frame, evaluations, ReconstructionScores())}
    wrong = ("reconstruction", Comparison("Fig. 2d", "anchor", "test", "ms-ssim"))
    with pytest.raises(ValueError, match="per-image statistics give 'psnr'"):
        bd_intervals(curves, [wrong], "cubic", resamples=5)


def test_too_few_test_images_give_no_interval():
    frame, evaluations = _curves(8, 1.0)  # fewer than probes.uncertainty.MIN_BOOTSTRAP_IMAGES
    table = bd_rows({"reconstruction": frame}, [COMPARISON], "cubic")
    merged = with_intervals(table, {"reconstruction": frame}, {"reconstruction": evaluations},
                            [COMPARISON], "cubic", codec_preset("tiny"))
    assert merged[list(CI_COLUMNS)].isna().all().all()


def test_intervals_stay_with_their_comparison_when_tasks_interleave():
    """bd_rows groups its rows by task; the intervals must still land on their own rows."""
    frame, evaluations = _curves(32, 0.0)
    shifted = [dataclasses.replace(e, image_statistics=[[v[0] + 1.0] for v in e.image_statistics])
               if i >= 4 else e for i, e in enumerate(evaluations)]  # test curve 1 dB better
    frame_b = frame.assign(psnr=[e.metrics["psnr"] + (1.0 if i >= 4 else 0.0)
                                 for i, e in enumerate(evaluations)])
    curves = {"a": CurvePoints(frame, evaluations, ReconstructionScores()),
              "b": CurvePoints(frame_b, shifted, ReconstructionScores())}
    other = Comparison("Fig. 3", "anchor", "test", "psnr")
    comparisons = [("a", COMPARISON[1]), ("b", other), ("a", other)]
    points = bd_rows({"a": frame, "b": frame_b}, comparisons, "cubic")
    intervals = bd_intervals(curves, comparisons, "cubic", resamples=5)
    merged = points.merge(intervals, on=["task", "figure", "anchor", "test"])
    assert len(merged) == 3 and merged["bd_rate_percent"].nunique() == 2
    assert np.allclose(merged["bd_rate_ci_low"], merged["bd_rate_percent"], atol=1e-9)
