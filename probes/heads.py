"""Per-pixel likelihood heads, one per probed Sample field, and the probe targets.

A probe maps a representation to *distribution parameters* for every target pixel; a head
turns those parameters into a proper per-pixel distribution and scores the target under it in
bits (``-log2 f[y](z)``, the quantity inside the predictive V-entropy of Xu et al., ICLR 2020).

Parameter layout: a head declares :attr:`Head.channels`, the number of parameters per target
channel. For a target with ``C_t`` channels a probe outputs ``(B, C_t * K, H, W)`` with
``K = head.channels``, grouped by target channel: ``[c0 p0, c0 p1, ..., c1 p0, ...]``.

Units:
- :class:`DiscretizedHead` (reconstruction): a probability mass over the 256 levels of an
  8-bit image, so bits are a code length, never negative; ``nll_bits`` sums the 3 subpixels of
  a pixel (divide by 3 for bits per subpixel).
- :class:`ContinuousHead` (depth): a density, so bits are *differential* entropy in
  ``bits + log2(depth unit)``: measuring depth in centimetres instead of metres adds
  ``log2(100)`` to every pixel. The value can be negative; the V-information
  ``H_V(Z|∅) - H_V(Z|Y)`` does not depend on the unit because the shift cancels.
- :class:`CategoricalHead` (segmentation): a probability mass over classes, bits ≥ 0; pixels
  labelled ``ignore_index`` (255) are excluded like masked-out pixels.

Continuous and discretized heads predict in a normalized space: the probe outputs a raw mean
``m`` and raw log-scale ``r``; the head reads ``mean = loc + scale * m`` and
``log_scale = log(scale) + r`` with ``loc``/``scale`` set from training-target statistics
(:meth:`Head.fitted_to`). This only conditions the optimisation; the family is unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from probes.storage import channel_moments
from vinfo.models.tasks import TASKS, Task, get_task
from vinfo.registry import Registry

LN2 = math.log(2.0)
LEVELS = 256
"""Levels of an 8-bit image; reconstruction targets are ``k / 255`` for ``k`` in ``0..255``."""
IGNORE_INDEX = 255
MIN_LOG_SCALE = -9.0
"""Lower clamp of predicted raw log-scales (natural log, in units of the training targets'
standard deviation), to keep densities finite."""


def _mask(target: Tensor, mask: Tensor | None) -> Tensor:
    """Validate ``mask`` against ``target (B, C_t, H, W)``; return bool ``(B, 1, H, W)``."""
    if target.ndim != 4:
        raise ValueError(f"target must be (B, C, H, W), got {tuple(target.shape)}")
    if mask is None:
        return torch.ones_like(target[:, :1], dtype=torch.bool)
    if mask.ndim == 3:
        mask = mask.unsqueeze(1)
    if mask.shape[0] != target.shape[0] or mask.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match target {tuple(target.shape)}")
    return mask[:, :1].bool()


def _check(params: Tensor, target: Tensor, mask: Tensor | None, channels: int) -> Tensor:
    """Validate shapes and return a boolean mask of shape ``(B, 1, H, W)``."""
    valid = _mask(target, mask)
    expected = target.shape[1] * channels
    if params.ndim != 4 or params.shape[1] != expected or params.shape[0] != target.shape[0]:
        raise ValueError(
            f"params {tuple(params.shape)} do not match target {tuple(target.shape)}: expected "
            f"{expected} channels ({channels} per target channel)"
        )
    if params.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"params spatial size {tuple(params.shape[-2:])} differs from target "
            f"{tuple(target.shape[-2:])}"
        )
    return valid


class Head:
    """Interface of a per-pixel likelihood head.

    Attributes:
        channels: distribution parameters per target channel (``K``).
        discrete: ``True`` for probability masses (bits ≥ 0), ``False`` for densities.
    """

    channels: int
    discrete: bool

    def nll_bits(self, params: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """Per-pixel negative log2-likelihood.

        Args:
            params: ``(B, C_t * K, H, W)`` raw distribution parameters.
            target: ``(B, C_t, H, W)`` target (float values, or int64 class ids).
            mask: optional ``(B, 1, H, W)`` or ``(B, H, W)`` bool, ``True`` where scored.

        Returns:
            ``(B, H, W)`` bits per pixel, summed over the ``C_t`` target channels, 0 where the
            pixel is not scored (see :meth:`valid`).
        """
        raise NotImplementedError

    def valid(self, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(B, H, W)`` bool: the pixels :meth:`nll_bits` scores."""
        return _mask(target, mask)[:, 0]

    def predict(self, params: Tensor) -> Tensor:
        """Point prediction ``(B, C_t, H, W)`` for the task metric (mean or argmax)."""
        raise NotImplementedError

    def fitted_to(self, target: Tensor, mask: Tensor | None = None) -> Head:
        """A copy normalized to the statistics of training targets (identity by default)."""
        return self

    def offset(self, base: Tensor, residual: Tensor) -> Tensor:
        """Raw parameters of ``base`` moved by ``residual`` in ``base``'s own units.

        Both are ``(B, C_t·K, H, W)``. A probe predicts its residual from the null
        (:class:`probes.estimator.ProbeNet`): for a categorical head the logits add; for a
        location-scale head the mean moves by ``residual`` times the base scale and the
        log-scale adds, so that a unit step is one residual standard unit of that pixel
        whatever its spread (a strongly positional target has per-pixel spreads far apart).
        ``residual = 0`` gives ``base`` exactly.
        """
        return base + residual


@dataclass(frozen=True)
class _LocationScaleHead(Head):
    loc: float = 0.0
    scale: float = 1.0

    channels = 2

    def _mean_log_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        raw = params.unflatten(1, (-1, 2))  # (B, C_t, 2, H, W)
        mean = self.loc + self.scale * raw[:, :, 0]
        # clamped in normalized units, so that the clamp does not depend on the target's unit
        log_scale = math.log(self.scale) + raw[:, :, 1].clamp_min(MIN_LOG_SCALE)
        return mean, log_scale

    def predict(self, params: Tensor) -> Tensor:
        return self._mean_log_scale(params)[0]

    def offset(self, base: Tensor, residual: Tensor) -> Tensor:
        base, residual = base.unflatten(1, (-1, 2)), residual.unflatten(1, (-1, 2))
        mean = base[:, :, 0] + base[:, :, 1].exp() * residual[:, :, 0]
        return torch.stack([mean, base[:, :, 1] + residual[:, :, 1]], 2).flatten(1, 2)

    def fitted_to(self, target: Tensor, mask: Tensor | None = None) -> Head:
        if mask is None:
            _mask(target[:1], None)  # checks the rank without an all-true full-size mask
        else:
            mask = _mask(target, mask)  # checked; a view of a bool mask, not a copy
        count, mean, m2 = channel_moments(target, mask).pooled()  # in row chunks
        if count < 2:
            raise ValueError("need at least two valid target values to fit a head")
        std = math.sqrt(m2 / (count - 1))
        return dataclasses.replace(self, loc=mean, scale=std if std > 0 else 1.0)


def _log_cdf_logistic(x: Tensor) -> Tensor:
    return F.logsigmoid(x)


def _log_sf_logistic(x: Tensor) -> Tensor:
    return F.logsigmoid(-x)


def _log_pdf_logistic(x: Tensor) -> Tensor:
    return F.logsigmoid(x) + F.logsigmoid(-x)


def _log_cdf_gaussian(x: Tensor) -> Tensor:
    return torch.special.log_ndtr(x)


def _log_sf_gaussian(x: Tensor) -> Tensor:
    return torch.special.log_ndtr(-x)


def _log_pdf_gaussian(x: Tensor) -> Tensor:
    return -0.5 * x.square() - 0.5 * math.log(2 * math.pi)


_STANDARD: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "logistic": (_log_cdf_logistic, _log_sf_logistic, _log_pdf_logistic),
    "gaussian": (_log_cdf_gaussian, _log_sf_gaussian, _log_pdf_gaussian),
}


def _log_diff_exp(a: Tensor, b: Tensor) -> Tensor:
    """``log(exp(a) - exp(b))`` for ``a > b``, stable."""
    return a + torch.log(-torch.expm1((b - a).clamp_max(-1e-12)))


def _log_mass_logistic(level: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """Natural-log mass of ``level`` (0..255) under a discretized logistic, in closed form.

    With ``u``, ``l`` the standardised bin edges and ``u - l = 2h``,
    ``σ(u) - σ(l) = σ(u)·σ(-l)·(1 - e^{-2h})``: two log-sigmoids and one ``log(-expm1)``,
    each stable on its own (no difference of nearly equal CDFs, whatever the bin's distance
    from the mode or its width against the scale). The edge bins drop the factor of the
    infinite edge. Three transcendental terms instead of the generic path's twelve: this head
    dominates the cost of reconstruction probes.
    """
    inverse_scale = torch.exp(-log_scale)
    centred = (level / (LEVELS - 1) - mean) * inverse_scale
    half = (0.5 / (LEVELS - 1)) * inverse_scale
    upper = F.logsigmoid(centred + half)  # log σ(u) = log CDF(upper)
    lower = F.logsigmoid(half - centred)  # log σ(-l) = log SF(lower)
    width = torch.log(-torch.expm1(-2 * half))  # log(1 - e^{-2h})
    out = torch.where(level <= 0, upper, upper + lower + width)
    out = torch.where(level >= LEVELS - 1, lower, out)
    return out.clamp_max(0.0)


@dataclass(frozen=True)
class DiscretizedHead(_LocationScaleHead):
    """Discretized logistic or Gaussian over the 256 levels of an 8-bit image.

    As in PixelCNN++ (Salimans et al., 2017): the mass of level ``k`` is the continuous
    distribution's mass on ``[(k - 0.5)/255, (k + 0.5)/255]``, with the two edge bins extended
    to ``±∞`` so the 256 masses sum to 1. Targets are floats in ``[0, 1]`` and are snapped to
    the nearest level. Bits are ``-log2`` of a probability, hence never negative.

    Args:
        kind: ``"logistic"`` (default) or ``"gaussian"``.
    """

    kind: Literal["logistic", "gaussian"] = "logistic"
    discrete = True

    def __post_init__(self) -> None:
        if self.kind not in _STANDARD:
            raise ValueError(f"kind must be one of {sorted(_STANDARD)}, got {self.kind!r}")

    def log_prob_levels(self, params: Tensor, target: Tensor) -> Tensor:
        """Natural-log mass of the target level, ``(B, C_t, H, W)``."""
        mean, log_scale = self._mean_log_scale(params)
        level = (target.clamp(0, 1) * (LEVELS - 1)).round()  # (B, C_t, H, W) in 0..255
        if self.kind == "logistic":
            return _log_mass_logistic(level, mean, log_scale)
        log_cdf, log_sf, log_pdf = _STANDARD[self.kind]
        centred = (level / (LEVELS - 1) - mean) * torch.exp(-log_scale)
        half = 0.5 / (LEVELS - 1) * torch.exp(-log_scale)
        upper, lower = centred + half, centred - half
        # each tail term once: they dominate the cost of reconstruction probes
        cdf_upper, sf_lower = log_cdf(upper), log_sf(lower)
        # inner bins: log(CDF(upper) - CDF(lower)), computed on the side away from the mode
        left = _log_diff_exp(cdf_upper, log_cdf(lower))
        right = _log_diff_exp(sf_lower, log_sf(upper))
        inner = torch.where(centred < 0, left, right)
        # when the bin is far narrower than the scale, the difference underflows: use pdf·width
        narrow = log_pdf(centred) + torch.log(2 * half)
        inner = torch.where(torch.isfinite(inner) & (inner > -30), inner, narrow)
        out = torch.where(level <= 0, cdf_upper, inner)
        out = torch.where(level >= LEVELS - 1, sf_lower, out)
        return out.clamp_max(0.0)

    def nll_bits(self, params: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        valid = _check(params, target, mask, self.channels)
        bits = -self.log_prob_levels(params, target.float()).sum(1) / LN2  # (B, H, W)
        return torch.where(valid[:, 0], bits, torch.zeros_like(bits))

    def predict(self, params: Tensor) -> Tensor:
        return super().predict(params).clamp(0, 1)


@dataclass(frozen=True)
class ContinuousHead(_LocationScaleHead):
    """Gaussian or Laplace density with predicted mean and scale, for depth.

    Bits are differential entropy: ``-log2 p(z)`` with ``p`` a density per depth unit, so they
    shift by ``log2(c)`` when depth is multiplied by ``c`` and may be negative. Only pixels in
    ``mask`` (the valid-depth mask) are scored.

    Args:
        kind: ``"gaussian"`` (default; admits the closed-form linear probe) or ``"laplace"``.
    """

    kind: Literal["gaussian", "laplace"] = "gaussian"
    discrete = False

    def __post_init__(self) -> None:
        if self.kind not in ("gaussian", "laplace"):
            raise ValueError(f"kind must be 'gaussian' or 'laplace', got {self.kind!r}")

    def nll_bits(self, params: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        valid = _check(params, target, mask, self.channels)
        mean, log_scale = self._mean_log_scale(params)
        # invalid pixels may hold NaN/inf depth: replace before they reach the arithmetic
        target = torch.where(valid.expand_as(target), target.float(), mean.detach())
        if self.kind == "gaussian":
            z = (target - mean) * torch.exp(-log_scale)
            nats = 0.5 * z.square() + log_scale + 0.5 * math.log(2 * math.pi)
        else:
            nats = (target - mean).abs() * torch.exp(-log_scale) + log_scale + math.log(2.0)
        bits = nats.sum(1) / LN2
        return torch.where(valid[:, 0], bits, torch.zeros_like(bits))


@dataclass(frozen=True)
class CategoricalHead(Head):
    """Categorical distribution over ``num_classes`` (softmax of the logits), for segmentation.

    Targets are int64 class ids ``(B, 1, H, W)``; ``ignore_index`` pixels are not scored.

    Args:
        num_classes: number of classes ``K`` (the head's channels).
        ignore_index: label of unlabelled pixels (255, the Cityscapes convention).
    """

    num_classes: int = 2
    ignore_index: int = IGNORE_INDEX
    discrete = True

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")

    @property
    def channels(self) -> int:  # type: ignore[override]
        return self.num_classes

    def valid(self, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return super().valid(target, mask) & (target[:, 0] != self.ignore_index)

    def nll_bits(self, params: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        if target.shape[1] != 1:
            raise ValueError(
                f"segmentation targets must be (B, 1, H, W), got {tuple(target.shape)}"
            )
        valid = _check(params, target, mask, self.channels)[:, 0]
        valid = valid & (target[:, 0] != self.ignore_index)
        labels = torch.where(valid, target[:, 0].long(), torch.zeros_like(target[:, 0].long()))
        if (labels < 0).any() or (labels >= self.num_classes).any():
            raise ValueError(f"segmentation targets outside [0, {self.num_classes}) and not "
                             f"{self.ignore_index}")
        bits = F.cross_entropy(params, labels, reduction="none") / LN2  # (B, H, W)
        return torch.where(valid, bits, torch.zeros_like(bits))

    def predict(self, params: Tensor) -> Tensor:
        return params.argmax(1, keepdim=True)


@dataclass(frozen=True)
class FieldHead:
    """How a probe scores one :class:`vinfo.data.Sample` field.

    Attributes:
        channels: target channels ``C_t`` (3 for RGB).
        make_head: builds the head; keyword arguments are forwarded (``kind``, ``num_classes``).
        description: one line for ``vinfo probe targets``.
    """

    channels: int
    make_head: Callable[..., Head]
    description: str


FIELD_HEADS: Registry[FieldHead] = Registry("probed sample field")
"""The head of every Sample field a probe can predict. A probe target is a task of
:data:`vinfo.models.tasks.TASKS` whose field is here, so a new task that reads one of these
fields is a probe target without an entry of its own; a new kind of field adds one entry."""
FIELD_HEADS.add("image", FieldHead(
    3, DiscretizedHead, "8-bit RGB input; discretized logistic per subpixel (bits ≥ 0)"))
FIELD_HEADS.add("depth", FieldHead(
    1, ContinuousHead,
    "depth over valid pixels; Gaussian/Laplace density (differential bits, unit-dependent)"))
FIELD_HEADS.add("segmentation", FieldHead(
    1, CategoricalHead, "class ids; categorical over classes, ignore index 255"))


@dataclass(frozen=True)
class Target:
    """A probe target: a task of :data:`vinfo.models.tasks.TASKS` and the head of its field.

    What the target is (the :class:`vinfo.data.Sample` field and its validity mask, the task
    metric reported next to the bits and how it is computed) comes from the task's registry
    entry; how a probe scores it comes from :data:`FIELD_HEADS`.

    Attributes:
        name: a task name (``reconstruction``, ``depth``, ``segmentation``).
    """

    name: str

    @property
    def task(self) -> Task:
        """The task's registry entry."""
        return get_task(self.name)

    @property
    def field(self) -> str:
        """The :class:`vinfo.data.Sample` attribute holding the target."""
        return self.task.field

    @property
    def mask_field(self) -> str | None:
        """The attribute holding its validity mask, or ``None``."""
        return self.task.mask_field

    @property
    def metric(self) -> str:
        """The task metric reported next to the bits (``psnr``, ``rmse``, ``miou``)."""
        return self.task.metric

    @property
    def field_head(self) -> FieldHead:
        """How a probe scores the target's field (its :data:`FIELD_HEADS` entry)."""
        return FIELD_HEADS.get(self.field)

    @property
    def channels(self) -> int:
        """Target channels ``C_t``."""
        return self.field_head.channels

    @property
    def make_head(self) -> Callable[..., Head]:
        """The head constructor of the target's field."""
        return self.field_head.make_head

    @property
    def description(self) -> str:
        """One line for ``vinfo probe targets``."""
        return self.field_head.description


class _ProbeTargets:
    """The probe targets, read from the task registry on every call (a task registered after
    this import is a target too): every task whose field has an entry in :data:`FIELD_HEADS`.
    Reads like a :class:`~vinfo.registry.Registry` (``get``, ``names``, ``items``, ``in``)."""

    def _registry(self) -> Registry[Target]:
        targets: Registry[Target] = Registry("probe target")
        for name, task in TASKS.items():
            if task.field in FIELD_HEADS:
                targets.add(name, Target(name))
        return targets

    def get(self, name: str) -> Target:
        return self._registry().get(name)

    def names(self) -> list[str]:
        return self._registry().names()

    def items(self) -> list[tuple[str, Target]]:
        return self._registry().items()

    def __contains__(self, name: object) -> bool:
        return name in self._registry()

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry())

    def __len__(self) -> int:
        return len(self._registry())

    def __repr__(self) -> str:
        return f"probe targets {self.names()}"


TARGETS = _ProbeTargets()


def get_target(name: str) -> Target:
    """The :class:`Target` registered as ``name``; raises ``UnknownNameError`` listing names."""
    return TARGETS.get(name)


__all__ = [
    "FIELD_HEADS",
    "LEVELS",
    "TARGETS",
    "CategoricalHead",
    "ContinuousHead",
    "DiscretizedHead",
    "FieldHead",
    "Head",
    "Target",
    "get_target",
]
