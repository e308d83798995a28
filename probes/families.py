"""Probe families of graded capacity, from the null predictor to the codec's own synthesis.

Every family maps a representation ``ŷ`` of shape ``(B, C, h, w)`` to distribution parameters
``(B, P, h·s, w·s)`` for a target ``s`` times larger (``s = 16`` for the codec of the paper,
whose analysis transform downsamples 4 times by 2). The probe of
:class:`probes.estimator.VInfoProbe` adds a learned per-pixel prior to the family's output
and reads both as a residual from the fitted null (:mod:`probes.null`), so every family
contains the null predictor, as the definition of predictive V-information requires (Xu et
al., ICLR 2020, "optional ignorance").

``capacity_rank`` orders the families, and they **nest**: every family above ``linear`` is
the family below it plus a branch of its own whose outputs are added (:class:`Nested`), so a
higher family set to reproduce a lower one (:func:`embed`) scores exactly the lower one's NLL,
and the parameter count grows strictly along the rank at every width (tested at 1, 8, 16 and
the defaults). The price: a ``synthesis`` probe also runs the ``resnet``, ``conv``, ``mlp``
and ``linear`` branches. Default widths scale with the representation and the target
(:func:`default_width`) instead of being one constant: the cost of ``resnet`` and ``synthesis``
grows with ``width²`` at high target resolution, so a width sized for a 192-channel latent
makes a 16-channel tiny latent cost several times what it needs.

The output layer of every branch is zero-initialised, so a fresh probe *is* its null
predictor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vinfo.models.activations import ELU
from vinfo.models.config import CodecConfig
from vinfo.models.transforms import ResidualBottleneckBlock, SynthesisTransform
from vinfo.registry import Registry

MIN_WIDTH = 32
"""Smallest default hidden width (see :func:`default_width`)."""

CODEC_FACTOR = 16
"""Downsampling factor of the codec's analysis transform (4 stride-2 stages)."""


class NullFamily(nn.Module):
    """Ignores its input: outputs zeros, so the probe is its prior alone (``H_V(Z|∅)``)."""

    def __init__(self, out_channels: int, factor: int) -> None:
        super().__init__()
        self.out_channels, self.factor = out_channels, factor

    def forward(self, y: Tensor) -> Tensor:
        b, _, h, w = y.shape
        return y.new_zeros(b, self.out_channels, h * self.factor, w * self.factor)


def default_width(in_channels: int, out_channels: int, factor: int) -> int:
    """Default hidden width of the non-linear families, rounded up to a multiple of 8.

    The largest of, for ``C`` representation channels, ``P`` parameters per target pixel and
    factor ``s = 2^k``:

    * ``C``: a hidden layer narrower than the representation would make ``mlp`` smaller than
      ``linear``;
    * ``P·s² / (15·(k - 1))``: ``mlp`` and ``conv`` read each latent position out to its
      ``P·s²`` patch outputs (``width·P·s²`` weights); ``resnet`` upsamples through ``k - 1``
      width-to-width 4×4 transposed convs (``16·width²`` weights each; 15 leaves a margin for
      the readout's biases) and ``synthesis`` has more, so at this width the ladder's
      parameter count never decreases, for any number of classes (19 Cityscapes classes at
      ``s = 16``: 112), where the former fixed width 96 stopped at ~23 parameters per pixel;
    * :data:`MIN_WIDTH`, no more: the upsampling families' cost grows with ``width²`` at high
      resolution, so the former fixed 96 made the tiny preset's 16-channel 4×4 latent cost
      several times what a width proportionate to it costs (32 for depth, 40 for RGB or 7
      classes). The paper's 192-channel latent keeps 192.
    """
    stages = round(math.log2(factor)) if factor >= 1 else 0
    readout = math.ceil(out_channels * factor**2 / (15 * (stages - 1))) if stages > 1 else 0
    width = max(MIN_WIDTH, in_channels, readout)
    return -(-width // 8) * 8


def _readout(width: int, out_channels: int, factor: int) -> list[nn.Module]:
    """1×1 conv to ``out·s²`` channels + pixel shuffle: one latent position → its s×s patch."""
    return [nn.Conv2d(width, out_channels * factor**2, 1), nn.PixelShuffle(factor)]


def _stages(factor: int) -> int:
    stages = round(math.log2(factor)) if factor >= 1 else -1
    if stages < 0 or 2**stages != factor:
        raise ValueError(f"this family upsamples by powers of 2; factor {factor} is not one")
    return stages


class Nested(nn.Module):
    """``lower(y) + branch(y)``: a family that contains the one below it.

    With ``branch``'s last layer at zero this is exactly ``lower`` (:func:`embed`), so the
    family's infimum can only be at or below the lower family's, and it has ``lower``'s
    parameters plus the branch's.
    """

    def __init__(self, lower: nn.Module, branch: nn.Module) -> None:
        super().__init__()
        self.lower, self.branch = lower, branch

    def forward(self, y: Tensor) -> Tensor:
        return self.lower(y) + self.branch(y)


def _linear(in_channels: int, out_channels: int, factor: int, width: int | None) -> nn.Module:
    return nn.Sequential(*_readout(in_channels, out_channels, factor))


def _mlp(in_channels: int, out_channels: int, factor: int, width: int | None) -> nn.Module:
    width = width or default_width(in_channels, out_channels, factor)
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 1), ELU(),
        nn.Conv2d(width, width, 1), ELU(),
        *_readout(width, out_channels, factor),
    )


def _conv(in_channels: int, out_channels: int, factor: int, width: int | None) -> nn.Module:
    width = width or default_width(in_channels, out_channels, factor)
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), ELU(),
        nn.Conv2d(width, width, 3, padding=1), ELU(),
        *_readout(width, out_channels, factor),
    )


def _resnet(in_channels: int, out_channels: int, factor: int, width: int | None) -> nn.Module:
    """3×3 stem, two residual bottleneck blocks, then ``log2(s)`` transposed convs of which the
    last emits the parameters (as the codec's ``g`` does).

    No width-``width`` layer runs at full target resolution: such a layer (an upsampling to
    ``width`` channels followed by a 3×3 conv to the parameters) would cost 70 % of the
    family's compute at ``s = 16`` for one stage of capacity.
    """
    width = width or default_width(in_channels, out_channels, factor)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), ELU()]
    layers += [ResidualBottleneckBlock(width) for _ in range(2)]
    stages = _stages(factor)
    for _ in range(stages - 1):
        layers += [nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), ELU()]
    if stages:
        layers.append(nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1))
    else:
        layers.append(nn.Conv2d(width, out_channels, 3, padding=1))
    return nn.Sequential(*layers)


def _synthesis(in_channels: int, out_channels: int, factor: int, width: int | None) -> nn.Module:
    """The codec's synthesis ``g`` (§3.3) at stage width ``width``, after a 3×3 input conv.

    The input conv maps any representation width ``C`` to the stage width (the codec's own
    ``g`` reads ``M`` channels directly); it also keeps this family at least as large as
    ``resnet``, whose 3×3 stem it mirrors.

    At ``s = 16`` this *is* :class:`vinfo.models.transforms.SynthesisTransform`; for other
    power-of-2 factors (small test data) it is the same layout with ``log2(s)`` stages.
    """
    width = width or default_width(in_channels, out_channels, factor)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), ELU()]
    stages = _stages(factor)
    if stages == 4:
        config = CodecConfig(N=width, M=width, blocks_per_stage=1)
        layers.append(SynthesisTransform(config, out_channels=out_channels))
    else:
        for index in range(stages):
            last = index == stages - 1
            layers.append(nn.ConvTranspose2d(width, out_channels if last else width, 5, stride=2,
                                             padding=2, output_padding=1))
            if not last:
                layers += [ELU(), ResidualBottleneckBlock(width)]
        if stages == 0:
            layers += [ResidualBottleneckBlock(width), nn.Conv2d(width, out_channels, 5, padding=2)]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class ProbeFamily:
    """A registered probe family.

    Attributes:
        name: registry key.
        capacity_rank: position in the capacity ladder (0 = null).
        description: one line for ``vinfo probe families``.
        constructor: ``(in_channels, out_channels, factor, width) → nn.Module``, the family's
            own branch.
        lower: the family this one contains (:class:`Nested`: the lower family's network
            plus this family's branch, outputs added); ``None`` for a base family.
        lr: default initial Adam learning rate of :class:`probes.estimator.VInfoProbe`. The
            deep families (``resnet``, ``synthesis``) use half the shallow ones' 0.01: at
            0.01 with 16-image batches they often fail to leave their null start for many
            epochs (on the tiny preset, ``synthesis`` did not improve on reconstruction within
            5 epochs, and reached 2.4 bits of I_V in 30; at 0.005 it reached 3.4).
    """

    name: str
    capacity_rank: int
    description: str
    constructor: Callable[[int, int, int, int | None], nn.Module]
    lr: float = 1e-2
    lower: str | None = None

    def build(self, in_channels: int, out_channels: int, factor: int,
              width: int | None = None) -> nn.Module:
        """Build the network ``(B, in_channels, h, w) → (B, out_channels, h·s, w·s)``.

        Args:
            in_channels: channels ``C`` of the representation.
            out_channels: distribution parameters per pixel (``C_t · K``).
            factor: ``s``, target size over representation size.
            width: hidden width; ``None`` for the family default.

        Returns:
            The module, with its last layer zero-initialised (it outputs zeros until trained).
        """
        if in_channels < 1 or out_channels < 1 or factor < 1:
            raise ValueError(f"channels and factor must be positive, got {in_channels}, "
                             f"{out_channels}, {factor}")
        if self.name == "null":
            return NullFamily(out_channels, factor)
        module = _zero_last(self.constructor(in_channels, out_channels, factor, width))
        if self.lower is not None:  # this family's branch on top of the whole lower family
            module = Nested(get_family(self.lower).build(in_channels, out_channels, factor,
                                                         width), module)
        return module


def _zero_last(module: nn.Module) -> nn.Module:
    """Zero the last conv of ``module`` (its output layer), so that it outputs zeros."""
    last = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    return module


def embed(lower: nn.Module, higher: nn.Module) -> nn.Module:
    """Set ``higher`` (a built family) to compute exactly ``lower`` (a built lower family).

    Copies ``lower``'s parameters into the matching :class:`Nested` level of ``higher`` and
    zeroes the output layer of every branch above it: the nesting the capacity ranks claim.

    Raises:
        ValueError: ``lower`` is not a family below ``higher`` with the same sizes.
    """
    node = higher
    while isinstance(node, Nested):
        if _same_structure(node.lower, lower):
            node.lower.load_state_dict(lower.state_dict())
            _zero_last(node.branch)
            return higher
        _zero_last(node.branch)
        node = node.lower
    raise ValueError("lower is not a family contained in higher (or differs in sizes)")


def _same_structure(a: nn.Module, b: nn.Module) -> bool:
    shapes = [(name, tuple(p.shape)) for name, p in a.state_dict().items()]
    return type(a) is type(b) and shapes == [(name, tuple(p.shape))
                                             for name, p in b.state_dict().items()]


FAMILIES: Registry[ProbeFamily] = Registry("probe family")
for _family in (
    ProbeFamily("null", 0, "no access to the representation: the prior alone (H_V(Z|∅))",
                lambda c, o, s, w: NullFamily(o, s)),
    ProbeFamily("linear", 1, "1×1 conv + pixel shuffle: each latent position → its s×s patch",
                _linear),
    ProbeFamily("mlp", 2, "linear + a per-position MLP branch (two hidden 1×1 layers, patch "
                "readout)", _mlp, lower="linear"),
    ProbeFamily("conv", 3, "mlp + a branch of two 3×3 conv layers (patch readout)", _conv,
                lower="mlp"),
    ProbeFamily("resnet", 4, "conv + a branch of residual bottleneck blocks and transposed-conv "
                "upsampling", _resnet, lr=5e-3, lower="conv"),
    ProbeFamily("synthesis", 5, "resnet + a branch of the codec's synthesis transform g (§3.3)",
                _synthesis, lr=5e-3, lower="resnet"),
):
    FAMILIES.add(_family.name, _family)


def get_family(name: str) -> ProbeFamily:
    """The :class:`ProbeFamily` registered as ``name``; raises ``UnknownNameError`` otherwise."""
    return FAMILIES.get(name)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "CODEC_FACTOR",
    "FAMILIES",
    "MIN_WIDTH",
    "Nested",
    "NullFamily",
    "ProbeFamily",
    "count_parameters",
    "default_width",
    "embed",
    "get_family",
]
