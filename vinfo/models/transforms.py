"""Analysis transform ``f`` and synthesis transform ``g`` of §3.3 of the paper.

CNNs of scaling operations interleaved with stacks of residual bottleneck blocks (He et al.
2016), no attention blocks, ELU activations, 4 scalings by a factor of 2. ``f`` grows the
channels with depth up to ``M``; ``g`` mirrors it with transposed convolutions.

The residual bottleneck block is written here rather than taken from CompressAI: CompressAI's
``ResidualBottleneckBlock`` (ELIC) hard-codes ReLU, and the paper uses ELU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vinfo.models.activations import ELU, elu_
from vinfo.models.config import CodecConfig

STRIDE = 16
"""Total downsampling factor of ``f`` (4 stride-2 convolutions): inputs must have ``H`` and
``W`` divisible by it (pad first, see :func:`vinfo.models.transforms.pad_to_stride`)."""


class ResidualBottleneckBlock(nn.Module):
    """``x + conv1x1(ELU(conv3x3(ELU(conv1x1(x)))))`` with a bottleneck of ``hidden`` channels.

    Args:
        channels: ``C``, input and output channels; shape ``(B, C, H, W)`` is preserved.
        hidden: channels of the bottleneck (default ``C // 2``, ELIC's).
        kernel_size: of the middle convolution (odd; ELIC's 3).
    """

    def __init__(self, channels: int, hidden: int | None = None, kernel_size: int = 3) -> None:
        super().__init__()
        mid = max(channels // 2, 1) if hidden is None else hidden
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1),
            ELU(),
            nn.Conv2d(mid, mid, kernel_size, padding=kernel_size // 2),
            ELU(),
            nn.Conv2d(mid, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return x + self.body(x)
        return _inference(self.body, x).add_(x)  # same sum, no extra buffer


def _stage(channels: int, config: CodecConfig) -> list[nn.Module]:
    """What follows a scaling convolution to ``channels`` (but the last): an ELU where the
    layout has one, then :attr:`CodecConfig.blocks_per_stage` residual bottleneck blocks."""
    layout = config.transform_layout()
    activation: list[nn.Module] = [ELU()] if layout.scaling_activation else []
    hidden = layout.hidden(channels)
    return activation + [
        ResidualBottleneckBlock(channels, hidden) for _ in range(config.blocks_per_stage)
    ]


IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""The channel statistics of :attr:`CodecConfig.standardise_input` (the authors' ``means`` and
``scales``)."""


class AnalysisTransform(nn.Module):
    """Analysis transform ``f: x → y``, ``(B, in_channels, H, W) → (B, M, H/16, W/16)``.

    Layout: ``[conv5x5/2 → ELU → RB × n] × 3 → conv5x5/2 → M``, widths from
    :meth:`CodecConfig.stage_channels`; the ``authors`` layout has no ELU after a scaling and
    blocks of ``C`` hidden channels (:data:`~vinfo.models.config.TRANSFORM_LAYOUTS`). With
    :attr:`CodecConfig.standardise_input` (and 3 input channels) the image in ``[0, 1]`` is
    first standardised with the ImageNet channel statistics, ``(x − mean) / std``; the targets
    (``x`` for reconstruction) stay in ``[0, 1]``.
    """

    def __init__(self, config: CodecConfig, in_channels: int | None = None) -> None:
        super().__init__()
        widths = config.stage_channels()
        layers: list[nn.Module] = []
        previous = channels = config.in_channels if in_channels is None else in_channels
        for index, width in enumerate(widths):
            layers.append(nn.Conv2d(previous, width, 5, stride=2, padding=2))
            if index < len(widths) - 1:
                layers.extend(_stage(width, config))
            previous = width
        self.layers = nn.Sequential(*layers)
        self.standardise = config.standardise_input and channels == 3
        if self.standardise:  # constants, not state: checkpoints do not carry them
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                                 persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                                 persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x ``(B, C_in, H, W)`` with ``H, W`` divisible by 16. Returns y ``(B, M, H/16,
        W/16)``."""
        if x.shape[-2] % STRIDE or x.shape[-1] % STRIDE:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not a multiple of {STRIDE}")
        if self.standardise:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.layers(x)


class SynthesisTransform(nn.Module):
    """Synthesis transform ``g: ŷ → x̃``, ``(B, M, h, w) → (B, out_channels, 16h, 16w)``.

    ``in_channels`` overrides ``M`` (e.g. a synthesis of another codec's latent).

    Mirrors :class:`AnalysisTransform`: ``[deconv5x5/2 → ELU → RB × n] × 3 → deconv5x5/2``
    (the ``authors`` layout: no ELU after a scaling, blocks of ``C`` hidden channels).
    The output is in image space (``out_channels = 3``), which is what task heads consume.
    """

    def __init__(
        self, config: CodecConfig, out_channels: int | None = None, in_channels: int | None = None
    ) -> None:
        super().__init__()
        widths = tuple(reversed(config.stage_channels()))  # M, ..., N
        if in_channels is not None:
            widths = (in_channels, *widths[1:])
        targets = (*widths[1:], config.in_channels if out_channels is None else out_channels)
        layers: list[nn.Module] = []
        for index, (width, target) in enumerate(zip(widths, targets, strict=True)):
            layers.append(
                nn.ConvTranspose2d(width, target, 5, stride=2, padding=2, output_padding=1)
            )
            if index < len(widths) - 1:
                layers.extend(_stage(target, config))
        self.layers = nn.Sequential(*layers)

    def forward(self, y_hat: Tensor) -> Tensor:
        """Args: y_hat ``(B, M, h, w)``. Returns ``(B, out_channels, 16h, 16w)``.

        Without autograd (decoding, evaluation) a last upsampling to a few channels is computed
        by :func:`_transposed_as_subpixel`, within float rounding of the training path but not
        bit-identical to it: the decoded image differs from the training-path forward by ~1e-6
        (tested within 1e-5). On the CPU the activations are then kept channels-last
        (:data:`INFERENCE_CHANNELS_LAST`), the layout oneDNN's convolutions run fastest in; the
        result is returned contiguous.
        """
        if torch.is_grad_enabled():
            return self.layers(y_hat)
        if y_hat.device.type == "cpu" and INFERENCE_CHANNELS_LAST:
            y_hat = y_hat.contiguous(memory_format=torch.channels_last)
            return _inference(self.layers, y_hat, fast=True).contiguous()
        return _inference(self.layers, y_hat, fast=True)


INFERENCE_CHANNELS_LAST = True
"""Whether a synthesis without autograd runs in channels-last layout on the CPU: oneDNN's
convolutions then skip the reorder of every activation to and from their blocked layout.
Measured on one Intel Xeon (AVX-512) thread, the synthesis of the linear layout at N = 96,
M = 192: 256×256 90 → 68 ms, 512×512 349 → 264 ms CPU time (median of 11 interleaved rounds,
load 1.5); within 1e-6 of the contiguous layout. Bitstream decoding used it already; now every
inference-mode synthesis (evaluation, probes' reconstructions) does. (Off: contiguous NCHW.)"""


_SUBPIXEL_TAPS = torch.tensor([[4, 2, 0], [5, 3, 1]])
"""Kernel index of tap ``a`` (input offset ``a − 1``) for output phase ``r``: ``r + 4 − 2a``
(5: outside the 5×5 kernel, a zero)."""


def _subpixel_applies(layer: nn.Module) -> bool:
    """Whether :func:`_transposed_as_subpixel` computes ``layer`` faster (measured, see there)."""
    return (
        isinstance(layer, nn.ConvTranspose2d)
        and layer.kernel_size == (5, 5)
        and layer.stride == (2, 2)
        and layer.padding == (2, 2)
        and layer.output_padding == (1, 1)
        and layer.dilation == (1, 1)
        and layer.groups == 1
        and layer.bias is not None
        and layer.out_channels <= 8
        and layer.in_channels >= 32
    )


def _transposed_as_subpixel(layer: nn.ConvTranspose2d, x: Tensor) -> Tensor:
    """A 5×5 stride-2 transposed convolution as a 3×3 convolution to ``4·C_out`` channels and a
    pixel shuffle (Shi et al. 2016, "Real-time single image and video super-resolution using
    an efficient sub-pixel convolutional network").

    Output pixel ``(2m + r, 2n + c)`` sums the input around ``(m, n)`` with the kernel taps
    ``r + 4 − 2a`` (rows) and ``c + 4 − 2b`` (columns), ``a, b ∈ {0, 1, 2}``; the taps that fall
    outside the kernel are zeros. Same products, summed in another order: within float
    rounding. oneDNN's transposed convolution to 3 channels runs far below its speed on wide
    layers; as a convolution to 12 channels, the last layer of a 256×256 synthesis at
    N = 96 (linear layout) takes 3.5 ms instead of 6.5 ms (one thread; slower from 16 output
    channels).
    """
    weight = F.pad(layer.weight, (0, 1, 0, 1))  # (C_in, C_out, 6, 6): index 5 is a zero
    taps = _SUBPIXEL_TAPS.to(weight.device)
    # (C_in, C_out, r, a, c, b) → (C_out, r, c, C_in, a, b): pixel_shuffle's channel order
    weight = weight[:, :, taps[:, :, None, None], taps[None, None, :, :]]
    weight = weight.permute(1, 2, 4, 0, 3, 5).reshape(4 * layer.out_channels, -1, 3, 3)
    bias = layer.bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(x, weight, bias, padding=1), 2)


def _inference(layers: nn.Sequential, x: Tensor, fast: bool = False) -> Tensor:
    """``layers(x)`` without autograd, each ELU that follows a convolution applied in place on
    that convolution's fresh output: the same values (:func:`~vinfo.models.activations.elu_`
    of each :class:`~vinfo.models.activations.ELU`), one full-size buffer fewer per
    activation (tens of MB on a 512×512 synthesis). ``x`` itself is never modified.

    With ``fast`` the transposed convolutions that :func:`_subpixel_applies` to are computed by
    :func:`_transposed_as_subpixel` (within float rounding, not bit-identical). Only the
    synthesis transforms take it: the analysis transform's ``ŷ = ⌊y⌉`` and the conditional
    entropy model's side information keep their training-path values bit for bit.
    """
    previous = None
    for layer in layers:
        if isinstance(layer, ELU) and isinstance(previous, (nn.Conv2d, nn.ConvTranspose2d)):
            x = elu_(x, layer.alpha)
        elif fast and _subpixel_applies(layer):
            x = _transposed_as_subpixel(layer, x)
        else:
            x = layer(x)
        previous = layer
    return x


def pad_to_stride(x: Tensor, stride: int = STRIDE) -> Tensor:
    """Replicate-pad ``(B, C, H, W)`` on the bottom/right up to multiples of ``stride``."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % stride, (-width) % stride
    if pad_h == 0 and pad_w == 0:
        return x
    return nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "STRIDE",
    "AnalysisTransform",
    "ResidualBottleneckBlock",
    "SynthesisTransform",
    "pad_to_stride",
]
