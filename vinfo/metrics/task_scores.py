"""What scores a task, shared by evaluation and probes (issue #18: one table per task).

For each task of :data:`vinfo.models.tasks.TASKS`: its metric accumulator (``*Scores``: fed
either a codec's predictions with the dataset samples, :meth:`update`, or tensors,
:meth:`add`, which is what probes hold), the map of a prediction on a downscaled input back to
the original resolution (§4.1), and its trivial predictor (a positional prior fitted on
samples, the analogue of the probes' null). The task registry holds these; evaluation
(:mod:`vinfo.experiments.evaluate`) and the probes (:class:`probes.estimator.VInfoProbe`) read
them from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from vinfo.data.sample import Sample
from vinfo.data.transforms import upsample_prediction
from vinfo.metrics.depth import DepthMetrics, depth_result_from_sums, depth_sums
from vinfo.metrics.detection import DetectionMAP
from vinfo.metrics.image import MSSSIM, PSNR, RMSE, ms_ssim_min_size, psnr
from vinfo.metrics.segmentation import SegmentationMetrics, confusion_matrix, miou

Predictor = Callable[[Sequence[Sample]], Any]
"""A trivial predictor: samples → predictions in the form the task's scores take."""


class Scores(Protocol):
    """Accumulates one task's metrics over batches."""

    def add(self, prediction: Any, target: Any, valid: Tensor | None = None) -> None: ...

    def update(self, prediction: Any, samples: Sequence[Sample]) -> None: ...

    def compute(self) -> dict[str, float]: ...

    def primary(self) -> float: ...


class ImageStatistics(Protocol):
    """Per-image additive statistics of a task's primary metric, for resampling test images
    (:mod:`vinfo.experiments.bd_bootstrap`): the metric of any multiset of the images seen is
    :meth:`metric_from_statistics` of the sum of their rows. Reconstruction, depth and
    segmentation scores have them; detection (COCO mAP ranks detections across images) has
    none."""

    statistic_metric: str
    """The metric that :meth:`metric_from_statistics` returns (an RD table column)."""

    def image_statistics(self) -> Tensor:
        """``(images seen, S)`` float64, one row per image in the order seen."""
        ...

    def metric_from_statistics(self, total: Tensor, images: int) -> float:
        """The metric of ``images`` images whose statistics sum to ``total`` ``(S,)``."""
        ...


def _stacked(rows: list[Tensor], width: int) -> Tensor:
    return torch.cat(rows) if rows else torch.zeros(0, width, dtype=torch.float64)


class ReconstructionScores:
    """PSNR (dB, mean of the per-image PSNR), RMSE and, for images large enough, MS-SSIM of
    predictions clamped to ``[0, 1]`` (an image codec's output is an image).

    Args:
        num_classes: unused (every task's scores take it).
        primary_only: PSNR alone (no MS-SSIM), e.g. for a probe's point predictions.
    """

    def __init__(self, num_classes: int | None = None, primary_only: bool = False) -> None:
        self.psnr, self.rmse, self.ms_ssim = PSNR(data_range=1.0), RMSE(), MSSSIM(data_range=1.0)
        self.with_ms_ssim = not primary_only
        self._image_psnr: list[Tensor] = []

    statistic_metric = "psnr"

    def add(self, prediction: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """A batch of images ``(B, 3, H, W)`` in ``[0, 1]`` (``valid`` unused)."""
        prediction = prediction.clamp(0, 1)
        self.psnr.update(prediction, target)
        self._image_psnr.append(psnr(prediction, target, 1.0, reduction="none").double()[:, None])
        self.rmse.update(prediction, target)
        self.with_ms_ssim &= min(target.shape[-2:]) >= ms_ssim_min_size()
        if self.with_ms_ssim:
            self.ms_ssim.update(prediction, target)

    def update(self, prediction: Tensor, samples: Sequence[Sample]) -> None:
        self.add(prediction, torch.stack([s.image for s in samples]))

    def compute(self) -> dict[str, float]:
        scores = {"psnr": float(self.psnr.compute()), "rmse": float(self.rmse.compute())}
        if self.with_ms_ssim:
            scores["ms-ssim"] = float(self.ms_ssim.compute())
        return scores

    def primary(self) -> float:
        """PSNR, NaN before any image."""
        return float(self.psnr.compute()) if int(self.psnr.num_images) else math.nan

    def image_statistics(self) -> Tensor:
        """The PSNR of each image (the metric is their mean)."""
        return _stacked(self._image_psnr, 1)

    def metric_from_statistics(self, total: Tensor, images: int) -> float:
        return float(total[0]) / images


class DepthScores:
    """The Eigen et al. depth errors over the valid pixels (:class:`DepthMetrics`)."""

    def __init__(self, num_classes: int | None = None, primary_only: bool = False) -> None:
        self.metric = DepthMetrics()
        self._image_sums: list[Tensor] = []

    statistic_metric = "rmse"

    def add(self, prediction: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """A batch ``(B, 1, H, W)`` with its validity mask ``(B, 1, H, W)``."""
        if prediction.shape != target.shape:  # the images below are sliced by index
            raise ValueError(f"pred {tuple(prediction.shape)} and target "
                             f"{tuple(target.shape)} differ in shape")
        low, high = self.metric.min_depth, self.metric.max_depth
        images = torch.stack([
            depth_sums(prediction[i : i + 1], target[i : i + 1],
                       None if valid is None else valid[i : i + 1], low, high).cpu()
            for i in range(len(prediction))
        ])
        # the running state is the sum of the images' sums: each pixel is scored once
        self.metric.sums += images.sum(0).to(self.metric.sums.device)
        self._image_sums.append(images)

    def update(self, prediction: Tensor, samples: Sequence[Sample]) -> None:
        self.add(prediction, torch.stack([s.depth for s in samples]),
                 torch.stack([s.depth_valid for s in samples]))

    def compute(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.metric.compute()._asdict().items()}

    def primary(self) -> float:
        """RMSE, NaN while no valid pixel was seen."""
        return float(self.metric.compute().rmse) if self.metric.sums[-1] > 0 else math.nan

    def image_statistics(self) -> Tensor:
        """The per-pixel sums of each image (:func:`vinfo.metrics.depth.depth_sums`)."""
        return _stacked(self._image_sums, len(self.metric.sums))

    def metric_from_statistics(self, total: Tensor, images: int) -> float:
        return float(depth_result_from_sums(total).rmse)


class SegmentationScores:
    """mIoU and pixel accuracy of the summed confusion matrix (label 255 ignored)."""

    def __init__(self, num_classes: int | None = None, primary_only: bool = False) -> None:
        if num_classes is None:
            raise ValueError("segmentation scores need the number of classes")
        self.metric = SegmentationMetrics(num_classes)
        self._image_confmats: list[Tensor] = []

    statistic_metric = "miou"

    def add(self, prediction: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Class ids ``(B, H, W)`` / ``(B, 1, H, W)`` or scores ``(B, K, H, W)``, and target
        ids ``(B, H, W)`` / ``(B, 1, H, W)``."""
        if target.ndim == 4:
            target = target[:, 0]
        if prediction.ndim == 4 and prediction.shape[1] == 1 and not prediction.is_floating_point():
            prediction = prediction[:, 0]  # ids with a channel axis (scores keep their K axis)
        if len(prediction) != len(target):  # the images below are sliced by index
            raise ValueError(f"{len(prediction)} predictions for {len(target)} targets")
        k, ignore = self.metric.num_classes, self.metric.ignore_index
        images = torch.stack([
            confusion_matrix(prediction[i : i + 1], target[i : i + 1].long(), k, ignore)
            for i in range(len(prediction))
        ])
        # the running state is the sum of the images' matrices: each pixel is counted once
        self.metric.confmat += images.sum(0).to(self.metric.confmat.device)
        self._image_confmats.append(images.flatten(1).double().cpu())

    def update(self, prediction: Tensor, samples: Sequence[Sample]) -> None:
        self.add(prediction, torch.stack([s.segmentation for s in samples]))

    def compute(self) -> dict[str, float]:
        result = self.metric.compute()
        return {"miou": float(result.miou), "pixel_accuracy": float(result.pixel_accuracy)}

    def primary(self) -> float:
        """mIoU, NaN while no labelled pixel was seen."""
        return float(self.metric.compute().miou) if self.metric.confmat.sum() > 0 else math.nan

    def image_statistics(self) -> Tensor:
        """The flattened ``(K, K)`` confusion matrix of each image."""
        return _stacked(self._image_confmats, self.metric.num_classes ** 2)

    def metric_from_statistics(self, total: Tensor, images: int) -> float:
        k = self.metric.num_classes
        return float(miou(total.reshape(k, k).round().long()))


class DetectionScores:
    """COCO mAP, mAP@50 and mAP@75 (pycocotools)."""

    def __init__(self, num_classes: int | None = None, primary_only: bool = False) -> None:
        self.metric = DetectionMAP()

    def add(self, prediction: list[dict[str, Tensor]], target: list[dict[str, Tensor]],
            valid: Tensor | None = None) -> None:
        self.metric.update(prediction, target)

    def update(self, prediction: list[dict[str, Tensor]], samples: Sequence[Sample]) -> None:
        self.add(prediction, [{"boxes": s.boxes, "labels": s.labels} for s in samples])

    def compute(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.metric.compute()._asdict().items()}

    def primary(self) -> float:
        return float(self.metric.compute().map)


def upsample_dense(prediction: Tensor, size: tuple[int, int], factor: int) -> Tensor:
    return prediction if factor == 1 else upsample_prediction(prediction, size)


def rescale_boxes(prediction: list[dict[str, Tensor]], size: tuple[int, int], factor: int):
    return [{**p, "boxes": p["boxes"] * factor} for p in prediction]


class _PixelPrior:
    """A per-pixel statistic fitted on samples of one size, with a global fallback.

    The trivial predictors below are *positional* priors, the analogue of the probes' default
    null: the mean image, the mean depth and the most frequent class at each pixel (sky on
    top, road at the bottom). A model that only learned where things usually are does not beat
    them. Samples of another size than the fitted ones (mixed-size datasets) get the global
    statistic.
    """

    def __init__(self, local: Tensor | None, size: tuple[int, int] | None, fallback: Tensor):
        self.local, self.size, self.fallback = local, size, fallback

    def __call__(self, sample: Sample, like: Tensor) -> Tensor:
        value = self.local if self.local is not None and sample.size == self.size else self.fallback
        return value.to(like.dtype).expand_as(like)  # a view: the callers stack (copy) it


def _one_size(samples: list[Sample]) -> tuple[int, int] | None:
    sizes = {s.size for s in samples}
    return sizes.pop() if len(sizes) == 1 else None


def mean_image(samples: Iterable[Sample]) -> Callable[[Sequence[Sample]], Tensor]:
    samples = list(samples)
    size = _one_size(samples)
    total = sum(s.image.double().sum(dim=(1, 2)) for s in samples)
    pixels = sum(s.image[0].numel() for s in samples)
    colour = (total / pixels).float()[:, None, None]  # (3, 1, 1)
    local = None if size is None else torch.stack([s.image for s in samples]).mean(0)
    prior = _PixelPrior(local, size, colour)

    def predict(batch: Sequence[Sample]) -> Tensor:
        return torch.stack([prior(s, s.image) for s in batch])

    return predict


def mean_depth(samples: Iterable[Sample]) -> Callable[[Sequence[Sample]], Tensor]:
    samples = list(samples)
    size = _one_size(samples)
    valid = [s.depth_valid for s in samples]
    total = sum(float(s.depth[v].double().sum()) for s, v in zip(samples, valid, strict=True))
    count = sum(int(v.sum()) for v in valid)
    if count == 0:
        raise ValueError("no valid depth pixel to fit the trivial predictor on")
    mean = torch.tensor(total / count)
    local = None
    if size is not None:  # per-pixel mean over the images where the pixel is valid
        sums = torch.stack([torch.where(v, s.depth, 0.0) for s, v in zip(samples, valid,
                                                                             strict=True)])
        counts = torch.stack(valid).sum(0)
        local = torch.where(counts > 0, sums.double().sum(0) / counts.clamp_min(1), mean).float()
    prior = _PixelPrior(local, size, mean)

    def predict(batch: Sequence[Sample]) -> Tensor:
        return torch.stack([prior(s, s.depth) for s in batch])

    return predict


def majority_class(samples: Iterable[Sample], num_classes: int):
    samples = list(samples)
    size = _one_size(samples)
    counts = torch.zeros(256, dtype=torch.long)
    for s in samples:
        counts += torch.bincount(s.segmentation.flatten(), minlength=256)[:256]
    counts[255] = 0  # the ignore label is never predicted
    majority = counts[:num_classes].argmax()
    local = None
    if size is not None:  # the most frequent class at each pixel (ignored pixels do not vote)
        labels = torch.stack([s.segmentation for s in samples])  # (N, H, W)
        votes = torch.stack([(labels == c).sum(0) for c in range(num_classes)])  # (C, H, W)
        local = torch.where(votes.sum(0) > 0, votes.argmax(0), majority)
    prior = _PixelPrior(local, size, majority)

    def predict(batch: Sequence[Sample]) -> Tensor:
        return torch.stack([prior(s, s.segmentation) for s in batch])

    return predict


def no_boxes(samples: Iterable[Sample], num_classes: int):
    def predict(batch: Sequence[Sample]) -> list[dict[str, Tensor]]:
        empty = {
            "boxes": torch.zeros(0, 4),
            "scores": torch.zeros(0),
            "labels": torch.zeros(0, dtype=torch.long),
        }
        return [dict(empty) for _ in batch]

    return predict


__all__ = [
    "DepthScores",
    "DetectionScores",
    "ImageStatistics",
    "Predictor",
    "ReconstructionScores",
    "Scores",
    "SegmentationScores",
    "majority_class",
    "mean_depth",
    "mean_image",
    "no_boxes",
    "rescale_boxes",
    "upsample_dense",
]
