"""Estimate the predictive V-information of a frozen representation (Xu et al., ICLR 2020).

For a family ``V`` (:mod:`probes.families`) and a target ``Z`` (:mod:`probes.heads`)::

    H_V(Z|Y) = inf_{f ∈ V} E[-log2 f[y](z)],   H_V(Z|∅) = inf_{f ∈ V} E[-log2 f[∅](z)],
    I_V(Y → Z) = H_V(Z|∅) - H_V(Z|Y)

in bits per target pixel (§3.1 of the paper uses ``I_V`` to state its objective). A probe is
``f[y] = null ⊕ (family(y) + prior)`` (:class:`ProbeNet`); ``f[∅]`` is the family's own output
for the null input: a free distribution per target pixel (the family's constant output plus
the per-pixel prior), the same for every family. It is fitted once per target by
:func:`probes.null.fit_null`, in closed form or by a solver run to convergence, never on the
conditional probe's epoch budget, and is held fixed: ``H_V(Z|∅)`` is that fit's, shared by
every family, seed and representation (the conditional probe starts from it). Every number's
``null`` column says ``positional``, the only null.

Each quantity is estimated on held-out data: parameters are fitted on ``train``, the epoch is
chosen on ``val`` (early stopping), and the test split is scored once. The train-test gap of
``H_V(Z|Y)`` is reported next to it. Every fit records how it stopped (``null_.method``,
``stopped_by_``); a fit that ran out of its budget is flagged in the tables.

The splits may be larger than memory (memory-mapped or disk-backed tensors, see
:mod:`probes.storage`): training reads them batch by batch, and every statistic over a whole
split (standardisation, the closed form, class counts, the task metric) is accumulated in row
chunks, so no temporary grows with the number of images.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from probes.families import count_parameters, get_family
from probes.heads import CategoricalHead, ContinuousHead, Head, get_target
from probes.null import SMOOTHING_GRID, categorical_null_logits, fit_null
from probes.storage import allocate, channel_moments, gather_rows, row_chunks
from probes.uncertainty import (
    MIN_BOOTSTRAP_IMAGES,
    bootstrap_entropies,
    bootstrap_ratio,
    capacity_check,
)
from vinfo.metrics import DepthMetrics, confusion_matrix, miou, psnr

NULLS = ("positional",)
GRAM_BLOCK = 1 << 22
"""Elements of the outer-product blocks of the closed form (32 MB of float64)."""
SOLVERS = ("auto", "gradient", "closed_form")
CLOSED_FORM_PASSES = 8
"""Most weighted least-squares passes of the closed form (stops when validation stops
improving)."""


class ProbeData(NamedTuple):
    """One split of paired representations and targets.

    Attributes:
        y: ``(N, C, h, w)`` float representation (e.g. the codec's ``ŷ``).
        z: ``(N, C_t, H, W)`` target with ``H = s·h``, ``W = s·w``: floats in ``[0, 1]`` for
            reconstruction, depth values, or int64 class ids (``(N, H, W)`` is accepted).
        mask: optional ``(N, 1, H, W)`` bool, ``True`` where the target is valid.
    """

    y: Tensor
    z: Tensor
    mask: Tensor | None = None


class Splits(NamedTuple):
    """Train, validation and test :class:`ProbeData` of one representation and target."""

    train: ProbeData
    val: ProbeData
    test: ProbeData


class PerImageBits(NamedTuple):
    """Per-image code lengths on one split, each ``(N,)`` float64 numpy.

    Attributes:
        null: bits of ``f[∅]`` summed over each image's scored pixels.
        cond: bits of ``f[y]``.
        pixels: scored pixels per image.
    """

    null: np.ndarray
    cond: np.ndarray
    pixels: np.ndarray


class BitsKey(NamedTuple):
    """Which fit a :class:`PerImageBits` belongs to."""

    repr: str
    target: str
    family: str
    seed: int


class BitsRecord:
    """Per-image test bits of every fit of :func:`run_probes` (``run_probes(record=...)``).

    The table of :func:`run_probes` keeps only ratios over all test images; comparing two
    representations with a paired interval needs the bits of each test image, per seed
    (:func:`probes.paired.paired_differences`). Entries are :class:`PerImageBits` keyed by
    :class:`BitsKey`, in insertion order. For a study of ``R`` reprs, ``T`` targets, ``F``
    families, ``S`` seeds and ``N`` test images it holds ``3·R·T·F·S·N`` float64.
    """

    def __init__(self) -> None:
        self.entries: dict[BitsKey, PerImageBits] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, repr: str, target: str, family: str, seed: int, bits: PerImageBits) -> None:
        """Record one fit's test bits (a repeated key replaces the old entry)."""
        self.entries[BitsKey(repr, target, family, int(seed))] = PerImageBits(
            *(np.asarray(values, dtype=np.float64) for values in bits))

    def reprs(self) -> list[str]:
        """Representation names, in first-recorded order."""
        return list(dict.fromkeys(key.repr for key in self.entries))

    def seeds(self, repr: str, target: str, family: str) -> list[int]:
        """Seeds recorded for one (repr, target, family), in recorded order."""
        return [key.seed for key in self.entries
                if (key.repr, key.target, key.family) == (repr, target, family)]

    def iv_bits(self, repr: str, target: str, family: str,
                seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(S, N)`` per-image ``null - cond`` bits of ``seeds`` (in that order) and the
        ``(N,)`` scored pixels.

        Raises:
            LookupError: a (repr, target, family, seed) was not recorded.
        """
        rows, pixels = [], None
        for seed in seeds:
            key = BitsKey(repr, target, family, int(seed))
            if key not in self.entries:
                raise LookupError(f"no test bits recorded for {repr!r} {target} {family} "
                                  f"seed {seed}")
            bits = self.entries[key]
            rows.append(bits.null - bits.cond)
            pixels = bits.pixels if pixels is None else pixels
        if pixels is None:
            raise LookupError("no seed given")
        return np.stack(rows), pixels


class ProbeScores(NamedTuple):
    """Scores of a fitted probe on one split (bits per target pixel unless named otherwise).

    Attributes:
        h_null: ``H_V(Z|∅)``.
        h_cond: ``H_V(Z|Y)``.
        iv: ``I_V(Y → Z) = h_null - h_cond``.
        iv_normalized: ``iv / h_null``; NaN for densities (depth), whose entropy is unit-bound.
        iv_bits_per_image: ``iv`` times the mean scored pixels per image.
        iv_bits_per_element: ``iv`` per target channel value (per subpixel for RGB).
        h_cond_train: ``H_V(Z|Y)`` on the training split.
        gap: ``h_cond - h_cond_train`` (overfitting shows as a positive gap).
        metric: name of the task metric (``psnr`` dB, ``rmse`` depth unit, ``miou``).
        metric_value: the metric of the probe's point prediction.
        n_images: images scored.
        null: which null ``h_null`` is (``positional``: a free distribution per pixel).
    """

    h_null: float
    h_cond: float
    iv: float
    iv_normalized: float
    iv_bits_per_image: float
    iv_bits_per_element: float
    h_cond_train: float
    gap: float
    metric: str
    metric_value: float
    n_images: int
    null: str


def as_probe_data(data: ProbeData | Sequence[Tensor | None]) -> ProbeData:
    """Validate ``data`` (a :class:`ProbeData` or a ``(y, z[, mask])`` tuple).

    Raises:
        ValueError: wrong ranks, different image counts, or a target size that is not an
            integer multiple ``s`` of the representation size (the same in both directions).
    """
    if not isinstance(data, ProbeData):
        data = ProbeData(*data)
    y, z, mask = data
    if z.ndim == 3:
        z = z.unsqueeze(1)
    if y.ndim != 4 or z.ndim != 4:
        raise ValueError(f"y must be (N, C, h, w) and z (N, C_t, H, W), got {tuple(y.shape)} "
                         f"and {tuple(z.shape)}")
    if y.shape[0] != z.shape[0]:
        raise ValueError(f"y has {y.shape[0]} samples but z has {z.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError("empty split: no sample")
    (h, w), (height, width) = y.shape[-2:], z.shape[-2:]
    if height % h or width % w or height // h != width // w:
        raise ValueError(f"target size {height}x{width} is not one integer multiple of the "
                         f"representation size {h}x{w}")
    if mask is not None:
        if mask.ndim == 3:
            mask = mask.unsqueeze(1)
        if tuple(mask.shape) != (z.shape[0], 1, height, width):
            raise ValueError(f"mask must be ({z.shape[0]}, 1, {height}, {width}), "
                             f"got {tuple(mask.shape)}")
        mask = mask.bool()
    return ProbeData(y.float(), z, mask)


class Prior(nn.Module):
    """The probe's free per-pixel offsets ``(P, H, W)`` from the null, zero-initialised."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.zeros(shape))

    def forward(self, batch: int) -> Tensor:
        return self.value.expand(batch, -1, -1, -1)


class ProbeNet(nn.Module):
    """``f[y] = head.offset(null, prior) + body((y - y_loc) / y_scale)``; ``f[∅] = null``.

    ``null`` is the fitted null's ``(P, H, W)`` raw parameters (:mod:`probes.null`), a buffer:
    ``H_V(Z|∅)`` is the null's and never changes while the probe trains. The per-pixel
    ``prior`` offsets move each pixel from the null in its own units
    (:meth:`probes.heads.Head.offset`: a prior offset ``c`` moves a pixel's mean by ``c`` of
    that pixel's null standard deviations), so that an optimiser step costs every pixel the
    same fraction of its residual whatever its spread. The body's output is added to the raw
    parameters, in the head's units (for location-scale heads the pooled within-pixel
    standard deviation of :func:`probes.null.fit_null`): the same function of ``y`` at every
    pixel. Scaling it by each pixel's null spread instead would make the family depend on
    the null's sampling noise and exclude the truth (``Z = X² + σε`` with a per-pixel
    spread estimated from 150 images: the mean can then be right at no pixel, -0.11 bits).
    The prior starts at 0 and trains with the body; with the body's output for the null
    input it makes the family's null a free distribution per pixel, i.e. the null.

    ``y_loc``/``y_scale`` (buffers ``(1, C, 1, 1)``, identity until :meth:`standardize`) only
    condition the optimisation, as the head's target normalisation does: every family's first
    layer is affine, so the family is unchanged (DINOv2's linear probes put a BatchNorm there
    for the same reason). Codec latents are integers of arbitrary range.
    """

    def __init__(self, body: nn.Module, null: Tensor, head: Head, in_channels: int = 1) -> None:
        super().__init__()
        self.body, self.prior, self.head = body, Prior(tuple(null.shape)), head
        self.register_buffer("null", null.detach().clone())
        self.register_buffer("y_loc", torch.zeros(1, in_channels, 1, 1))
        self.register_buffer("y_scale", torch.ones(1, in_channels, 1, 1))

    def standardize(self, y: Tensor) -> None:
        """Set ``y_loc``/``y_scale`` to the per-channel mean and std of ``y (N, C, h, w)``."""
        moments = channel_moments(y)  # in row chunks: y may be larger than memory
        std = (moments.m2 / (moments.count - 1).clamp_min(1)).sqrt()
        with torch.no_grad():
            self.y_loc.copy_(moments.mean.view_as(self.y_loc))
            self.y_scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std))
                               .view_as(self.y_scale))

    def forward(self, y: Tensor | None, batch: int) -> Tensor:
        """Distribution parameters ``(B, P, H, W)``; ``y = None`` is the null input."""
        if y is None:
            return self.null.expand(batch, -1, -1, -1)
        # channels-last, as the body (VInfoProbe._build): oneDNN's kernels for it run the
        # readout's 1×1 conv (C → P·s² channels) ~3× faster than the default layout on CPU
        y = ((y - self.y_loc) / self.y_scale).contiguous(memory_format=torch.channels_last)
        # the prior moves each pixel in its own units; the body's output is the same function
        # of y at every pixel, in the head's (pooled) units, so the family is "a free
        # distribution per pixel + a shared function of y" whatever the null's spreads
        base = self.head.offset(self.null.expand(batch, -1, -1, -1), self.prior(batch))
        return base + self.body(y)


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


def max_label(z: Tensor, ignore_index: int = 255) -> int:
    """The largest class id in ``z`` other than ``ignore_index`` (-1 if none), in row chunks."""
    top = -1
    for part in row_chunks(z):
        labels = z[part]
        labels = labels[labels != ignore_index]
        if labels.numel():
            top = max(top, int(labels.max()))
    return top


def _batches(data: ProbeData, batch_size: int, order: Tensor | None = None):
    n = data.y.shape[0]
    order = torch.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        yield (data.y[index], data.z[index], None if data.mask is None else data.mask[index])


def _per_image_bits(net: ProbeNet, head: Head, data: ProbeData, null: bool,
                    batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bits (N,), pixels (N,))`` float64 of ``f[∅]`` (``null``) or ``f[y]``."""
    bits, pixels = [], []
    net.eval()
    with torch.inference_mode():
        for y, z, mask in _batches(data, batch_size):
            params = net(None if null else y, y.shape[0])
            bits.append(head.nll_bits(params, z, mask).double().sum((1, 2)))
            pixels.append(head.valid(z, mask).double().sum((1, 2)))
    return torch.cat(bits).numpy(), torch.cat(pixels).numpy()


BEATS_NULL_Z = 1.645
"""Standard errors by which a fit's validation gain over the null must exceed 0 for the fit to
count as beating the null (one-sided 95 %); below, tables flag it (``no_gain_flag``)."""


def _ratio_and_se(bits: np.ndarray, pixels: np.ndarray) -> tuple[float, float]:
    """``Σ bits / Σ pixels`` over images and its delta-method standard error (bits/pixel)."""
    total = max(float(pixels.sum()), 1.0)
    ratio = float(bits.sum()) / total
    n = len(bits)
    if n < 2:
        return ratio, math.inf
    residual = bits - ratio * pixels
    return ratio, float(math.sqrt(n / (n - 1) * float((residual**2).sum())) / total)


def _mean_bits(net: ProbeNet, head: Head, data: ProbeData, null: bool, batch_size: int) -> float:
    bits, pixels = _per_image_bits(net, head, data, null, batch_size)
    return float(bits.sum() / max(pixels.sum(), 1.0))


class VInfoProbe:
    """Predictive V-information of a representation for one probe family and target.

    Scikit-learn style: ``__init__`` only stores arguments, :meth:`fit` returns ``self``,
    learned state ends in ``_``, :meth:`score` returns ``I_V`` (higher is better).

    Args:
        family: name in :data:`probes.families.FAMILIES`.
        target: name in :data:`probes.heads.TARGETS`.
        null: ``"positional"``, the only null: the family's own output for the null input, a
            free distribution per target pixel (:mod:`probes.null`). ``"global"`` is refused:
            one distribution for all pixels is no family's null.
        width: hidden width of the family (``None``: the family default).
        head_kwargs: forwarded to the target's head (``kind``, ``num_classes``); for
            segmentation ``num_classes`` defaults to ``1 + max label`` of the training split.
        solver: of the conditional probe ``f[y]``: ``"gradient"``, ``"closed_form"`` (linear
            family + Gaussian head only) or ``"auto"`` (closed form where it applies and beats
            the null on validation, else gradient). The null ``f[∅]`` is always fitted by
            :func:`probes.null.fit_null` (closed form or a converged solver), never on the
            epoch budget.
        lr: peak Adam learning rate, reached linearly over the first epoch and
            cosine-annealed to 0 over ``max_epochs``; ``None``
            for the family's (:attr:`probes.families.ProbeFamily.lr`).
        batch_size: images per step (and per evaluation batch).
        max_epochs: epoch budget of the conditional fit, the length of the cosine schedule; a
            fit that is still improving when it is spent is ``budget``-stopped (flagged).
        patience: epochs without validation improvement before stopping; ``None`` for a sixth
            of the budget, clipped to [5, 10] (5 at the default budget; 10, the former fixed
            value, from 60 epochs on): a fixed 10 spent a third of a 30-epoch budget
            confirming that a probe had stopped improving (a fit that never beats its null
            start ran 11 epochs instead of 6).
        seed: seeds the initialisation and the batch order.

    The defaults (``batch_size = 16``, ``max_epochs = 30``) are a budget with annealing rather
    than a constant rate with an open budget (formerly 200 epochs): on the tiny preset they
    reach about the test NLL that up to 200 constant-rate epochs reached, in a third of the
    epochs or fewer, because the annealed rate ends the epoch-to-epoch noise that kept the
    constant rate improving by hundredths of a bit for tens of epochs.
    """

    def __init__(self, family: str = "linear", target: str = "reconstruction", *,
                 null: str = "positional", width: int | None = None,
                 head_kwargs: Mapping[str, object] | None = None, solver: str = "auto",
                 lr: float | None = None, batch_size: int = 16, max_epochs: int = 30,
                 patience: int | None = None, seed: int = 0) -> None:
        self.family = family
        self.target = target
        self.null = null
        self.width = width
        self.head_kwargs = head_kwargs
        self.solver = solver
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.seed = seed

    def get_params(self) -> dict[str, object]:
        """Constructor arguments, as in scikit-learn."""
        names = ("family", "target", "null", "width", "head_kwargs", "solver", "lr",
                 "batch_size", "max_epochs", "patience", "seed")
        return {name: getattr(self, name) for name in names}

    def clone(self, **changes: object) -> VInfoProbe:
        """An unfitted probe with the same arguments, some changed."""
        return VInfoProbe(**{**self.get_params(), **changes})

    # fitting ------------------------------------------------------------------------------

    def _make_head(self, train: ProbeData) -> Head:
        spec = get_target(self.target)
        kwargs = dict(self.head_kwargs or {})
        if spec.make_head is CategoricalHead and "num_classes" not in kwargs:
            top = max_label(train.z, int(kwargs.get("ignore_index", 255)))  # type: ignore[call-overload]
            kwargs["num_classes"] = max(top + 1, 2)
        head = spec.make_head(**kwargs)
        categorical = isinstance(head, CategoricalHead)
        if categorical == train.z.is_floating_point():
            kind = "integer class ids" if categorical else "float values"
            raise ValueError(f"target {self.target!r} needs {kind}, got {train.z.dtype}")
        return head.fitted_to(train.z, train.mask)

    def _use_closed_form(self, head: Head) -> bool:
        applies = (self.family in ("linear", "null") and isinstance(head, ContinuousHead)
                   and head.kind == "gaussian")
        if self.solver == "closed_form" and not applies:
            raise ValueError("the closed form needs the linear (or null) family and a Gaussian "
                             f"continuous head; got family {self.family!r}, target "
                             f"{self.target!r}")
        return applies and self.family == "linear" and self.solver in ("auto", "closed_form")

    def _train(self, net: ProbeNet, train: ProbeData, val: ProbeData) -> tuple[int, str]:
        """Adam on mean train bits/pixel of ``f[y]`` with a cosine-annealed rate.

        Keeps the trained state (after one step or more: validation is scored after steps 1, 2,
        4, ... of the first epoch and after every epoch) with the best validation bits, even one
        worse than the null start: a probe that finds nothing reports its raw held-out
        difference, not an exact 0 (``beats_null_``). Stops after ``patience`` epochs without
        improvement.

        Returns:
            ``(best epoch, "patience" | "budget")``: ``budget`` when the epochs ran out before
            patience did, i.e. the fit may not have converged.
        """
        lr = self.lr if self.lr is not None else get_family(self.family).lr
        optimizer = torch.optim.Adam(list(net.parameters()), lr=lr)
        steps = -(-train.y.shape[0] // self.batch_size)  # per epoch
        total = max(self.max_epochs, 1) * steps

        def rate(step: int) -> float:
            # linear warm-up over the first epoch, then cosine annealing to 0: a probe that
            # finds nothing is scored after its first epoch, so that epoch must not take
            # full-rate steps on noise (they cost up to 0.02 bits/pixel on held-out data)
            warm = min(1.0, (step + 1) / steps)
            return warm * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
        generator = torch.Generator().manual_seed(self.seed)
        patience = self.patience
        if patience is None:
            patience = min(max(self.max_epochs // 6, 5), 10)
        best, best_state, best_epoch = math.inf, copy.deepcopy(net.state_dict()), 0
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            order = torch.randperm(train.y.shape[0], generator=generator)
            for step, (y, z, mask) in enumerate(_batches(train, self.batch_size, order), 1):
                params = net(y, y.shape[0])
                bits = self.head_.nll_bits(params, z, mask)
                loss = bits.sum() / self.head_.valid(z, mask).sum().clamp_min(1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                if epoch == 1 and step < steps and step & (step - 1) == 0:
                    # inside the first epoch, also after steps 1, 2, 4, ...: the first trained
                    # state is one small step from the null, whatever the epoch's length
                    current = _mean_bits(net, self.head_, val, False, self.batch_size)
                    if current < best - 1e-6:
                        best, best_state = current, copy.deepcopy(net.state_dict())
                        best_epoch = 1
                    net.train()
            current = _mean_bits(net, self.head_, val, False, self.batch_size)
            if current < best - 1e-6:
                best, best_state, best_epoch = current, copy.deepcopy(net.state_dict()), epoch
            elif epoch - best_epoch >= patience:
                net.load_state_dict(best_state)
                return best_epoch, "patience"
        net.load_state_dict(best_state)
        return best_epoch, "budget"

    def _load_closed_form(self, net: ProbeNet, train: ProbeData, val: ProbeData) -> float:
        """Write the closed-form linear-Gaussian fit into ``net`` (its readout and prior);
        returns its validation bits per pixel.

        The fit is on the targets centred per pixel by the null and scaled by the head's
        scale, the units of the body's output (:class:`ProbeNet`); its per-pixel intercepts and
        log-scales go to the prior in each pixel's null units, so it is a member of the family.
        """
        h, w = train.y.shape[-2:]
        c_t = train.z.shape[1]
        factor = train.z.shape[-1] // w
        null = self.null_.params.view(c_t, 2, *self.null_.params.shape[1:]).double()
        centre = self.head_.loc + self.head_.scale * null[:, 0]  # (C_t, H, W) target units
        spread = torch.full_like(centre, self.head_.scale)  # the body's units (ProbeNet)
        # iteratively reweighted: each pass weighs the pixels by the precision of the previous
        # pass's residuals (ordinary least squares lets a few noisy pixels set the shared
        # weights); the pass with the best validation bits is kept
        weights, best = None, (math.inf, None)
        for _ in range(CLOSED_FORM_PASSES):
            fit = linear_gaussian_closed_form(train, centre=centre, spread=spread,
                                              weights=weights)
            self._write_linear(net, fit, factor, (h, w))
            bits = _mean_bits(net, self.head_, val, False, self.batch_size)
            if bits >= best[0] - 1e-4:
                break
            best = (bits, fit)
            sigma = F.pixel_shuffle(fit.log_sigma.reshape(1, -1, h, w).double(), factor)[0]
            weights = (-2 * sigma).exp()
        self._write_linear(net, best[1], factor, (h, w))
        return best[0]

    @staticmethod
    def _write_linear(net: ProbeNet, fit: LinearGaussianFit, factor: int,
                      size: tuple[int, int]) -> None:
        h, w = size
        c_t = net.null.shape[0] // 2
        prior = net.prior.value.view(c_t, 2, *net.prior.value.shape[1:])  # (C_t, 2, H, W)
        conv = net.body[0]
        with torch.no_grad():
            weight = conv.weight.view(c_t, 2, factor**2, -1)  # (C_t, 2, s², C)
            weight.zero_()
            weight[:, 0] = fit.weight.view(c_t, factor**2, -1)
            conv.bias.zero_()

            def to_pixels(values: Tensor) -> Tensor:  # (Q, P) → (C_t, H, W)
                return F.pixel_shuffle(values.reshape(1, -1, h, w), factor)[0]

            # intercept and log σ are in the head's units; the prior moves a pixel in units
            # of its null spread exp(null log-scale) (Head.offset)
            null_log_scale = net.null.view(c_t, 2, *net.null.shape[1:])[:, 1]
            prior[:, 0] = to_pixels(fit.intercept) * (-null_log_scale).exp()
            prior[:, 1] = to_pixels(fit.log_sigma) - null_log_scale

    def _build(self, train: ProbeData, family: str) -> ProbeNet:
        factor = train.z.shape[-1] // train.y.shape[-1]
        out_channels = train.z.shape[1] * self.head_.channels
        body = get_family(family).build(train.y.shape[1], out_channels, factor, self.width)
        body = body.to(memory_format=torch.channels_last)  # see ProbeNet.forward
        return ProbeNet(body, self.null_.params, self.head_, train.y.shape[1])

    def fit(self, train: ProbeData | Sequence[Tensor], val: ProbeData | Sequence[Tensor], *,
            null_from: VInfoProbe | None = None) -> VInfoProbe:
        """Fit the null predictor and the probe on ``train``, early-stopping on ``val``.

        Args:
            train: training split (see :class:`ProbeData`).
            val: validation split, used to choose the stopping epoch and the null's shrinkage.
            null_from: a probe fitted on the same targets (``z``, ``mask``) with the same
                target and head arguments, whose null (:class:`probes.null.NullFit`) is
                reused. The null never sees ``y`` and does not depend on the family, the seed
                or the training settings; :func:`run_probes` shares it across families,
                seeds, representations with the same targets, and the controls.

        Returns:
            ``self``, with ``head_``, ``null_`` (the :class:`probes.null.NullFit`), ``net_``,
            ``n_parameters_``, ``solver_``, ``epochs_`` (null solver iterations, conditional
            epochs), ``stopped_by_`` (``patience``, ``budget``, ``closed_form`` or ``null``),
            ``beats_null_`` (the validation gain ``val_gain_`` exceeds :data:`BEATS_NULL_Z`
            standard errors ``val_gain_se_``) and the validation bits ``h_null_val_``,
            ``h_cond_val_`` set.

        Raises:
            ValueError: unknown names, bad shapes, or splits that disagree in shape.
        """
        if self.null not in NULLS:
            hint = (" (one distribution for all pixels is not the null of any family: the "
                    "readouts have one bias per patch position)") if self.null == "global" else ""
            raise ValueError(f"null must be one of {NULLS}, got {self.null!r}{hint}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        get_family(self.family)  # unknown names fail before any work
        spec = get_target(self.target)
        if null_from is not None:
            null_from._check_fitted()
            same = ("target", "null", "head_kwargs")
            if any(getattr(null_from, name) != getattr(self, name) for name in same):
                raise ValueError(f"null_from must share this probe's {', '.join(same)}")
        train, val = as_probe_data(train), as_probe_data(val)
        if train.y.shape[1:] != val.y.shape[1:] or train.z.shape[1:] != val.z.shape[1:]:
            raise ValueError(f"train and val shapes differ: {tuple(train.y.shape[1:])}/"
                             f"{tuple(train.z.shape[1:])} vs {tuple(val.y.shape[1:])}/"
                             f"{tuple(val.z.shape[1:])}")
        if train.z.shape[1] != spec.channels:
            raise ValueError(f"target {self.target!r} has {spec.channels} channels, got "
                             f"{train.z.shape[1]}")
        torch.manual_seed(self.seed)
        if null_from is not None:
            self.null_ = null_from.null_
        else:
            self.null_ = fit_null(self._make_head(train), train, val)
        self.head_ = self.null_.head
        self.net_ = self._build(train, self.family)
        # the null is fixed: its validation bits are computed once
        null_bits, pixels = _per_image_bits(self.net_, self.head_, val, True, self.batch_size)
        self.h_null_val_ = float(null_bits.sum() / max(pixels.sum(), 1.0))
        epochs, self.stopped_by_, self.solver_ = 0, "null", "gradient"
        if self._use_closed_form(self.head_):
            self.solver_, self.stopped_by_ = "closed_form", "closed_form"
            closed_val = self._load_closed_form(self.net_, train, val)
            # the closed form's weights are ordinary least squares, which per-pixel variances
            # can make worse than no weights at all (a few near-deterministic pixels dominate
            # the likelihood), while a trained linear probe weighs the pixels by their
            # precision: with solver "auto", a closed form that loses to the null on
            # validation is replaced by a gradient fit
            if self.solver == "auto" and closed_val >= self.h_null_val_:
                self.net_ = self._build(train, self.family)
                self.solver_ = "gradient"
        if self.solver_ == "gradient" and self.family != "null":
            self.net_.standardize(train.y)
            epochs, self.stopped_by_ = self._train(self.net_, train, val)
        self.epochs_ = (self.null_.iterations, epochs)
        self.n_parameters_ = count_parameters(self.net_.body)
        self.h_cond_train_ = _mean_bits(self.net_, self.head_, train, False, self.batch_size)
        cond_bits, _ = _per_image_bits(self.net_, self.head_, val, False, self.batch_size)
        self.h_cond_val_ = float(cond_bits.sum() / max(pixels.sum(), 1.0))
        self.val_gain_, self.val_gain_se_ = _ratio_and_se(null_bits - cond_bits, pixels)
        # beating the null by a hair is no finding: the validation gain must be above
        # BEATS_NULL_Z standard errors (a one-sided 95 % test over validation images)
        self.beats_null_ = self.family == "null" or (
            self.val_gain_ > BEATS_NULL_Z * self.val_gain_se_ and self.val_gain_ > 0)
        return self

    # scoring ------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise RuntimeError("this VInfoProbe is not fitted yet: call fit(train, val) first")

    def per_image_bits(self, data: ProbeData | Sequence[Tensor]) -> PerImageBits:
        """Per-image bits of ``f[∅]`` and ``f[y]`` on ``data``, for paired bootstraps."""
        self._check_fitted()
        data = as_probe_data(data)
        null, pixels = _per_image_bits(self.net_, self.head_, data, True, self.batch_size)
        cond, _ = _per_image_bits(self.net_, self.head_, data, False, self.batch_size)
        return PerImageBits(null, cond, pixels)

    def predict_params(self, y: Tensor) -> Tensor:
        """Distribution parameters ``(N, C_t·K, H, W)`` of ``f[y]``."""
        self._check_fitted()
        self.net_.eval()
        with torch.no_grad():
            return torch.cat([self.net_(batch, batch.shape[0])
                              for batch in y.float().split(self.batch_size)])

    def predict(self, y: Tensor) -> Tensor:
        """Point prediction ``(N, C_t, H, W)``: mean (continuous) or class id (segmentation)."""
        return self.head_.predict(self.predict_params(y))

    def _metric(self, data: ProbeData) -> float:
        """The task metric of the point predictions, accumulated batch by batch: PSNR (mean
        over images), mIoU (of the summed confusion matrix) or depth RMSE (over all pixels)."""
        metric = get_target(self.target).metric
        psnrs: list[Tensor] = []
        matrix = torch.zeros(self.head_.channels, self.head_.channels, dtype=torch.long)
        depth = DepthMetrics()
        for y, z, mask in _batches(data, self.batch_size):
            prediction = self.predict(y)
            if metric == "psnr":
                psnrs.append(psnr(prediction.float(), z.float(), data_range=1.0,
                                  reduction="none"))
            elif metric == "miou":
                matrix += confusion_matrix(prediction[:, 0], z[:, 0].long(),
                                           self.head_.channels, self.head_.ignore_index)
            else:
                valid = self.head_.valid(z, mask).unsqueeze(1) & torch.isfinite(z)
                depth.update(prediction, z.float(), valid)
        if metric == "psnr":
            return float(torch.cat(psnrs).mean())
        if metric == "miou":
            return float(miou(matrix)) if matrix.sum() > 0 else float("nan")
        # depth metrics need a positive valid depth somewhere
        return float(depth.compute().rmse) if depth.sums[-1] > 0 else float("nan")

    def evaluate(self, data: ProbeData | Sequence[Tensor]) -> ProbeScores:
        """All scores of :class:`ProbeScores` on ``data`` (normally the test split)."""
        data = as_probe_data(data)
        bits = self.per_image_bits(data)
        pixels = bits.pixels.sum()
        if pixels <= 0:
            raise ValueError("no scored pixel in the data")
        h_null, h_cond = bits.null.sum() / pixels, bits.cond.sum() / pixels
        iv = float(h_null - h_cond)
        return ProbeScores(
            h_null=float(h_null), h_cond=float(h_cond), iv=iv,
            iv_normalized=iv / float(h_null) if self.head_.discrete else float("nan"),
            iv_bits_per_image=iv * float(bits.pixels.mean()),
            iv_bits_per_element=iv / data.z.shape[1],
            h_cond_train=self.h_cond_train_, gap=float(h_cond) - self.h_cond_train_,
            metric=get_target(self.target).metric, metric_value=self._metric(data),
            n_images=int(data.y.shape[0]), null=self.null,
        )

    def score(self, data: ProbeData | Sequence[Tensor]) -> float:
        """``I_V(Y → Z)`` on ``data`` in bits per target pixel (higher is better)."""
        bits = self.per_image_bits(data)
        return float((bits.null.sum() - bits.cond.sum()) / max(bits.pixels.sum(), 1.0))


def shuffle_representation(data: ProbeData, seed: int = 0) -> ProbeData:
    """Pair every target with another image's representation (a derangement of images).

    The shuffled-representation control: a probe fitted and scored on shuffled splits must give
    ``I_V ≈ 0`` or below; a clearly positive value means the probe leaks or overfits.
    """
    data = as_probe_data(data)
    n = data.y.shape[0]
    if n < 2:
        raise ValueError("shuffling needs at least two images")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    shift = torch.roll(order, 1)  # a cyclic shift of a random order has no fixed point
    permutation = torch.empty_like(order)
    permutation[order] = shift
    return ProbeData(gather_rows(data.y, permutation), data.z, data.mask)


def shuffled_control(probe: VInfoProbe, splits: Splits, seed: int = 0) -> PerImageBits:
    """Per-image test bits of a fresh copy of ``probe`` fitted on shuffled representations.

    The targets are unchanged by the shuffle, so the copy reuses ``probe``'s fitted null; with
    a converged null and a family that does not leak, its ``I_V`` is at or below 0 (a CI above
    0 flags the probe). Score it with :func:`probes.uncertainty.bootstrap_ratio` of
    ``null - cond``.
    """
    shuffled = [shuffle_representation(split, seed + i) for i, split in enumerate(splits)]
    fitted = probe.clone().fit(shuffled[0], shuffled[1], null_from=probe)
    return fitted.per_image_bits(shuffled[2])


def control_task(splits: Splits, seed: int = 0, decimals: int = 0) -> Splits:
    """A control task in the sense of Hewitt & Liang (2019) for any target.

    Every *type* of representation vector (the ``C`` values of ``y`` at one latent position,
    rounded to ``decimals``: a codec's integer ``ŷ`` repeats them) is given one random target
    patch (the ``s×s`` target pixels, with their mask, of a random latent position of a random
    training image). The control target of a position is its type's patch, in every split:
    a function of the representation with the targets' patch marginals but no relation to the
    real target, so ``I_V`` on it measures what a family can memorise. Selectivity is
    ``I_V(real) - I_V(control)``.

    Args:
        splits: train, val, test of one representation and target.
        seed: seed of the patch draw.
        decimals: rounding of ``y`` that defines a type.

    Returns:
        :class:`Splits` with the same ``y`` and the control targets (and masks), allocated
        by :func:`probes.storage.allocate` (on disk beyond the memory budget) and written
        one chunk of training images at a time: no temporary holds all targets.
    """
    parts = [as_probe_data(split) for split in splits]
    train = parts[0]
    factor = train.z.shape[-1] // train.y.shape[-1]
    _, c_y, h, w = train.y.shape
    positions = h * w
    # the type of every latent position of every split, chunk by chunk into one sort
    vectors = torch.cat([torch.round(part.y[rows].permute(0, 2, 3, 1).reshape(-1, c_y)
                                     * 10**decimals)
                         for part in parts for rows in row_chunks(part.y)])
    _, types = torch.unique(vectors, dim=0, return_inverse=True)
    del vectors
    generator = torch.Generator().manual_seed(seed)
    n_train = train.y.shape[0]
    draw = torch.randint(0, n_train * positions, (int(types.max()) + 1,), generator=generator)
    source = draw[types]  # the training position whose patch each position gets
    del types, draw
    order = torch.argsort(source, stable=True)
    sorted_source = source[order]
    del source
    has_mask = any(part.mask is not None for part in parts)
    outputs, offsets, start = [], [], 0
    for part in parts:
        n = part.y.shape[0]
        z = allocate(tuple(part.z.shape), part.z.dtype)
        mask = allocate((n, 1, *part.z.shape[-2:]), torch.bool) if has_mask else None
        outputs.append((z, mask))
        offsets.append(start)
        start += n * positions
    bounds = torch.tensor(offsets[1:] + [start])

    def patch_view(values: Tensor) -> Tensor:  # (n, C, s·h, s·w) → (n, h, w, C, s, s) view
        n, c = values.shape[:2]
        return values.view(n, c, h, factor, w, factor).permute(0, 2, 4, 1, 3, 5)

    for rows in row_chunks(train.z):
        first, last = rows.start * positions, rows.stop * positions
        lo, hi = (int(i) for i in torch.searchsorted(sorted_source,
                                                     torch.tensor([first, last])))
        if lo == hi:
            continue
        taken = sorted_source[lo:hi] - first  # positions within this chunk
        patches = patch_view(train.z[rows].contiguous()).reshape(-1, *train.z.shape[1:2],
                                                                 factor, factor)[taken]
        if has_mask:
            chunk_mask = (train.mask[rows] if train.mask is not None else torch.ones(
                rows.stop - rows.start, 1, *train.z.shape[-2:], dtype=torch.bool))
            mask_patches = patch_view(chunk_mask.bool().contiguous()).reshape(
                -1, 1, factor, factor)[taken]
        target = order[lo:hi]
        split = torch.bucketize(target, bounds, right=True)
        for k, (z, mask) in enumerate(outputs):
            pick = split == k
            if not bool(pick.any()):
                continue
            local = target[pick] - offsets[k]
            image, pos = local // positions, local % positions
            patch_view(z)[image, pos // w, pos % w] = patches[pick].to(z.dtype)
            if mask is not None:
                patch_view(mask)[image, pos // w, pos % w] = mask_patches[pick]
    return Splits(*(ProbeData(part.y, z, mask)
                    for part, (z, mask) in zip(parts, outputs, strict=True)))


SHUFFLE_TOLERANCE = 0.01
"""Bits per pixel above which the shuffled control is flagged, if its CI (when computed) also
lies above 0: a CI above 0 alone flags leaks of a few thousandths of a bit."""


class FitEvent(NamedTuple):
    """Reported by :func:`run_probes` after every fit (for progress bars and PVI maps).

    Attributes:
        repr: representation name.
        target: target name.
        family: family name.
        seed: training seed of this fit.
        probe: the fitted :class:`VInfoProbe`.
        splits: the splits it was fitted and will be scored on.
    """

    repr: str
    target: str
    family: str
    seed: int
    probe: VInfoProbe
    splits: Splits


def run_probes(
    data: Mapping[str, Mapping[str, Splits]],
    families: Sequence[str] = ("linear",),
    seeds: Sequence[int] = (0,),
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    controls: bool = True,
    probe_kwargs: Mapping[str, object] | None = None,
    head_kwargs: Mapping[str, Mapping[str, object]] | None = None,
    callback: Callable[[FitEvent], None] | None = None,
    record: BitsRecord | None = None,
) -> pd.DataFrame:
    """Probe representations × targets × families × seeds with paired splits and seeds.

    Args:
        data: ``data[repr][target]`` = :class:`Splits`. For a given target every
            representation must share the same test targets (same images, same order), which
            makes the comparison between representations paired.
        families: family names, any order (rows are sorted by capacity rank).
        seeds: training seeds; each is combined with the image bootstrap.
        n_resamples: bootstrap replicates of the CIs (0: no interval, CI ends = estimate).
        confidence: CI coverage.
        controls: also run the shuffled-representation control and the control task (first
            seed, families above ``null``) and set flags.
        probe_kwargs: extra :class:`VInfoProbe` arguments (``width``, ``null``, ...).
        head_kwargs: per-target head arguments, ``{"segmentation": {"num_classes": 7}}``,
            merged over ``probe_kwargs["head_kwargs"]`` for that target only.
        callback: called with a :class:`FitEvent` after every fit (not the controls').
        record: if given, receives the per-image test bits of every (repr, target, family,
            seed) fit, for paired differences (:func:`probes.paired.paired_differences`).

    Returns:
        Tidy DataFrame, one row per (repr, target, family): ``capacity_rank``, ``params``,
        ``null``, ``n_seeds``, ``n_resamples``, ``h_null``, ``h_cond``, ``iv`` (bits per target
        pixel, means over seeds), ``iv_normalized`` (NaN for densities), each of these four
        with ``*_ci_low`` / ``*_ci_high`` from one joint bootstrap, ``iv_bits_per_image``,
        ``iv_bits_per_element``, ``h_cond_train``, ``gap``, ``metric``, ``metric_value``,
        ``n_test_images``, ``null_fit`` (how the null was fitted: ``closed_form``,
        ``converged`` or ``budget``), ``stopped_by`` (how the conditional fits stopped:
        ``patience``, ``closed_form``, ``null`` for the null family, or ``budget`` if any seed
        ran out of epochs), ``budget_flag`` (the null or a fit stopped on its budget: it may not
        have converged), ``best_seed`` (lowest validation ``H_V(Z|Y)``, the infimum the
        definition asks for) with its ``iv_best``, ``iv_best_ci_low``, ``iv_best_ci_high``
        (image bootstrap of that seed), ``no_gain_flag`` (no seed beat the null on validation
        by :data:`BEATS_NULL_Z` standard errors: ``iv`` is then the raw test difference of the
        best trained state, often negative),
        ``shuffled_iv`` with ``shuffled_iv_ci_low``/``_high`` (the first seed's fit repeated
        on shuffled representations, :func:`shuffled_control`) and ``shuffled_flag`` (above
        :data:`SHUFFLE_TOLERANCE` with a CI above 0: a leak), ``control_iv`` with its CI (the
        same fit on the control task, :func:`control_task`) and
        ``selectivity = iv - control_iv`` (Hewitt & Liang 2019), NaN without ``controls``,
        then ``capacity_flag``.

    Raises:
        ValueError: unknown names, unpaired test targets between representations, or fewer
            than :data:`probes.uncertainty.MIN_BOOTSTRAP_IMAGES` test images with
            ``n_resamples > 0`` (checked before any fit).
    """
    if not seeds:
        raise ValueError("at least one seed is needed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    ranked = sorted(families, key=lambda name: get_family(name).capacity_rank)
    _check_paired(data)
    for targets in data.values():
        for target, splits in targets.items():
            get_target(target)
            n_test = as_probe_data(splits[2]).y.shape[0]
            if n_resamples > 0 and n_test < MIN_BOOTSTRAP_IMAGES:
                raise ValueError(f"too few test images for a confidence interval: {target} has "
                                 f"{n_test}, need at least {MIN_BOOTSTRAP_IMAGES} (use more "
                                 "images, or n_resamples=0 for point estimates only)")
    rows = []
    # the null never sees y: one null per target serves every family, seed and
    # representation whose training and validation targets are the same
    shared_nulls: dict[str, tuple[Splits, VInfoProbe | None]] = {}
    for repr_name, targets in data.items():
        for target, splits in targets.items():
            splits = Splits(*(as_probe_data(split) for split in splits))
            kwargs: dict[str, object] = dict(probe_kwargs or {})
            if head_kwargs and target in head_kwargs:
                shared = kwargs.get("head_kwargs") or {}
                kwargs["head_kwargs"] = {**shared, **head_kwargs[target]}  # type: ignore[dict-item]
            control: list = [control_task(splits, seed=seeds[0]), None] if controls else []
            reference = shared_nulls.get(target)
            null_from = None
            if reference is not None and _same_targets(reference[0], splits):
                null_from = reference[1]
            for family in ranked:
                fits = []
                for seed in seeds:
                    probe = VInfoProbe(family, target, seed=seed, **kwargs)  # type: ignore[arg-type]
                    fit = probe.fit(splits.train, splits.val, null_from=null_from)
                    if null_from is None:
                        null_from = fit
                        shared_nulls[target] = (splits, fit)
                    fits.append(fit)
                    if callback is not None:
                        callback(FitEvent(repr_name, target, family, seed, fit, splits))
                scores = [fit.evaluate(splits.test) for fit in fits]
                bits = [fit.per_image_bits(splits.test) for fit in fits]
                if record is not None:
                    for seed, seed_bits in zip(seeds, bits, strict=True):
                        record.add(repr_name, target, family, seed, seed_bits)
                estimates = bootstrap_entropies(np.stack([b.null for b in bits]),
                                                np.stack([b.cond for b in bits]),
                                                bits[0].pixels, n_resamples, confidence)
                row = {
                    "repr": repr_name, "target": target, "family": family,
                    "capacity_rank": get_family(family).capacity_rank,
                    "params": fits[0].n_parameters_, "null": fits[0].null,
                    "n_seeds": estimates.iv.n_seeds, "n_resamples": estimates.iv.n_resamples,
                }
                for field in ProbeScores._fields:
                    values = [getattr(score, field) for score in scores]
                    if isinstance(values[0], float):
                        row[field] = float(np.mean(values))
                discrete = fits[0].head_.discrete
                for name, estimate in estimates._asdict().items():
                    keep = discrete or name != "iv_normalized"
                    row[name] = estimate.mean if keep else float("nan")
                    row[f"{name}_ci_low"] = estimate.ci_low if keep else float("nan")
                    row[f"{name}_ci_high"] = estimate.ci_high if keep else float("nan")
                row.update(metric=scores[0].metric, n_test_images=scores[0].n_images)
                # H_V is an infimum: the seed with the best validation NLL is the family's
                # estimate of it; the seed mean above is the estimator's average
                best = int(np.argmin([fit.h_cond_val_ for fit in fits]))
                best_iv = bootstrap_ratio(bits[best].null - bits[best].cond, bits[best].pixels,
                                          n_resamples, confidence)
                row.update(best_seed=int(seeds[best]), iv_best=best_iv.mean,
                           iv_best_ci_low=best_iv.ci_low, iv_best_ci_high=best_iv.ci_high)
                # no seed beat the null on validation: iv is the raw held-out difference of
                # the best trained state, flagged (not 0 with an interval [0, 0])
                row["no_gain_flag"] = family != "null" and not any(f.beats_null_ for f in fits)
                stops = [fit.stopped_by_ for fit in fits]
                row.update(null_fit=fits[0].null_.method,
                           stopped_by="budget" if "budget" in stops else stops[0])
                row["budget_flag"] = row["null_fit"] == "budget" or row["stopped_by"] == "budget"
                row.update(_controls(fits[0], splits, control, n_resamples, confidence,
                                     seeds[0], row["iv"])
                           if controls and family != "null" else _NO_CONTROLS)
                rows.append(row)
    frame = pd.DataFrame(rows)
    frame["capacity_flag"] = capacity_check(frame) if len(frame) else []
    return frame


_NO_CONTROLS = {name: float("nan") for name in (
    "shuffled_iv", "shuffled_iv_ci_low", "shuffled_iv_ci_high", "control_iv",
    "control_iv_ci_low", "control_iv_ci_high", "selectivity")} | {"shuffled_flag": False}


def _controls(fit: VInfoProbe, splits: Splits, control: list, n_resamples: int,
              confidence: float, seed: int, iv: float) -> dict[str, object]:
    """The shuffled control and the control task of one fitted probe, with their CIs.

    ``control`` is ``[control splits, probe whose null fits them or None]``; the control
    task's null is fitted once per target and shared by the families (it is stored back).
    """
    shuffled = shuffled_control(fit, splits, seed=seed)
    shuffled_iv = bootstrap_ratio(shuffled.null - shuffled.cond, shuffled.pixels, n_resamples,
                                  confidence)
    # a leak is a CI above 0 by a margin that matters (without a CI: the margin alone)
    flag = shuffled_iv.mean > SHUFFLE_TOLERANCE and (n_resamples == 0 or shuffled_iv.ci_low > 0)
    control_splits, control_null = control
    probe = fit.clone().fit(control_splits.train, control_splits.val, null_from=control_null)
    control[1] = control_null or probe
    bits = probe.per_image_bits(control_splits.test)
    control_iv = bootstrap_ratio(bits.null - bits.cond, bits.pixels, n_resamples, confidence)
    return {
        "shuffled_iv": shuffled_iv.mean, "shuffled_iv_ci_low": shuffled_iv.ci_low,
        "shuffled_iv_ci_high": shuffled_iv.ci_high, "shuffled_flag": bool(flag),
        "control_iv": control_iv.mean, "control_iv_ci_low": control_iv.ci_low,
        "control_iv_ci_high": control_iv.ci_high, "selectivity": iv - control_iv.mean,
    }


def _same_targets(a: Splits, b: Splits) -> bool:
    """Whether two splits hold the same training and validation targets and masks."""
    for one, other in ((a.train, b.train), (a.val, b.val)):
        if one.z.shape != other.z.shape or not torch.equal(one.z, other.z):
            return False
        if (one.mask is None) != (other.mask is None):
            return False
        if one.mask is not None and not torch.equal(one.mask, other.mask):  # type: ignore[arg-type]
            return False
    return True


def _check_paired(data: Mapping[str, Mapping[str, Splits]]) -> None:
    reference: dict[str, Tensor] = {}
    for repr_name, targets in data.items():
        for target, splits in targets.items():
            test_z = as_probe_data(splits[2]).z
            if target in reference and not (reference[target].shape == test_z.shape
                                             and torch.equal(reference[target], test_z)):
                raise ValueError(f"representation {repr_name!r} has different {target} test "
                                 "targets than the others: comparisons must be paired")
            reference.setdefault(target, test_z)


__all__ = [
    "NULLS",
    "BEATS_NULL_Z",
    "BitsKey",
    "BitsRecord",
    "SMOOTHING_GRID",
    "FitEvent",
    "SHUFFLE_TOLERANCE",
    "LinearGaussianFit",
    "PerImageBits",
    "Prior",
    "ProbeData",
    "ProbeNet",
    "ProbeScores",
    "Splits",
    "VInfoProbe",
    "as_probe_data",
    "categorical_null_logits",
    "linear_gaussian_closed_form",
    "run_probes",
    "control_task",
    "shuffle_representation",
    "shuffled_control",
]
