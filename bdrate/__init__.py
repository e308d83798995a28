"""Bjøntegaard-delta metrics for rate-distortion curves (numpy, scipy and pandas only).

>>> from bdrate import bd_rate
>>> round(bd_rate([1, 2, 3, 4], [30, 33, 35, 36], [0.5, 1, 1.5, 2], [30, 33, 35, 36]), 6)
-50.0
"""

from bdrate.core import (
    METHODS,
    BDError,
    InterpolationMethod,
    InvalidCurveError,
    NonMonotoneCurveError,
    NoOverlapError,
    TooFewPointsError,
    UnknownMethodError,
    bd_metric,
    bd_rate,
    get_method,
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
    "METHODS",
    "BDError",
    "BDResult",
    "CurveFileError",
    "InterpolationMethod",
    "InvalidCurveError",
    "MetricDirection",
    "NoOverlapError",
    "NonMonotoneCurveError",
    "RDCurve",
    "TooFewPointsError",
    "UnknownMethodError",
    "UnknownMetricError",
    "bd_metric",
    "bd_rate",
    "compare_curves",
    "get_method",
    "higher_is_better",
    "known_metrics",
    "metric_direction",
    "read_curve_files",
    "read_curves",
]
