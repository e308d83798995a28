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

The module is above 500 lines for one reason: :class:`VInfoProbe` is one estimator (fit with
its solvers, early stopping and scoring), and splitting its methods would scatter one
algorithm; the study loop (:mod:`probes.study`), controls, closed form and data types each
have their own module.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from probes.closed_form import LinearGaussianFit, linear_gaussian_closed_form
from probes.families import count_parameters, get_family
from probes.heads import CategoricalHead, ContinuousHead, Head, get_target
from probes.null import fit_null
from probes.probe_data import PerImageBits, ProbeData, as_probe_data
from probes.storage import channel_moments, row_chunks

NULLS = ("positional",)
SOLVERS = ("auto", "gradient", "closed_form")
CLOSED_FORM_PASSES = 8
"""Most weighted least-squares passes of the closed form (stops when validation stops
improving)."""


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
        """The task metric of the point predictions, accumulated batch by batch with the
        task's own scores (:attr:`vinfo.models.tasks.Task.scores`, as evaluation does): PSNR
        (mean over images), mIoU (of the summed confusion matrix) or depth RMSE (over all
        valid pixels); NaN where nothing could be scored."""
        task = get_target(self.target).task
        scores = task.scores(self.head_.channels if task.classes else None, primary_only=True)
        for y, z, mask in _batches(data, self.batch_size):
            prediction = self.predict(y)
            valid = None
            if task.mask_field is not None:
                valid = self.head_.valid(z, mask).unsqueeze(1) & torch.isfinite(z)
            scores.add(prediction.float() if prediction.is_floating_point() else prediction,
                       z.float() if z.is_floating_point() else z, valid)
        return scores.primary()

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


__all__ = [
    "BEATS_NULL_Z",
    "NULLS",
    "Prior",
    "ProbeNet",
    "ProbeScores",
    "VInfoProbe",
    "max_label",
]
