"""The enhancement codec of §3.5, eq. 4, with its three strategies.

The enhancement task ``Z_e`` is served on top of a trained, frozen :class:`BaseCodec`:

    L_e = λ_e · d_e(Z_e, Ẑ_e) + R(Ŷ_e | Ŷ_b)                                   (eq. 4)

Strategies (one class, chosen from :data:`STRATEGIES`, as in Fig. 2 of the paper):

- ``scalable``: a dedicated latent ``ŷ_e = ⌊f_e(x)⌉`` coded with the conditional entropy
  model on ``ŷ_b``; the reported rate is ``R_b + R_e``.
- ``standalone``: the same network with the base latent zeroed out, i.e. ``ŷ_e`` coded without
  side information (the paper fine-tunes the entropy model this way).
- ``direct``: no enhancement latent; a synthesis ``g_e`` and head trained on the frozen
  ``ŷ_b`` (``R_e = 0``).

The base never receives gradients: its parameters are frozen, it is kept in eval mode and run
under ``torch.no_grad``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from vinfo.models.base import BaseCodec, LossTerms
from vinfo.models.config import CodecConfig
from vinfo.models.entropy import ConditionalEntropyModel, rate_bits
from vinfo.models.tasks import get_task
from vinfo.models.transforms import AnalysisTransform, SynthesisTransform, pad_to_stride
from vinfo.registry import Registry


@dataclass(frozen=True)
class Strategy:
    """How the enhancement codec uses the base latent.

    Attributes:
        name: registry key.
        codes_latent: whether a dedicated latent ``ŷ_e`` is coded.
        condition: maps ``ŷ_b`` to the entropy model's condition (only if ``codes_latent``).
        description: one line for help texts.
    """

    name: str
    codes_latent: bool
    condition: Callable[[Tensor], Tensor] | None
    description: str


STRATEGIES: Registry[Strategy] = Registry("enhancement strategy")
for _strategy in (
    Strategy("scalable", True, lambda y_hat_b: y_hat_b, "ŷ_e coded conditionally on ŷ_b"),
    Strategy("standalone", True, torch.zeros_like, "ŷ_e coded with ŷ_b zeroed out"),
    Strategy("direct", False, None, "no ŷ_e: synthesis and head on the frozen ŷ_b"),
):
    STRATEGIES.add(_strategy.name, _strategy)


class EnhancementOutput(NamedTuple):
    """Forward pass of :class:`EnhancementCodec` on ``x`` ``(B, 3, H, W)``.

    Attributes:
        y_hat_b: frozen base latent ``(B, M_b, h, w)``.
        y_hat: enhancement latent ``ŷ_e`` ``(B, M, h, w)``, ``None`` for ``direct``.
        likelihoods: ``p(ŷ_e | ŷ_b)``, ``None`` for ``direct``.
        x_tilde: enhancement synthesis output, ``(B, 3, H, W)``.
        task_output: the enhancement head's output.
        rate_bits: enhancement rate per image, bits, ``(B,)`` (zeros for ``direct``).
        bpp: enhancement rate per image, bpp of the original ``H × W``, ``(B,)``.
        base_bpp: base rate per image, bpp, ``(B,)``; the total is ``bpp + base_bpp``.
    """

    y_hat_b: Tensor
    y_hat: Tensor | None
    likelihoods: Tensor | None
    x_tilde: Tensor
    task_output: Any
    rate_bits: Tensor
    bpp: Tensor
    base_bpp: Tensor


class EnhancementCodec(nn.Module):
    """Enhancement codec for a secondary task on top of a frozen base codec (eq. 4).

    Args:
        base: the trained base codec; frozen here (``requires_grad = False``, eval mode).
        strategy: a name in :data:`STRATEGIES`.
        task: the enhancement task, a name in :data:`vinfo.models.tasks.TASKS`.
        config: sizes of ``f_e``, ``g_e`` and the entropy model of ``ŷ_e``.
        head_weights: optional local weights file for the enhancement head.
    """

    def __init__(
        self,
        base: BaseCodec,
        strategy: str,
        task: str,
        config: CodecConfig,
        head_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.strategy = STRATEGIES.get(strategy)
        self.task = get_task(task)
        self.config = config
        self.base = base.requires_grad_(False).eval()
        base_channels = base.config.M
        if self.strategy.codes_latent:
            self.f_e = AnalysisTransform(config)
            self.entropy_model = ConditionalEntropyModel(
                config.M,
                base_channels,
                config.conditional_blocks,
                config.context_kernel,
                config.scale_bound,
                config.likelihood_bound,
                config.transform_layout().side_network,
            )
            self.g_e = SynthesisTransform(config)
        else:
            self.f_e = None
            self.entropy_model = None
            self.g_e = SynthesisTransform(config, in_channels=base_channels)
        self.head = self.task.build_head(config, head_weights)

    def train(self, mode: bool = True) -> EnhancementCodec:
        """Set the train mode of the enhancement modules; the base always stays in eval."""
        super().train(mode)
        self.base.eval()
        return self

    def forward(self, x: Tensor, target: Any = None) -> EnhancementOutput:
        """Encode ``x`` ``(B, 3, H, W)`` with the frozen base, then the enhancement path."""
        height, width = x.shape[-2:]
        num_pixels = height * width
        with torch.no_grad():
            base_latent = self.base.encode_latent(x)
        y_hat_b = base_latent.y_hat
        base_bpp = rate_bits(base_latent.likelihoods) / num_pixels
        if self.strategy.codes_latent:
            condition = self.strategy.condition(y_hat_b)
            latent = self.entropy_model(self.f_e(pad_to_stride(x)), condition)
            y_hat, likelihoods = latent.y_hat, latent.likelihoods
            bits = rate_bits(likelihoods)
            synthesis_input = y_hat
        else:
            y_hat, likelihoods = None, None
            bits = torch.zeros(x.shape[0], device=x.device)
            synthesis_input = y_hat_b
        x_tilde = self.g_e(synthesis_input)[..., :height, :width]
        return EnhancementOutput(
            y_hat_b,
            y_hat,
            likelihoods,
            x_tilde,
            self.head(x_tilde, target),
            bits,
            bits / num_pixels,
            base_bpp,
        )

    def loss(self, out: EnhancementOutput, target: Any, lmbda: float) -> LossTerms:
        """Eq. 4: ``λ_e · d_e + R_e`` (batch means, rate in bpp; ``R_e = 0`` for direct)."""
        distortion = self.task.loss(out.task_output, target)
        bpp = out.bpp.mean()
        return LossTerms(lmbda * distortion + bpp, distortion, bpp, torch.zeros_like(bpp))


__all__ = ["STRATEGIES", "EnhancementCodec", "EnhancementOutput", "Strategy"]
