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

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn
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


class _Step(NamedTuple):
    """Precomputed indices of one coding step of ``P`` positions (see :func:`_plan`)."""

    rows: Tensor  # (P,) int64
    cols: Tensor  # (P,) int64
    taps: Tensor  # (P·n,) flat indices of the causal taps in the padded plane, tap-minor
    targets: Tensor  # (P,) flat indices of the positions in the padded plane
    positions: Tensor  # (P,) flat indices of the positions in the unpadded plane


@functools.lru_cache(maxsize=16)
def _plan(
    order: str, height: int, width: int, kernel_size: int, taps: tuple[tuple[int, int], ...]
) -> tuple[_Step, ...]:
    """The steps of an order with their gather/scatter indices, built once per shape.

    The latent is kept as an ``(M, (h + 2p)·(w + 2p))`` zero-padded plane, so gathering the
    causal taps and writing the coded values back are single ``index_select`` /
    ``index_copy_`` calls with these flat indices instead of per-step 2-D advanced indexing.
    The returned tensors are shared between calls: read-only.
    """
    pad = kernel_size // 2
    padded_width = width + 2 * pad
    tap_offsets = torch.tensor([row * padded_width + col for row, col in taps])  # (n,)
    steps = []
    for rows, cols in CODING_ORDERS.get(order)(height, width, kernel_size):
        corners = rows * padded_width + cols  # top-left corner of each k×k window, (P,)
        steps.append(
            _Step(
                rows,
                cols,
                (corners[:, None] + tap_offsets).reshape(-1),
                corners + pad * padded_width + pad,
                rows * width + cols,
            )
        )
    return tuple(steps)


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
    M = model.M
    # only the causal taps of the masked kernel: the others multiply zeros
    taps = model.context_prediction.mask[0, 0].nonzero()  # (n, 2) offsets in the k×k window
    n = taps.shape[0]
    # the weight at the causal taps, where the mask is 1: the values of masked_weight() there,
    # gathered with one index_select (a third of the time of masking and 2-D indexing)
    flat_taps = taps[:, 0] * k + taps[:, 1]  # (n,)
    weight = model.context_prediction.weight.flatten(2).index_select(2, flat_taps).flatten(1)
    bias = model.context_prediction.bias
    layers = _pointwise_layers(model)
    # LowerBound's forward is torch.max(σ, bound); called directly, without its autograd
    # Function (only the backward differs)
    scale_bound = model.gaussian_conditional.lower_bound_scale.bound
    side_plane = None if side is None else side[0].flatten(1)  # (S, h·w)
    plane = torch.zeros(M, (height + 2 * pad) * (width + 2 * pad))  # zero-padded ŷ
    plan = _plan(order, height, width, k, tuple(map(tuple, taps.tolist())))
    for step in plan:
        positions = step.rows.shape[0]
        # (M, P·n) → (P, M, n) → (P, M·n), the column order of `weight`
        crops = plane.index_select(1, step.taps).view(M, positions, n)
        features = F.linear(crops.transpose(0, 1).reshape(positions, M * n), weight, bias)
        if side_plane is not None:  # (P, S + 2M), as pointwise_parameters concatenates
            side_at = side_plane.index_select(1, step.positions).T
            features = torch.cat((side_at, features), dim=1)
        for layer_weight, layer_bias, activation in layers:
            features = F.linear(features, layer_weight, layer_bias)
            if activation is not None:
                features = activation(features)
        scales, means = features.chunk(2, dim=1)  # (P, M) each
        values = code(step.rows, step.cols, means, torch.max(scales, scale_bound))
        plane.index_copy_(1, step.targets, values.T)
    padded = plane.view(1, M, height + 2 * pad, width + 2 * pad)
    return padded[:, :, pad : pad + height, pad : pad + width]


_Layer = tuple[Tensor, Tensor | None, Callable[[Tensor], Tensor] | None]


def _pointwise_layers(model: AutoregressiveEntropyModel) -> list[_Layer]:
    """The entropy-parameters network as ``(weight (out, in), bias, activation)`` per 1×1
    convolution: the matrix products of
    :meth:`~vinfo.models.entropy.AutoregressiveEntropyModel.pointwise_parameters`, with the
    weights flattened once per pass instead of once per step."""
    layers: list[_Layer] = []
    for layer in model.entropy_parameters:
        if isinstance(layer, nn.Conv2d):
            layers.append((layer.weight.flatten(1), layer.bias, None))
            continue
        if not layers or layers[-1][2] is not None:
            raise ValueError(f"unexpected layer in entropy_parameters: {layer}")
        activation: Callable[[Tensor], Tensor] = layer
        if isinstance(layer, nn.LeakyReLU):  # the same kernel without the module call
            activation = functools.partial(
                F.leaky_relu, negative_slope=layer.negative_slope, inplace=layer.inplace
            )
        layers[-1] = (layers[-1][0], layers[-1][1], activation)
    return layers


__all__ = [
    "CODING_ORDERS",
    "Coder",
    "Schedule",
    "entropy_pass",
    "serial_schedule",
    "wavefront_schedule",
]
