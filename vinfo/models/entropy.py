"""Entropy models of §3.3: autoregressive Gaussian, and its conditional variant.

(a) :class:`AutoregressiveEntropyModel`: the context model of Minnen, Ballé and Toderici,
"Joint autoregressive and hierarchical priors for learned image compression" (NeurIPS 2018),
*without* the hyperprior: a 5×5 masked convolution over all channels of the earlier spatial
positions, then a 1×1 "entropy parameters" network predicting a mean ``μ`` and a scale ``σ``
per latent element. Likelihoods are those of CompressAI's ``GaussianConditional`` (Gaussian
integrated over the quantisation bin, scales and likelihoods bounded below).

(b) :class:`ConditionalEntropyModel`: the model of the enhancement latent ``ŷ_e``. The base
latent ``ŷ_b`` goes through a small ResNet and is concatenated with the autoregressive context
of ``ŷ_e`` before the entropy parameters network — the hyperprior slot of Minnen et al. is used
to inject the base representation as side information (§3.3).

Quantisation follows §3.4 (:mod:`vinfo.models.quantize`): ``ŷ = ⌊y⌉`` with straight-through
gradients, so the ``ŷ`` here is the one the decoder reproduces and the rate is its rate.

CompressAI supplies ``MaskedConv2d`` and ``GaussianConditional``; what it lacks is an
autoregressive model without hyperprior and with external side information, hence this module.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from compressai.entropy_models import GaussianConditional
from compressai.layers import MaskedConv2d
from torch import Tensor, nn
from torch.nn import functional as F

from vinfo.metrics.rate import bits_from_likelihoods, bpp_from_likelihoods
from vinfo.models.activations import ELU
from vinfo.models.quantize import quantize_ste
from vinfo.models.transforms import ResidualBottleneckBlock


class EntropyOutput(NamedTuple):
    """Output of an entropy model's forward pass; all tensors ``(B, M, h, w)``.

    Attributes:
        y_hat: quantised latent ``ŷ = ⌊y⌉`` (straight-through gradient).
        likelihoods: ``p(ŷ)`` per element, bounded below by ``likelihood_bound``.
        means: predicted ``μ``.
        scales: predicted ``σ`` (before the lower bound that the likelihood applies).
    """

    y_hat: Tensor
    likelihoods: Tensor
    means: Tensor
    scales: Tensor


def rate_bits(likelihoods: Tensor) -> Tensor:
    """Estimated rate ``−Σ log2 p`` per image, in bits, shape ``(B,)``."""
    return bits_from_likelihoods(likelihoods)


def rate_bpp(likelihoods: Tensor, num_pixels: int) -> Tensor:
    """Estimated rate per image in bits per pixel of the ORIGINAL image (``H × W`` before
    padding), shape ``(B,)``."""
    return bpp_from_likelihoods(likelihoods, num_pixels)


class AutoregressiveEntropyModel(nn.Module):
    """Autoregressive Gaussian entropy model (Minnen et al. 2018) without hyperprior.

    Args:
        M: channels of the latent.
        kernel_size: size of the masked context convolution (5 in Minnen et al.).
        side_channels: channels of side information concatenated to the context before the
            entropy parameters network (0: none; used by :class:`ConditionalEntropyModel`).
        scale_bound: lower bound on ``σ``.
        likelihood_bound: lower bound on likelihoods.
    """

    def __init__(
        self,
        M: int,
        kernel_size: int = 5,
        side_channels: int = 0,
        scale_bound: float = 0.11,
        likelihood_bound: float = 1e-9,
    ) -> None:
        super().__init__()
        self.M = M
        self.kernel_size = kernel_size
        self.context_prediction = MaskedConv2d(
            M, 2 * M, kernel_size, padding=kernel_size // 2, mask_type="A"
        )
        inputs = 2 * M + side_channels
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(inputs, M * 10 // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(M * 10 // 3, M * 8 // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(M * 8 // 3, 2 * M, 1),
        )
        self.gaussian_conditional = GaussianConditional(
            None, scale_bound=scale_bound, likelihood_bound=likelihood_bound
        )

    def side_information(self, condition: Tensor | None, like: Tensor) -> Tensor | None:
        """Side features ``(B, side_channels, h, w)`` from a condition, or ``None``."""
        if condition is not None:
            raise ValueError("this entropy model takes no condition")
        return None

    def parameters_from_context(
        self, context: Tensor, side: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """``(means, scales)`` from the context features ``(B, 2M, h, w)`` and side features."""
        features = context if side is None else torch.cat((side, context), dim=1)
        scales, means = self.entropy_parameters(features).chunk(2, dim=1)
        return means, scales

    def likelihood(self, y_hat: Tensor, means: Tensor, scales: Tensor) -> Tensor:
        """``p(ŷ)`` of each element: the Gaussian ``N(μ, σ)`` integrated over ``[ŷ ± ½]``."""
        gaussian = self.gaussian_conditional
        likelihoods = gaussian._likelihood(y_hat, scales, means)
        if gaussian.use_likelihood_bound:
            likelihoods = gaussian.likelihood_lower_bound(likelihoods)
        return likelihoods

    def forward(self, y: Tensor, condition: Tensor | None = None) -> EntropyOutput:
        """Quantise ``y`` and compute its likelihoods in one parallel pass.

        Args:
            y: latent ``(B, M, h, w)``.
            condition: base latent ``ŷ_b`` ``(B, M_b, h, w)`` for the conditional model.
        """
        y_hat = quantize_ste(y)
        side = self.side_information(condition, y_hat)
        means, scales = self.parameters_from_context(self.context_prediction(y_hat), side)
        return EntropyOutput(y_hat, self.likelihood(y_hat, means, scales), means, scales)

    def pointwise_parameters(
        self, context: Tensor, side: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """``(means, scales)`` ``(P, M)`` for ``P`` positions given as rows: context features
        ``(P, 2M)`` and side features ``(P, S)``.

        The same network as :meth:`parameters_from_context`, its 1×1 convolutions applied as
        matrix products — cheaper on the few positions a coder step handles.
        """
        features = context if side is None else torch.cat((side, context), dim=1)
        for layer in self.entropy_parameters:
            if isinstance(layer, nn.Conv2d):
                features = F.linear(features, layer.weight.flatten(1), layer.bias)
            else:
                features = layer(features)
        scales, means = features.chunk(2, dim=1)
        return means, scales

    def masked_weight(self) -> Tensor:
        """The context convolution's weight with its causal mask applied."""
        return self.context_prediction.weight * self.context_prediction.mask


def _resnet_side_network(base_channels: int, M: int, blocks: int) -> nn.Sequential:
    """A 3×3 convolution to ``2M`` channels, an ELU, ``blocks`` residual bottleneck blocks."""
    return nn.Sequential(
        nn.Conv2d(base_channels, 2 * M, 3, padding=1),
        ELU(),
        *[ResidualBottleneckBlock(2 * M) for _ in range(blocks)],
    )


def _authors_side_network(base_channels: int, M: int, blocks: int) -> nn.Sequential:
    """The authors' ``conditional_prediction`` (``model_entropy_balle.py``,
    ``GaussianConditionalEntropyModel``): ``blocks`` residual bottleneck blocks of ``M_b``
    hidden channels with 5×5 middle convolutions on ``ŷ_b``, a 5×5 convolution to ``2M``
    channels, ``blocks`` such blocks on ``2M`` channels."""
    return nn.Sequential(
        *[ResidualBottleneckBlock(base_channels, base_channels, 5) for _ in range(blocks)],
        nn.Conv2d(base_channels, 2 * M, 5, padding=2),
        *[ResidualBottleneckBlock(2 * M, 2 * M, 5) for _ in range(blocks)],
    )


SIDE_NETWORKS = {"resnet": _resnet_side_network, "authors": _authors_side_network}
"""How :class:`ConditionalEntropyModel` maps ``ŷ_b`` to side information, by name
(:attr:`vinfo.models.config.TransformLayout.side_network`)."""


class ConditionalEntropyModel(AutoregressiveEntropyModel):
    """Autoregressive model of ``ŷ_e`` conditioned on the base latent ``ŷ_b`` (§3.3).

    ``ŷ_b`` passes through a small ResNet (:data:`SIDE_NETWORKS`; ``resnet``: a 3×3 conv to
    ``2M`` channels, then residual bottleneck blocks) whose output is concatenated with the
    masked context of ``ŷ_e``.

    Args:
        M: channels of the enhancement latent ``ŷ_e``.
        base_channels: channels ``M_b`` of ``ŷ_b``.
        blocks: residual blocks of the side ResNet (``authors``: of each of its two stacks).
        kernel_size, scale_bound, likelihood_bound: as for
            :class:`AutoregressiveEntropyModel`.
        side_network: a key of :data:`SIDE_NETWORKS`.
    """

    def __init__(
        self,
        M: int,
        base_channels: int,
        blocks: int = 2,
        kernel_size: int = 5,
        scale_bound: float = 0.11,
        likelihood_bound: float = 1e-9,
        side_network: str = "resnet",
    ) -> None:
        super().__init__(M, kernel_size, 2 * M, scale_bound, likelihood_bound)
        if side_network not in SIDE_NETWORKS:
            raise ValueError(
                f"side_network must be one of {tuple(SIDE_NETWORKS)}, got {side_network!r}"
            )
        self.side_network = SIDE_NETWORKS[side_network](base_channels, M, blocks)

    def side_information(self, condition: Tensor | None, like: Tensor) -> Tensor:
        if condition is None:
            raise ValueError("the conditional entropy model needs the base latent ŷ_b")
        if condition.shape[0] != like.shape[0] or condition.shape[-2:] != like.shape[-2:]:
            raise ValueError(
                f"base latent {tuple(condition.shape)} does not match {tuple(like.shape)}"
            )
        return self.side_network(condition)


__all__ = [
    "AutoregressiveEntropyModel",
    "ConditionalEntropyModel",
    "EntropyOutput",
    "SIDE_NETWORKS",
    "rate_bits",
    "rate_bpp",
]
