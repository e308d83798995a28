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

Interpolation methods (see :data:`METHODS`):

* ``polyfit``: the original VCEG-M33 least-squares cubic polynomial (``bjontegaard``'s
  ``"cubic"``); needs 4 points and tolerates non-monotone data.
* ``cubic``: a not-a-knot cubic spline through every point (:class:`scipy.interpolate.CubicSpline`).
* ``pchip``: piecewise cubic Hermite (:class:`scipy.interpolate.PchipInterpolator`), as in
  ``bjontegaard``.
* ``akima``: Akima spline (:class:`scipy.interpolate.Akima1DInterpolator`), linear for two
  points, as in ``bjontegaard`` (C. Herglotz et al., "The Bjøntegaard Bible", 2024). Default.

Every method is linear in the interpolated values and reproduces constants, so scaling all
test rates by ``c`` gives a BD-rate of exactly ``(c - 1) * 100`` and shifting all test metrics
by ``d`` gives a BD-metric of exactly ``d`` (up to floating point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import numpy as np
import scipy.interpolate
from numpy.typing import ArrayLike


class BDError(ValueError):
    """Base class of every error the BD functions raise on bad input."""


class InvalidCurveError(BDError):
    """A curve has bad values: NaN/inf, non-positive rates, duplicates, mismatched lengths."""


class TooFewPointsError(BDError):
    """A curve has fewer points than the interpolation method needs."""


class NonMonotoneCurveError(BDError):
    """A curve's metric does not move in one direction with rate, and the method needs it to."""


class NoOverlapError(BDError):
    """The two curves share no range on the integration axis, so the BD value is undefined."""


class UnknownMethodError(BDError):
    """An interpolation method name that is not in :data:`METHODS`."""


class Integrable(Protocol):
    def integrate(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class InterpolationMethod:
    """One entry of the method registry.

    Attributes:
        name: registry key.
        fit: ``fit(x, y)`` with ``x`` strictly increasing returns an object with
            ``integrate(a, b)`` and ``__call__(x)``.
        min_points: fewest points per curve the method accepts.
        requires_monotone: whether the metric must be strictly monotone in rate.
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
                scipy.interpolate.CubicSpline,
                4,
                True,
                "not-a-knot cubic spline through every point",
            ),
            InterpolationMethod(
                "polyfit", _Polynomial, 4, False, "VCEG-M33 least-squares cubic polynomial"
            ),
        )
    }
)
"""Registry of interpolation methods, keyed by name."""


def get_method(name: str) -> InterpolationMethod:
    """Look up an interpolation method, raising :class:`UnknownMethodError` with the valid names."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethodError(
            f"unknown BD method {name!r}; valid methods: {', '.join(METHODS)}"
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
    method: InterpolationMethod,
    higher_is_better: bool,
) -> _Curve:
    rate = np.asarray(rate, dtype=np.float64).reshape(-1)
    metric = np.asarray(metric, dtype=np.float64).reshape(-1)
    if rate.shape != metric.shape:
        raise InvalidCurveError(f"{role} curve: {rate.size} rates but {metric.size} metric values")
    if rate.size < method.min_points:
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
    if method.requires_monotone:
        steps = np.diff(metric) if higher_is_better else -np.diff(metric)
        if np.any(steps <= 0):
            direction = "increase" if higher_is_better else "decrease"
            raise NonMonotoneCurveError(
                f"{role} curve: metric must strictly {direction} with rate for method "
                f"{method.name!r} (got {metric} at rates {rate}); use method 'polyfit' or "
                "remove the dominated points"
            )
    return _Curve(np.log10(rate), metric)


def _validated_pair(
    rate_anchor: ArrayLike,
    metric_anchor: ArrayLike,
    rate_test: ArrayLike,
    metric_test: ArrayLike,
    method: str,
    higher_is_better: bool,
) -> tuple[InterpolationMethod, _Curve, _Curve]:
    entry = get_method(method)
    anchor = _validate_curve(
        rate_anchor, metric_anchor, role="anchor", method=entry, higher_is_better=higher_is_better
    )
    test = _validate_curve(
        rate_test, metric_test, role="test", method=entry, higher_is_better=higher_is_better
    )
    return entry, anchor, test


def _average_gap(
    x_anchor: np.ndarray,
    y_anchor: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    method: InterpolationMethod,
    *,
    axis_name: str,
) -> float:
    """Mean of ``f_test - f_anchor`` over the overlap of the two x ranges."""
    low = max(x_anchor.min(), x_test.min())
    high = min(x_anchor.max(), x_test.max())
    if not high > low:
        raise NoOverlapError(
            f"the curves do not overlap in {axis_name}: anchor spans "
            f"[{x_anchor.min():.6g}, {x_anchor.max():.6g}], test spans "
            f"[{x_test.min():.6g}, {x_test.max():.6g}]; the BD value is undefined"
        )

    def integral(x: np.ndarray, y: np.ndarray) -> float:
        order = np.argsort(x, kind="stable")
        return float(method.fit(x[order], y[order]).integrate(low, high))

    return (integral(x_test, y_test) - integral(x_anchor, y_anchor)) / (high - low)


def bd_rate(
    rate_anchor: ArrayLike,
    metric_anchor: ArrayLike,
    rate_test: ArrayLike,
    metric_test: ArrayLike,
    *,
    method: str = "akima",
    higher_is_better: bool = True,
) -> float:
    """Bjøntegaard-delta rate of the test curve against the anchor, in percent.

    Args:
        rate_anchor: rates of the anchor curve (any positive unit, e.g. bpp), shape ``(n,)``.
        metric_anchor: quality of the anchor at those rates, shape ``(n,)``.
        rate_test: rates of the test curve, shape ``(m,)``; ``m`` may differ from ``n``.
        metric_test: quality of the test curve, shape ``(m,)``.
        method: interpolation method, a key of :data:`METHODS`.
        higher_is_better: direction of the metric (``False`` for RMSE, depth errors, ...).

    Returns:
        Average rate difference at equal quality, in percent. Negative means the test curve
        needs fewer bits (better); ``-10.0`` is a 10 % saving.

    Raises:
        BDError: on bad input (see the subclasses); never returns NaN.
    """
    entry, anchor, test = _validated_pair(
        rate_anchor, metric_anchor, rate_test, metric_test, method, higher_is_better
    )
    if not entry.requires_monotone:
        _require_distinct(anchor.metric, "anchor")
        _require_distinct(test.metric, "test")
    gap = _average_gap(
        anchor.metric, anchor.log_rate, test.metric, test.log_rate, entry, axis_name="metric"
    )
    return float((10.0**gap - 1.0) * 100.0)


def bd_metric(
    rate_anchor: ArrayLike,
    metric_anchor: ArrayLike,
    rate_test: ArrayLike,
    metric_test: ArrayLike,
    *,
    method: str = "akima",
    higher_is_better: bool = True,
) -> float:
    """Bjøntegaard-delta metric (BD-PSNR for PSNR) of the test curve against the anchor.

    Args: as :func:`bd_rate`.

    Returns:
        Average metric difference at equal rate, in the metric's unit (dB for PSNR), signed
        so that positive means the test curve is better: ``test - anchor`` when higher is
        better, ``anchor - test`` otherwise.

    Raises:
        BDError: on bad input (see the subclasses); never returns NaN.
    """
    entry, anchor, test = _validated_pair(
        rate_anchor, metric_anchor, rate_test, metric_test, method, higher_is_better
    )
    gap = _average_gap(
        anchor.log_rate, anchor.metric, test.log_rate, test.metric, entry, axis_name="log10(rate)"
    )
    return float(gap if higher_is_better else -gap)


def _require_distinct(metric: np.ndarray, role: str) -> None:
    # BD-rate integrates over the metric axis, so even polyfit needs distinct metric values.
    if np.unique(metric).size != metric.size:
        raise InvalidCurveError(f"{role} curve: duplicate metric values {metric}")
