"""Confidence intervals for V-information: bootstrap over test images combined with seeds.

Every estimate is a ratio ``Σ_i bits_i / Σ_i pixels_i`` over test images ``i`` (bits per target
pixel). Pairing is done *before* resampling by taking per-image differences:

- ``I_V`` uses ``null_bits_i - cond_bits_i`` (paired between ``H_V(Z|∅)`` and ``H_V(Z|Y)``);
- the difference between two representations uses
  ``(null^a_i - cond^a_i) - (null^b_i - cond^b_i)`` on the same images and seeds.

Each bootstrap replicate draws the test images with replacement and, independently, the seeds
with replacement, and averages the per-seed ratios, so the interval reflects both the finite
test set and the training randomness. Intervals are percentile intervals. Pure numpy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

MIN_BOOTSTRAP_IMAGES = 2


class Estimate(NamedTuple):
    """A bootstrapped estimate (bits per target pixel unless stated otherwise).

    Attributes:
        mean: point estimate, the mean over seeds of the ratio on all test images.
        ci_low: lower end of the percentile interval.
        ci_high: upper end.
        n_seeds: seeds combined.
        n_resamples: bootstrap replicates.
    """

    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_resamples: int


def bootstrap_ratio(
    per_image_bits: np.ndarray,
    per_image_pixels: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Bootstrap ``Σ bits / Σ pixels`` over images and seeds.

    Args:
        per_image_bits: ``(S, N)`` bits per image for ``S`` seeds and ``N`` test images (a
            paired difference such as ``null - cond`` for ``I_V``), or ``(N,)`` for one seed.
        per_image_pixels: ``(N,)`` scored pixels per image (the same for every seed).
        n_resamples: bootstrap replicates; 0 returns the point estimate as both CI ends.
        confidence: coverage of the interval, in ``(0, 1)``.
        seed: seed of the resampling generator.

    Returns:
        :class:`Estimate` in bits per pixel.

    Raises:
        ValueError: shapes disagree, fewer than 2 test images, no scored pixel, or bad
            ``confidence``.
    """
    bits = np.atleast_2d(np.asarray(per_image_bits, dtype=np.float64))
    pixels = np.asarray(per_image_pixels, dtype=np.float64)
    if bits.ndim != 2 or pixels.ndim != 1 or bits.shape[1] != pixels.shape[0]:
        raise ValueError(
            f"per_image_bits {bits.shape} must be (S, N) with per_image_pixels (N,), "
            f"got {pixels.shape}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be non-negative, got {n_resamples}")
    n_seeds, n_images = bits.shape
    if n_images < MIN_BOOTSTRAP_IMAGES and n_resamples > 0:
        raise ValueError(
            f"a bootstrap needs at least {MIN_BOOTSTRAP_IMAGES} test images, got {n_images}"
        )
    if pixels.sum() <= 0:
        raise ValueError("no scored pixel in the test images")
    mean = float((bits.sum(1) / pixels.sum()).mean())
    if n_resamples == 0:
        return Estimate(mean, mean, mean, n_seeds, 0)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n_images, size=(n_resamples, n_images))  # (R, N)
    seeds = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))  # (R, S)
    pixel_sums = pixels[images].sum(1)  # (R,)
    # per-seed ratios of every replicate, then the replicate's drawn seeds are averaged
    ratios = bits[:, images].sum(-1) / np.maximum(pixel_sums, 1e-300)  # (S, R)
    replicate = np.take_along_axis(ratios.T, seeds, axis=1).mean(1)  # (R,)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicate, [alpha, 1 - alpha])
    return Estimate(mean, float(low), float(high), n_seeds, n_resamples)


def bootstrap_iv(
    null_bits: np.ndarray,
    cond_bits: np.ndarray,
    pixels: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``I_V = H_V(Z|∅) - H_V(Z|Y)`` with images paired between the two entropies.

    Args:
        null_bits: ``(S, N)`` per-image bits of the null predictor.
        cond_bits: ``(S, N)`` per-image bits of the probe fed the representation.
        pixels: ``(N,)`` scored pixels per image.
        n_resamples: see :func:`bootstrap_ratio`.
        confidence: see :func:`bootstrap_ratio`.
        seed: see :func:`bootstrap_ratio`.
    """
    null_bits, cond_bits = np.atleast_2d(null_bits), np.atleast_2d(cond_bits)
    if null_bits.shape != cond_bits.shape:
        raise ValueError(f"null {null_bits.shape} and cond {cond_bits.shape} bits differ in shape")
    return bootstrap_ratio(null_bits - cond_bits, pixels, n_resamples, confidence, seed)


def bootstrap_paired_difference(
    iv_bits_a: np.ndarray,
    iv_bits_b: np.ndarray,
    pixels: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``I_V(a) - I_V(b)`` for two representations probed on the same images and seeds.

    Args:
        iv_bits_a: ``(S, N)`` per-image ``null - cond`` bits of representation ``a``.
        iv_bits_b: the same for ``b``; seed ``s`` and image ``i`` must match ``a``'s.
        pixels: ``(N,)`` scored pixels per image.
    """
    iv_bits_a, iv_bits_b = np.atleast_2d(iv_bits_a), np.atleast_2d(iv_bits_b)
    if iv_bits_a.shape != iv_bits_b.shape:
        raise ValueError(f"unpaired inputs: shapes {iv_bits_a.shape} and {iv_bits_b.shape}")
    return bootstrap_ratio(iv_bits_a - iv_bits_b, pixels, n_resamples, confidence, seed)


def capacity_check(frame: pd.DataFrame) -> pd.Series:
    """Flag families that score significantly below a lower-rank family.

    In the population ``I_V`` can only grow with the family (every family here contains the
    lower ones' null and, at sufficient width, their predictors), so a significant drop means
    under-training or overfitting.

    Args:
        frame: rows with columns ``repr``, ``target``, ``capacity_rank``, ``iv``, ``iv_ci_low``,
            ``iv_ci_high`` (as returned by :func:`probes.estimator.run_probes`).

    Returns:
        Boolean series aligned with ``frame``: ``True`` where the row's ``iv_ci_high`` lies
        below the ``iv_ci_low`` of some lower-rank family on the same representation and target.
    """
    flags = pd.Series(False, index=frame.index)
    for _, group in frame.groupby(["repr", "target"], sort=False):
        for index, row in group.iterrows():
            lower = group[group["capacity_rank"] < row["capacity_rank"]]
            flags[index] = bool((row["iv_ci_high"] < lower["iv_ci_low"]).any())
    return flags


__all__ = [
    "MIN_BOOTSTRAP_IMAGES",
    "Estimate",
    "bootstrap_iv",
    "bootstrap_paired_difference",
    "bootstrap_ratio",
    "capacity_check",
]
