"""The closed-form linear-Gaussian probe: least squares with one intercept per target pixel
and the maximum-likelihood residual variance, accumulated in row chunks (the splits may be
larger than memory). :class:`probes.estimator.VInfoProbe` uses it for the linear family with a
Gaussian head (``solver="auto"`` or ``"closed_form"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from probes.probe_data import ProbeData, as_probe_data
from probes.storage import channel_moments, row_chunks

GRAM_BLOCK = 1 << 22
"""Elements of the outer-product blocks of the closed form (32 MB of float64)."""


class LinearGaussianFit(NamedTuple):
    """Closed-form linear-Gaussian probe, with ``Q = C_t·s²`` patch outputs.

    Attributes:
        weight: ``(Q, C)`` regression weights (zeros for the null).
        intercept: ``(Q, P)`` per latent position (positional) or ``(Q, 1)`` (global).
        log_sigma: same shape as ``intercept``, natural-log residual standard deviation.
    """

    weight: Tensor
    intercept: Tensor
    log_sigma: Tensor


def linear_gaussian_closed_form(data: ProbeData, positional: bool = True,
                                null: bool = False, ridge: float = 1e-6, *,
                                centre: Tensor | None = None,
                                spread: Tensor | None = None,
                                weights: Tensor | None = None) -> LinearGaussianFit:
    """Least squares + residual variance for the linear family with a Gaussian head.

    Output ``q = c·s² + k`` (target channel ``c``, position ``k`` inside the ``s×s`` patch) is
    ``weight[q]·y + intercept[q, p]`` with one intercept per target pixel (positional prior,
    fitted as fixed effects: within-transform, Frisch-Waugh-Lovell) or per ``q`` (global). The
    variance is the maximum-likelihood residual variance per intercept group; the weights are
    ordinary least squares, not the heteroscedastic joint maximum, so the fit is a member of the
    family and its NLL is an upper bound on the family's infimum.

    Args:
        data: training split; masked-out pixels are excluded.
        positional: per-pixel intercepts and variances, else per patch output.
        null: force ``weight = 0`` (the null predictor's closed form).
        ridge: relative diagonal load of the normal equations, for rank-deficient ``y``.
        centre: optional ``(C_t, H, W)``: fit ``(z - centre) / spread`` instead of ``z`` (the
            per-pixel standardisation by the null in which :class:`ProbeNet` predicts).
        spread: optional ``(C_t, H, W)`` positive, with ``centre``.
        weights: optional ``(C_t, H, W)`` positive per-pixel weights of the squared residuals
            (weighted least squares; the residual precisions make it the heteroscedastic
            maximum likelihood's fixed point, see :meth:`VInfoProbe._load_closed_form`).

    Returns:
        :class:`LinearGaussianFit` in target units (of the standardised target if given).
    """
    y, z, mask = as_probe_data(data)
    factor = z.shape[-1] // y.shape[-1]
    c_y, q = y.shape[1], z.shape[1] * factor**2
    pixel_weights = None if weights is None else (  # (C_t, H, W) → (1, Q, P), patch layout
        F.pixel_unshuffle(weights.double().unsqueeze(0), factor).flatten(2))
    dims = (0,) if positional else (0, 2)

    def chunks() -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """``(yc (n, C, P), zq (n, Q, P), m (n, Q, P))`` float64 per row chunk."""
        for part in row_chunks(z):
            values = z[part].double()
            if centre is not None:
                values = (values - centre) / spread
            zq = F.pixel_unshuffle(values, factor).flatten(2)
            m = torch.ones_like(zq) if mask is None else F.pixel_unshuffle(
                mask[part].double(), factor).repeat(1, z.shape[1], 1, 1).flatten(2)
            zq = torch.where(m > 0, zq, torch.zeros_like(zq))  # invalid pixels may hold NaN
            if pixel_weights is not None:
                m = m * pixel_weights
            yield y[part].double().flatten(2) - y_offset, zq, m

    # y is centred globally first so that the raw second moments do not cancel catastrophically
    # (the null ignores y: no pass over it)
    y_offset = torch.zeros(1, c_y, 1, dtype=torch.float64) if null else \
        channel_moments(y).mean.view(1, c_y, 1)
    n_groups = z.shape[-2] * z.shape[-1] // factor**2 if positional else 1
    count = torch.zeros(1, q, n_groups, dtype=torch.float64)
    z_sum = torch.zeros_like(count)
    # Moments per intercept group g (q, or (q, p)) without materialising (N, Q, C, P):
    # gram_q = Σ m·y·yᵀ - Σ_g count_g·ȳ_g·ȳ_gᵀ, rhs_q = Σ m·y·z - Σ_g z̄_g·Σ_g m·y.
    # the Gram matrices are symmetric: accumulate their upper triangles only
    upper_i, upper_j = torch.triu_indices(c_y, c_y)
    gram = torch.zeros(q, len(upper_i), dtype=torch.float64)
    y_sums = torch.zeros(q, n_groups, c_y, dtype=torch.float64)
    rhs = torch.zeros(q, c_y, dtype=torch.float64)
    block = max(1, GRAM_BLOCK // (c_y * c_y))  # bounds the (rows, C²) outer products
    parts = list(row_chunks(z))
    # a split that fits one chunk is prepared once for both passes over it
    cached = list(chunks()) if len(parts) == 1 else None
    for yc, zq, m in cached or chunks():
        count += m.sum(dims, keepdim=True)
        z_sum += (m * zq).sum(dims, keepdim=True)
        if null:
            continue
        rows = yc.transpose(1, 2).reshape(-1, c_y)  # (n·P, C)
        weights = m.transpose(0, 1).reshape(q, -1)  # (Q, n·P)
        for begin in range(0, rows.shape[0], block):
            part = rows[begin:begin + block]
            outer = part[:, upper_i] * part[:, upper_j]  # (rows, C·(C+1)/2)
            gram += weights[:, begin:begin + block] @ outer
        y_sums += torch.einsum("nqp,ncp->qpc", m, yc) if positional else \
            torch.einsum("nqp,ncp->qc", m, yc).unsqueeze(1)
        rhs += torch.einsum("nqp,ncp->qc", m * zq, yc)
    count = count.clamp_min(1)
    z_mean = z_sum / count  # (1, Q, P) or (1, Q, 1)
    if null:
        weight = torch.zeros(q, c_y, dtype=torch.float64)
        intercept = z_mean
    else:
        means = y_sums / count[0].unsqueeze(-1)  # (Q, G, C)
        full = torch.zeros(q, c_y, c_y, dtype=torch.float64)
        full[:, upper_i, upper_j] = gram
        full[:, upper_j, upper_i] = gram
        gram = full - torch.einsum("qgc,qgd->qcd", y_sums, means)
        rhs = rhs - torch.einsum("qg,qgc->qc", z_mean[0], y_sums)
        load = ridge * gram.diagonal(dim1=1, dim2=2).mean(1).clamp_min(1e-12)
        gram = gram + load[:, None, None] * torch.eye(c_y, dtype=gram.dtype)
        weight = torch.linalg.solve(gram, rhs)  # (Q, C)
        y_mean = means.permute(0, 2, 1).unsqueeze(0) + y_offset.unsqueeze(1)  # (1, Q, C, G)
        intercept = z_mean - torch.einsum("qc,oqcg->oqg", weight, y_mean)
    squares = torch.zeros_like(count)
    for yc, zq, m in cached or chunks():
        prediction = torch.einsum("qc,ncp->nqp", weight, yc + y_offset) + intercept
        squares += (m * (zq - prediction).square()).sum(dims, keepdim=True)
    log_sigma = 0.5 * (squares / count).clamp_min(1e-12).log()
    return LinearGaussianFit(weight.float(), intercept[0].float(), log_sigma[0].float())


__all__ = ["GRAM_BLOCK", "LinearGaussianFit", "linear_gaussian_closed_form"]
