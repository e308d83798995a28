"""Bjøntegaard-delta (BD) rate and metric: pure functions, arrays in, float out.

The Bjøntegaard delta compares two rate-distortion curves by the average horizontal (rate) or
vertical (metric) gap between them over the range where both are defined:

* **BD-rate** (G. Bjøntegaard, VCEG-M33, 2001): interpolate ``log10(rate)`` as a function of the
  metric for both curves, average the difference over the overlap of the two metric ranges and
  return ``(10**avg - 1) * 100`` percent. Negative means the test curve needs fewer bits for
  the same quality.
* **BD-metric** (BD-PSNR when the metric is PSNR): interpolate the metric as a function of
  ``log10(rate)``, average the difference ``test - anchor`` over the overlap of the two rate
  ranges. vinfo reports it so that positive means the test curve is better whatever the
  metric's direction (the sign is flipped for lower-is-better metrics such as RMSE).

Interpolation methods (see :data:`METHODS`); the names mean what they mean in the
``bjontegaard`` package (FAU-LMS, 1.3.0):

* ``cubic``: the original VCEG-M33 least-squares cubic polynomial (``np.polyfit(x, y, 3)``,
  integrated exactly), ``bjontegaard``'s ``"cubic"``; needs 4 points and tolerates non-monotone
  data. ``polyfit`` is an alias of it (:data:`METHOD_ALIASES`).
* ``pchip``: piecewise cubic Hermite (:class:`scipy.interpolate.PchipInterpolator`), as in
  ``bjontegaard``.
* ``akima``: Akima spline (:class:`scipy.interpolate.Akima1DInterpolator`), linear for two
  points, as in ``bjontegaard`` (C. Herglotz et al., "The Bjøntegaard Bible", 2024). Default.
* ``spline``: a not-a-knot cubic spline through every point (:class:`scipy.interpolate.
  CubicSpline`); not in ``bjontegaard``. It oscillates on noisy curves, where the guard below
  rejects it.

**Monotone curves.** BD-rate inverts each curve (``log10(rate)`` as a function of the
metric), so ``pchip``, ``akima`` and ``spline`` need the metric strictly monotone in rate for
it (:class:`NonMonotoneCurveError` otherwise; scipy refuses such an axis in ``bjontegaard``
too). BD-metric interpolates the metric over ``log10(rate)``, which needs distinct rates only:
like ``bjontegaard``, it is computed on non-monotone curves with every method.

**Guard.** A BD value is an average of the gap between two interpolants, so it is only as
good as they are. Over the integration interval each curve's interpolant must stay within the
range of the curve's own points on the interpolated axis (``log10(rate)`` for BD-rate, the
metric for BD-metric), widened by :data:`RANGE_MARGIN` of that range on each side; otherwise
:class:`UnsupportedResultError` names the curve instead of returning a number (on noisy curves
an interpolant can swing far beyond the data and give, e.g., a BD-rate of -100 % or
+10⁶ %). As a consequence the average log-rate gap, and so the BD-rate, is bounded by what the
two curves' own rates allow: with ``[a0, a1]`` and ``[t0, t1]`` the anchor's and the test's
``log10(rate)`` ranges and ``w = RANGE_MARGIN * ((a1 - a0) + (t1 - t0))``, every BD-rate
returned lies in ``[10**(t0 - a1 - w) - 1, 10**(t1 - a0 + w) - 1] * 100`` percent.
PCHIP never triggers the guard on monotone data (it stays within the range of the points).

**Overlap.** :func:`bd_rate_overlap` and :func:`bd_metric_overlap` give the fraction of the two
curves' union range that both cover, on the axis the BD value is averaged over (the metric for
BD-rate, ``log10(rate)`` for BD-metric), as ``bjontegaard`` computes it. Like ``bjontegaard``,
:func:`bd_rate` and :func:`bd_metric` warn (:class:`LowOverlapWarning`) when it is below
``min_overlap`` (default :data:`DEFAULT_MIN_OVERLAP`, 75 %); ``min_overlap=0`` silences it.

Every method is linear in the interpolated values and reproduces constants, so scaling all
test rates by ``c`` gives a BD-rate of exactly ``(c - 1) * 100`` and shifting all test metrics
by ``d`` gives a BD-metric of exactly ``d`` (up to floating point).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import numpy as np
import scipy.interpolate
from numpy.typing import ArrayLike

DEFAULT_METHOD = "akima"
"""Interpolation method used when none is given."""

DEFAULT_MIN_OVERLAP = 0.75
"""Overlap fraction below which a BD value is flagged (``bjontegaard``'s ``min_overlap``)."""

RANGE_MARGIN = 0.1
"""How far an interpolant may leave the range of its curve's points, as a fraction of that range
(on each side), before the BD value is rejected as unsupported by the data."""


class BDError(ValueError):
    """Base class of every error the BD functions raise on bad input."""


class InvalidCurveError(BDError):
    """A curve has bad values: NaN/inf, non-positive rates, duplicates, mismatched lengths."""


class TooFewPointsError(BDError):
    """A curve has fewer points than the interpolation method needs."""


class NonMonotoneCurveError(BDError):
    """A curve's metric does not move in one direction with rate, and the method needs it to
    for BD-rate."""


class NoOverlapError(BDError):
    """The two curves share no range on the integration axis, so the BD value is undefined."""


class UnknownMethodError(BDError):
    """An interpolation method name that is neither in :data:`METHODS` nor an alias."""


class UnsupportedResultError(BDError):
    """A curve's interpolant leaves the range of the curve's points by more than
    :data:`RANGE_MARGIN` over the integration interval: the BD value would measure the
    interpolation, not the data."""


class LowOverlapWarning(UserWarning):
    """The curves overlap on less than ``min_overlap`` of their union range."""


class Integrable(Protocol):
    def integrate(self, a: float, b: float) -> float: ...

    def __call__(self, x: ArrayLike) -> np.ndarray: ...


@dataclass(frozen=True)
class InterpolationMethod:
    """One entry of the method registry.

    Attributes:
        name: registry key.
        fit: ``fit(x, y)`` with ``x`` strictly increasing returns an object with
            ``integrate(a, b)`` and ``__call__(x)``.
        min_points: fewest points per curve the method accepts.
        requires_monotone: whether BD-rate needs the metric strictly monotone in rate (it
            interpolates ``log10(rate)`` as a function of the metric). BD-metric never does:
            it interpolates the metric over ``log10(rate)``, which only needs distinct rates,
            and ``bjontegaard`` computes it on non-monotone curves too.
        description: one line for help texts.
    """

    name: str
    fit: Callable[[np.ndarray, np.ndarray], Integrable]
    min_points: int
    requires_monotone: bool
    description: str


class _Polynomial:
    """Least-squares polynomial with exact integration (VCEG-M33 uses degree 3)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, degree: int = 3) -> None:
        self.coefficients = np.polyfit(x, y, degree)
        self._antiderivative = np.polyint(self.coefficients)

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return np.polyval(self.coefficients, x)

    def integrate(self, a: float, b: float) -> float:
        return float(np.polyval(self._antiderivative, b) - np.polyval(self._antiderivative, a))

    def critical_points(self) -> np.ndarray:
        """Real zeros of the derivative (where the polynomial can have an extremum)."""
        roots = np.roots(np.polyder(self.coefficients))
        return roots[np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots.real))].real


def _akima(x: np.ndarray, y: np.ndarray) -> Integrable:
    # Akima needs three points; with two, bjontegaard (and we) fall back to a straight line.
    if len(x) > 2:
        return scipy.interpolate.Akima1DInterpolator(x, y)
    return scipy.interpolate.make_interp_spline(x, y, k=1)


METHODS: MappingProxyType[str, InterpolationMethod] = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            InterpolationMethod(
                "akima", _akima, 2, True, "Akima spline (linear for 2 points), as bjontegaard"
            ),
            InterpolationMethod(
                "pchip",
                scipy.interpolate.PchipInterpolator,
                2,
                True,
                "piecewise cubic Hermite interpolation, as bjontegaard",
            ),
            InterpolationMethod(
                "cubic",
                _Polynomial,
                4,
                False,
                "VCEG-M33 least-squares cubic polynomial, as bjontegaard's 'cubic'",
            ),
            InterpolationMethod(
                "spline",
                scipy.interpolate.CubicSpline,
                4,
                True,
                "not-a-knot cubic spline through every point (not in bjontegaard)",
            ),
        )
    }
)
"""Registry of interpolation methods, keyed by name."""

METHOD_ALIASES: MappingProxyType[str, str] = MappingProxyType({"polyfit": "cubic"})
"""Other accepted method names → the :data:`METHODS` key they mean."""


def method_names() -> list[str]:
    """Every accepted method name: the registry keys, then the aliases."""
    return [*METHODS, *METHOD_ALIASES]


def get_method(name: str) -> InterpolationMethod:
    """Look up an interpolation method or alias, raising :class:`UnknownMethodError` with the
    valid names."""
    try:
        return METHODS[METHOD_ALIASES.get(name, name)]
    except KeyError:
        aliases = ", ".join(f"{alias} = {target}" for alias, target in METHOD_ALIASES.items())
        raise UnknownMethodError(
            f"unknown BD method {name!r}; valid methods: {', '.join(METHODS)} ({aliases})"
        ) from None


@dataclass(frozen=True)
class _Curve:
    """A validated RD curve sorted by increasing rate."""

    log_rate: np.ndarray
    metric: np.ndarray


def _validate_curve(
    rate: ArrayLike,
    metric: ArrayLike,
    *,
    role: str,
    method: InterpolationMethod | None,
    higher_is_better: bool,
    monotone: bool = False,
) -> _Curve:
    """Check one curve; ``method=None`` checks only what every computation needs, and
    ``monotone`` asks for the metric monotone in rate if ``method`` requires it (BD-rate)."""
    rate = np.asarray(rate, dtype=np.float64).reshape(-1)
    metric = np.asarray(metric, dtype=np.float64).reshape(-1)
    if rate.shape != metric.shape:
        raise InvalidCurveError(f"{role} curve: {rate.size} rates but {metric.size} metric values")
    if rate.size == 0:
        raise InvalidCurveError(f"{role} curve has no points")
    if method is not None and rate.size < method.min_points:
        raise TooFewPointsError(
            f"{role} curve has {rate.size} point(s); method {method.name!r} needs at least "
            f"{method.min_points}"
        )
    if not np.all(np.isfinite(rate)) or np.any(rate <= 0):
        raise InvalidCurveError(f"{role} curve: rates must be finite and positive, got {rate}")
    if not np.all(np.isfinite(metric)):
        raise InvalidCurveError(f"{role} curve: metric values must be finite, got {metric}")
    order = np.argsort(rate, kind="stable")
    rate, metric = rate[order], metric[order]
    if np.any(np.diff(rate) == 0):
        raise InvalidCurveError(f"{role} curve: duplicate rates {rate}")
    if monotone and method is not None and method.requires_monotone:
        steps = np.diff(metric) if higher_is_better else -np.diff(metric)
        if np.any(steps <= 0):
            direction = "increase" if higher_is_better else "decrease"
            raise NonMonotoneCurveError(
                f"{role} curve: metric must strictly {direction} with rate for method "
                f"{method.name!r} (got {metric} at rates {rate}); use method 'cubic' or "
                "remove the dominated points"
            )
    return _Curve(np.log10(rate), metric)


def _validated_pair(
    rate_anchor: ArrayLike,
    metric_anchor: ArrayLike,
    rate_test: ArrayLike,
    metric_test: ArrayLike,
    method: InterpolationMethod | None,
    higher_is_better: bool,
    monotone: bool = False,
) -> tuple[_Curve, _Curve]:
    checks = dict(method=method, higher_is_better=higher_is_better, monotone=monotone)
    anchor = _validate_curve(rate_anchor, metric_anchor, role="anchor", **checks)
    test = _validate_curve(rate_test, metric_test, role="test", **checks)
    return anchor, test


def _overlap_fraction(x_anchor: np.ndarray, x_test: np.ndarray) -> float:
    """Length of the overlap of the two ranges over the length of their union (bjontegaard's
    ``overlap``), in [0, 1]."""
    union = max(x_anchor.max(), x_test.max()) - min(x_anchor.min(), x_test.min())
    shared = min(x_anchor.max(), x_test.max()) - max(x_anchor.min(), x_test.min())
    return float(max(shared, 0.0) / union) if union > 0 else 0.0


def validate_min_overlap(min_overlap: float) -> float:
    """Return ``min_overlap`` as a float, raising :class:`BDError` unless it is in [0, 1]."""
    if not 0.0 <= min_overlap <= 1.0:  # False for NaN too
        raise BDError(f"min_overlap must be a fraction in [0, 1], got {min_overlap}")
    return float(min_overlap)


def _warn_if_low(overlap: float, min_overlap: float, *, what: str, axis_name: str) -> None:
    if overlap < min_overlap:
        warnings.warn(
            f"{what}: the curves overlap on {overlap:.1%} of their union range in {axis_name}, "
            f"below min_overlap={min_overlap:.0%}; the value averages over a small part of "
            "the curves (min_overlap=0 silences this warning)",
            LowOverlapWarning,
            stacklevel=3,
        )


def _critical_points(fit: Integrable) -> np.ndarray:
    """Where ``fit`` can have an interior extremum (its derivative's zeros)."""
    if isinstance(fit, _Polynomial):
        return fit.critical_points()
    if isinstance(fit, scipy.interpolate.PPoly):  # PCHIP, Akima and the not-a-knot spline
        roots = fit.derivative().roots(extrapolate=False)
        return roots[np.isfinite(roots)]
    return np.empty(0)  # piecewise linear (two-point Akima): extrema at the knots


def _check_within_range(
    fit: Integrable,
    x: np.ndarray,
    y: np.ndarray,
    low: float,
    high: float,
    *,
    role: str,
    method: InterpolationMethod,
    axis_name: str,
    value_name: str,
) -> None:
    """Raise :class:`UnsupportedResultError` if ``fit`` leaves ``[min(y), max(y)]`` widened by
    :data:`RANGE_MARGIN` of its span anywhere on ``[low, high]``."""
    candidates = np.concatenate(([low, high], x, _critical_points(fit)))
    where = candidates[(candidates >= low) & (candidates <= high)]
    values = np.asarray(fit(where), dtype=np.float64)
    span = float(y.max() - y.min())
    slack = RANGE_MARGIN * span + 1e-12 * max(1.0, float(np.abs(y).max()))
    worst = int(np.argmax(np.maximum(y.min() - values, values - y.max())))
    if not y.min() - slack <= values[worst] <= y.max() + slack:  # False for NaN too
        raise UnsupportedResultError(
            f"{role} curve: the {method.name} interpolant of {value_name} reaches "
            f"{values[worst]:.6g} at {axis_name} = {where[worst]:.6g}, outside the range of the "
            f"curve's points [{y.min():.6g}, {y.max():.6g}] by more than the allowed "
            f"{RANGE_MARGIN:.0%} of that range; the BD value would measure the interpolation, "
            "not the data (try method 'pchip', or check the curve for noisy points)"
        )


def _average_gap(
    x_anchor: np.ndarray,
    y_anchor: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    method: InterpolationMethod,
    *,
    axis_name: str,
    value_name: str,
) -> float:
    """Mean of ``f_test - f_anchor`` over the overlap of the two x ranges (guarded)."""
    low = max(x_anchor.min(), x_test.min())
    high = min(x_anchor.max(), x_test.max())
    if not high > low:
        raise NoOverlapError(
            f"the curves do not overlap in {axis_name}: anchor spans "
            f"[{x_anchor.min():.6g}, {x_anchor.max():.6g}], test spans "
            f"[{x_test.min():.6g}, {x_test.max():.6g}]; the BD value is undefined"
        )

    def integral(x: np.ndarray, y: np.ndarray, role: str) -> float:
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        fit = method.fit(x, y)
        _check_within_range(
            fit, x, y, low, high, role=role, method=method, axis_name=axis_name,
            value_name=value_name,
        )
        return float(fit.integrate(low, high))

    return (integral(x_test, y_test, "test") - integral(x_anchor, y_anchor, "anchor")) / (
        high - low
    )


def bd_rate(
    rate_anchor: ArrayLike,
    metric_anchor: ArrayLike,
    rate_test: ArrayLike,
    metric_test: ArrayLike,
    *,
    method: str = DEFAULT_METHOD,
    higher_is_better: bool = True,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> float:
    """Bjøntegaard-delta rate of the test curve against the anchor, in percent.

    Args:
        rate_anchor: rates of the anchor curve (any positive unit, e.g. bpp), shape ``(n,)``.
        metric_anchor: quality of the anchor at those rates, shape ``(n,)``.
        rate_test: rates of the test curve, shape ``(m,)``; ``m`` may differ from ``n``.
        metric_test: quality of the test curve, shape ``(m,)``.
        method: interpolation method, a key of :data:`METHODS` or :data:`METHOD_ALIASES`.
        higher_is_better: direction of the metric (``False`` for RMSE, depth errors, ...).
        min_overlap: warn (:class:`LowOverlapWarning`) when the curves overlap on less than
            this fraction of their union metric range (:func:`bd_rate_overlap`), as
            ``bjontegaard`` does; ``0`` never warns.

    Returns:
        Average rate difference at equal quality, in percent. Negative means the test curve
        needs fewer bits (better); ``-10.0`` is a 10 % saving.

    Raises:
        BDError: on bad input (see the subclasses), including :class:`UnsupportedResultError`
            when an interpolant leaves the range of its curve's points (module docstring);
            never returns NaN.
    """
    validate_min_overlap(min_overlap)
    entry = get_method(method)
    anchor, test = _validated_pair(
        rate_anchor, metric_anchor, rate_test, metric_test, entry, higher_is_better,
        monotone=True,
    )
    if not entry.requires_monotone:
        _require_distinct(anchor.metric, "anchor")
        _require_distinct(test.metric, "test")
    gap = _average_gap(
        anchor.metric, anchor.log_rate, test.metric, test.log_rate, entry,
        axis_name="metric", value_name="log10(rate)",
    )
    overlap = _overlap_fraction(anchor.metric, test.metric)
    _warn_if_low(overlap, min_overlap, what="BD-rate", axis_name="the metric")
    return float((10.0**gap - 1.0) * 100.0)


def bd_metric(
    rate_anchor: ArrayLike,
    metric_anchor: ArrayLike,
    rate_test: ArrayLike,
    metric_test: ArrayLike,
    *,
    method: str = DEFAULT_METHOD,
    higher_is_better: bool = True,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> float:
    """Bjøntegaard-delta metric (BD-PSNR for PSNR) of the test curve against the anchor.

    Args: as :func:`bd_rate`; ``min_overlap`` applies to the overlap in ``log10(rate)``
    (:func:`bd_metric_overlap`).

    Returns:
        Average metric difference at equal rate, in the metric's unit (dB for PSNR), signed
        so that positive means the test curve is better: ``test - anchor`` when higher is
        better, ``anchor - test`` otherwise.

    Raises:
        BDError: on bad input (see the subclasses and :func:`bd_rate`); never returns NaN.
    """
    validate_min_overlap(min_overlap)
    entry = get_method(method)
    anchor, test = _validated_pair(
        rate_anchor, metric_anchor, rate_test, metric_test, entry, higher_is_better
    )
    gap = _average_gap(
        anchor.log_rate, anchor.metric, test.log_rate, test.metric, entry,
        axis_name="log10(rate)", value_name="the metric",
    )
    overlap = _overlap_fraction(anchor.log_rate, test.log_rate)
    _warn_if_low(overlap, min_overlap, what="BD-metric", axis_name="log10(rate)")
    return float(gap if higher_is_better else -gap)


def bd_rate_overlap(
    rate_anchor: ArrayLike, metric_anchor: ArrayLike, rate_test: ArrayLike, metric_test: ArrayLike
) -> float:
    """Fraction of the union of the two curves' metric ranges that both cover: the share of
    the curves :func:`bd_rate` averages over, in [0, 1] (``bjontegaard``'s overlap).

    Args: as :func:`bd_rate` (rates in any positive unit, metric in its unit).

    Raises:
        InvalidCurveError: mismatched lengths, non-finite values or non-positive rates.
    """
    anchor, test = _validated_pair(rate_anchor, metric_anchor, rate_test, metric_test, None, True)
    return _overlap_fraction(anchor.metric, test.metric)


def bd_metric_overlap(
    rate_anchor: ArrayLike, metric_anchor: ArrayLike, rate_test: ArrayLike, metric_test: ArrayLike
) -> float:
    """Fraction of the union of the two curves' ``log10(rate)`` ranges that both cover: the
    share :func:`bd_metric` averages over, in [0, 1] (``bjontegaard``'s overlap).

    Args and Raises: as :func:`bd_rate_overlap`.
    """
    anchor, test = _validated_pair(rate_anchor, metric_anchor, rate_test, metric_test, None, True)
    return _overlap_fraction(anchor.log_rate, test.log_rate)


def _require_distinct(metric: np.ndarray, role: str) -> None:
    # BD-rate integrates over the metric axis, so even the cubic fit needs distinct values.
    if np.unique(metric).size != metric.size:
        raise InvalidCurveError(f"{role} curve: duplicate metric values {metric}")
