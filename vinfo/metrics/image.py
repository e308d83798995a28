"""Image fidelity: PSNR (dB), MS-SSIM and RMSE between reconstructions and originals.

Every function takes ``preds`` and ``target`` of shape ``(B, C, H, W)`` in the same value range
(e.g. ``[0, 1]`` with ``data_range=1.0`` or ``[0, 255]`` with ``data_range=255.0``).

Averaging convention: unless ``reduction="pooled"`` is asked for, a batch score is the mean of
per-image scores, as in CompressAI's ``eval_model`` (which reports the mean of per-image PSNR
over a dataset). ``"pooled"`` instead computes one score from the MSE over all pixels of the
batch; the two differ whenever images have different MSEs (PSNR is concave in MSE, so the pooled
value is at most the per-image mean). The metric classes accumulate exactly: ``update`` over
several batches then ``compute`` gives the same value as one call on the concatenated batches.

PSNR and MS-SSIM are computed by torchmetrics' functional implementations.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
)

Reduction = Literal["mean", "pooled", "none"]
"""``"mean"``: per-image scores averaged over images (scalar); ``"pooled"``: one score from the
squared error pooled over the whole batch (scalar); ``"none"``: per-image scores, shape ``(B,)``."""

_REDUCTIONS = ("mean", "pooled", "none")

MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of Wang, Simoncelli & Bovik (2003), finest scale first."""

MS_SSIM_KERNEL_SIZE = 11


def _check_images(preds: Tensor, target: Tensor) -> None:
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target must have the same shape, got {tuple(preds.shape)} "
            f"and {tuple(target.shape)}"
        )
    if preds.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(preds.shape)}")
    if preds.shape[0] == 0:
        raise ValueError("empty batch: B = 0")
    if not (preds.is_floating_point() and target.is_floating_point()):
        raise TypeError(f"expected floating point images, got {preds.dtype} and {target.dtype}")


def _check_data_range(data_range: float) -> None:
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")


def _check_reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")


def psnr_from_mse(mse: Tensor, data_range: float) -> Tensor:
    """Closed form ``10 log10(data_range² / mse)`` in dB (``inf`` where ``mse`` is 0)."""
    return 10.0 * torch.log10(data_range**2 / mse)


def psnr(preds: Tensor, target: Tensor, data_range: float, reduction: Reduction = "mean") -> Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range² / MSE)``.

    Args:
        preds: reconstructed images, shape ``(B, C, H, W)``.
        target: original images, shape ``(B, C, H, W)``.
        data_range: peak-to-peak range of the signal (``1.0`` for ``[0, 1]``, ``255.0`` for
            8-bit values). Required: guessing it from the data makes PSNR depend on the content.
        reduction: ``"mean"`` (default) averages the PSNR of each image over the batch,
            ``"pooled"`` takes the PSNR of the MSE over all pixels of the batch, ``"none"``
            returns the per-image PSNR.

    Returns:
        PSNR in dB: a scalar, or shape ``(B,)`` for ``reduction="none"``. An image equal to its
        target has infinite PSNR, and so has the mean over a batch that contains one.
        torchmetrics computes the logarithms with float32 constants, so even float64 inputs
        give values accurate to about 1e-7 relative (1e-5 dB), ample for reporting.
    """
    _check_images(preds, target)
    _check_data_range(data_range)
    _check_reduction(reduction)
    if reduction == "pooled":
        return peak_signal_noise_ratio(preds, target, data_range=float(data_range))
    per_image = peak_signal_noise_ratio(
        preds, target, data_range=float(data_range), reduction="none", dim=(1, 2, 3)
    )
    return per_image if reduction == "none" else per_image.mean()


def ms_ssim_min_size(num_scales: int = len(MS_SSIM_BETAS)) -> int:
    """Smallest image height and width accepted by :func:`ms_ssim` with ``num_scales`` scales.

    With the 11×11 Gaussian window: 176 pixels for the standard 5 scales, 99 for 4, 44 for 3,
    12 for 2 and 11 for 1. The first two terms are torchmetrics' own size checks; the last one
    keeps the coarsest scale larger than the window's half-width, which torchmetrics' reflection
    padding needs but does not check.
    """
    if num_scales < 1:
        raise ValueError(f"num_scales must be at least 1, got {num_scales}")
    return max(
        2**num_scales,
        MS_SSIM_KERNEL_SIZE * max(1, num_scales - 1) ** 2,
        (MS_SSIM_KERNEL_SIZE // 2 + 1) * 2 ** (num_scales - 1),
    )


def ms_ssim(
    preds: Tensor,
    target: Tensor,
    data_range: float,
    betas: tuple[float, ...] = MS_SSIM_BETAS,
    reduction: Literal["mean", "none"] = "mean",
) -> Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik, 2003), unitless, in ``[0, 1]``.

    Computed by torchmetrics with an 11×11 Gaussian window (σ = 1.5), ``k1 = 0.01``,
    ``k2 = 0.03`` and torchmetrics' default ``normalize="relu"`` (negative contrast-structure
    terms are set to 0 instead of giving NaN; this changes nothing for realistic reconstructions).
    For the dB form used in rate-distortion plots take ``-10 log10(1 - ms_ssim)``.

    Args:
        preds: reconstructed images, shape ``(B, C, H, W)``.
        target: original images, shape ``(B, C, H, W)``.
        data_range: peak-to-peak range of the signal (``1.0`` for ``[0, 1]``).
        betas: exponent of each scale, finest first. The default 5 scales need
            ``H, W >= 176``; pass fewer exponents (e.g. ``MS_SSIM_BETAS[:3]``) for smaller
            images, see :func:`ms_ssim_min_size`. They are used as given, not renormalised.
        reduction: ``"mean"`` averages over images, ``"none"`` returns one value per image.

    Returns:
        MS-SSIM: a scalar, or shape ``(B,)`` for ``reduction="none"``.

    Raises:
        ValueError: images smaller than ``ms_ssim_min_size(len(betas))`` in height or width.
    """
    _check_images(preds, target)
    _check_data_range(data_range)
    _check_reduction(reduction, ("mean", "none"))
    if len(betas) == 0:
        raise ValueError("betas must hold at least one exponent")
    min_size = ms_ssim_min_size(len(betas))
    height, width = preds.shape[-2:]
    if min(height, width) < min_size:
        raise ValueError(
            f"MS-SSIM with {len(betas)} scales needs images of at least {min_size}x{min_size} "
            f"pixels, got {height}x{width}; pass fewer scales through `betas` "
            f"(see ms_ssim_min_size)"
        )
    per_image = multiscale_structural_similarity_index_measure(
        preds,
        target,
        data_range=float(data_range),
        kernel_size=MS_SSIM_KERNEL_SIZE,
        betas=tuple(float(b) for b in betas),
        reduction="none",
    )
    return per_image if reduction == "none" else per_image.mean()


def rmse(preds: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Root mean squared error, in the units of the pixel values.

    Args:
        preds: reconstructed images, shape ``(B, C, H, W)``.
        target: original images, shape ``(B, C, H, W)``.
        reduction: as for :func:`psnr`: ``"mean"`` (default) averages per-image RMSE,
            ``"pooled"`` is the RMSE over all pixels of the batch, ``"none"`` gives shape ``(B,)``.

    Returns:
        RMSE: a scalar, or shape ``(B,)`` for ``reduction="none"``.
    """
    _check_images(preds, target)
    _check_reduction(reduction)
    squared_error = (preds - target).square()
    if reduction == "pooled":
        return squared_error.mean().sqrt()
    per_image = squared_error.flatten(1).mean(dim=1).sqrt()  # (B,)
    return per_image if reduction == "none" else per_image.mean()


class _PerImageOrPooled(Metric):
    """Accumulates either a sum of per-image scores or a pooled squared error."""

    is_differentiable = True
    full_state_update = False

    def __init__(self, reduction: Literal["mean", "pooled"] = "mean", **kwargs) -> None:
        super().__init__(**kwargs)
        _check_reduction(reduction, ("mean", "pooled"))
        self.reduction = reduction
        # float64 sums: a dataset of many images must not lose precision while accumulating
        self.add_state(
            "score_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("num_images", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state(
            "squared_error_sum",
            default=torch.tensor(0.0, dtype=torch.float64),
            dist_reduce_fx="sum",
        )
        self.add_state("num_values", default=torch.tensor(0), dist_reduce_fx="sum")

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def _from_mse(self, mse: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of images of shape ``(B, C, H, W)``."""
        _check_images(preds, target)
        if self.reduction == "mean":
            self.score_sum += self._per_image(preds, target).sum().double()
            self.num_images += preds.shape[0]
        else:
            self.squared_error_sum += (preds - target).double().square().sum()
            self.num_values += preds.numel()

    def compute(self) -> Tensor:
        if self.reduction == "mean":
            return self.score_sum / self.num_images
        return self._from_mse(self.squared_error_sum / self.num_values)


class PSNR(_PerImageOrPooled):
    """PSNR in dB accumulated over batches (see :func:`psnr`).

    Args:
        data_range: peak-to-peak range of the signal (``1.0`` for ``[0, 1]``).
        reduction: ``"mean"`` (default): mean over all images seen of the per-image PSNR;
            ``"pooled"``: PSNR of the MSE over all pixels seen.
    """

    higher_is_better = True
    metric_names = ("psnr",)

    def __init__(
        self, data_range: float, reduction: Literal["mean", "pooled"] = "mean", **kwargs
    ) -> None:
        _check_data_range(data_range)
        super().__init__(reduction=reduction, **kwargs)
        self.data_range = float(data_range)

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        return psnr(preds, target, self.data_range, reduction="none")

    def _from_mse(self, mse: Tensor) -> Tensor:
        return psnr_from_mse(mse, self.data_range)


class RMSE(_PerImageOrPooled):
    """RMSE accumulated over batches (see :func:`rmse`).

    Args:
        reduction: ``"mean"`` (default): mean over all images seen of the per-image RMSE;
            ``"pooled"``: RMSE over all pixels seen.
    """

    higher_is_better = False
    metric_names = ("rmse",)

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        return rmse(preds, target, reduction="none")

    def _from_mse(self, mse: Tensor) -> Tensor:
        return mse.sqrt()


class MSSSIM(Metric):
    """MS-SSIM accumulated over batches: the mean over all images seen (see :func:`ms_ssim`).

    Args:
        data_range: peak-to-peak range of the signal (``1.0`` for ``[0, 1]``).
        betas: per-scale exponents; fewer scales allow smaller images.
    """

    higher_is_better = True
    is_differentiable = True
    full_state_update = False
    metric_names = ("ms-ssim",)

    def __init__(
        self, data_range: float, betas: tuple[float, ...] = MS_SSIM_BETAS, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        _check_data_range(data_range)
        self.data_range = float(data_range)
        self.betas = tuple(betas)
        self.add_state(
            "score_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("num_images", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of images of shape ``(B, C, H, W)``."""
        values = ms_ssim(preds, target, self.data_range, betas=self.betas, reduction="none")
        self.score_sum += values.sum().double()
        self.num_images += preds.shape[0]

    def compute(self) -> Tensor:
        return self.score_sum / self.num_images


__all__ = [
    "MS_SSIM_BETAS",
    "MSSSIM",
    "PSNR",
    "RMSE",
    "ms_ssim",
    "ms_ssim_min_size",
    "psnr",
    "psnr_from_mse",
    "rmse",
]
