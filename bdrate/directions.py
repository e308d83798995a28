"""Known quality metrics and their direction (higher or lower is better).

BD computations need to know which way a metric improves: ``bd_metric`` reports a positive
number when the test curve is better, whatever the direction. This table is the single source
of truth for metric directions in vinfo; ``vinfo.metrics`` checks its own metric classes
against it.

Names are matched case-insensitively with ``_`` and spaces read as ``-``, so the CSV columns
``abs_rel``, ``Abs-Rel`` and CompressAI's ``psnr-rgb`` all resolve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType


class UnknownMetricError(ValueError):
    """A metric name that is not in the direction table."""


@dataclass(frozen=True)
class MetricDirection:
    """One known metric.

    Attributes:
        name: canonical name (lowercase, ``-`` separated).
        higher_is_better: whether larger values mean better quality.
        unit: unit of the metric values (``"dB"``, ``"%"``, ``""`` for unitless).
        description: one line for help texts.
        aliases: other spellings that resolve to this metric.
    """

    name: str
    higher_is_better: bool
    unit: str
    description: str
    aliases: tuple[str, ...] = field(default=())


_ENTRIES = (
    MetricDirection("psnr", True, "dB", "peak signal-to-noise ratio", ("psnr-rgb", "psnr-y")),
    MetricDirection("ms-ssim", True, "", "multi-scale SSIM in [0, 1]", ("ms-ssim-rgb", "msssim")),
    MetricDirection("ms-ssim-db", True, "dB", "-10 log10(1 - MS-SSIM)", ()),
    MetricDirection("ssim", True, "", "structural similarity in [0, 1]", ()),
    MetricDirection("miou", True, "", "mean intersection over union", ("mean-iou",)),
    MetricDirection(
        "pixel-accuracy",
        True,
        "",
        "fraction of correctly labelled pixels",
        ("pixel-acc", "accuracy"),
    ),
    MetricDirection("map", True, "", "COCO mAP@[.50:.95]", ("map-50-95", "bbox-map")),
    MetricDirection("map50", True, "", "COCO mAP at IoU 0.50", ("map-50", "ap50")),
    MetricDirection("map75", True, "", "COCO mAP at IoU 0.75", ("map-75", "ap75")),
    MetricDirection(
        "delta1", True, "", "fraction of pixels with max(d/d*, d*/d) < 1.25", ("d1", "a1")
    ),
    MetricDirection(
        "delta2", True, "", "fraction of pixels with max(d/d*, d*/d) < 1.25^2", ("d2", "a2")
    ),
    MetricDirection(
        "delta3", True, "", "fraction of pixels with max(d/d*, d*/d) < 1.25^3", ("d3", "a3")
    ),
    MetricDirection("rmse", False, "", "root mean squared error", ()),
    MetricDirection("mse", False, "", "mean squared error", ()),
    MetricDirection("mae", False, "", "mean absolute error", ()),
    MetricDirection("rmse-log", False, "", "RMSE of log depth", ("log-rmse",)),
    MetricDirection("abs-rel", False, "", "mean |d - d*| / d*", ()),
    MetricDirection("sq-rel", False, "", "mean (d - d*)^2 / d*", ()),
    MetricDirection("cross-entropy", False, "nats", "per-pixel cross-entropy", ("ce", "nll")),
    MetricDirection("lpips", False, "", "learned perceptual distance", ()),
)


def normalize_metric_name(name: str) -> str:
    """Lowercase ``name`` and read ``_`` and spaces as ``-`` (``"Abs_Rel"`` → ``"abs-rel"``)."""
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def _build_table() -> MappingProxyType:
    table: dict[str, MetricDirection] = {}
    for entry in _ENTRIES:
        for key in (entry.name, *entry.aliases):
            if key in table:
                raise ValueError(f"metric name {key!r} is defined twice")
            table[key] = entry
    return MappingProxyType(table)


METRIC_DIRECTIONS = _build_table()
"""Every accepted spelling (canonical names and aliases) → :class:`MetricDirection`."""


def known_metrics() -> list[str]:
    """Canonical names of the known metrics, in table order."""
    return [entry.name for entry in _ENTRIES]


def is_known_metric(name: str) -> bool:
    return normalize_metric_name(name) in METRIC_DIRECTIONS


def metric_direction(name: str) -> MetricDirection:
    """Look up a metric by any accepted spelling.

    Raises:
        UnknownMetricError: the name is unknown; the message lists the known metrics.
    """
    try:
        return METRIC_DIRECTIONS[normalize_metric_name(name)]
    except KeyError:
        raise UnknownMetricError(
            f"unknown metric {name!r}; known metrics: {', '.join(known_metrics())}"
        ) from None


def higher_is_better(name: str) -> bool:
    """Direction of a known metric (see :func:`metric_direction`)."""
    return metric_direction(name).higher_is_better
