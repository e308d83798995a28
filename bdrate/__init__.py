"""Bjøntegaard-delta metrics for rate-distortion curves (numpy, scipy and pandas only).

>>> from bdrate import bd_rate
>>> round(bd_rate([1, 2, 3, 4], [30, 33, 35, 36], [0.5, 1, 1.5, 2], [30, 33, 35, 36]), 6)
-50.0
"""

from bdrate.core import (
    DEFAULT_METHOD,
    DEFAULT_MIN_OVERLAP,
    METHOD_ALIASES,
    METHODS,
    RANGE_MARGIN,
    BDError,
    InterpolationMethod,
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
from bdrate.curves import (
    BDResult,
    CurveFileError,
    RDCurve,
    compare_curves,
    read_curve_files,
    read_curves,
)
from bdrate.directions import (
    MetricDirection,
    UnknownMetricError,
    higher_is_better,
    known_metrics,
    metric_direction,
)

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_MIN_OVERLAP",
    "METHODS",
    "METHOD_ALIASES",
    "RANGE_MARGIN",
    "BDError",
    "BDResult",
    "CurveFileError",
    "InterpolationMethod",
    "InvalidCurveError",
    "LowOverlapWarning",
    "MetricDirection",
    "NoOverlapError",
    "NonMonotoneCurveError",
    "RDCurve",
    "TooFewPointsError",
    "UnknownMethodError",
    "UnknownMetricError",
    "UnsupportedResultError",
    "bd_metric",
    "bd_metric_overlap",
    "bd_rate",
    "bd_rate_overlap",
    "compare_curves",
    "get_method",
    "higher_is_better",
    "known_metrics",
    "method_names",
    "metric_direction",
    "read_curve_files",
    "read_curves",
]
