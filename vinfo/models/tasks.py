"""Task registry: for each task its head networks, loss, metric and the metric's direction.

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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.models import detection, segmentation

from bdrate.directions import metric_direction
from vinfo.metrics.image import rmse
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
            nn.ELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ELU(),
            nn.Conv2d(width, out_channels, 1),
        )
    )


def _size(config: CodecConfig) -> dict[str, int]:
    """Detector resize option; absent means torchvision's default for that detector."""
    if config.detection_min_size is None:
        return {}
    return {"min_size": config.detection_min_size}


def reconstruction_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """RMSE between ``x̂`` and ``x`` (the paper's reconstruction distortion, §4.1), mean over
    images."""
    return rmse(prediction, target)


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
    """Per-pixel cross-entropy in nats, label ``255`` ignored.

    Args:
        logits: ``(B, K, H, W)``.
        target: class indices ``(B, H, W)`` (or ``(B, 1, H, W)``).
    """
    if target.ndim == logits.ndim:
        target = target.squeeze(1)
    return F.cross_entropy(logits, target.long(), ignore_index=IGNORE_INDEX)


def detection_loss(losses: Mapping[str, Tensor], target: Any = None) -> Tensor:
    """Sum of the detector's own losses (classifier, box regression, objectness, RPN box)."""
    return torch.stack(list(losses.values())).sum()


@dataclass(frozen=True)
class Task:
    """One task of the paper.

    Attributes:
        name: registry key.
        heads: head constructor for each head variant, ``CodecConfig → nn.Module``.
        loss: ``(head output, target) → scalar`` distortion ``d`` of eq. 3/4.
        metric: reported metric, a name in :mod:`bdrate.directions`.
        description: one line for help texts.
    """

    name: str
    heads: Mapping[str, Callable[[CodecConfig], nn.Module]]
    loss: Callable[[Any, Any], Tensor]
    metric: str
    description: str

    def __post_init__(self) -> None:
        if set(self.heads) != set(HEAD_VARIANTS):
            raise ValueError(f"task {self.name!r} must define heads for {HEAD_VARIANTS}")
        metric_direction(self.metric)  # refuse unknown metrics at import time

    @property
    def higher_is_better(self) -> bool:
        """Direction of :attr:`metric`, from :mod:`bdrate.directions`."""
        return metric_direction(self.metric).higher_is_better

    def build_head(self, config: CodecConfig, weights_path: str | Path | None = None) -> nn.Module:
        """The head for ``config.head_variant``, randomly initialised or loaded from a local
        file (``.safetensors``, or a torch ``state_dict`` file read with ``weights_only``)."""
        head = self.heads[config.head_variant](config)
        if weights_path is not None:
            head.load_state_dict(_load_state_dict(Path(weights_path)))
        return head


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
        "semantic segmentation (DeepLabV3 ResNet-50), cross-entropy ignoring 255",
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
    ),
):
    TASKS.add(_task.name, _task)


def get_task(name: str) -> Task:
    """The :class:`Task` registered under ``name``."""
    return TASKS.get(name)


__all__ = [
    "IGNORE_INDEX",
    "TASKS",
    "DenseHead",
    "DetectionHead",
    "Task",
    "depth_loss",
    "detection_loss",
    "get_task",
    "reconstruction_loss",
    "segmentation_loss",
]
