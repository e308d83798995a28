"""Evaluate a trained codec: task metric, estimated and actual rate, rate overhead.

Evaluation follows §4.1 of the paper: when the codec runs on ×2 downscaled inputs (Cityscapes),
its dense predictions are upsampled back and scored against the original targets, and every
rate is charged to the original ``H × W`` pixels. Rates are reported two ways:

- *estimated* bpp, ``−Σ log2 p(ŷ) / (H·W)`` from the entropy model — what the paper reports;
- *actual* bpp, the length of real bitstreams (:func:`vinfo.coding.compress`, header included)
  divided by ``H·W``; ``rate_overhead = actual / estimated − 1`` over the same images.

Scalable codecs add the base and enhancement rates (``bpp = bpp_base + bpp_enhancement``), as
in Fig. 2 and 3 of the paper. Metrics per task (the task registry's scores,
:mod:`vinfo.metrics.task_scores`): reconstruction ``psnr`` (dB), ``rmse`` and, for images
large enough, ``ms-ssim``; depth the Eigen et al. errors (``rmse`` in the depth unit,
``abs_rel``, …, ``delta1``…); segmentation ``miou`` and ``pixel_accuracy``; detection COCO
``map``, ``map50``, ``map75``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from vinfo.coding import HEADER_BYTES, compress, compress_enhancement
from vinfo.data.sample import Sample, same_size_batches
from vinfo.data.transforms import downscale
from vinfo.experiments.datasets import dataset_splits
from vinfo.models.base import BaseCodec
from vinfo.models.checkpoint import load_checkpoint
from vinfo.models.config import CodecConfig
from vinfo.models.enhancement import EnhancementCodec
from vinfo.models.tasks import get_task


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
        image_bpp: the estimated total rate of each image, in the order scored (their mean is
            :attr:`bpp`); ``None`` in evaluations stored before it existed.
        image_statistics: the additive statistics of the task's primary metric per image
            (:class:`vinfo.metrics.task_scores.ImageStatistics`), or ``None`` (detection):
            what :mod:`vinfo.experiments.bd_bootstrap` resamples.
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
    image_bpp: list[float] | None = None
    image_statistics: list[list[float]] | None = None

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

    def to_dict(self, per_image: bool = True) -> dict[str, Any]:
        """JSON-ready record, with ``bpp`` and ``rate_overhead``; without ``per_image``, the
        summary only (no :attr:`image_bpp` and :attr:`image_statistics`)."""
        record = {
            **dataclasses.asdict(self),
            "bpp": self.bpp,
            "rate_overhead": self.rate_overhead,
            "payload_overhead": self.payload_overhead,
        }
        if not per_image:
            del record["image_bpp"], record["image_statistics"]
        return record

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
    spec = get_task(task)
    scores = spec.scores(spec.num_classes(model.config))
    model = model.eval()
    base_sum = enhancement_sum = 0.0
    actual_bits = header_bits = coded_estimate = 0.0
    seen = coded = 0
    image_bpp: list[float] = []
    limit = math.inf if bitstream_images is None else bitstream_images
    for images, samples in _batches(dataset, batch_size):
        size = tuple(images.shape[-2:])
        original_pixels = size[0] * size[1]
        if downscale_factor > 1:
            images = torch.stack([downscale(s, downscale_factor).image for s in samples])
        model_pixels = images.shape[-2] * images.shape[-1]
        out = model(images)
        scores.update(spec.restore(out.task_output, size, downscale_factor), samples)
        base_bits, enhancement_bits = estimated_bits(model, out, model_pixels)
        base_sum += float(base_bits.sum()) / original_pixels
        enhancement_sum += float(enhancement_bits.sum()) / original_pixels
        image_bpp += ((base_bits + enhancement_bits) / original_pixels).tolist()
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
    statistics = getattr(scores, "image_statistics", None)
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
        image_bpp=image_bpp,
        image_statistics=None if statistics is None else statistics().tolist(),
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
        dataset: a dataset experiments can train on (:func:`vinfo.data.experiment_datasets`).
        split: ``val`` or ``test`` (see :mod:`vinfo.experiments.datasets`).
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
    spec = get_task(task)
    predict = spec.trivial(fit_on, spec.num_classes(config))
    scores = spec.scores(spec.num_classes(config))
    for _, samples in _batches(dataset, 32):
        scores.update(predict(samples), samples)
    return scores.compute()


__all__ = [
    "Evaluation",
    "evaluate",
    "estimated_bits",
    "evaluate_checkpoint",
    "stream_bits",
    "task_name",
    "trivial_metrics",
]
