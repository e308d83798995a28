"""The paper's data transforms on :class:`~vinfo.data.sample.Sample`.

Section 4.1 of the paper: "we apply random horizontal flips and color jittering. Since the input
of Cityscapes has a high resolution, we downscale it by a factor of 2 before processing it and
upsample back the resulting predictions before evaluating their performance". Geometric
transforms move every target with the image; photometric ones touch the image only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2

from vinfo.data.sample import Sample


def hflip(sample: Sample) -> Sample:
    """Mirror a sample left–right: image, depth, validity, segmentation, masks and boxes.

    Boxes ``(x1, y1, x2, y2)`` with exclusive ``x2`` map to ``(W − x2, y1, W − x1, y2)``, so a
    box stays the tight box of its flipped mask.
    """
    def flip(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.flip(-1)

    boxes = sample.boxes
    if boxes is not None:
        w = sample.size[1]
        boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
    return sample.replace(
        image=flip(sample.image), depth=flip(sample.depth), depth_valid=flip(sample.depth_valid),
        segmentation=flip(sample.segmentation), masks=flip(sample.masks), boxes=boxes,
    )


class RandomHorizontalFlip:
    """Apply :func:`hflip` with probability ``p``.

    Args:
        p: flip probability.
        generator: optional ``torch.Generator`` for reproducible draws.
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        self.p, self.generator = p, generator

    def __call__(self, sample: Sample) -> Sample:
        if torch.rand((), generator=self.generator).item() < self.p:
            return hflip(sample)
        return sample


class ColorJitter:
    """Random brightness, contrast, saturation and hue on the image only.

    Wraps ``torchvision.transforms.v2.ColorJitter``; the arguments are its own. Depth,
    segmentation and boxes are untouched.
    """

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
    ) -> None:
        self.jitter = v2.ColorJitter(brightness, contrast, saturation, hue)

    def __call__(self, sample: Sample) -> Sample:
        return sample.replace(image=self.jitter(sample.image).clamp(0, 1))


def downscale(sample: Sample, factor: int = 2) -> Sample:
    """Shrink a sample by an integer ``factor`` (the paper's Cityscapes ×2 downscale).

    The image is resized with antialiased bilinear interpolation; depth, validity,
    segmentation and masks take every ``factor``-th pixel (nearest), so no label or depth value
    is invented by averaging across a boundary; boxes are divided by ``factor``. Evaluate on the
    original targets with :func:`upsample_prediction`.

    Args:
        sample: input sample ``(3, H, W)``.
        factor: integer ratio; ``H`` and ``W`` need not be multiples (sizes round down).
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    h, w = sample.size
    size = [h // factor, w // factor]
    image = v2.functional.resize(sample.image, size, antialias=True).clamp(0, 1)
    off = factor // 2  # centre pixel of each factor×factor cell

    def sub(t: Tensor | None) -> Tensor | None:
        return None if t is None else t[..., off::factor, off::factor][..., : size[0], : size[1]]

    boxes = None if sample.boxes is None else sample.boxes / factor
    return sample.replace(
        image=image, depth=sub(sample.depth), depth_valid=sub(sample.depth_valid),
        segmentation=sub(sample.segmentation), masks=sub(sample.masks), boxes=boxes,
    )


class Downscale:
    """:func:`downscale` as a transform object."""

    def __init__(self, factor: int = 2) -> None:
        self.factor = factor

    def __call__(self, sample: Sample) -> Sample:
        return downscale(sample, self.factor)


def upsample_prediction(pred: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize a dense prediction back to the original image size before evaluation.

    Args:
        pred: ``(B, C, h, w)`` float maps (segmentation logits, depth) or ``(B, h, w)`` integer
            label maps.
        size: original ``(H, W)``.
        mode: ``"bilinear"`` for float maps; integer maps always use ``"nearest"``.

    Returns:
        ``(B, C, H, W)`` (or ``(B, H, W)``) with the input's dtype.
    """
    if not pred.is_floating_point():
        return F.interpolate(pred[:, None].float(), size=size, mode="nearest")[:, 0].to(pred.dtype)
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(pred, size=size, mode=mode, **kwargs)


class Compose:
    """Apply ``Sample → Sample`` transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Sample], Sample]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample) -> Sample:
        for t in self.transforms:
            sample = t(sample)
        return sample
