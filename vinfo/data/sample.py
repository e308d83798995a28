"""The one typed sample every dataset yields.

A :class:`Sample` carries the input image and whichever targets the dataset has; absent targets
are ``None``. :attr:`Sample.tasks` says which of the paper's tasks the sample supports, so a
trainer can check a dataset against a task before the first epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

RECONSTRUCTION = "reconstruction"
DEPTH = "depth"
SEGMENTATION = "segmentation"
DETECTION = "detection"
TASKS: tuple[str, ...] = (RECONSTRUCTION, DEPTH, SEGMENTATION, DETECTION)
"""Task names, in the order used everywhere (``task`` in the architecture glossary)."""

IGNORE_INDEX = 255
"""Segmentation value ignored by losses and metrics (Cityscapes convention)."""


@dataclass
class Sample:
    """One image with its optional targets.

    Attributes:
        image: ``(3, H, W)`` float32 RGB in ``[0, 1]``.
        depth: ``(1, H, W)`` float32 depth target; its unit is :attr:`depth_unit`.
        depth_valid: ``(1, H, W)`` bool, ``True`` where :attr:`depth` is defined. Required when
            ``depth`` is given.
        depth_unit: ``"m"`` (metric depth) or ``"px"`` (stereo disparity in pixels).
        segmentation: ``(H, W)`` int64 class ids; :data:`IGNORE_INDEX` (255) is ignored.
        boxes: ``(N, 4)`` float32 boxes ``(x1, y1, x2, y2)`` in pixels, ``x2``/``y2`` exclusive
            (a one-pixel object at column 3 spans ``x1=3, x2=4``), as torchvision's detectors
            expect.
        labels: ``(N,)`` int64 class ids of the boxes. Required when ``boxes`` is given.
        masks: ``(N, H, W)`` bool instance masks aligned with ``boxes``.
        meta: free-form provenance (``index``, ``file_name``, ``image_id`` ...); never a target.
    """

    image: Tensor
    depth: Tensor | None = None
    depth_valid: Tensor | None = None
    depth_unit: str | None = None
    segmentation: Tensor | None = None
    boxes: Tensor | None = None
    labels: Tensor | None = None
    masks: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[0] != 3:
            raise ValueError(f"image must be (3, H, W), got {tuple(self.image.shape)}")
        hw = tuple(self.image.shape[1:])
        if self.depth is not None:
            if self.depth_valid is None or self.depth_unit is None:
                raise ValueError("depth needs depth_valid and depth_unit")
            for name in ("depth", "depth_valid"):
                t = getattr(self, name)
                if tuple(t.shape) != (1, *hw):
                    raise ValueError(f"{name} must be (1, {hw[0]}, {hw[1]}), got {tuple(t.shape)}")
        if self.segmentation is not None and tuple(self.segmentation.shape) != hw:
            raise ValueError(f"segmentation must be {hw}, got {tuple(self.segmentation.shape)}")
        if self.boxes is not None:
            n = self.boxes.shape[0]
            if self.boxes.shape != (n, 4) or self.labels is None or self.labels.shape != (n,):
                raise ValueError("boxes must be (N, 4) with labels (N,)")
            if self.masks is not None and tuple(self.masks.shape) != (n, *hw):
                raise ValueError(f"masks must be ({n}, {hw[0]}, {hw[1]}), "
                                 f"got {tuple(self.masks.shape)}")

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[2])

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this sample has targets for, in :data:`TASKS` order."""
        have = {
            RECONSTRUCTION: True,
            DEPTH: self.depth is not None,
            SEGMENTATION: self.segmentation is not None,
            DETECTION: self.boxes is not None,
        }
        return tuple(t for t in TASKS if have[t])

    def detection_target(self) -> dict[str, Tensor]:
        """The target dict torchvision's Faster/Mask R-CNN expect: ``boxes``, ``labels``
        (and ``masks`` as uint8 when present)."""
        if self.boxes is None or self.labels is None:
            raise ValueError("sample has no detection targets")
        target = {"boxes": self.boxes, "labels": self.labels}
        if self.masks is not None:
            target["masks"] = self.masks.to(torch.uint8)
        return target

    def pad_to(self, height: int, width: int) -> Sample:
        """A copy padded at the bottom and right to ``(height, width)``.

        The padding is what no loss or metric counts as a target: image 0, depth 0 and invalid,
        segmentation :data:`IGNORE_INDEX`, instance masks ``False``. Boxes keep their
        coordinates (the origin does not move), as in torchvision's detection batching.

        Raises:
            ValueError: ``(height, width)`` is smaller than the sample.
        """
        h, w = self.size
        if height < h or width < w:
            raise ValueError(f"cannot pad a {h}x{w} sample to the smaller {height}x{width}")
        if (height, width) == (h, w):
            return self
        pad = (0, width - w, 0, height - h)

        def padded(t: Tensor | None, value: float | bool | int) -> Tensor | None:
            return None if t is None else torch.nn.functional.pad(t, pad, value=value)

        return self.replace(
            image=padded(self.image, 0.0),
            depth=padded(self.depth, 0.0),
            depth_valid=padded(self.depth_valid, False),
            segmentation=padded(self.segmentation, IGNORE_INDEX),
            masks=padded(self.masks, False),
            meta={**self.meta, "unpadded_size": (h, w)},
        )

    def replace(self, **changes: Any) -> Sample:
        """A copy with some fields replaced (``dataclasses.replace``; re-validates)."""
        return replace(self, **changes)


def collate(samples: list[Sample]) -> tuple[Tensor, list[Sample]]:
    """``DataLoader`` ``collate_fn``: stack images to ``(B, 3, H, W)``, keep samples as a list.

    Detection targets have a different ``N`` per image, so they stay per sample, as in
    torchvision's detection references. Images of different sizes (COCO) are padded at the
    bottom and right to the largest height and width of the batch with :meth:`Sample.pad_to`
    (as torchvision's detection batching does): depth, segmentation and detection losses ignore
    the padding, reconstruction and the rate see a zero border. The returned samples are the
    padded ones, so images and targets stay aligned. Evaluation never pads: it batches images
    of one size only (:func:`same_size_batches`).
    """
    height = max(s.size[0] for s in samples)
    width = max(s.size[1] for s in samples)
    samples = [s.pad_to(height, width) for s in samples]
    return torch.stack([s.image for s in samples]), samples


def same_size_batches(
    samples: Iterable[Sample], batch_size: int
) -> Iterator[tuple[Tensor, list[Sample]]]:
    """Collated batches of at most ``batch_size`` consecutive samples of one image size.

    A change of size starts a new batch, so nothing is padded or resized: what evaluation at
    the original resolution needs on datasets of mixed sizes (COCO).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    batch: list[Sample] = []
    for sample in samples:
        if batch and (len(batch) == batch_size or sample.size != batch[0].size):
            yield collate(batch)
            batch = []
        batch.append(sample)
    if batch:
        yield collate(batch)
