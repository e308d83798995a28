"""Monocular depth estimation: the error and accuracy measures of Eigen et al. (2014).

With ``d`` the predicted and ``d*`` the ground-truth depth over the ``n`` valid pixels:

- ``abs_rel = mean(|d - d*| / d*)``, ``sq_rel = mean((d - d*)² / d*)``;
- ``rmse = sqrt(mean((d - d*)²))`` in the depth unit (metres for KITTI and NYUv2),
  ``rmse_log = sqrt(mean((ln d - ln d*)²))`` (natural log, as in Eigen et al.);
- ``delta_k`` = fraction of pixels with ``max(d / d*, d* / d) < 1.25^k`` for k = 1, 2, 3.

Valid pixels: those with a finite target ``d* > 0`` (the default mask), further restricted by
``valid_mask`` if one is given and always to ``min_depth < d* < max_depth``. Predictions are
clamped to ``[min_depth, max_depth]`` before scoring, as in the evaluation code of Monodepth2
and BTS.

Averaging convention: every mean is over the valid *pixels* of the whole evaluation set. The
:class:`DepthMetrics` class accumulates per-pixel sums, so its result equals one call of
:func:`depth_metrics` on all images at once. (Some papers instead average per-image scores;
the two differ when images have different numbers of valid pixels or, for RMSE, different
errors.)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torchmetrics import Metric

DEFAULT_MIN_DEPTH = 1e-3
"""Smallest depth kept, in the depth unit (1 mm for metric depth, as in Monodepth2)."""


class DepthResult(NamedTuple):
    """Depth scores, each a scalar float64 tensor (see the module docstring for definitions).

    Attributes:
        abs_rel: mean absolute relative error, lower is better.
        sq_rel: mean squared relative error (depth unit), lower is better.
        rmse: root mean squared error (depth unit), lower is better.
        rmse_log: RMSE of natural-log depth, lower is better.
        delta1: fraction of pixels within a factor 1.25, higher is better.
        delta2: fraction within 1.25², higher is better.
        delta3: fraction within 1.25³, higher is better.
    """

    abs_rel: Tensor
    sq_rel: Tensor
    rmse: Tensor
    rmse_log: Tensor
    delta1: Tensor
    delta2: Tensor
    delta3: Tensor


_SUM_NAMES = (
    "abs_rel_sum",
    "sq_rel_sum",
    "squared_error_sum",
    "squared_log_error_sum",
    "delta1_count",
    "delta2_count",
    "delta3_count",
    "num_pixels",
)


def depth_sums(
    pred: Tensor,
    target: Tensor,
    valid_mask: Tensor | None,
    min_depth: float,
    max_depth: float | None,
) -> Tensor:
    """Per-pixel sums over the valid pixels, float64, in the order of ``_SUM_NAMES``."""
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape"
        )
    if not min_depth > 0:
        raise ValueError(f"min_depth must be positive (log depth is scored), got {min_depth}")
    if max_depth is not None and not max_depth > min_depth:
        raise ValueError(f"max_depth={max_depth} must exceed min_depth={min_depth}")
    pred = pred.detach().double()
    target = target.detach().double()
    # a user mask restricts the default one: a NaN, infinite or zero target is never scored
    valid = torch.isfinite(target) & (target > 0) & (target > min_depth)
    if valid_mask is not None:
        if valid_mask.shape != target.shape:
            raise ValueError(
                f"valid_mask {tuple(valid_mask.shape)} does not match target {tuple(target.shape)}"
            )
        valid = valid & valid_mask.to(device=target.device, dtype=torch.bool)
    if max_depth is not None:
        valid = valid & (target < max_depth)
    d = pred[valid].clamp(min=min_depth, max=max_depth)  # (n,)
    d_star = target[valid]  # (n,)
    error = d - d_star
    ratio = torch.maximum(d / d_star, d_star / d)
    return torch.stack(
        [
            (error.abs() / d_star).sum(),
            (error.square() / d_star).sum(),
            error.square().sum(),
            (d.log() - d_star.log()).square().sum(),
            (ratio < 1.25).sum().double(),
            (ratio < 1.25**2).sum().double(),
            (ratio < 1.25**3).sum().double(),
            torch.tensor(float(d.numel()), dtype=torch.float64),
        ]
    )


def depth_result_from_sums(sums: Tensor) -> DepthResult:
    abs_rel, sq_rel, sq_err, sq_log_err, d1, d2, d3, n = sums.unbind()
    return DepthResult(
        abs_rel=abs_rel / n,
        sq_rel=sq_rel / n,
        rmse=(sq_err / n).sqrt(),
        rmse_log=(sq_log_err / n).sqrt(),
        delta1=d1 / n,
        delta2=d2 / n,
        delta3=d3 / n,
    )


def depth_metrics(
    pred: Tensor,
    target: Tensor,
    valid_mask: Tensor | None = None,
    min_depth: float = DEFAULT_MIN_DEPTH,
    max_depth: float | None = None,
) -> DepthResult:
    """Eigen et al. depth errors and accuracies over the valid pixels of a batch.

    Args:
        pred: predicted depth, any shape, e.g. ``(B, 1, H, W)`` or ``(B, H, W)``, in the same
            unit as ``target`` (align scales beforehand for scale-ambiguous models).
        target: ground-truth depth, same shape as ``pred``.
        valid_mask: boolean tensor of the same shape, ``True`` where the target is valid
            (e.g. a dataset's evaluation crop). Default, and always applied on top of a given
            mask: ``isfinite(target) & (target > 0)``.
        min_depth: targets at or below it are ignored and predictions clamped up to it.
            Must be positive.
        max_depth: if given, targets at or above it are ignored and predictions clamped down
            to it (80 m for KITTI, 10 m for NYUv2).

    Returns:
        :class:`DepthResult` of scalar float64 tensors, means over all valid pixels.

    Raises:
        ValueError: shapes disagree, or the mask selects no pixel.
    """
    sums = depth_sums(pred, target, valid_mask, min_depth, max_depth)
    if sums[-1] == 0:
        raise ValueError("the validity mask selects no pixel")
    return depth_result_from_sums(sums)


class DepthMetrics(Metric):
    """Depth errors and accuracies accumulated over batches, per pixel over the whole set.

    The state holds float64 sums over valid pixels, so :meth:`compute` equals
    :func:`depth_metrics` on the concatenation of all batches. The scores have mixed
    directions (errors: lower is better; ``delta_k``: higher is better), hence
    ``higher_is_better = None``.

    Args:
        min_depth: see :func:`depth_metrics`.
        max_depth: see :func:`depth_metrics`.
    """

    higher_is_better = None
    is_differentiable = False
    full_state_update = False
    metric_names = DepthResult._fields

    def __init__(
        self, min_depth: float = DEFAULT_MIN_DEPTH, max_depth: float | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.add_state(
            "sums", default=torch.zeros(len(_SUM_NAMES), dtype=torch.float64), dist_reduce_fx="sum"
        )

    def update(self, pred: Tensor, target: Tensor, valid_mask: Tensor | None = None) -> None:
        """Add a batch (same arguments as :func:`depth_metrics`); it may have no valid pixel."""
        self.sums += depth_sums(pred, target, valid_mask, self.min_depth, self.max_depth).to(
            self.sums.device
        )

    def compute(self) -> DepthResult:
        if self.sums[-1] == 0:
            raise ValueError("no valid pixel was accumulated: the validity masks selected none")
        return depth_result_from_sums(self.sums)


__all__ = ["DEFAULT_MIN_DEPTH", "DepthMetrics", "DepthResult", "depth_metrics",
           "depth_result_from_sums", "depth_sums"]
