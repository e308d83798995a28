"""BD maths against the `bjontegaard` (FAU-LMS 1.3.0) and `bd-metric` packages, and exact
invariants."""

from __future__ import annotations

import importlib
import itertools
import re
import warnings
from pathlib import Path

import bjontegaard
import numpy as np
import pandas as pd
import pytest
import scipy.interpolate
from bd_metric import bjontegaard_metric

from bdrate import (
    METHODS,
    RANGE_MARGIN,
    BDError,
    InvalidCurveError,
    LowOverlapWarning,
    NonMonotoneCurveError,
    NoOverlapError,
    TooFewPointsError,
    UnknownMethodError,
    UnsupportedResultError,
    bd_metric,
    bd_metric_overlap,
    bd_rate,
    bd_rate_overlap,
    get_method,
    method_names,
)

# The usage example of bjontegaard's README (libx265 presets).
README_RATE_ANCHOR = [9487.76, 4593.60, 2486.44, 1358.24]
README_PSNR_ANCHOR = [40.037, 38.615, 36.845, 34.851]
README_RATE_TEST = [9787.80, 4469.00, 2451.52, 1356.24]
README_PSNR_TEST = [40.121, 38.651, 36.970, 34.987]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Low overlap is tested explicitly below; elsewhere its warning is noise.
pytestmark = pytest.mark.filterwarnings("ignore::bdrate.LowOverlapWarning")

# Every vinfo method name -> the reference that computes the same maths. bjontegaard's names
# mean the same as ours; `polyfit` (our alias of `cubic`) is checked against the separate
# `bd-metric` package (VCEG-M33 polyfit, natural log of the rate). bjontegaard has no
# not-a-knot spline, so the `reference` fixture teaches it one under the name "not-a-knot".
REFERENCE_NAME = {
    "akima": "akima",
    "pchip": "pchip",
    "cubic": "cubic",
    "spline": "not-a-knot",
    "polyfit": "bd-metric",
}


@pytest.fixture
def reference(monkeypatch):
    """``reference("rate" | "metric", *curves, method=vinfo_name)``: the reference BD-rate (%)
    or BD-metric (test - anchor) of the curves.

    For vinfo's ``spline`` the whole bjontegaard pipeline (log10 of rates, overlap interval,
    integration, percent conversion) still runs; only its interpolator is swapped for scipy's
    not-a-knot ``CubicSpline``, patched where ``bjontegaard_delta`` looks it up.
    """
    delta = importlib.import_module("bjontegaard.bjontegaard_delta")
    original = delta.interpolate

    def interpolate(x, y, method):
        if method != "not-a-knot":
            return original(x, y, method)
        order = np.argsort(x)
        return scipy.interpolate.CubicSpline(x[order], y[order], bc_type="not-a-knot")

    monkeypatch.setattr(delta, "interpolate", interpolate)

    def compute(kind, *curves, method, interpolators=False):
        name = REFERENCE_NAME[method]
        if name == "bd-metric":
            assert not interpolators
            function = bjontegaard_metric.BD_RATE if kind == "rate" else bjontegaard_metric.BD_PSNR
            return function(*(np.asarray(c, dtype=float) for c in curves), piecewise=0)
        function = bjontegaard.bd_rate if kind == "rate" else bjontegaard.bd_psnr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bjontegaard warns on < 75 % overlap
            return function(
                *curves,
                method=name,
                require_matching_points=False,
                interpolators=interpolators,
                min_overlap=0,
            )

    return compute


def random_curve_pair(rng: np.random.Generator, noise: float = 0.0):
    """Two monotone (concave) RD curves with 4-8 points each and overlapping ranges; ``noise``
    is the standard deviation (dB) of independent noise on each point."""

    def curve(n):
        while True:
            log_rate = np.sort(rng.uniform(-1.2, 0.6, size=n))
            if np.min(np.diff(log_rate)) < 0.05:
                continue
            slope = rng.uniform(4, 12)
            psnr = 30 + slope * log_rate - rng.uniform(0.2, 2.0) * log_rate**2
            psnr = psnr + rng.normal(0, 0.05)
            if noise:
                psnr = psnr + rng.normal(0, noise, size=n)
            if np.all(np.diff(psnr) > 0):
                return 10**log_rate, psnr

    return (*curve(rng.integers(4, 9)), *curve(rng.integers(4, 9)))


def example_curves(metric: str):
    anchor, test = pd.read_csv(EXAMPLES / "anchor.csv"), pd.read_csv(EXAMPLES / "test.csv")
    return anchor["bpp"], anchor[metric], test["bpp"], test[metric]


def test_every_method_name_has_a_reference():
    assert set(REFERENCE_NAME) == set(method_names()) == {*METHODS, "polyfit"}


def test_polyfit_is_an_alias_of_the_bjontegaard_cubic():
    assert get_method("polyfit") is get_method("cubic") is METHODS["cubic"]
    curves = random_curve_pair(np.random.default_rng(3), noise=0.1)
    assert bd_rate(*curves, method="polyfit") == bd_rate(*curves, method="cubic")


def assert_matches_reference(reference, curves, method, higher_is_better=True):
    """bd_rate and bd_metric of ``curves`` agree with the reference to 1e-6.

    The references take metrics that grow with rate and report test - anchor: for a
    lower-is-better metric the BD-rate is the one of the negated metric (an integral over the
    mirrored metric axis) and vinfo's BD-metric ("positive = better") is anchor - test.
    """
    rate_a, metric_a, rate_t, metric_t = (np.asarray(c, dtype=float) for c in curves)
    sign = 1.0 if higher_is_better else -1.0
    kwargs = dict(method=method, higher_is_better=higher_is_better)
    assert bd_rate(*curves, **kwargs) == pytest.approx(
        reference("rate", rate_a, sign * metric_a, rate_t, sign * metric_t, method=method),
        abs=1e-6,
    )
    assert bd_metric(*curves, **kwargs) == pytest.approx(
        sign * reference("metric", *curves, method=method), abs=1e-6
    )


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
def test_bjontegaard_readme_example_matches_reference(method, reference):
    curves = (README_RATE_ANCHOR, README_PSNR_ANCHOR, README_RATE_TEST, README_PSNR_TEST)
    assert_matches_reference(reference, curves, method)


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
@pytest.mark.parametrize(("metric", "higher"), [("psnr", True), ("ms-ssim", True), ("rmse", False)])
def test_vinfo_readme_example_matches_reference(method, metric, higher, reference):
    assert_matches_reference(reference, example_curves(metric), method, higher_is_better=higher)


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
@pytest.mark.parametrize("seed", range(30))
def test_random_monotone_curves_match_reference(method, seed, reference):
    curves = random_curve_pair(np.random.default_rng(seed), noise=0.02 * (seed % 3))
    assert_matches_reference(reference, curves, method)


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
@pytest.mark.parametrize("seed", range(5))
def test_lower_is_better_matches_reference_with_flipped_metric_sign(method, seed, reference):
    rate_a, psnr_a, rate_t, psnr_t = random_curve_pair(np.random.default_rng(100 + seed))
    rmse_a, rmse_t = 10 ** (-psnr_a / 20), 10 ** (-psnr_t / 20)  # PSNR of a unit-range image
    assert_matches_reference(
        reference, (rate_a, rmse_a, rate_t, rmse_t), method, higher_is_better=False
    )


def test_patched_spline_reference_is_not_the_polynomial_fit(reference):
    # Guards the spline comparison against being vacuous: on curves with more than four points
    # the spline through every point and the least-squares cubic differ by far more than the
    # 1e-6 tolerance, so the patch really is in use.
    differ = 0
    for seed in range(25):
        curves = random_curve_pair(np.random.default_rng(seed))
        spline = reference("rate", *curves, method="spline")
        differ += abs(spline - reference("rate", *curves, method="cubic")) > 1e-3
    assert differ >= 20


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.37, 3.0])
def test_scaling_test_rates_gives_exact_bd_rate(method, factor):
    rate, psnr, *_ = random_curve_pair(np.random.default_rng(7))
    assert bd_rate(rate, psnr, rate * factor, psnr, method=method) == pytest.approx(
        (factor - 1) * 100, abs=1e-9
    )


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("shift", [-1.5, 0.0, 0.25, 2.0])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_shifting_test_metric_gives_exact_bd_metric(method, shift, higher_is_better):
    rate, psnr, *_ = random_curve_pair(np.random.default_rng(11))
    metric = psnr if higher_is_better else -psnr
    improvement = shift if higher_is_better else -shift  # a lower value is the better one
    result = bd_metric(
        rate, metric, rate, metric + shift, method=method, higher_is_better=higher_is_better
    )
    assert result == pytest.approx(improvement, abs=1e-9)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_identical_curves_give_zero(method):
    curves = (README_RATE_ANCHOR, README_PSNR_ANCHOR) * 2
    assert bd_rate(*curves, method=method) == pytest.approx(0, abs=1e-12)
    assert bd_metric(*curves, method=method) == pytest.approx(0, abs=1e-12)


def test_spline_through_four_points_is_the_interpolating_cubic():
    # With four points, the not-a-knot spline and the least-squares cubic are the same
    # polynomial; with more points on an exact cubic both reproduce it.
    curves = (README_RATE_ANCHOR, README_PSNR_ANCHOR, README_RATE_TEST, README_PSNR_TEST)
    assert bd_rate(*curves, method="spline") == pytest.approx(
        bd_rate(*curves, method="cubic"), abs=1e-9
    )
    log_rate = np.linspace(-1, 1, 7)
    psnr = 30 + 5 * log_rate + 0.4 * log_rate**2 - 0.3 * log_rate**3
    log_rate_test = np.linspace(-0.8, 1.2, 6)
    psnr_test = 31 + 5 * log_rate_test + 0.4 * log_rate_test**2 - 0.3 * log_rate_test**3
    curves = (10**log_rate, psnr, 10**log_rate_test, psnr_test)
    assert bd_metric(*curves, method="spline") == pytest.approx(
        bd_metric(*curves, method="cubic"), abs=1e-9
    )


def test_unequal_point_counts_and_unsorted_input_are_fine():
    rate_t = [README_RATE_TEST[i] for i in (2, 0, 3, 1)]
    psnr_t = [README_PSNR_TEST[i] for i in (2, 0, 3, 1)]
    value = bd_rate(README_RATE_ANCHOR, README_PSNR_ANCHOR, rate_t, psnr_t)
    assert value == pytest.approx(
        bd_rate(README_RATE_ANCHOR, README_PSNR_ANCHOR, README_RATE_TEST, README_PSNR_TEST)
    )
    assert np.isfinite(bd_rate(README_RATE_ANCHOR[:3], README_PSNR_ANCHOR[:3], rate_t, psnr_t))


def test_two_point_akima_is_linear_like_bjontegaard(reference):
    curves = ([1.0, 2.0], [30.0, 33.0], [0.9, 1.8], [30.5, 33.2])
    assert bd_rate(*curves, method="akima") == pytest.approx(
        reference("rate", *curves, method="akima"), abs=1e-9
    )


GOOD = (README_RATE_ANCHOR, README_PSNR_ANCHOR)


@pytest.mark.parametrize(
    ("anchor", "test", "method", "error", "message"),
    [
        (GOOD, ([1.0, 2.0, 3.0], [30.0, 31.0, 32.0]), "polyfit", TooFewPointsError, "at least 4"),
        (GOOD, ([1.0], [30.0]), "akima", TooFewPointsError, "needs at least 2"),
        (GOOD, ([0.0, 1.0, 2.0, 3.0], [30, 31, 32, 33]), "akima", InvalidCurveError, "positive"),
        (GOOD, ([-1.0, 1.0, 2.0, 3.0], [30, 31, 32, 33]), "akima", InvalidCurveError, "positive"),
        (GOOD, ([np.inf, 1.0, 2.0, 3.0], [30, 31, 32, 33]), "akima", InvalidCurveError, "finite"),
        (GOOD, ([1.0, 2.0, 3.0, 4.0], [30, np.nan, 32, 33]), "akima", InvalidCurveError, "finite"),
        (GOOD, ([1.0, 2.0, 2.0, 4.0], [30, 31, 32, 33]), "akima", InvalidCurveError, "duplicate"),
        (GOOD, ([1.0, 2.0, 3.0], [30, 31]), "akima", InvalidCurveError, "3 rates but 2"),
        (
            GOOD,
            ([1.0, 2.0, 3.0, 4.0], [30, 32, 31, 33]),
            "pchip",
            NonMonotoneCurveError,
            "strictly increase",
        ),
        (
            GOOD,
            ([1.0, 2.0, 3.0, 4.0], [30, 31, 32, 33]),
            "linear",
            UnknownMethodError,
            "valid methods: akima, pchip, cubic, spline (polyfit = cubic)",
        ),
        (
            GOOD,
            ([1.0, 2.0, 3.0, 4.0], [50, 51, 52, 53]),
            "akima",
            NoOverlapError,
            "anchor spans [34.851, 40.037], test spans [50, 53]",
        ),
    ],
)
def test_bad_input_raises_clear_value_error(anchor, test, method, error, message):
    with pytest.raises(error, match=None) as info:
        bd_rate(*anchor, *test, method=method)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)


def test_no_overlap_in_rate_is_reported_for_bd_metric():
    with pytest.raises(NoOverlapError, match="log10"):
        bd_metric([1, 2, 3, 4], [30, 31, 32, 33], [10, 20, 30, 40], [31, 32, 33, 34])


def test_cubic_accepts_non_monotone_but_lower_is_better_checks_direction():
    non_monotone = ([1.0, 2.0, 3.0, 4.0], [30.0, 32.0, 31.5, 33.0])
    assert np.isfinite(bd_metric(*non_monotone, *non_monotone, method="cubic"))
    with pytest.raises(NonMonotoneCurveError, match="strictly decrease"):
        bd_rate(*GOOD, *GOOD, higher_is_better=False)


@pytest.mark.parametrize("method", ["akima", "pchip", "cubic"])
def test_bd_metric_of_a_non_monotone_curve_matches_bjontegaard(method):
    """BD-metric interpolates the metric over log10(rate), so a dip of the metric is no
    obstacle, as in ``bjontegaard``; BD-rate, which inverts the curve, still refuses it.
    The curves are a flat direct-reconstruction curve of a demo run and the one above it."""
    anchor = ([0.0879, 0.1175, 0.1446, 0.1585], [19.1968, 18.8479, 19.0291, 19.1962])
    test = ([0.0830, 0.1036, 0.1362, 0.1532], [20.0449, 20.9835, 21.4634, 21.7152])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = bjontegaard.bd_psnr(*anchor, *test, method=method)
    assert bd_metric(*anchor, *test, method=method, min_overlap=0) == pytest.approx(expected)
    if method != "cubic":
        with pytest.raises(NonMonotoneCurveError, match="anchor curve"):
            bd_rate(*anchor, *test, method=method, min_overlap=0)


def test_min_overlap_must_be_a_fraction():
    with pytest.raises(BDError, match=r"min_overlap must be a fraction in \[0, 1\], got 1.5"):
        bd_rate(*GOOD, *GOOD, min_overlap=1.5)


# --- the guard: results the data cannot support raise UnsupportedResultError -----------------

# A learned-codec-like pair of 8-point curves with measurement noise (test: 5 % fewer bits and
# ~0.2 dB better). Between the first two points the not-a-knot spline of log-rate over PSNR
# swings far below the data, and unguarded it gives a BD-rate of about -99.8 %.
OSCILLATING = (
    [0.06, 0.256, 0.278, 0.391, 0.431, 0.492, 0.542, 0.821],
    [24.24, 29.94, 30.2, 31.23, 31.4, 31.81, 32.52, 33.35],
    [0.057, 0.243, 0.264, 0.371, 0.409, 0.467, 0.515, 0.78],
    [24.59, 30.29, 30.33, 31.47, 31.86, 32.26, 32.58, 33.4],
)


def test_oscillating_curve_is_a_real_trap(reference):
    # Without the guard the spline's number is absurd; the same maths inside vinfo is refused.
    assert reference("rate", *OSCILLATING, method="spline") <= -99
    with pytest.raises(UnsupportedResultError, match="test curve: the spline interpolant"):
        bd_rate(*OSCILLATING, method="spline")


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
@pytest.mark.parametrize("kind", ["rate", "metric"])
def test_oscillating_curve_gives_the_reference_value_or_a_clear_error(method, kind, reference):
    function = bd_rate if kind == "rate" else bd_metric
    try:
        value = function(*OSCILLATING, method=method)
    except UnsupportedResultError as error:
        assert re.match(r"(anchor|test) curve: the \w+ interpolant of ", str(error)), error
        assert "outside the range of the curve's points" in str(error)
        return
    if kind == "rate":
        assert -99 < value < 1e4
    assert value == pytest.approx(reference(kind, *OSCILLATING, method=method), abs=1e-6)


def excursion(function, x, y, low, high):
    """How far ``function`` leaves ``[min(y), max(y)]`` on ``[low, high]``, as a fraction of
    ``max(y) - min(y)``, on a fine grid (slightly below the exact maximum)."""
    grid = np.linspace(low, high, 20001)
    values = np.concatenate((function(grid), function(x[(x >= low) & (x <= high)])))
    return max(values.max() - y.max(), y.min() - values.min(), 0.0) / (y.max() - y.min())


def bd_rate_bound(rate_a, rate_t):
    """The documented bound on a guarded BD-rate (bdrate.core docstring), in percent."""
    a, t = np.log10(rate_a), np.log10(rate_t)
    width = RANGE_MARGIN * ((a.max() - a.min()) + (t.max() - t.min()))
    low, high = t.min() - a.max() - width, t.max() - a.min() + width
    return (10**low - 1) * 100, (10**high - 1) * 100


@pytest.mark.parametrize("method", ["akima", "pchip", "cubic", "spline"])
def test_guard_refuses_exactly_when_the_reference_interpolant_leaves_the_data(method, reference):
    # Independent of vinfo's guard code: bjontegaard's own interpolants, sampled on a grid,
    # decide whether the result is supported. Noisy curves make every method but PCHIP
    # (shape-preserving) overshoot now and then.
    refused = accepted = 0
    for seed, kind in itertools.product(range(120), ("rate", "metric")):
        curves = random_curve_pair(np.random.default_rng(1000 + seed), noise=0.3)
        rate_a, metric_a, rate_t, metric_t = (np.asarray(c) for c in curves)
        value, f_anchor, f_test = reference(kind, *curves, method=method, interpolators=True)
        if kind == "rate":
            axes = ((metric_a, np.log10(rate_a)), (metric_t, np.log10(rate_t)))
        else:
            axes = ((np.log10(rate_a), metric_a), (np.log10(rate_t), metric_t))
        (xa, ya), (xt, yt) = axes
        low, high = max(xa.min(), xt.min()), min(xa.max(), xt.max())
        if not high > low:
            continue
        worst = max(excursion(f_anchor, xa, ya, low, high), excursion(f_test, xt, yt, low, high))
        function = bd_rate if kind == "rate" else bd_metric
        if worst > RANGE_MARGIN + 1e-3:
            with pytest.raises(UnsupportedResultError, match=r"(anchor|test) curve: the "):
                function(*curves, method=method, min_overlap=0)
            refused += 1
        elif worst < RANGE_MARGIN - 1e-3:
            result = function(*curves, method=method, min_overlap=0)
            assert result == pytest.approx(value, abs=1e-6)
            if kind == "rate":
                low_bound, high_bound = bd_rate_bound(rate_a, rate_t)
                assert low_bound <= result <= high_bound
            accepted += 1
    assert accepted >= 200
    if method == "pchip":
        assert refused == 0
    else:
        assert refused >= 2, "the noisy curves should make this method overshoot now and then"


# --- overlap -------------------------------------------------------------------------------


def test_overlap_matches_closed_form():
    # metric ranges [30, 36] and [33, 39]: 3 shared of a union of 9; rates [1, 8] and [2, 16]:
    # log(8 / 2) shared of log(16 / 1), i.e. 2 of 4 octaves.
    curves = ([1, 2, 4, 8], [30, 32, 34, 36], [2, 4, 8, 16], [33, 35, 37, 39])
    assert bd_rate_overlap(*curves) == pytest.approx(1 / 3, abs=1e-12)
    assert bd_metric_overlap(*curves) == pytest.approx(1 / 2, abs=1e-12)
    assert bd_rate_overlap(*GOOD, *GOOD) == bd_metric_overlap(*GOOD, *GOOD) == 1.0
    assert bd_rate_overlap(*GOOD, [1, 2], [50, 51]) == 0.0


def bjontegaard_overlap_percent(function, curves) -> float:
    """The overlap bjontegaard prints in its warning (percent, two decimals)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        function(*curves, method="pchip", require_matching_points=False, min_overlap=1.0)
    messages = [str(w.message) for w in caught if "Insufficient curve overlap" in str(w.message)]
    if not messages:
        return 100.0  # no warning at min_overlap=1: the ranges coincide
    return float(re.search(r"overlap: '([0-9.]+)'", messages[0]).group(1))


@pytest.mark.parametrize("seed", range(10))
def test_overlap_matches_bjontegaard(seed):
    rate_a, psnr_a, rate_t, psnr_t = random_curve_pair(np.random.default_rng(200 + seed))
    curves = (rate_a, psnr_a, rate_t * 1.6, psnr_t + 0.5)  # shift the test for partial overlap
    pairs = ((bd_rate_overlap, bjontegaard.bd_rate), (bd_metric_overlap, bjontegaard.bd_psnr))
    for ours, theirs in pairs:
        assert ours(*curves) * 100 == pytest.approx(
            bjontegaard_overlap_percent(theirs, curves), abs=0.005 + 1e-9
        )


@pytest.mark.parametrize("min_overlap", [0.0, 0.5, 0.75, 0.9, 1.0])
@pytest.mark.parametrize("seed", range(6))
def test_low_overlap_warns_when_bjontegaard_does(min_overlap, seed):
    rate_a, psnr_a, rate_t, psnr_t = random_curve_pair(np.random.default_rng(300 + seed))
    curves = (rate_a, psnr_a, rate_t * (1 + seed / 3), psnr_t + seed / 4)
    for ours, theirs in ((bd_rate, bjontegaard.bd_rate), (bd_metric, bjontegaard.bd_psnr)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            theirs(*curves, method="pchip", require_matching_points=False, min_overlap=min_overlap)
            expected = any("Insufficient curve overlap" in str(w.message) for w in caught)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours(*curves, method="pchip", min_overlap=min_overlap)
        assert any(issubclass(w.category, LowOverlapWarning) for w in caught) == expected
