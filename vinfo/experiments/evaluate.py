"""Evaluate a trained codec: task metric, estimated and actual rate, rate overhead.

Evaluation follows §4.1 of the paper: when the codec runs on ×2 downscaled inputs (Cityscapes),
its dense predictions are upsampled back and scored against the original targets, and every
rate is charged to the original ``H × W`` pixels. Rates are reported two ways:

- *estimated* bpp, ``−Σ log2 p(ŷ) / (H·W)`` from the entropy model — what the paper reports;
- *actual* bpp, the length of real bitstreams (:func:`vinfo.coding.compress`, header included)
  divided by ``H·W``; ``rate_overhead = actual / estimated − 1`` over the same images.

Scalable codecs add the base and enhancement rates (``bpp = bpp_base + bpp_enhancement``), as
in Fig. 2 and 3 of the paper. Metrics per task (:data:`TASK_EVALUATORS`): reconstruction
``psnr`` (dB), ``rmse`` and, for images large enough, ``ms-ssim``; depth the Eigen et al.
errors (``rmse`` in the depth unit, ``abs_rel``, …, ``delta1``…); segmentation ``miou`` and
``pixel_accuracy``; detection COCO ``map``, ``map50``, ``map75``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from vinfo.coding import HEADER_BYTES, compress, compress_enhancement
from vinfo.data.sample import Sample, same_size_batches
from vinfo.data.transforms import downscale, upsample_prediction
from vinfo.experiments.splits import dataset_splits
from vinfo.metrics import (
    MSSSIM,
    PSNR,
    RMSE,
    DepthMetrics,
    DetectionMAP,
    SegmentationMetrics,
    ms_ssim_min_size,
)
from vinfo.models.base import BaseCodec
from vinfo.models.checkpoint import load_checkpoint
from vinfo.models.config import CodecConfig
from vinfo.models.enhancement import EnhancementCodec
from vinfo.registry import Registry


class Scores(Protocol):
    """Accumulates one task's metrics over batches."""

    def update(self, prediction: Any, samples: Sequence[Sample]) -> None: ...

    def compute(self) -> dict[str, float]: ...


class _ReconstructionScores:
    def __init__(self, config: CodecConfig) -> None:
        self.psnr, self.rmse, self.ms_ssim = PSNR(data_range=1.0), RMSE(), MSSSIM(data_range=1.0)
        self.with_ms_ssim = True

    def update(self, prediction: Tensor, samples: Sequence[Sample]) -> None:
        target = torch.stack([s.image for s in samples])
        prediction = prediction.clamp(0, 1)  # an image codec's output is an image
        self.psnr.update(prediction, target)
        self.rmse.update(prediction, target)
        self.with_ms_ssim &= min(target.shape[-2:]) >= ms_ssim_min_size()
        if self.with_ms_ssim:
            self.ms_ssim.update(prediction, target)

    def compute(self) -> dict[str, float]:
        scores = {"psnr": float(self.psnr.compute()), "rmse": float(self.rmse.compute())}
        if self.with_ms_ssim:
            scores["ms-ssim"] = float(self.ms_ssim.compute())
        return scores


class _DepthScores:
    def __init__(self, config: CodecConfig) -> None:
        self.metric = DepthMetrics()

    def update(self, prediction: Tensor, samples: Sequence[Sample]) -> None:
        target = torch.stack([s.depth for s in samples])  # (B, 1, H, W)
        valid = torch.stack([s.depth_valid for s in samples])
        self.metric.update(prediction, target, valid)

    def compute(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.metric.compute()._asdict().items()}


class _SegmentationScores:
    def __init__(self, config: CodecConfig) -> None:
        self.metric = SegmentationMetrics(config.segmentation_classes)

    def update(self, prediction: Tensor, samples: Sequence[Sample]) -> None:
        self.metric.update(prediction, torch.stack([s.segmentation for s in samples]))

    def compute(self) -> dict[str, float]:
        result = self.metric.compute()
        return {"miou": float(result.miou), "pixel_accuracy": float(result.pixel_accuracy)}


class _DetectionScores:
    def __init__(self, config: CodecConfig) -> None:
        self.metric = DetectionMAP()

    def update(self, prediction: list[dict[str, Tensor]], samples: Sequence[Sample]) -> None:
        self.metric.update(prediction, [{"boxes": s.boxes, "labels": s.labels} for s in samples])

    def compute(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.metric.compute()._asdict().items()}


def _upsample_dense(prediction: Tensor, size: tuple[int, int], factor: int) -> Tensor:
    return prediction if factor == 1 else upsample_prediction(prediction, size)


def _rescale_boxes(prediction: list[dict[str, Tensor]], size: tuple[int, int], factor: int):
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


def _mean_image(samples: Iterable[Sample]) -> Callable[[Sequence[Sample]], Tensor]:
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


def _mean_depth(samples: Iterable[Sample]) -> Callable[[Sequence[Sample]], Tensor]:
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


def _majority_class(samples: Iterable[Sample], num_classes: int):
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


def _no_boxes(samples: Iterable[Sample], num_classes: int):
    def predict(batch: Sequence[Sample]) -> list[dict[str, Tensor]]:
        empty = {
            "boxes": torch.zeros(0, 4),
            "scores": torch.zeros(0),
            "labels": torch.zeros(0, dtype=torch.long),
        }
        return [dict(empty) for _ in batch]

    return predict


@dataclass(frozen=True)
class TaskEvaluator:
    """How one task is scored.

    Attributes:
        scores: builds the metric accumulator for a codec config.
        restore: maps a prediction on a ``factor``-times downscaled input back to the original
            ``(H, W)`` (dense maps are upsampled, boxes rescaled).
        trivial: fits a trivial predictor on samples, for checking that a trained model
            learned more than where things usually are: the per-pixel mean image, mean depth
            or most frequent class (a positional prior, see :class:`_PixelPrior`); no boxes.
        primary_metric: the metric the RD curves of this task are drawn with.
    """

    scores: Callable[[CodecConfig], Scores]
    restore: Callable[[Any, tuple[int, int], int], Any]
    trivial: Callable[[Iterable[Sample], CodecConfig], Callable[[Sequence[Sample]], Any]]
    primary_metric: str


TASK_EVALUATORS: Registry[TaskEvaluator] = Registry("task evaluator")
TASK_EVALUATORS.add(
    "reconstruction",
    TaskEvaluator(
        _ReconstructionScores, _upsample_dense, lambda s, c: _mean_image(s), "psnr"
    ),
)
TASK_EVALUATORS.add(
    "depth", TaskEvaluator(_DepthScores, _upsample_dense, lambda s, c: _mean_depth(s), "rmse")
)
TASK_EVALUATORS.add(
    "segmentation",
    TaskEvaluator(
        _SegmentationScores,
        _upsample_dense,
        lambda s, c: _majority_class(s, c.segmentation_classes),
        "miou",
    ),
)
TASK_EVALUATORS.add(
    "detection",
    TaskEvaluator(
        _DetectionScores, _rescale_boxes, lambda s, c: _no_boxes(s, c.detection_classes), "map"
    ),
)


@dataclass(frozen=True)
class Evaluation:
    """Scores of one model on one dataset split.

    Attributes:
        task: the task scored (the enhancement task for an enhancement codec).
        num_images: images scored.
        metrics: metric name → value (see the module docstring).
        bpp_base: estimated base rate, mean bits per original pixel.
        bpp_enhancement: estimated enhancement rate (0 for a base codec or ``direct``).
        bpp_actual: actual rate of real bitstreams (headers included), mean over the first
            ``coded_images`` images; ``None`` when no bitstream was written.
        bpp_estimated_coded: estimated total rate of those same images.
        coded_images: images coded into real bitstreams.
        bpp_header: the part of ``bpp_actual`` spent on fixed stream headers (framing, not
            entropy-coded payload); on small images it is several percent of the stream.
    """

    task: str
    num_images: int
    metrics: dict[str, float]
    bpp_base: float
    bpp_enhancement: float
    bpp_actual: float | None
    bpp_estimated_coded: float | None
    coded_images: int
    bpp_header: float | None = None

    @property
    def bpp(self) -> float:
        """Estimated total rate: base + enhancement, bpp."""
        return self.bpp_base + self.bpp_enhancement

    @property
    def rate_overhead(self) -> float | None:
        """``actual / estimated − 1`` on the coded images (0.05: streams 5 % above estimate)."""
        if self.bpp_actual is None or not self.bpp_estimated_coded:
            return None
        return self.bpp_actual / self.bpp_estimated_coded - 1.0

    @property
    def payload_overhead(self) -> float | None:
        """``(actual − header) / estimated − 1``: the entropy coder's own overhead."""
        if self.bpp_actual is None or self.bpp_header is None or not self.bpp_estimated_coded:
            return None
        return (self.bpp_actual - self.bpp_header) / self.bpp_estimated_coded - 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record, with ``bpp`` and ``rate_overhead``."""
        return {
            **dataclasses.asdict(self),
            "bpp": self.bpp,
            "rate_overhead": self.rate_overhead,
            "payload_overhead": self.payload_overhead,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def stream_bits(model: nn.Module, x: Tensor) -> tuple[int, int]:
    """``(total bits, header bits)`` of the real bitstreams of one image ``(1, 3, H, W)``:
    the base stream, plus the enhancement stream where the strategy codes one."""
    if isinstance(model, EnhancementCodec):
        streams = [compress(model.base, x)]
        if model.strategy.codes_latent:
            streams.append(compress_enhancement(model, x))
    else:
        streams = [compress(model, x)]
    return 8 * sum(len(s) for s in streams), 8 * HEADER_BYTES * len(streams)


def estimated_bits(model: nn.Module, out: Any, model_pixels: int) -> tuple[Tensor, Tensor]:
    """Estimated ``(base bits, enhancement bits)`` per image, ``(B,)`` each."""
    if isinstance(model, EnhancementCodec):
        return out.base_bpp * model_pixels, out.rate_bits
    return out.rate_bits, torch.zeros_like(out.rate_bits)


def task_name(model: nn.Module) -> str:
    if not isinstance(model, BaseCodec | EnhancementCodec):
        raise TypeError(f"cannot evaluate a {type(model).__name__}; expected a vinfo codec")
    return model.task.name


def _batches(dataset: Dataset, batch_size: int) -> Iterator[tuple[Tensor, list[Sample]]]:
    """Batches of one image size each, never padded: scores at the original resolution."""
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=list)
    return same_size_batches(itertools.chain.from_iterable(loader), batch_size)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 16,
    downscale_factor: int = 1,
    bitstream_images: int | None = None,
) -> Evaluation:
    """Score ``model`` (a base or enhancement codec, on the CPU) on ``dataset``.

    Args:
        model: a :class:`~vinfo.models.BaseCodec` or :class:`~vinfo.models.EnhancementCodec`.
        dataset: samples at their original resolution (targets are never resized).
        batch_size: images per forward pass.
        downscale_factor: the codec sees images shrunk by this integer factor (the paper's ×2
            for Cityscapes); predictions are restored to the original size before scoring and
            rates are charged to the original pixels.
        bitstream_images: code the first this-many images into real bitstreams for the actual
            rate (``None``: all, ``0``: none).

    Raises:
        ValueError: an empty dataset or a non-positive batch size or factor.
    """
    if batch_size < 1 or downscale_factor < 1:
        raise ValueError("batch_size and downscale_factor must be positive")
    if bitstream_images is not None and bitstream_images < 0:
        raise ValueError(f"bitstream_images must be >= 0, got {bitstream_images}")
    task = task_name(model)
    evaluator = TASK_EVALUATORS.get(task)
    scores = evaluator.scores(model.config)
    model = model.eval()
    base_sum = enhancement_sum = 0.0
    actual_bits = header_bits = coded_estimate = 0.0
    seen = coded = 0
    limit = math.inf if bitstream_images is None else bitstream_images
    for images, samples in _batches(dataset, batch_size):
        size = tuple(images.shape[-2:])
        original_pixels = size[0] * size[1]
        if downscale_factor > 1:
            images = torch.stack([downscale(s, downscale_factor).image for s in samples])
        model_pixels = images.shape[-2] * images.shape[-1]
        out = model(images)
        scores.update(evaluator.restore(out.task_output, size, downscale_factor), samples)
        base_bits, enhancement_bits = estimated_bits(model, out, model_pixels)
        base_sum += float(base_bits.sum()) / original_pixels
        enhancement_sum += float(enhancement_bits.sum()) / original_pixels
        for i in range(len(images)):
            if coded >= limit:
                break
            coded_bits, coded_header_bits = stream_bits(model, images[i : i + 1])
            actual_bits += coded_bits / original_pixels
            header_bits += coded_header_bits / original_pixels
            coded_estimate += float(base_bits[i] + enhancement_bits[i]) / original_pixels
            coded += 1
        seen += len(images)
    if seen == 0:
        raise ValueError("the dataset is empty")
    return Evaluation(
        task=task,
        num_images=seen,
        metrics=scores.compute(),
        bpp_base=base_sum / seen,
        bpp_enhancement=enhancement_sum / seen,
        bpp_actual=actual_bits / coded if coded else None,
        bpp_estimated_coded=coded_estimate / coded if coded else None,
        coded_images=coded,
        bpp_header=header_bits / coded if coded else None,
    )


def evaluate_checkpoint(
    path: str | Path,
    *,
    dataset: str = "synthetic",
    split: str = "test",
    data_root: str | Path | None = None,
    synthetic: str = "tiny",
    batch_size: int = 16,
    downscale_factor: int = 1,
    bitstream_images: int | None = None,
) -> Evaluation:
    """``vinfo eval``: :func:`evaluate` the checkpoint at ``path`` on a dataset split.

    Args:
        path: a ``.safetensors`` checkpoint with its JSON spec.
        dataset: a name in :data:`vinfo.experiments.splits.EXPERIMENT_DATA`.
        split: ``val`` or ``test`` (see :mod:`vinfo.experiments.splits`).
        data_root: root of a real dataset.
        synthetic: synthetic preset.
        batch_size, downscale_factor, bitstream_images: as for :func:`evaluate`.
    """
    model = load_checkpoint(path)  # first: a bad path fails before any data is read
    splits = dataset_splits(dataset, root=data_root, synthetic=synthetic)
    return evaluate(
        model,
        splits.get(split),
        batch_size=batch_size,
        downscale_factor=downscale_factor,
        bitstream_images=bitstream_images,
    )


def trivial_metrics(
    task: str, fit_on: Iterable[Sample], dataset: Dataset, config: CodecConfig
) -> dict[str, float]:
    """Scores of the task's trivial predictor, fitted on ``fit_on``, on ``dataset``.

    A trained model should beat these: mean colour (reconstruction), mean depth, the majority
    class (segmentation), no boxes (detection).
    """
    evaluator = TASK_EVALUATORS.get(task)
    predict = evaluator.trivial(fit_on, config)
    scores = evaluator.scores(config)
    for _, samples in _batches(dataset, 32):
        scores.update(predict(samples), samples)
    return scores.compute()


__all__ = [
    "TASK_EVALUATORS",
    "Evaluation",
    "Scores",
    "TaskEvaluator",
    "evaluate",
    "estimated_bits",
    "evaluate_checkpoint",
    "stream_bits",
    "task_name",
    "trivial_metrics",
]
