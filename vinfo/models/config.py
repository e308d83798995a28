"""Typed codec configuration and its named preset ladder.

One frozen dataclass describes a codec's size; presets are named points on a ladder, as
CompressAI's ``cfgs[arch][q] = (N, M)`` tables, but stored in a :class:`~vinfo.registry.Registry`
so CLI choices come from one place. ``paper`` follows §4.1 of the paper (M = 192) and the
authors' transforms (``layout="authors"``); ``tiny`` is for tests and CPU smoke runs.

The config is saved as JSON next to every checkpoint (:mod:`vinfo.models.checkpoint`), so it
records everything needed to rebuild the model, including which task-head variant was used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from vinfo.registry import Registry


@dataclass(frozen=True)
class TransformLayout:
    """How the analysis and synthesis transforms (:mod:`vinfo.models.transforms`) are laid out.

    Attributes:
        width_factors: output channels of the first 3 downsamplings as multiples of ``N`` (the
            4th gives ``M``); ``None``: linear from ``N`` to ``M``.
        bottleneck_divisor: a residual bottleneck block of ``C`` channels has ``C // divisor``
            hidden channels.
        scaling_activation: an ELU follows each scaling (strided or transposed) convolution
            but the last.
        auxiliary_blocks: the synthesis ``g_a`` of the β term keeps the residual blocks of
            :attr:`CodecConfig.blocks_per_stage` (the authors' ``decoder_reconstruction``) or
            has none (the paper's "simple synthesis transform", §3.2), unless
            :attr:`CodecConfig.auxiliary_blocks` says otherwise.
        side_network: how the conditional entropy model maps ``ŷ_b`` to side information, a
            key of :data:`vinfo.models.entropy.SIDE_NETWORKS`.
    """

    width_factors: tuple[int, int, int] | None
    bottleneck_divisor: int
    scaling_activation: bool
    auxiliary_blocks: bool
    side_network: str

    def hidden(self, channels: int) -> int:
        """Hidden channels of a residual bottleneck block of ``channels`` channels."""
        return max(channels // self.bottleneck_divisor, 1)


TRANSFORM_LAYOUTS: dict[str, TransformLayout] = {
    # the paper's text (§3.3): blocks "the same as [ELIC]" (C/2 hidden channels), channels that
    # grow with depth (here linearly), ELU activations; g_a without blocks (§3.2's "simple")
    "linear": TransformLayout(width_factors=None, bottleneck_divisor=2, scaling_activation=True,
                              auxiliary_blocks=False, side_network="resnet"),
    # the authors' code (adeandrade/research, compatible_representations/model_lst.py,
    # elic_lst_downsample / elic_lst_upsample): widths (24, 48, 192) then the latent, i.e.
    # N, 2N, 8N at N = 24; blocks of C hidden channels; no activation after a scaling; their
    # decoder_reconstruction (model_transfer.py) is elic_lst_upsample with its 3 blocks; the
    # conditional entropy model's side network is their conditional_prediction
    # (model_entropy_balle.py)
    "authors": TransformLayout(width_factors=(1, 2, 8), bottleneck_divisor=1,
                               scaling_activation=False, auxiliary_blocks=True,
                               side_network="authors"),
}
"""The transform layouts of :attr:`CodecConfig.layout`."""

HEAD_VARIANTS = ("paper", "light")
"""``paper``: the torchvision networks of §4 (Faster R-CNN R50-FPN, LRASPP MobileNetV3,
DeepLabV3 R50). ``light``: CPU-sized heads (Faster R-CNN MobileNetV3-320, small conv nets)."""


@dataclass(frozen=True)
class CodecConfig:
    """Size and hyper-parameters of one codec (base or enhancement).

    Attributes:
        N: channels after the first downsampling of the analysis transform ``f``.
        M: channels of the latent ``y`` (paper: 192). Stage widths grow from ``N`` to ``M``
            over the 4 downsamplings as :attr:`layout` says (see :meth:`stage_channels`).
        blocks_per_stage: residual bottleneck blocks between two scaling operations.
        layout: how the transforms are laid out, a key of :data:`TRANSFORM_LAYOUTS`:
            ``linear`` (widths linear from ``N`` to ``M``, ELIC's blocks, as the paper's text
            reads) or ``authors`` (the authors' code; the ``paper`` preset).
        auxiliary_blocks: whether the synthesis ``g_a`` of the β term (eq. 3) has the
            residual blocks of the other synthesis transforms; ``None``: as the layout says
            (:attr:`TransformLayout.auxiliary_blocks`: ``linear`` none, the paper's "simple
            synthesis transform"; ``authors`` all, their ``decoder_reconstruction``). On the
            tiny preset, ``True`` took the direct gap at the similar-rate pair from +0.53 …
            +1.00 dB to +2.54 … +3.02 dB (3 seeds) but left the scalable β = 0.1 models 2 dB
            below β = 0 (``docs/measurements.md``, issue #13).
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
    layout: str = "linear"
    auxiliary_blocks: bool | None = None

    ADDED_FIELDS: ClassVar[dict[str, Any]] = {"layout": "linear", "auxiliary_blocks": None}
    """Fields added after checkpoints and run records were first written, each with the value
    that rebuilds the models of those files: :meth:`to_dict` leaves a field out while it has
    that value (an unchanged config keeps its record, so finished runs still resume) and
    :meth:`from_dict` fills it in."""

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
        if self.layout not in TRANSFORM_LAYOUTS:
            raise ValueError(
                f"layout must be one of {tuple(TRANSFORM_LAYOUTS)}, got {self.layout!r}"
            )
        if self.auxiliary_blocks is not None and not isinstance(self.auxiliary_blocks, bool):
            raise ValueError(
                f"auxiliary_blocks must be true, false or null, got {self.auxiliary_blocks!r}"
            )
        if self.detection_min_size is not None and self.detection_min_size < 1:
            raise ValueError(
                f"detection_min_size must be positive or None, got {self.detection_min_size}"
            )
        for name in ("scale_bound", "likelihood_bound"):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def transform_layout(self) -> TransformLayout:
        """The :class:`TransformLayout` named by :attr:`layout`."""
        return TRANSFORM_LAYOUTS[self.layout]

    def g_a_has_blocks(self) -> bool:
        """Whether the β term's synthesis ``g_a`` has residual blocks
        (:attr:`auxiliary_blocks`, else the layout's rule)."""
        if self.auxiliary_blocks is None:
            return self.transform_layout().auxiliary_blocks
        return self.auxiliary_blocks

    def stage_channels(self) -> tuple[int, int, int, int]:
        """Output channels of the 4 downsamplings of ``f``: from ``N`` to ``M`` as
        :attr:`layout` says (``linear``: evenly spaced; ``authors``: ``N, 2N, 8N, M``)."""
        factors = self.transform_layout().width_factors
        if factors is None:
            return tuple(round(self.N + (self.M - self.N) * i / 3) for i in range(4))  # type: ignore[return-value]
        return (*(self.N * factor for factor in factors), self.M)  # type: ignore[return-value]

    def describe_transforms(self) -> str:
        """``<layout> layout, widths a-b-c-d``: the transforms in a few words (for plans and
        benchmarks)."""
        widths = "-".join(str(width) for width in self.stage_channels())
        return f"{self.layout} layout, widths {widths}"

    def replace(self, **changes: Any) -> CodecConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields (an :data:`ADDED_FIELDS` field only where it differs
        from its old value)."""
        data = dataclasses.asdict(self)
        for name, old in self.ADDED_FIELDS.items():
            if data[name] == old:
                del data[name]
        return data

    @classmethod
    def complete(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with each :data:`ADDED_FIELDS` field it lacks set to its old value."""
        return {**cls.ADDED_FIELDS, **data}

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
        return cls(**cls.complete(data))


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
# the authors' transforms: widths 24, 48, 192 and the latent's 192 (model_lst.py)
CODEC_PRESETS.add("paper", CodecConfig(N=24, layout="authors"))


def codec_preset(name: str) -> CodecConfig:
    """The :class:`CodecConfig` registered under ``name`` (``tiny``, ``small``, ``paper``)."""
    return CODEC_PRESETS.get(name)


__all__ = [
    "CODEC_PRESETS",
    "HEAD_VARIANTS",
    "TRANSFORM_LAYOUTS",
    "CodecConfig",
    "TransformLayout",
    "codec_preset",
]
