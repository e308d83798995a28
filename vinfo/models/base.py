"""The base codec of §3.5, eq. 3: a task-compatible representation ``ŷ_b``.

``x → f_b → ŷ_b → g_b → task head`` with the autoregressive entropy model of
:mod:`vinfo.models.entropy` (no hyperprior), plus — only when ``β > 0`` — the auxiliary
"simple synthesis transform" ``g_a: ŷ_b → x̂`` that rewards reconstructing the input (§3.2):

    L_b = λ_b · d_b(Z_b, Ẑ_b) + R_b + β · E‖X − X̂‖                            (eq. 3)

vinfo weighs the terms as the authors' code does (``model_transfer.py``,
``DepthForReconstructionAndrade``: ``α · bpp + D_task + β · D_recon`` with ``α = 1/λ``): β is
relative to the task distortion, and the loss is

    L_b = λ_b · (d_b + β · D_recon) + R_b,   D_recon = RMSE(X, X̂) in 8-bit levels,

i.e. eq. 3 with its β equal to ``λ_b · β``. So β = 0.1 always means "a tenth of the task's
weight", whatever λ_b, and the units of ``d_b`` and ``D_recon`` are those of
:mod:`vinfo.models.tasks` (disparity pixels, 8-bit levels).

``g_a`` is a :class:`~vinfo.models.transforms.SynthesisTransform` without residual blocks, so
it is subsumed by the enhancement synthesis (the same layout with blocks), as §3.2 asks; with
the ``authors`` layout (the ``paper`` preset) it keeps them, as the authors'
``decoder_reconstruction`` does; :attr:`~vinfo.models.config.CodecConfig.auxiliary_blocks`
chooses either for any layout (without blocks the authors' layout's synthesis would be
linear).
β = 0 and β > 0 are one class: β = 0 simply builds no ``g_a``.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from vinfo.models.config import CodecConfig
from vinfo.models.entropy import AutoregressiveEntropyModel, EntropyOutput, rate_bits
from vinfo.models.tasks import get_task, reconstruction_loss
from vinfo.models.transforms import AnalysisTransform, SynthesisTransform, pad_to_stride


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_lmbda(lmbda: float, name: str = "lmbda") -> float:
    """``lmbda`` as a float if it is a valid rate-distortion trade-off λ: finite and > 0.

    λ = 0 would train for rate alone and NaN or ∞ make every loss NaN, so they are refused
    before any work (one definition for the objectives, the run specs, presets and the CLI).

    Raises:
        ValueError: not a finite number > 0; the message names ``name``.
    """
    if not (_is_number(lmbda) and math.isfinite(lmbda) and lmbda > 0):
        raise ValueError(f"{name} must be positive and finite, got {lmbda!r}")
    return float(lmbda)


def check_beta(beta: float, name: str = "beta") -> float:
    """``beta`` as a float if it is a valid reconstruction reward β of eq. 3: finite and ≥ 0.

    Raises:
        ValueError: negative, NaN, infinite or not a number; the message names ``name``.
    """
    if not (_is_number(beta) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"{name} must be non-negative and finite, got {beta!r}")
    return float(beta)


class BaseOutput(NamedTuple):
    """Forward pass of :class:`BaseCodec` on ``x`` of shape ``(B, 3, H, W)``.

    Attributes:
        y_hat: quantised base latent ``ŷ_b``, ``(B, M, ⌈H/16⌉, ⌈W/16⌉)``.
        likelihoods: ``p(ŷ_b)``, same shape.
        x_tilde: synthesis output ``g_b(ŷ_b)`` in image space, cropped to ``(B, 3, H, W)``.
        task_output: the head's output on ``x_tilde`` (see :mod:`vinfo.models.tasks`).
        x_hat: auxiliary reconstruction ``g_a(ŷ_b)``, ``(B, 3, H, W)``, or ``None`` if β = 0.
        rate_bits: estimated rate per image, bits, ``(B,)``.
        bpp: estimated rate per image in bits per pixel of the original ``H × W``, ``(B,)``.
    """

    y_hat: Tensor
    likelihoods: Tensor
    x_tilde: Tensor
    task_output: Any
    x_hat: Tensor | None
    rate_bits: Tensor
    bpp: Tensor


class LossTerms(NamedTuple):
    """Scalar terms of a rate-distortion loss (batch means).

    Attributes:
        loss: the total to minimise.
        distortion: task distortion ``d`` (the task's own unit).
        bpp: rate term, bits per pixel.
        aux_distortion: ``D_recon = E‖X − X̂‖`` as RMSE in 8-bit levels (0 when there is no
            auxiliary synthesis).
    """

    loss: Tensor
    distortion: Tensor
    bpp: Tensor
    aux_distortion: Tensor


class BaseCodec(nn.Module):
    """Base codec with task head and optional auxiliary reconstruction (eq. 3).

    Args:
        config: sizes; ``config.head_variant`` picks the task head.
        task: a name in :data:`vinfo.models.tasks.TASKS`.
        beta: weight ``β ≥ 0`` of the reconstruction reward; ``0`` builds no ``g_a``.
        head_weights: optional local weights file for the task head (never downloaded).
    """

    def __init__(
        self,
        config: CodecConfig,
        task: str,
        beta: float = 0.0,
        head_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.beta = check_beta(beta)
        self.config = config
        self.task = get_task(task)
        self.f_b = AnalysisTransform(config)
        self.entropy_model = AutoregressiveEntropyModel(
            config.M, config.context_kernel, 0, config.scale_bound, config.likelihood_bound
        )
        self.g_b = SynthesisTransform(config)
        self.head = self.task.build_head(config, head_weights)
        auxiliary = config if config.g_a_has_blocks() else config.replace(blocks_per_stage=0)
        self.g_a = SynthesisTransform(auxiliary) if self.beta > 0 else None

    def encode_latent(self, x: Tensor) -> EntropyOutput:
        """``ŷ_b`` and its entropy parameters for ``x`` ``(B, 3, H, W)`` (padded to 16)."""
        return self.entropy_model(self.f_b(pad_to_stride(x)))

    def forward(self, x: Tensor, target: Any = None) -> BaseOutput:
        """Encode, synthesise and run the head.

        Args:
            x: images ``(B, 3, H, W)`` in [0, 1]; any ``H, W`` (padded to 16, outputs cropped).
            target: task target, needed only by heads that take it in train mode (detection).
        """
        height, width = x.shape[-2:]
        latent = self.encode_latent(x)
        x_tilde = self.g_b(latent.y_hat)[..., :height, :width]
        x_hat = None if self.g_a is None else self.g_a(latent.y_hat)[..., :height, :width]
        bits = rate_bits(latent.likelihoods)
        return BaseOutput(
            latent.y_hat,
            latent.likelihoods,
            x_tilde,
            self.head(x_tilde, target),
            x_hat,
            bits,
            bits / (height * width),
        )

    def loss(self, out: BaseOutput, x: Tensor, target: Any, lmbda: float) -> LossTerms:
        """Eq. 3 weighted as the authors do: ``λ_b · (d_b + β · D_recon) + R_b``, batch means,
        rate in bpp, ``D_recon`` in 8-bit levels (:func:`~vinfo.models.tasks.reconstruction_loss`).
        """
        distortion = self.task.loss(out.task_output, target)
        bpp = out.bpp.mean()
        if out.x_hat is None:
            aux = torch.zeros_like(bpp)
        else:
            aux = reconstruction_loss(out.x_hat, x)
        return LossTerms(lmbda * (distortion + self.beta * aux) + bpp, distortion, bpp, aux)


__all__ = ["BaseCodec", "BaseOutput", "LossTerms"]
