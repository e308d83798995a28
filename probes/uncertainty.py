"""Confidence intervals for V-information: bootstrap over test images combined with seeds.

Every estimate is a ratio ``Σ_i bits_i / Σ_i pixels_i`` over test images ``i`` (bits per target
pixel). Pairing is done *before* resampling by taking per-image differences:

- ``I_V`` uses ``null_bits_i - cond_bits_i`` (paired between ``H_V(Z|∅)`` and ``H_V(Z|Y)``);
- the difference between two representations uses
  ``(null^a_i - cond^a_i) - (null^b_i - cond^b_i)`` on the same images and seeds.

Each bootstrap replicate draws the test images with replacement and, independently, the seeds
with replacement, and averages the per-seed ratios, so the interval reflects both the finite
test set and the training randomness. Pure numpy.

Intervals are **percentile** intervals (Efron & Tibshirani 1993, §13.3): the ``α/2`` and
``1 - α/2`` quantiles of the replicates. BCa would correct bias and skew, but its acceleration
needs a jackknife over images *and* seeds of a ratio of sums, and the statistics here are
near-symmetric sums over many pixels; percentile intervals are what :func:`bootstrap_ratio`
documents and tests. An interval needs at least :data:`MIN_BOOTSTRAP_IMAGES` test images:
with fewer, resampling images gives intervals far narrower than the truth (with 2 images a
replicate has 3 distinct outcomes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

MIN_BOOTSTRAP_IMAGES = 20
"""Fewest test images a confidence interval accepts (a clear error below)."""


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


def _validate(bits: np.ndarray, pixels: np.ndarray, n_resamples: int,
              confidence: float) -> None:
    if bits.ndim != 2 or pixels.ndim != 1 or bits.shape[1] != pixels.shape[0]:
        raise ValueError(
            f"per_image_bits {bits.shape} must be (S, N) with per_image_pixels (N,), "
            f"got {pixels.shape}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be non-negative, got {n_resamples}")
    if bits.shape[1] < MIN_BOOTSTRAP_IMAGES and n_resamples > 0:
        raise ValueError(
            f"a confidence interval needs at least {MIN_BOOTSTRAP_IMAGES} test images, got "
            f"{bits.shape[1]} (use more images, or n_resamples=0 for point estimates only)"
        )
    if pixels.sum() <= 0:
        raise ValueError("no scored pixel in the test images")


def _draws(n_resamples: int, n_images: int, n_seeds: int, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Resampled image indices ``(R, N)`` and seed indices ``(R, S)``, both with replacement."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n_images, size=(n_resamples, n_images))
    seeds = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    return images, seeds


def _per_seed_ratios(bits: np.ndarray, pixels: np.ndarray, images: np.ndarray) -> np.ndarray:
    """``(S, R)`` ratio ``Σ bits / Σ pixels`` of every seed on every replicate's images."""
    pixel_sums = pixels[images].sum(1)  # (R,)
    return bits[:, images].sum(-1) / np.maximum(pixel_sums, 1e-300)


def _estimate(point: float, per_seed: np.ndarray, seeds: np.ndarray, confidence: float,
              n_resamples: int) -> Estimate:
    """Average each replicate's drawn seeds of ``per_seed (S, R)``; percentile interval."""
    replicate = np.take_along_axis(per_seed.T, seeds, axis=1).mean(1)  # (R,)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicate, [alpha, 1 - alpha])
    return Estimate(point, float(low), float(high), per_seed.shape[0], n_resamples)


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
        ValueError: shapes disagree, fewer than :data:`MIN_BOOTSTRAP_IMAGES` test images, no
            scored pixel, or bad
            ``confidence``.
    """
    bits = np.atleast_2d(np.asarray(per_image_bits, dtype=np.float64))
    pixels = np.asarray(per_image_pixels, dtype=np.float64)
    _validate(bits, pixels, n_resamples, confidence)
    n_seeds, n_images = bits.shape
    mean = float((bits.sum(1) / pixels.sum()).mean())
    if n_resamples == 0:
        return Estimate(mean, mean, mean, n_seeds, 0)
    images, seeds = _draws(n_resamples, n_images, n_seeds, seed)
    return _estimate(mean, _per_seed_ratios(bits, pixels, images), seeds, confidence,
                     n_resamples)


class EntropyEstimates(NamedTuple):
    """Bootstrapped ``H_V(Z|∅)``, ``H_V(Z|Y)``, ``I_V`` (bits per target pixel) and
    ``I_V / H_V(Z|∅)`` (a fraction), all from the same resampled images and seeds."""

    h_null: Estimate
    h_cond: Estimate
    iv: Estimate
    iv_normalized: Estimate


def bootstrap_entropies(
    null_bits: np.ndarray,
    cond_bits: np.ndarray,
    pixels: np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> EntropyEstimates:
    """Joint bootstrap of both V-entropies, their difference and the normalized ``I_V``.

    Every replicate draws one set of images and seeds and computes all four quantities on it,
    so the intervals are paired; ``iv`` equals :func:`bootstrap_iv` with the same ``seed``.
    The normalized ``I_V`` of a seed is ``iv_s / h_null_s``; a replicate averages its drawn
    seeds' ratios, as the point estimate averages all seeds'. It is only meaningful for
    discrete targets (``h_null > 0``); for densities the caller should discard it.

    Args:
        null_bits: ``(S, N)`` (or ``(N,)``) per-image bits of the null predictor.
        cond_bits: same shape, per-image bits of the probe fed the representation.
        pixels: ``(N,)`` scored pixels per image.
        n_resamples: see :func:`bootstrap_ratio`.
        confidence: see :func:`bootstrap_ratio`.
        seed: see :func:`bootstrap_ratio`.

    Raises:
        ValueError: as :func:`bootstrap_ratio`, or ``null_bits`` and ``cond_bits`` differ
            in shape.
    """
    null = np.atleast_2d(np.asarray(null_bits, dtype=np.float64))
    cond = np.atleast_2d(np.asarray(cond_bits, dtype=np.float64))
    pixels = np.asarray(pixels, dtype=np.float64)
    if null.shape != cond.shape:
        raise ValueError(f"null {null.shape} and cond {cond.shape} bits differ in shape")
    _validate(null, pixels, n_resamples, confidence)
    n_seeds, n_images = null.shape
    h_null_s, h_cond_s = null.sum(1) / pixels.sum(), cond.sum(1) / pixels.sum()  # (S,)
    iv_s = h_null_s - h_cond_s
    with np.errstate(divide="ignore", invalid="ignore"):
        points = (h_null_s, h_cond_s, iv_s, iv_s / h_null_s)
        if n_resamples == 0:
            return EntropyEstimates(*(Estimate(float(p.mean()), float(p.mean()),
                                               float(p.mean()), n_seeds, 0) for p in points))
        images, seeds = _draws(n_resamples, n_images, n_seeds, seed)
        r_null = _per_seed_ratios(null, pixels, images)  # (S, R)
        r_cond = _per_seed_ratios(cond, pixels, images)
        r_iv = _per_seed_ratios(null - cond, pixels, images)
        per_seed = (r_null, r_cond, r_iv, r_iv / r_null)
        return EntropyEstimates(*(
            _estimate(float(point.mean()), replicates, seeds, confidence, n_resamples)
            for point, replicates in zip(points, per_seed, strict=True)))


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

    The families nest (:class:`probes.families.Nested`: each is the one below plus a branch;
    :func:`probes.families.embed` sets a higher one to compute a lower one exactly), so in the
    population ``I_V`` can only grow along the rank, and a significant drop means
    under-training or overfitting.

    Args:
        frame: rows with columns ``repr``, ``target``, ``capacity_rank``, ``iv``, ``iv_ci_low``,
            ``iv_ci_high`` (as returned by :func:`probes.study.run_probes`).

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
    "EntropyEstimates",
    "Estimate",
    "bootstrap_entropies",
    "bootstrap_iv",
    "bootstrap_paired_difference",
    "bootstrap_ratio",
    "capacity_check",
]
