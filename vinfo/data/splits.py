"""Train / validation / test splits: the one rule shared by experiments and probes.

Two things are split, and this module owns both:

* **Items of one dataset split** (:func:`split_sizes`, :func:`partition`): ``n`` items are cut
  into train / val / test by three fractions. Val and test get
  ``max(1, round(n · fraction / Σ fractions))`` items each (Python's round, half to even;
  fractions that already sum to 1 are used as they are), train gets the rest, and each part
  must reach its minimum size. Without a seed the parts are contiguous index ranges; with a
  seed they are cut from one seeded permutation (each part sorted).
* **Synthetic dataset splits** (:data:`SYNTHETIC_SPLIT_SEEDS`, :func:`synthetic_split_config`):
  synthetic scenes have no official splits and an unlimited supply of images, so split ``s``
  of a preset is the whole preset drawn with seed ``preset.seed + SYNTHETIC_SPLIT_SEEDS[s]``.

Who uses which split, and why:

* **Experiments** (codec training and RD evaluation, :mod:`vinfo.experiments.datasets`). On
  synthetic data they take split ``train`` (offset 0, the preset itself) and cut it
  *contiguously* (no seed) into 75 / 12.5 / 12.5 %: synthetic scenes are i.i.d. by index
  (sample ``i`` has its own seeded generator), so index ranges are a fair split and stay
  stable when a preset grows. Real datasets keep their official splits: the official training
  split minus its last ``val_fraction`` (:func:`holdout_size`) trains and validates, and the
  official validation split is the test set (Cityscapes' and COCO's test labels are not
  public).
* **Probes** (:mod:`probes.sources`) read images no codec trained on: synthetic split ``val``
  (fresh images of the same preset), or a real dataset's official validation split (the
  experiments' test set), at the resolution the codec saw. They cut those images with a
  *seeded permutation* (seed 0, 60 / 20 / 20 %) into the probe's own train / val / test, the
  same for every representation so comparisons are paired; the permutation spreads real
  datasets' ordered files (Cityscapes is sorted by city) over all three parts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor

from vinfo.data.synthetic import SyntheticConfig

SPLIT_NAMES = ("train", "val", "test")

SYNTHETIC_SPLIT_SEEDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
"""Seed offsets of the synthetic splits: ``train`` (offset 0) is exactly the dataset the codecs
train on; ``val`` and ``test`` are fresh image sets, disjoint from it and from each other."""


class Partition(NamedTuple):
    """Disjoint, sorted int64 index tensors covering ``0 .. n-1``.

    Attributes:
        train: ``(n_train,)`` indices.
        val: ``(n_val,)`` indices.
        test: ``(n_test,)`` indices.
    """

    train: Tensor
    val: Tensor
    test: Tensor


def _size(n: int, fraction: float, total: float) -> int:
    return max(1, round(n * fraction / total))


def holdout_size(n: int, fraction: float) -> int:
    """Items a held-out part of ``n`` items gets: ``max(1, round(fraction · n))``.

    The rounding of :func:`split_sizes`, for a two-way cut (a real dataset's official training
    split minus a validation tail).
    """
    return _size(n, fraction, 1.0)


def split_sizes(
    n: int, fractions: Sequence[float], *, min_sizes: Sequence[int] = (1, 1, 1)
) -> tuple[int, int, int]:
    """Train, val and test sizes of ``n`` items.

    Args:
        n: number of items.
        fractions: train, val, test fractions, normalised to sum 1 (three positive numbers).
        min_sizes: fewest train, val and test items accepted.

    Returns:
        ``(n_train, n_val, n_test)``, summing to ``n``.

    Raises:
        ValueError: bad fractions, or too few items for the minimum sizes.
    """
    if len(fractions) != 3 or not all(math.isfinite(f) and f > 0 for f in fractions):
        raise ValueError(
            f"fractions must be three positive numbers (train, val, test), got {tuple(fractions)}"
        )
    if len(min_sizes) != 3:
        raise ValueError(f"min_sizes must be three numbers, got {tuple(min_sizes)}")
    total = float(sum(fractions))
    # a train fraction computed as 1 - val - test may sum to 1 ± 1 ulp: dividing by that would
    # move a size across a rounding tie, so fractions that sum to 1 are used as they are
    if math.isclose(total, 1.0, rel_tol=0.0, abs_tol=1e-9):
        total = 1.0
    n_val, n_test = _size(n, fractions[1], total), _size(n, fractions[2], total)
    sizes = (n - n_val - n_test, n_val, n_test)
    if any(size < max(low, 1) for size, low in zip(sizes, min_sizes, strict=True)):
        need = [max(low, 1) for low in min_sizes]
        raise ValueError(
            f"too few images: {n} give {sizes[0]} train, {sizes[1]} val and {sizes[2]} test "
            f"images; need at least {need[0]}, {need[1]} and {need[2]} (use more images)"
        )
    return sizes


def partition(
    n: int,
    fractions: Sequence[float],
    *,
    seed: int | None = None,
    min_sizes: Sequence[int] = (1, 1, 1),
) -> Partition:
    """Partition ``0 .. n-1`` into train / val / test (sizes from :func:`split_sizes`).

    Args:
        n: number of items.
        fractions: train, val, test fractions (normalised to sum 1).
        seed: ``None``: contiguous ranges, train first; otherwise the parts are consecutive
            slices of ``torch.randperm(n)`` drawn with this seed, each sorted.
        min_sizes: fewest train, val and test items accepted.

    Returns:
        :class:`Partition` of int64 index tensors.

    Raises:
        ValueError: bad fractions, or too few items for the minimum sizes.
    """
    n_train, n_val, _ = split_sizes(n, fractions, min_sizes=min_sizes)
    if seed is None:
        order = torch.arange(n)
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
    return Partition(*(part.sort().values for part in parts))


def synthetic_split_config(config: SyntheticConfig | str, split: str) -> SyntheticConfig:
    """The :class:`~vinfo.data.SyntheticConfig` of split ``split`` of a synthetic dataset.

    Args:
        config: a preset name (:data:`vinfo.data.PRESETS`) or a config.
        split: a name in :data:`SYNTHETIC_SPLIT_SEEDS`.

    Returns:
        ``config`` with seed ``config.seed + SYNTHETIC_SPLIT_SEEDS[split]`` (``train``:
        ``config`` itself).

    Raises:
        ValueError: an unknown preset or split.
    """
    base = SyntheticConfig.preset(config) if isinstance(config, str) else config
    if split not in SYNTHETIC_SPLIT_SEEDS:
        raise ValueError(
            f"unknown synthetic split {split!r}; valid: {', '.join(SYNTHETIC_SPLIT_SEEDS)}"
        )
    return replace(base, seed=base.seed + SYNTHETIC_SPLIT_SEEDS[split])


__all__ = [
    "SPLIT_NAMES",
    "SYNTHETIC_SPLIT_SEEDS",
    "Partition",
    "holdout_size",
    "partition",
    "split_sizes",
    "synthetic_split_config",
]
