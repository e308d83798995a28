"""Metric evaluators: image fidelity, segmentation, detection, depth and rate.

Each metric is a pure function on tensors, reused by a ``torchmetrics.Metric`` subclass where
accumulation over batches matters. Every class declares ``higher_is_better`` and
``metric_names``, the names in :mod:`bdrate.directions` of the values its ``compute`` returns;
a test checks that both agree with that table.
"""

from vinfo.metrics.depth import DEFAULT_MIN_DEPTH, DepthMetrics, DepthResult, depth_metrics
from vinfo.metrics.detection import DetectionMAP, DetectionResult, detection_map
from vinfo.metrics.image import (
    MS_SSIM_BETAS,
    MSSSIM,
    PSNR,
    RMSE,
    ms_ssim,
    ms_ssim_min_size,
    psnr,
    psnr_from_mse,
    rmse,
)
from vinfo.metrics.rate import (
    bits_from_bytes,
    bits_from_likelihoods,
    bpp_from_bytes,
    bpp_from_likelihoods,
)
from vinfo.metrics.segmentation import (
    SegmentationMetrics,
    SegmentationResult,
    confusion_matrix,
    miou,
    per_class_iou,
    pixel_accuracy,
)

__all__ = [
    "DEFAULT_MIN_DEPTH",
    "MSSSIM",
    "MS_SSIM_BETAS",
    "PSNR",
    "RMSE",
    "DepthMetrics",
    "DepthResult",
    "DetectionMAP",
    "DetectionResult",
    "SegmentationMetrics",
    "SegmentationResult",
    "bits_from_bytes",
    "bits_from_likelihoods",
    "bpp_from_bytes",
    "bpp_from_likelihoods",
    "confusion_matrix",
    "depth_metrics",
    "detection_map",
    "miou",
    "ms_ssim",
    "ms_ssim_min_size",
    "per_class_iou",
    "pixel_accuracy",
    "psnr",
    "psnr_from_mse",
    "rmse",
]
