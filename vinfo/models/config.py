"""Typed codec configuration and its named preset ladder.

One frozen dataclass describes a codec's size; presets are named points on a ladder, as
CompressAI's ``cfgs[arch][q] = (N, M)`` tables, but stored in a :class:`~vinfo.registry.Registry`
so CLI choices come from one place. ``paper`` follows §4.1 of the paper (M = 192); ``tiny`` is
for tests and CPU smoke runs.

The config is saved as JSON next to every checkpoint (:mod:`vinfo.models.checkpoint`), so it
records everything needed to rebuild the model, including which task-head variant was used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vinfo.registry import Registry

HEAD_VARIANTS = ("paper", "light")
"""``paper``: the torchvision networks of §4 (Faster R-CNN R50-FPN, LRASPP MobileNetV3,
DeepLabV3 R50). ``light``: CPU-sized heads (Faster R-CNN MobileNetV3-320, small conv nets)."""


@dataclass(frozen=True)
class CodecConfig:
    """Size and hyper-parameters of one codec (base or enhancement).

    Attributes:
        N: channels after the first downsampling of the analysis transform ``f``.
        M: channels of the latent ``y`` (paper: 192). Stage widths grow linearly from ``N``
            to ``M`` over the 4 downsamplings (see :meth:`stage_channels`).
        blocks_per_stage: residual bottleneck blocks between two scaling operations.
        in_channels: channels of the input image ``x`` (3 for RGB).
        context_kernel: size of the masked context convolution (Minnen et al. 2018: 5).
        conditional_blocks: residual blocks of the ResNet that maps the base ``ŷ_b`` to side
            information for the conditional entropy model of the enhancement latent.
        scale_bound: lower bound of the Gaussian scales ``σ`` (CompressAI's default 0.11).
        likelihood_bound: lower bound of the likelihoods (CompressAI's default 1e-9).
        head_variant: which task heads to build, one of :data:`HEAD_VARIANTS`.
        segmentation_classes: classes of the segmentation head (Cityscapes trainIds: 19).
        detection_classes: classes of the detection head incl. background (COCO: 91).
        detection_min_size: shorter side the detector resizes its input to (``None``:
            torchvision's default, 800 for ResNet-50, 320 for MobileNetV3-320); CPU presets
            set it to their image size so tiny images are not upscaled.
        standardise_input: the analysis transforms standardise the image with the ImageNet
            channel statistics, as the authors' reconstruction and segmentation models do
            (``means``/``scales`` of their ``train_*.py``). Their depth model takes the raw
            [0, 1] image; vinfo standardises for every task because without it the latent's
            content part starts about 100x below the quantisation noise and a tiny codec sits at
            the per-pixel prior for hundreds of steps (measured: issue #13).
    """

    N: int = 96
    M: int = 192
    blocks_per_stage: int = 3
    in_channels: int = 3
    context_kernel: int = 5
    conditional_blocks: int = 2
    scale_bound: float = 0.11
    likelihood_bound: float = 1e-9
    head_variant: str = "paper"
    segmentation_classes: int = 19
    detection_classes: int = 91
    detection_min_size: int | None = None
    standardise_input: bool = True

    def __post_init__(self) -> None:
        # each message starts with the field's name: vinfo.models.checkpoint.check_spec
        # puts "config." before it
        for name in ("N", "M", "in_channels", "segmentation_classes", "detection_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("blocks_per_stage", "conditional_blocks"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.context_kernel < 3 or self.context_kernel % 2 == 0:
            raise ValueError(f"context_kernel must be odd and ≥ 3, got {self.context_kernel}")
        if self.head_variant not in HEAD_VARIANTS:
            raise ValueError(
                f"head_variant must be one of {HEAD_VARIANTS}, got {self.head_variant!r}"
            )
        if self.detection_min_size is not None and self.detection_min_size < 1:
            raise ValueError(
                f"detection_min_size must be positive or None, got {self.detection_min_size}"
            )
        for name in ("scale_bound", "likelihood_bound"):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def stage_channels(self) -> tuple[int, int, int, int]:
        """Output channels of the 4 downsamplings of ``f``: linear from ``N`` to ``M``."""
        return tuple(round(self.N + (self.M - self.N) * i / 3) for i in range(4))  # type: ignore[return-value]

    def replace(self, **changes: Any) -> CodecConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown keys (e.g. a config of another model type).
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown CodecConfig keys: {', '.join(unknown)}")
        return cls(**data)


CODEC_PRESETS: Registry[CodecConfig] = Registry("codec preset")
CODEC_PRESETS.add(
    "tiny",
    CodecConfig(
        N=8,
        M=16,
        blocks_per_stage=1,
        conditional_blocks=1,
        head_variant="light",
        detection_min_size=64,
    ),
)
CODEC_PRESETS.add("small", CodecConfig(N=32, M=64, blocks_per_stage=1, head_variant="light"))
CODEC_PRESETS.add("paper", CodecConfig())


def codec_preset(name: str) -> CodecConfig:
    """The :class:`CodecConfig` registered under ``name`` (``tiny``, ``small``, ``paper``)."""
    return CODEC_PRESETS.get(name)


__all__ = ["CODEC_PRESETS", "HEAD_VARIANTS", "CodecConfig", "codec_preset"]
