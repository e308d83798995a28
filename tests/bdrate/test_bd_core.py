"""BD maths against the `bjontegaard` package (FAU-LMS) and exact invariants."""

from __future__ import annotations

import importlib
import warnings

import bjontegaard
import numpy as np
import pytest
import scipy.interpolate

from bdrate import (
    METHODS,
    InvalidCurveError,
    NonMonotoneCurveError,
    NoOverlapError,
    TooFewPointsError,
    UnknownMethodError,
    bd_metric,
    bd_rate,
)

# The usage example of bjontegaard's README (libx265 presets).
README_RATE_ANCHOR = [9487.76, 4593.60, 2486.44, 1358.24]
README_PSNR_ANCHOR = [40.037, 38.615, 36.845, 34.851]
README_RATE_TEST = [9787.80, 4469.00, 2451.52, 1356.24]
README_PSNR_TEST = [40.121, 38.651, 36.970, 34.987]

# Our method name -> bjontegaard's name for the same maths. bjontegaard's "cubic" is the
# VCEG-M33 least-squares cubic polynomial, which vinfo calls "polyfit". bjontegaard has no
# not-a-knot spline, so the `reference` fixture teaches it one under the name "not-a-knot".
REFERENCE_NAME = {"akima": "akima", "pchip": "pchip", "polyfit": "cubic", "cubic": "not-a-knot"}


@pytest.fixture
def reference(monkeypatch):
    """``reference(bjontegaard.bd_rate or bd_psnr, *curves, method=vinfo_name)``.

    For vinfo's ``cubic`` the whole bjontegaard pipeline (log10 of rates, overlap interval,
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

    def compute(function, *curves, method):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bjontegaard warns on < 75 % overlap
            return function(
                *curves,
                method=REFERENCE_NAME[method],
                require_matching_points=False,
                min_overlap=0,
            )

    return compute


def random_curve_pair(rng: np.random.Generator):
    """Two monotone (concave) RD curves with 4-8 points each and overlapping ranges."""

    def curve(n):
        log_rate = np.sort(rng.uniform(-1.2, 0.6, size=n))
        while np.min(np.diff(log_rate)) < 0.05:
            log_rate = np.sort(rng.uniform(-1.2, 0.6, size=n))
        slope = rng.uniform(4, 12)
        psnr = 30 + slope * log_rate - rng.uniform(0.2, 2.0) * log_rate**2 + rng.normal(0, 0.05)
        return 10**log_rate, psnr

    return (*curve(rng.integers(4, 9)), *curve(rng.integers(4, 9)))


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
def test_readme_example_matches_bjontegaard(method, reference):
    curves = (README_RATE_ANCHOR, README_PSNR_ANCHOR, README_RATE_TEST, README_PSNR_TEST)
    assert bd_rate(*curves, method=method) == pytest.approx(
        reference(bjontegaard.bd_rate, *curves, method=method), abs=1e-6
    )
    assert bd_metric(*curves, method=method) == pytest.approx(
        reference(bjontegaard.bd_psnr, *curves, method=method), abs=1e-6
    )


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
@pytest.mark.parametrize("seed", range(25))
def test_random_monotone_curves_match_bjontegaard(method, seed, reference):
    curves = random_curve_pair(np.random.default_rng(seed))
    assert bd_rate(*curves, method=method) == pytest.approx(
        reference(bjontegaard.bd_rate, *curves, method=method), abs=1e-6
    )
    assert bd_metric(*curves, method=method) == pytest.approx(
        reference(bjontegaard.bd_psnr, *curves, method=method), abs=1e-6
    )


@pytest.mark.parametrize("method", sorted(REFERENCE_NAME))
@pytest.mark.parametrize("seed", range(5))
def test_lower_is_better_matches_bjontegaard_with_flipped_metric_sign(method, seed, reference):
    rate_a, psnr_a, rate_t, psnr_t = random_curve_pair(np.random.default_rng(100 + seed))
    rmse_a, rmse_t = 10 ** (-psnr_a / 20), 10 ** (-psnr_t / 20)  # PSNR of a unit-range image
    curves = (rate_a, rmse_a, rate_t, rmse_t)
    # bjontegaard only takes metrics that grow with rate; negating RMSE gives one, and the
    # BD-rate (an integral over the mirrored metric axis) must not change.
    assert bd_rate(*curves, method=method, higher_is_better=False) == pytest.approx(
        reference(bjontegaard.bd_rate, rate_a, -rmse_a, rate_t, -rmse_t, method=method), abs=1e-6
    )
    # bjontegaard reports test - anchor; vinfo reports "positive = better", i.e. anchor - test.
    assert bd_metric(*curves, method=method, higher_is_better=False) == pytest.approx(
        -reference(bjontegaard.bd_psnr, *curves, method=method), abs=1e-9
    )


def test_every_method_has_a_bjontegaard_reference():
    assert set(REFERENCE_NAME) == set(METHODS)


def test_patched_spline_reference_is_not_the_polynomial_fit(reference):
    # Guards the cubic comparison against being vacuous: on curves with more than four points
    # the spline through every point and the least-squares cubic differ by far more than the
    # 1e-6 tolerance (23 of these 25 pairs by > 1e-3 %), so the patch really is in use.
    differ = 0
    for seed in range(25):
        curves = random_curve_pair(np.random.default_rng(seed))
        spline = reference(bjontegaard.bd_rate, *curves, method="cubic")
        differ += abs(spline - reference(bjontegaard.bd_rate, *curves, method="polyfit")) > 1e-3
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


def test_cubic_spline_through_four_points_is_the_interpolating_cubic():
    # With four points, the not-a-knot spline and the least-squares cubic are the same
    # polynomial; with more points on an exact cubic both reproduce it.
    curves = (README_RATE_ANCHOR, README_PSNR_ANCHOR, README_RATE_TEST, README_PSNR_TEST)
    assert bd_rate(*curves, method="cubic") == pytest.approx(
        bd_rate(*curves, method="polyfit"), abs=1e-9
    )
    log_rate = np.linspace(-1, 1, 7)
    psnr = 30 + 5 * log_rate + 0.4 * log_rate**2 - 0.3 * log_rate**3
    log_rate_test = np.linspace(-0.8, 1.2, 6)
    psnr_test = 31 + 5 * log_rate_test + 0.4 * log_rate_test**2 - 0.3 * log_rate_test**3
    curves = (10**log_rate, psnr, 10**log_rate_test, psnr_test)
    assert bd_metric(*curves, method="cubic") == pytest.approx(
        bd_metric(*curves, method="polyfit"), abs=1e-9
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
        reference(bjontegaard.bd_rate, *curves, method="akima"), abs=1e-9
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
        (GOOD, ([1.0, 2.0, 3.0, 4.0], [30, 31, 32, 33]), "spline", UnknownMethodError, "akima"),
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


def test_polyfit_accepts_non_monotone_but_lower_is_better_checks_direction():
    non_monotone = ([1.0, 2.0, 3.0, 4.0], [30.0, 32.0, 31.5, 33.0])
    assert np.isfinite(bd_metric(*non_monotone, *non_monotone, method="polyfit"))
    with pytest.raises(NonMonotoneCurveError, match="strictly decrease"):
        bd_rate(*GOOD, *GOOD, higher_is_better=False)
