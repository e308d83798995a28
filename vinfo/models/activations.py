"""The ELU of vinfo's transforms, heads, entropy models and probes, from a vectorised ``exp``.

``ELU(x) = max(x, 0) + α · (exp(min(x, 0)) − 1)``. PyTorch's CPU ELU evaluates ``expm1``
element by element (12 ns per element against 1.5 ns for this form, whose passes are all
vectorised), so on a CPU the activations of a tiny codec's training step took 10–15 % of it
(issue 17). :class:`ELU` computes this form in every mode, with PyTorch's own ELU gradient
(``elu_backward``), so that a module gives the same values with and without autograd.

``exp(v) − 1`` loses relative precision for ``|v| ≪ 1`` where ``expm1`` does not, but its
absolute error stays under one float ulp of 1 (6e-8), which is what a sum of many such
activations sees. Unlike PyTorch's ELU, whose vectorised and scalar paths round differently
(about 4 % of the elements of a tensor change when they are computed one by one), the form
here gives every element the same value whatever the tensor's size, layout or thread count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def _elu_formula(x: Tensor, negative: Tensor, out: Tensor, alpha: float) -> Tensor:
    """``ELU(x)`` into ``out`` (which may be ``x`` or ``negative``), ``negative`` a scratch
    buffer of ``x``'s shape: the one formula of :func:`elu` and :func:`elu_`."""
    torch.clamp(x, max=0, out=negative).exp_().sub_(1)
    if alpha != 1.0:
        return torch.add(negative.mul_(alpha), x.clamp(min=0), out=out)
    # α = 1: exp(v) − 1 ≥ v, so max(x, exp(min(x, 0)) − 1) is the sum above in one pass fewer;
    # it differs only where the rounded exp(v) − 1 falls below v, for |v| under one ulp of 1,
    # and there it keeps v, which is the closer value
    return torch.maximum(x, negative, out=out)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``ELU(x)`` in a new tensor (the same values as :func:`elu_`, element by element)."""
    negative = torch.empty_like(x)
    return _elu_formula(x, negative, negative, alpha)


def elu_(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``ELU(x)`` written into ``x``, which is returned (pass a buffer no one else reads, e.g.
    a convolution's fresh output); the values of :func:`elu`.

    On the CPU a dense ``x`` (contiguous or channels-last) is processed in pieces of
    :data:`ELU_CHUNK` elements in memory order, so that the passes over a piece stay in the
    core's cache instead of streaming the whole activation several times: the same values
    (element-wise operations), in less time.
    """
    flat = _memory_order_view(x)
    if flat is None:  # not dense: one piece, through a dense copy
        return x.copy_(elu(x, alpha))
    size = flat.numel()
    chunk = min(ELU_CHUNK, size) if x.device.type == "cpu" else size
    scratch = torch.empty(chunk, dtype=x.dtype, device=x.device)
    for start in range(0, size, chunk):
        piece = flat[start : start + chunk]
        _elu_formula(piece, scratch[: piece.numel()], piece, alpha)
    return x


ELU_CHUNK = 1 << 17
"""Elements per piece of :func:`elu_` on the CPU: 512 KiB of float32, which with its scratch
piece stays within one core's L2 cache (1 MiB on AMD Zen 4, 2 MiB on the Intel Xeon measured
here). One Intel Xeon (AVX-512) thread, CPU time, median of 7 interleaved rounds, load 0.9: a
(1, 96, 128, 128) activation 3.60 → 1.13 ms, (1, 96, 256, 256) 20.7 → 4.7 ms,
(1, 96, 64, 64) 0.34 → 0.30 ms; inside the synthesis at N = 96, M = 192 (linear layout), whose
convolutions dominate, the 21 ELUs of a 256×256 image take 12.5 → 10.1 ms and of a 512×512 image
58.6 → 40.0 ms, the whole synthesis 1.016× (0.95–1.06, 15 rounds) and 1.04× (7 rounds) faster."""


def _memory_order_view(x: Tensor) -> Tensor | None:
    """A 1-D view of a dense ``x`` (contiguous, or channels-last 4-D) in its memory order, or
    ``None`` when ``x`` is not dense in either layout."""
    if x.is_contiguous():
        return x.view(-1)
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).view(-1)
    return None


class _ELUFunction(torch.autograd.Function):
    """:func:`elu` forward, PyTorch's ELU gradient ``elu_backward`` on the saved input."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return elu(x, alpha)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return torch.ops.aten.elu_backward(grad, ctx.alpha, 1, 1, False, x), None


class ELU(nn.ELU):
    """``nn.ELU`` computed by :func:`elu` (see the module docstring); an ``nn.ELU``, so code
    that looks for ELUs (:func:`vinfo.models.transforms._inference` applies them in place)
    finds it, and its state dict is the same (none)."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:  # (never in place: autograd needs x)
            return _ELUFunction.apply(x, self.alpha)
        return elu_(x, self.alpha) if self.inplace else elu(x, self.alpha)


__all__ = ["ELU", "ELU_CHUNK", "elu", "elu_"]
