"""Task registry: what a task is everywhere, one :class:`Task` entry per task (issue #18).

Each entry holds the task's head networks, its training target (read from the batch's samples)
and loss, the :class:`~vinfo.data.Sample` fields a probe reads, the prior a head starts at, and
how it is scored (:mod:`vinfo.metrics.task_scores`: metric accumulator, restoring a prediction
to the original resolution, trivial predictor) with its primary metric and that metric's
direction. Objectives, evaluation and probes read these entries; adding a task is one entry
here (plus its own head or scores, where it needs new ones).

A head consumes the synthesis output ``x̃ = g(ŷ)`` in image space, ``(B, 3, H, W)`` — as in
the paper, where a task network designed for images is connected to the synthesis transform
(§3.3). Heads are built from torchvision with ``weights=None`` and ``weights_backbone=None``:
vinfo never downloads weights; an optional local file can be loaded instead.

Head variants (``CodecConfig.head_variant``):

========== ============================== ===========================================
task       ``paper`` (§4 of the paper)    ``light`` (CPU presets)
========== ============================== ===========================================
detection  Faster R-CNN ResNet-50 FPN     Faster R-CNN MobileNetV3-Large 320 FPN
depth      LRASPP MobileNetV3-Large       small convolutional head
segment.   DeepLabV3 ResNet-50            small convolutional head
recon.     identity (``x̂ = x̃``)           identity
========== ============================== ===========================================

Every head is called as ``head(image, target=None)``. Dense heads return a tensor
``(B, C, H, W)``; the detection head follows torchvision: in train mode it needs the targets
and returns its loss dict, in eval mode it returns one prediction dict per image.

Distortions ``d`` are in the units of the authors' code (de Andrade & Bajić,
``adeandrade/research``, ``projects/compatible-representations``), so that ``λ`` and ``β`` mean
what they mean there:

- reconstruction: RMSE in 8-bit levels, ``255 · RMSE`` of [0, 1] images, the mean of the
  per-image RMSE (``functions.calculate_reconstruction_loss``: ``255 * mean(rmse)``);
- depth: RMSE over the valid pixels, pooled over the batch, in the target's unit (disparity in
  pixels by default; theirs is ``128 · RMSE`` of the disparity ``(p − 1) / 32768``, i.e. the
  disparity RMSE in pixels);
- segmentation: cross-entropy (nats) times the number of classes ``K`` (``loss *= num_classes``);
- detection: the sum of the detector's own losses, as theirs.

Dense heads start at the prior of their target (:func:`initialise_head`): the output layer's
weights are zero and its bias is the training set's mean depth or log class frequencies, so the
first step already scores as the best constant predictor and no budget is spent getting there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models import detection, segmentation

from bdrate.directions import metric_direction
from vinfo.data.sample import Sample
from vinfo.metrics import task_scores
from vinfo.metrics.image import rmse
from vinfo.models.activations import ELU
from vinfo.models.config import HEAD_VARIANTS, CodecConfig
from vinfo.registry import Registry

IGNORE_INDEX = 255
"""Segmentation label ignored by the loss and the metric (Cityscapes' void)."""


class DenseHead(nn.Module):
    """A per-pixel head; unwraps torchvision's ``{"out": ...}`` dict.

    Args:
        net: module mapping ``(B, 3, H, W)`` to ``(B, C, H, W)`` or to ``{"out": ...}``.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor, target: Any = None) -> Tensor:
        out = self.net(image)
        return out["out"] if isinstance(out, Mapping) else out


class DetectionHead(nn.Module):
    """A torchvision detector taking a batch tensor ``(B, 3, H, W)`` with values in [0, 1].

    Train mode: ``forward(image, targets)`` with one ``{"boxes": (n, 4) xyxy, "labels": (n,)}``
    dict per image returns the detector's loss dict. Eval mode returns predictions.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor, target: Sequence[Mapping[str, Tensor]] | None = None) -> Any:
        images = list(image.unbind(0))
        if self.training:
            if target is None:
                raise ValueError("a detection head in train mode needs the targets")
            return self.net(images, [dict(t) for t in target])
        return self.net(images)


def _conv_head(out_channels: int, width: int = 16) -> nn.Module:
    """Small fully convolutional head for CPU presets, ``(B, 3, H, W) → (B, out, H, W)``."""
    return DenseHead(
        nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            ELU(),
            nn.Conv2d(width, width, 3, padding=1),
            ELU(),
            nn.Conv2d(width, out_channels, 1),
        )
    )


def _size(config: CodecConfig) -> dict[str, int]:
    """Detector resize option; absent means torchvision's default for that detector."""
    if config.detection_min_size is None:
        return {}
    return {"min_size": config.detection_min_size}


RECONSTRUCTION_LEVELS = 255.0
"""The reconstruction distortion is the RMSE of [0, 1] images in these units (8-bit levels), as
in the authors' ``calculate_reconstruction_loss`` (``255 * mean(rmse)``)."""


def reconstruction_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """RMSE between ``x̂`` and ``x`` in 8-bit levels (``255 ·`` the RMSE of [0, 1] images; the
    paper's reconstruction distortion, §4.1), mean of the per-image RMSE."""
    return RECONSTRUCTION_LEVELS * rmse(prediction, target)


def depth_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """RMSE over the valid pixels (finite target ``> 0``), the unit of the depth maps.

    Args:
        prediction: ``(B, 1, H, W)``.
        target: ``(B, 1, H, W)`` or ``(B, H, W)``; invalid pixels are NaN, inf or ``≤ 0``.

    Raises:
        ValueError: no valid pixel.
    """
    target = target.reshape(prediction.shape)
    valid = torch.isfinite(target) & (target > 0)
    if not bool(valid.any()):
        raise ValueError("the depth target has no valid pixel")
    # where() keeps NaN targets out of the graph: 0 * NaN would poison the gradient
    error = torch.where(valid, prediction - torch.where(valid, target, 0.0), 0.0)
    return (error.square().sum() / valid.sum()).sqrt()


def segmentation_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Per-pixel cross-entropy in nats times the number of classes ``K`` (the authors' scaling,
    ``loss *= num_classes``), label ``255`` ignored.

    Args:
        logits: ``(B, K, H, W)``.
        target: class indices ``(B, H, W)`` (or ``(B, 1, H, W)``).
    """
    if target.ndim == logits.ndim:
        target = target.squeeze(1)
    cross_entropy = F.cross_entropy(logits, target.long(), ignore_index=IGNORE_INDEX)
    return logits.shape[1] * cross_entropy


def depth_prior(targets: Iterable[Tensor]) -> Tensor:
    """The best constant depth under :func:`depth_loss`: the mean of the valid target pixels.

    Args:
        targets: depth batches ``(B, 1, H, W)`` (invalid pixels NaN, inf or ``≤ 0``).

    Returns:
        ``(1,)``, the output bias of a depth head.
    """
    total, count = 0.0, 0
    for target in targets:
        valid = torch.isfinite(target) & (target > 0)
        total += float(target[valid].double().sum())
        count += int(valid.sum())
    if count == 0:
        raise ValueError("the depth targets have no valid pixel")
    return torch.tensor([total / count])


def class_prior(targets: Iterable[Tensor], num_classes: int) -> Tensor:
    """Log class frequencies, the best constant logits under cross-entropy (add-one smoothed,
    so an absent class gets a finite logit).

    Args:
        targets: label batches ``(B, H, W)``; ``255`` is ignored.
        num_classes: ``K``.

    Returns:
        ``(K,)``, the output bias of a segmentation head.
    """
    counts = torch.ones(num_classes, dtype=torch.float64)
    for target in targets:
        labels = target[target != IGNORE_INDEX].long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"labels outside [0, {num_classes}) besides {IGNORE_INDEX}")
        counts += torch.bincount(labels.flatten(), minlength=num_classes).double()
    return (counts / counts.sum()).log().float()


def output_layers(head: nn.Module) -> list[nn.Conv2d]:
    """The convolutions whose outputs sum to a dense head's output, the one carrying the bias
    first: the last conv of the light heads, LRASPP's high and low classifiers, DeepLabV3's
    classifier (its auxiliary head is not part of ``out``)."""
    net = head.net if isinstance(head, DenseHead) else head
    if isinstance(net, segmentation.LRASPP):
        return [net.classifier.high_classifier, net.classifier.low_classifier]
    if isinstance(net, segmentation.DeepLabV3):
        return [net.classifier[-1]]
    if isinstance(net, nn.Sequential) and isinstance(net[-1], nn.Conv2d):
        return [net[-1]]
    return []


@torch.no_grad()
def initialise_head(head: nn.Module, bias: Tensor) -> None:
    """Make ``head`` output the constant ``bias`` per channel: zero output weights, ``bias`` in
    the first output layer, zero bias in the others (:func:`output_layers`).

    The weights start at zero, not the gradients: the output layer's weight gradient is the
    features times the error, so training moves off the prior from the first step.

    Raises:
        ValueError: a head without dense output layers, or a bias of the wrong length.
    """
    layers = output_layers(head)
    if not layers:
        raise ValueError(f"{type(head).__name__} has no dense output layer to initialise")
    for index, layer in enumerate(layers):
        if layer.bias is None or layer.bias.shape != bias.shape:
            raise ValueError(
                f"output bias of shape {tuple(bias.shape)} does not fit {layer} of the head"
            )
        layer.weight.zero_()
        layer.bias.copy_(bias if index == 0 else torch.zeros_like(bias))


def detection_loss(losses: Mapping[str, Tensor], target: Any = None) -> Tensor:
    """Sum of the detector's own losses (classifier, box regression, objectness, RPN box)."""
    return torch.stack(list(losses.values())).sum()


def _reconstruction_target(images: Tensor, samples: Sequence[Sample]) -> Tensor:
    return images


def _depth_target(images: Tensor, samples: Sequence[Sample]) -> Tensor:
    # (B, 1, H, W); invalid pixels become 0, which the depth loss ignores
    return torch.stack([torch.where(s.depth_valid, s.depth, 0.0) for s in _need(samples, "depth")])


def _segmentation_target(images: Tensor, samples: Sequence[Sample]) -> Tensor:
    return torch.stack([s.segmentation for s in _need(samples, "segmentation")])  # (B, H, W)


def _detection_target(images: Tensor, samples: Sequence[Sample]) -> list[dict[str, Tensor]]:
    # boxes and labels only: the detectors of the paper have no mask head
    return [{"boxes": s.boxes, "labels": s.labels} for s in _need(samples, "boxes")]


def _need(samples: Sequence[Sample], field: str) -> Sequence[Sample]:
    if any(getattr(s, field) is None for s in samples):
        raise ValueError(f"the dataset's samples have no {field} target")
    return samples


TaskTarget = Callable[[Tensor, Sequence[Sample]], Any]
"""``(images (B, 3, H, W), samples) → target`` in the form the task's loss expects."""


@dataclass(frozen=True)
class Task:
    """One task of the paper.

    Attributes:
        name: registry key.
        heads: head constructor for each head variant, ``CodecConfig → nn.Module``.
        loss: ``(head output, target) → scalar`` distortion ``d`` of eq. 3/4.
        metric: reported metric, a name in :mod:`bdrate.directions`.
        description: one line for help texts.
        prior: ``(targets, config) → bias``: the output bias of a head that predicts the best
            constant (:func:`depth_prior`, :func:`class_prior`), ``None`` for heads with no
            dense output layer (reconstruction's identity, detection).
        target: the loss target of a collated batch, ``(images, samples) → target``.
        field: the :class:`~vinfo.data.Sample` attribute holding the target (what probes read).
        mask_field: the attribute holding its validity mask, or ``None``.
        scores: ``(num_classes, primary_only) →`` the metric accumulator
            (:mod:`vinfo.metrics.task_scores`); its primary metric is :attr:`metric`.
        restore: ``(prediction, original (H, W), factor) →`` the prediction on a
            ``factor``-times downscaled input at the original resolution (§4.1).
        trivial: ``(samples, num_classes) →`` a trivial predictor fitted on samples: the
            per-pixel mean image, mean depth or most frequent class, or no boxes.
        classes: the :class:`CodecConfig` attribute holding the class count, or ``None``.
    """

    name: str
    heads: Mapping[str, Callable[[CodecConfig], nn.Module]]
    loss: Callable[[Any, Any], Tensor]
    metric: str
    description: str
    prior: Callable[[Iterable[Any], CodecConfig], Tensor] | None
    target: TaskTarget
    field: str
    mask_field: str | None
    scores: Callable[..., task_scores.Scores]
    restore: Callable[[Any, tuple[int, int], int], Any]
    trivial: Callable[[Iterable[Sample], int | None], task_scores.Predictor]
    classes: str | None = None

    def __post_init__(self) -> None:
        if set(self.heads) != set(HEAD_VARIANTS):
            raise ValueError(f"task {self.name!r} must define heads for {HEAD_VARIANTS}")
        metric_direction(self.metric)  # refuse unknown metrics at import time

    @property
    def higher_is_better(self) -> bool:
        """Direction of :attr:`metric`, from :mod:`bdrate.directions`."""
        return metric_direction(self.metric).higher_is_better

    def num_classes(self, config: CodecConfig) -> int | None:
        """The class count of ``config`` this task uses, or ``None``."""
        return None if self.classes is None else int(getattr(config, self.classes))

    def build_head(self, config: CodecConfig, weights_path: str | Path | None = None) -> nn.Module:
        """The head for ``config.head_variant``, randomly initialised or loaded from a local
        file (``.safetensors``, or a torch ``state_dict`` file read with ``weights_only``)."""
        head = self.heads[config.head_variant](config)
        if weights_path is not None:
            head.load_state_dict(_load_state_dict(Path(weights_path)))
        return head


    def initialise_head(self, head: nn.Module, targets: Iterable[Any], config: CodecConfig) -> bool:
        """Start ``head`` at the prior of ``targets`` (batches as the loss takes them); returns
        whether the task has a prior (see :func:`initialise_head`)."""
        if self.prior is None:
            return False
        initialise_head(head, self.prior(targets, config))
        return True


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


TASKS: Registry[Task] = Registry("task")
for _task in (
    Task(
        "reconstruction",
        {"paper": lambda c: DenseHead(nn.Identity()), "light": lambda c: DenseHead(nn.Identity())},
        reconstruction_loss,
        "psnr",
        "input reconstruction x̂ = g(ŷ), trained with RMSE",
        None,
        _reconstruction_target,
        "image",
        None,
        task_scores.ReconstructionScores,
        task_scores.upsample_dense,
        lambda samples, classes: task_scores.mean_image(samples),
    ),
    Task(
        "depth",
        {
            "paper": lambda c: DenseHead(
                segmentation.lraspp_mobilenet_v3_large(
                    weights=None, weights_backbone=None, num_classes=1
                )
            ),
            "light": lambda c: _conv_head(1),
        },
        depth_loss,
        "rmse",
        "monocular depth (LRASPP MobileNetV3), masked RMSE",
        lambda targets, config: depth_prior(targets),
        _depth_target,
        "depth",
        "depth_valid",
        task_scores.DepthScores,
        task_scores.upsample_dense,
        lambda samples, classes: task_scores.mean_depth(samples),
    ),
    Task(
        "segmentation",
        {
            "paper": lambda c: DenseHead(
                segmentation.deeplabv3_resnet50(
                    weights=None, weights_backbone=None, num_classes=c.segmentation_classes
                )
            ),
            "light": lambda c: _conv_head(c.segmentation_classes),
        },
        segmentation_loss,
        "miou",
        "semantic segmentation (DeepLabV3 ResNet-50), K x cross-entropy ignoring 255",
        lambda targets, config: class_prior(targets, config.segmentation_classes),
        _segmentation_target,
        "segmentation",
        None,
        task_scores.SegmentationScores,
        task_scores.upsample_dense,
        task_scores.majority_class,
        "segmentation_classes",
    ),
    Task(
        "detection",
        {
            "paper": lambda c: DetectionHead(
                detection.fasterrcnn_resnet50_fpn(
                    weights=None,
                    weights_backbone=None,
                    num_classes=c.detection_classes,
                    **_size(c),
                )
            ),
            "light": lambda c: DetectionHead(
                detection.fasterrcnn_mobilenet_v3_large_320_fpn(
                    weights=None,
                    weights_backbone=None,
                    num_classes=c.detection_classes,
                    **_size(c),
                )
            ),
        },
        detection_loss,
        "map",
        "object detection (Faster R-CNN ResNet-50 FPN), its own losses",
        None,
        _detection_target,
        "boxes",
        None,
        task_scores.DetectionScores,
        task_scores.rescale_boxes,
        task_scores.no_boxes,
        "detection_classes",
    ),
):
    TASKS.add(_task.name, _task)


def get_task(name: str) -> Task:
    """The :class:`Task` registered under ``name``."""
    return TASKS.get(name)


__all__ = [
    "IGNORE_INDEX",
    "RECONSTRUCTION_LEVELS",
    "TASKS",
    "DenseHead",
    "DetectionHead",
    "Task",
    "TaskTarget",
    "class_prior",
    "depth_loss",
    "depth_prior",
    "detection_loss",
    "get_task",
    "initialise_head",
    "output_layers",
    "reconstruction_loss",
    "segmentation_loss",
]
