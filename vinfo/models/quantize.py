"""Quantisation with straight-through gradients, as in §3.4 of the paper.

Instead of the additive uniform noise of Ballé et al., the latent is rounded in training too,
with the gradient of rounding replaced by the identity (straight-through estimator, Bengio et
al. 2013). The paper's scheme, with ``μ`` the mean predicted by the entropy model:

- quantised latent ``ŷ = ⌊y⌉`` (an integer tensor stored as float);
- symbols to entropy-code ``s = ⌊ŷ − μ⌉``;
- decoding ``⌊s + μ⌉``, which recovers ``ŷ`` exactly.

Because ``ŷ`` does not depend on ``μ``, the same ``ŷ`` feeds the entropy model, the synthesis
transforms and the rate in training and at test time, and the autoregressive context of the
forward pass equals the one the decoder sees. (CompressAI's ``mbt2018`` instead decodes
``⌊y − μ⌉ + μ``, which cannot be computed in one parallel training pass with an autoregressive
``μ``; its training rate is therefore not the rate of the decoded latent.)

For integer ``ŷ``, ``⌊ŷ − μ⌉ = ŷ − ⌊μ⌉`` and ``⌊s + μ⌉ = s + ⌊μ⌉`` (up to ties at ``.5``). The
functions below use the right-hand forms: they are the same symbols, but computed with integer
arithmetic only, so encoder and decoder agree bit for bit even where ``μ`` sits on a tie or
where float rounding of ``ŷ − μ`` would differ from that of ``s + μ``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def quantize_ste(y: Tensor) -> Tensor:
    """``ŷ = ⌊y⌉`` in the forward pass, identity gradient in the backward pass.

    Args:
        y: latent, any shape, e.g. ``(B, M, h, w)``.

    Returns:
        ``ŷ``, same shape, integer values; ``∂ŷ/∂y = 1``.
    """
    return y + (torch.round(y) - y).detach()


def symbols_from_latent(y_hat: Tensor, mu: Tensor) -> Tensor:
    """Symbols ``s = ⌊ŷ − μ⌉ = ŷ − ⌊μ⌉`` to entropy-code, as ``int32``.

    Args:
        y_hat: quantised latent (integer values), shape ``(B, M, h, w)``.
        mu: predicted means, same shape.

    Raises:
        ValueError: ``y_hat`` has non-integer values.
    """
    if not bool((y_hat == torch.round(y_hat)).all()):
        raise ValueError("y_hat must be integer-valued (ŷ = round(y))")
    return (y_hat - torch.round(mu)).to(torch.int32)


def latent_from_symbols(symbols: Tensor, mu: Tensor) -> Tensor:
    """Decoded latent ``ŷ = ⌊s + μ⌉ = s + ⌊μ⌉``, as ``mu``'s float dtype.

    Args:
        symbols: decoded symbols, integer tensor of shape ``(B, M, h, w)``.
        mu: the means the decoder predicted, same shape.
    """
    return symbols.to(mu.dtype) + torch.round(mu)


__all__ = ["latent_from_symbols", "quantize_ste", "symbols_from_latent"]
