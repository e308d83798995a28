"""Coding orders for autoregressive latents: the serial raster order and the wavefront order.

With a ``k × k`` causal (masked) context, ``p = k // 2``, position ``(i, j)`` depends on the
earlier positions of its own row within ``p`` columns and on rows ``i − 1 … i − p`` within
``p`` columns either side. Every such position has a smaller ``t = j + (p + 1)·i``, so all
positions on one anti-diagonal ``t`` can be coded together: ``W + (p + 1)(H − 1)`` context
steps instead of ``H·W`` (for ``k = 5``: ``t = j + 3i``). CompressAI decodes one position at a
time; this module is what it lacks.

Encoder and decoder both run :func:`entropy_pass` with the same schedule: a zero-initialised
padded latent filled in step by step, each step gathering the causal taps of its positions
into one ``(P, M·n)`` matrix and running the masked convolution and the 1×1 entropy-parameters
network as matrix products on it (one product per layer and step).
These are not the operations of the parallel training pass, and need not be: by §3.4 the
coded ``ŷ = ⌊y⌉`` does not depend on ``μ``, so only encoder and decoder must agree. The same
operations on the same batch shapes give bitwise identical means and scales on both sides —
the condition for a learned codec to decode at all.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from vinfo.models.entropy import AutoregressiveEntropyModel
from vinfo.registry import Registry

Schedule = list[tuple[Tensor, Tensor]]
"""Steps of a coding order; each step is ``(rows, cols)``, two ``int64`` tensors ``(P,)`` of
positions coded together."""


def serial_schedule(height: int, width: int, kernel_size: int = 5) -> Schedule:
    """Raster order, one position per step (CompressAI's order): ``H·W`` steps."""
    return [
        (torch.tensor([row]), torch.tensor([col]))
        for row in range(height)
        for col in range(width)
    ]


def wavefront_schedule(height: int, width: int, kernel_size: int = 5) -> Schedule:
    """Anti-diagonals ``t = j + (p + 1)·i``, ``p = kernel_size // 2``; rows ascending within
    a step. ``W + (p + 1)(H − 1)`` steps (fewer when ``W < p + 1``)."""
    factor = kernel_size // 2 + 1
    steps = []
    for t in range(width + factor * (height - 1)):
        rows = [row for row in range(height) if 0 <= t - factor * row < width]
        if rows:  # empty when W < p + 1
            cols = [t - factor * row for row in rows]
            steps.append((torch.tensor(rows, dtype=torch.long), torch.tensor(cols)))
    return steps


CODING_ORDERS: Registry[Callable[[int, int, int], Schedule]] = Registry("coding order")
CODING_ORDERS.add("serial", serial_schedule)
CODING_ORDERS.add("wavefront", wavefront_schedule)

Coder = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
"""``code(rows, cols, means, scales) → ŷ`` at those positions: ``(P,)`` positions, ``(P, M)``
means and (lower-bounded) scales; returns ``ŷ`` ``(P, M)``."""


@torch.no_grad()
def entropy_pass(
    model: AutoregressiveEntropyModel,
    side: Tensor | None,
    size: tuple[int, int],
    order: str,
    code: Coder,
) -> Tensor:
    """Run the context model over a latent in a coding order; return the coded ``ŷ``.

    Args:
        model: the entropy model (its ``kernel_size`` must match the order's assumption).
        side: side features ``(1, S, h, w)`` or ``None``.
        size: latent ``(h, w)``.
        order: a name in :data:`CODING_ORDERS`.
        code: called once per step as ``code(rows, cols, means, scales)`` (see :data:`Coder`);
            returns the ``(P, M)`` latent values at those positions (encoder: the known
            ``ŷ``; decoder: the decoded ones).

    Returns:
        ``ŷ`` ``(1, M, h, w)``.
    """
    height, width = size
    k = model.kernel_size
    pad = k // 2
    padded = torch.zeros(1, model.M, height + 2 * pad, width + 2 * pad)
    # only the causal taps of the masked kernel: the others multiply zeros
    taps = model.context_prediction.mask[0, 0].nonzero()  # (n, 2) offsets in the k×k window
    weight = model.masked_weight()[:, :, taps[:, 0], taps[:, 1]].flatten(1)  # (2M, M·n)
    bias = model.context_prediction.bias
    for rows, cols in CODING_ORDERS.get(order)(height, width, k):
        row_index = rows[:, None] + taps[:, 0]  # (P, n), in padded coordinates
        col_index = cols[:, None] + taps[:, 1]
        crops = padded[0][:, row_index, col_index].transpose(0, 1).flatten(1)  # (P, M·n)
        context = F.linear(crops, weight, bias)  # (P, 2M)
        side_at = None if side is None else side[0][:, rows, cols].T  # (P, S)
        means, scales = model.pointwise_parameters(context, side_at)  # (P, M) each
        values = code(rows, cols, means, model.gaussian_conditional.lower_bound_scale(scales))
        padded[0][:, rows + pad, cols + pad] = values.T
    return padded[:, :, pad : pad + height, pad : pad + width]


__all__ = [
    "CODING_ORDERS",
    "Coder",
    "Schedule",
    "entropy_pass",
    "serial_schedule",
    "wavefront_schedule",
]
