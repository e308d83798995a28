"""The null predictor ``f[∅]`` of every family, fitted to convergence once per target.

``H_V(Z|∅) = inf_{f ∈ V} E[-log2 f[∅](z)]`` (Xu et al., ICLR 2020). Every family of
:mod:`probes.families` is ``f[y] = body(y) + prior`` with a free per-pixel ``prior`` (one
distribution-parameter vector per target pixel) and a body whose output for the null input is
a constant the prior absorbs; so the family's own output for the null input is *a free
distribution per target pixel*, the same for every family. That is the one null here (the
``positional`` null; the former ``global`` null, one distribution for all pixels, is not the
null of any family: the linear readout has one bias per patch position, so a family beat it
without looking at ``y``).

A per-pixel distribution has a closed form or a cheap exact solver, so the null never stops on
an epoch budget:

- Gaussian density: the per-pixel mean and variance;
- Laplace density: the per-pixel median and mean absolute deviation;
- discretized logistic (or Gaussian) over 256 levels: per pixel, the maximum-likelihood
  location and log-scale of its level histogram, by damped Newton steps to a gradient
  tolerance (the fit depends on the data only through the ``(256, C_t, H, W)`` histograms, so
  each iteration costs the same whatever the number of images);
- categorical: the per-pixel class frequencies.

Maximum likelihood per pixel gives zero variance (or probability) to what a pixel never showed
in training; each estimate is therefore shrunk toward the pooled one over all pixels by ``k``
pseudo-observations (for the discretized null: at the channel's 32 pooled quantiles; for the
categorical null, ``α`` counts per class), ``k`` chosen on the validation NLL from a small
grid (``k = 0`` is the plain maximum-likelihood fit), as early stopping chooses the epoch of a
gradient fit.

Every statistic is accumulated in row chunks (:func:`probes.storage.row_chunks`) except the
per-pixel medians, which read all images of a band of target rows at once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch
from torch import Tensor

from probes.heads import (
    LEVELS,
    CategoricalHead,
    ContinuousHead,
    DiscretizedHead,
    Head,
    _LocationScaleHead,
)
from probes.storage import CHUNK_BYTES, row_chunks

SHRINKAGE_GRID = (0.0, 0.1, 1.0, 10.0)
"""Pseudo-observations ``k`` of the pooled estimate tried by the continuous and discretized
nulls (chosen on the validation NLL)."""
SMOOTHING_GRID = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
"""Additive class-count smoothing tried by the categorical null (chosen on validation)."""
NEWTON_ITERATIONS = 200
"""Iteration budget of the discretized null's Newton solver; a fit that spends it is ``budget``."""
NEWTON_TOLERANCE = 1e-7
"""Gradient tolerance (per pixel, bits) at which the discretized null counts as converged."""
MIN_VARIANCE = 1e-12


class NullFit(NamedTuple):
    """The fitted null of one target.

    Attributes:
        head: the head the parameters are for: for location-scale heads the input of
            :func:`fit_null` with ``scale`` set to the pooled within-pixel standard deviation,
            so that gradient steps on the probe are in units of the null's residuals (a
            strongly positional target has a global spread far above its per-pixel one).
        params: ``(P, H, W)`` raw distribution parameters of the head, ``P = C_t·K``.
        method: ``closed_form``, ``converged`` (an iterative solver met its tolerance) or
            ``budget`` (it ran out of iterations: flagged in every table).
        shrinkage: the chosen ``k`` (or smoothing ``α`` for the categorical null).
        iterations: solver iterations (0 for a closed form).
    """

    head: Head
    params: Tensor
    method: str
    shrinkage: float
    iterations: int


class PixelMoments(NamedTuple):
    """Per-pixel statistics over images, each ``(C_t, H, W)`` float64.

    Attributes:
        count: valid values.
        mean: mean (the pooled mean where a pixel has none).
        m2: sum of squared deviations from ``mean``.
    """

    count: Tensor
    mean: Tensor
    m2: Tensor


def _valid(z: Tensor, mask: Tensor | None) -> Tensor:
    """``(n, C_t, H, W)`` bool of the valid, finite values of a chunk."""
    valid = torch.isfinite(z) if z.is_floating_point() else torch.ones_like(z, dtype=torch.bool)
    return valid if mask is None else valid & mask.bool().expand_as(z)


def pixel_moments(z: Tensor, mask: Tensor | None = None) -> PixelMoments:
    """Per-pixel count, mean and squared deviations of ``z (N, C_t, H, W)``, in row chunks.

    Values are shifted by each chunk's first valid mean before squaring (Chan et al.'s parallel
    update), so depth in millimetres does not cancel catastrophically.
    """
    shape = z.shape[1:]
    count = torch.zeros(shape, dtype=torch.float64)
    mean, m2 = torch.zeros_like(count), torch.zeros_like(count)
    for part in row_chunks(z):
        values = z[part].double()
        valid = _valid(values, None if mask is None else mask[part])
        values = torch.where(valid, values, torch.zeros_like(values))
        n = valid.sum(0).double()
        chunk_mean = values.sum(0) / n.clamp_min(1)
        chunk_m2 = (torch.where(valid, values - chunk_mean, torch.zeros_like(values))
                    .square().sum(0))
        total = count + n
        delta = chunk_mean - mean
        mean = mean + delta * n / total.clamp_min(1)
        m2 = m2 + chunk_m2 + delta.square() * count * n / total.clamp_min(1)
        count = total
    pooled = (mean * count).sum((1, 2), keepdim=True) / count.sum((1, 2), keepdim=True).clamp_min(1)
    mean = torch.where(count > 0, mean, pooled.expand_as(mean))
    return PixelMoments(count, mean, m2)


def _pooled_scale(moments: PixelMoments) -> float:
    """The pooled within-pixel standard deviation over all channels and pixels."""
    dof = float(moments.count.sum())
    if dof < 2:
        raise ValueError("need at least two valid target values to fit the null")
    std = math.sqrt(float(moments.m2.sum()) / dof)
    return std if std > 0 else 1.0


def _pixel_medians(z: Tensor, mask: Tensor | None) -> Tensor:
    """``(C_t, H, W)`` per-pixel median (the lower one of an even count; NaN if no value)."""
    n, _, height, _ = z.shape
    row_bytes = max(1, z[:1, :, :1].numel() * n * 8)
    rows = max(1, CHUNK_BYTES // row_bytes)
    bands = []
    for top in range(0, height, rows):
        values = z[:, :, top:top + rows].double()
        valid = _valid(values, None if mask is None else mask[:, :, top:top + rows])
        bands.append(torch.where(valid, values, torch.full_like(values, math.nan))
                     .nanmedian(0).values)
    return torch.cat(bands, 1)


def _abs_deviations(z: Tensor, mask: Tensor | None, centre: Tensor) -> tuple[Tensor, Tensor]:
    """Per-pixel ``Σ |z - centre|`` and valid count, ``(C_t, H, W)`` float64, in row chunks."""
    total = torch.zeros_like(centre)
    count = torch.zeros_like(centre)
    for part in row_chunks(z):
        values = z[part].double()
        valid = _valid(values, None if mask is None else mask[part])
        deviation = torch.where(valid, (values - centre).abs(), torch.zeros_like(values))
        total += deviation.sum(0)
        count += valid.sum(0)
    return total, count


def _to_raw(head: _LocationScaleHead, location: Tensor, scale: Tensor) -> Tensor:
    """``(C_t, H, W)`` location and scale in target units → ``(2·C_t, H, W)`` raw params."""
    raw_mean = (location - head.loc) / head.scale
    raw_log_scale = scale.clamp_min(1e-300).log() - math.log(head.scale)
    return torch.stack([raw_mean, raw_log_scale], 1).flatten(0, 1).float()


def _continuous_null(head: ContinuousHead, train, val) -> NullFit:
    moments = pixel_moments(train.z, train.mask)
    pooled = _pooled_scale(moments)
    head = dataclasses.replace(head, scale=pooled)
    count = moments.count
    if head.kind == "gaussian":
        location = moments.mean
        spread = moments.m2  # Σ (z - μ)², the Gaussian's sufficient statistic
        pooled_spread = pooled**2
        val_moments = pixel_moments(val.z, val.mask)
        val_count = val_moments.count
        # Σ_val (z - μ)² per pixel = m2_val + n_val·(mean_val - μ)²
        val_spread = val_moments.m2 + val_count * (val_moments.mean - location).square()
    else:
        location = _pixel_medians(train.z, train.mask)
        location = torch.where(torch.isfinite(location), location, moments.mean)
        spread, _ = _abs_deviations(train.z, train.mask, location)  # Σ |z - μ|
        pooled_spread = float(spread.sum() / count.sum().clamp_min(1))
        val_spread, val_count = _abs_deviations(val.z, val.mask, location)
    best = (math.inf, 0.0, None)
    for k in SHRINKAGE_GRID:
        estimate = (spread + k * pooled_spread) / (count + k).clamp_min(1e-12)  # σ² or b
        estimate = torch.where(count + k > 0, estimate, torch.full_like(estimate, pooled_spread))
        estimate = estimate.clamp_min(MIN_VARIANCE)
        if head.kind == "gaussian":
            nats = 0.5 * val_spread / estimate + val_count * 0.5 * estimate.log()
        else:
            nats = val_spread / estimate + val_count * estimate.log()
        bits = float(nats.sum())
        if bits < best[0]:
            best = (bits, k, estimate)
    _, k, estimate = best
    scale = estimate.sqrt() if head.kind == "gaussian" else estimate
    return NullFit(head, _to_raw(head, location, scale), "closed_form", k, 0)


def _level_histogram(z: Tensor, mask: Tensor | None) -> Tensor:
    """``(LEVELS, C_t, H, W)`` float64 counts of the 8-bit levels of ``z`` in ``[0, 1]``."""
    shape = z.shape[1:]
    cells = math.prod(shape)
    offsets = torch.arange(cells).view(shape)
    counts = torch.zeros(LEVELS * cells, dtype=torch.float64)
    for part in row_chunks(z):
        values = z[part].float()
        valid = _valid(values, None if mask is None else mask[part])
        level = (values.clamp(0, 1) * (LEVELS - 1)).round().long()
        index = (level * cells + offsets)[valid]
        counts += torch.bincount(index, minlength=counts.numel()).double()
    return counts.view(LEVELS, *shape)


NEWTON_BAND_BYTES = 1 << 20
"""Bytes of one float64 ``(LEVELS, C_t, rows, W)`` weight array per band of target rows solved
at once by the discretized null (its Newton steps keep some twenty such arrays alive)."""


def _discretized_null(head: DiscretizedHead, train, val) -> NullFit:
    moments = pixel_moments(train.z, train.mask)
    head = dataclasses.replace(head, scale=_pooled_scale(moments))
    counts = _level_histogram(train.z, train.mask)  # (L, C_t, H, W)
    val_counts = _level_histogram(val.z, val.mask)
    pseudo = _pooled_quantiles(counts)  # (L, C_t, 1, 1), sums to 1 per channel
    std = (moments.m2 / moments.count.clamp_min(1)).sqrt().clamp_min(0.5 / (LEVELS - 1))
    # initial guess: the moments (a logistic of scale s has std s·π/√3)
    factor = math.sqrt(3) / math.pi if head.kind == "logistic" else 1.0
    start = _to_raw(head, moments.mean, std * factor).double()  # (2·C_t, H, W)
    # the values are independent 2-parameter problems: solve them a band of target rows at a
    # time, so memory does not depend on the image size or on how many levels the data show
    height, width = counts.shape[2:]
    rows = max(1, NEWTON_BAND_BYTES // (LEVELS * counts.shape[1] * width * 8))
    solutions = {k: torch.empty_like(start) for k in SHRINKAGE_GRID}
    val_bits = dict.fromkeys(SHRINKAGE_GRID, 0.0)
    methods = {k: "converged" for k in SHRINKAGE_GRID}
    iterations = dict.fromkeys(SHRINKAGE_GRID, 0)
    for top in range(0, height, rows):
        band = slice(top, top + rows)
        band_counts = counts[:, :, band]
        # each value's objective only needs the levels with a weight: its own training levels
        # and the pseudo-observations', gathered into (S, C_t, rows, W), S ≤ 256
        support = (band_counts > 0) | (pseudo > 0)
        size = max(int(support.sum(0).max()), 1)
        index = torch.argsort(support.to(torch.int8), dim=0, descending=True, stable=True)[:size]
        levels = index.double() / (LEVELS - 1)
        counts_s = band_counts.gather(0, index)
        pseudo_s = pseudo.expand_as(band_counts).gather(0, index)
        del support, index
        all_levels = (torch.arange(LEVELS, dtype=torch.float64) / (LEVELS - 1)).view(-1, 1, 1, 1)
        all_levels = all_levels.expand(-1, *band_counts.shape[1:])
        raw = start[:, band]
        for k in SHRINKAGE_GRID:  # each k warm-starts from the previous one's solution
            raw, method, steps = _newton(head, raw, counts_s + k * pseudo_s, levels)
            solutions[k][:, band] = raw
            with torch.no_grad():
                val_bits[k] += float(_level_bits(head, raw, val_counts[:, :, band],
                                                 all_levels).sum())
            if method == "budget":
                methods[k] = "budget"
            iterations[k] = max(iterations[k], steps)
    k = min(SHRINKAGE_GRID, key=lambda key: (val_bits[key], key))
    return NullFit(head, solutions[k].float(), methods[k], k, iterations[k])


PSEUDO_LEVELS = 32
"""Levels at which the discretized null's ``k`` pseudo-observations sit: the channel's pooled
quantiles ``(i + ½) / 32`` (a few levels keep each value's objective short)."""


def _pooled_quantiles(counts: Tensor) -> Tensor:
    """``(L, C_t, 1, 1)``: mass ``1 / 32`` at each of the 32 mid-quantiles of every channel's
    pooled level histogram ``counts (L, C_t, H, W)``."""
    pooled = counts.sum((2, 3))  # (L, C_t)
    cumulative = pooled.cumsum(0) / pooled.sum(0).clamp_min(1)
    quantiles = (torch.arange(PSEUDO_LEVELS, dtype=torch.float64) + 0.5) / PSEUDO_LEVELS
    index = torch.searchsorted(cumulative.T.contiguous(), quantiles.expand(
        pooled.shape[1], -1).contiguous()).clamp_max(LEVELS - 1)  # (C_t, 32)
    mass = torch.zeros(pooled.shape[1], LEVELS, dtype=torch.float64)
    mass.scatter_add_(1, index, torch.full_like(index, 1 / PSEUDO_LEVELS, dtype=torch.float64))
    return mass.T.reshape(LEVELS, -1, 1, 1)


def _level_bits(head: DiscretizedHead, raw: Tensor, weights: Tensor, levels: Tensor) -> Tensor:
    """``(C_t, H, W)`` bits of ``weights (S, C_t, H, W)`` observations of ``levels`` (same
    shape, values ``k / 255``) under ``raw (2·C_t, H, W)``."""
    expanded = raw.unsqueeze(0).expand(levels.shape[0], -1, -1, -1)
    return -(weights * head.log_prob_levels(expanded, levels)).sum(0) / math.log(2.0)


def _newton(head: DiscretizedHead, start: Tensor, weights: Tensor, levels: Tensor
            ) -> tuple[Tensor, str, int]:
    """Per-pixel damped Newton (Levenberg-Marquardt) on the 2 raw parameters of every value.

    The objective is a sum of independent 2-parameter problems, so each gets its own 2×2
    Hessian and damping, and a step is kept only where it lowers that value's bits.

    Returns:
        ``(raw (2·C_t, H, W) float64, "converged" | "budget", iterations)``; converged when every
        value's gradient is below :data:`NEWTON_TOLERANCE` bits per observation.
    """
    weights, levels = weights.double(), levels.double()
    raw = start.detach().double().view(-1, 2, *start.shape[1:]).clone()  # (C_t, 2, H, W)
    damping = torch.full_like(raw[:, 0], 1e-3)
    per_observation = weights.sum(0).clamp_min(1e-12)

    def value(theta: Tensor) -> Tensor:
        return _level_bits(head, theta.flatten(0, 1), weights, levels)

    for iteration in range(1, NEWTON_ITERATIONS + 1):
        theta = raw.clone().requires_grad_(True)
        bits = value(theta)
        (gradient,) = torch.autograd.grad(bits.sum(), theta, create_graph=True)
        g0, g1 = gradient[:, 0], gradient[:, 1]
        if float((gradient.detach().abs().amax(1) / per_observation).max()) < NEWTON_TOLERANCE:
            return raw.flatten(0, 1), "converged", iteration - 1
        (row0,) = torch.autograd.grad(g0.sum(), theta, retain_graph=True)
        (row1,) = torch.autograd.grad(g1.sum(), theta)
        h00, h01, h11 = row0[:, 0], row0[:, 1], row1[:, 1]
        g0, g1, bits = g0.detach(), g1.detach(), bits.detach()
        pending = torch.ones_like(bits, dtype=torch.bool)
        for _ in range(8):  # raise the damping where a step does not lower the bits
            a, c = h00 + damping * (1 + h00.abs()), h11 + damping * (1 + h11.abs())
            det = a * c - h01 * h01
            ok = det > 0
            det = torch.where(ok, det, torch.ones_like(det))
            step0 = torch.where(ok, -(c * g0 - h01 * g1) / det, -g0 / (1 + h00.abs()))
            step1 = torch.where(ok, -(a * g1 - h01 * g0) / det, -g1 / (1 + h11.abs()))
            trial = raw + torch.stack([step0, step1], 1).clamp(-2, 2)
            with torch.no_grad():
                lower = (value(trial) <= bits) & pending
            raw = torch.where(lower.unsqueeze(1), trial, raw)
            damping = torch.where(lower, damping * 0.3,
                                  torch.where(pending, damping * 10, damping)).clamp(1e-9, 1e9)
            pending = pending & ~lower
            if not bool(pending.any()):
                break
    return raw.flatten(0, 1), "budget", NEWTON_ITERATIONS


def _class_counts(head: CategoricalHead, data) -> Tensor:
    """``(K, H, W)`` float64 counts of the scored labels of ``data``, in row chunks."""
    height, width = data.z.shape[-2:]
    pixel = torch.arange(height * width).view(height, width)
    counts = torch.zeros(head.num_classes * height * width, dtype=torch.float64)
    for part in row_chunks(data.z):  # the labels may be larger than memory
        z = data.z[part]
        valid = head.valid(z, None if data.mask is None else data.mask[part])  # (n, H, W)
        labels = z[:, 0].long()
        if (labels[valid] < 0).any() or (labels[valid] >= head.num_classes).any():
            raise ValueError(f"segmentation targets outside [0, {head.num_classes}) and not "
                             f"{head.ignore_index}")
        index = (labels * height * width + pixel)[valid]
        counts += torch.bincount(index, minlength=counts.numel()).double()
    return counts.view(head.num_classes, height, width)


def categorical_null_logits(head: CategoricalHead, train, val) -> tuple[Tensor, float]:
    """The categorical null: smoothed per-pixel class frequencies.

    The train-NLL minimiser is the empirical class frequency per pixel, which gives probability
    0 to classes a pixel never showed; the frequencies are shrunk toward uniform,
    ``p_k ∝ count_k + α``, with ``α`` chosen on the validation NLL from
    :data:`SMOOTHING_GRID`.

    Returns:
        Logits ``log p`` ``(K, H, W)`` float32 and the chosen ``α``.
    """
    counts = _class_counts(head, train)
    val_counts = _class_counts(head, val)
    best, best_alpha, best_logits = math.inf, 0.0, None
    for alpha in SMOOTHING_GRID:
        logits = (counts + alpha).log() - (counts + alpha).sum(0, keepdim=True).log()
        bits = float(-(val_counts * logits).sum())
        if bits < best:
            best, best_alpha, best_logits = bits, alpha, logits
    return best_logits.float(), best_alpha  # type: ignore[union-attr]


def fit_null(head: Head, train, val) -> NullFit:
    """Fit the per-pixel null of ``head`` on ``train`` (shrinkage chosen on ``val``).

    Args:
        head: the target's head, fitted to the training targets (:meth:`Head.fitted_to`).
        train: :class:`probes.probe_data.ProbeData` (only ``z`` and ``mask`` are read).
        val: the validation split.

    Returns:
        :class:`NullFit`; ``params`` is ``(C_t·K, H, W)``.

    Raises:
        TypeError: a head with no per-pixel null solver.
    """
    if isinstance(head, CategoricalHead):
        logits, alpha = categorical_null_logits(head, train, val)
        return NullFit(head, logits, "closed_form", alpha, 0)
    if isinstance(head, ContinuousHead):
        return _continuous_null(head, train, val)
    if isinstance(head, DiscretizedHead):
        return _discretized_null(head, train, val)
    raise TypeError(f"no null solver for {type(head).__name__}")


__all__ = [
    "NEWTON_ITERATIONS",
    "SHRINKAGE_GRID",
    "SMOOTHING_GRID",
    "NullFit",
    "PixelMoments",
    "categorical_null_logits",
    "fit_null",
    "pixel_moments",
]
