"""Train / validation / test splits for experiments, deterministic and disjoint.

The rule lives in :mod:`vinfo.data.splits`, shared with the probes. Synthetic scenes are
i.i.d. by index (sample ``i`` is drawn from its own seeded generator), so experiments split
the preset's ``train`` split (:func:`vinfo.data.synthetic_split_config`, the preset itself)
into contiguous index ranges: ``[0, n_train)`` trains, the next ``n_val`` images validate
(early stopping) and the last ``n_test`` are only ever used for the reported numbers.
Real datasets keep their official splits: the training split minus a held-out tail for
validation, and the official validation split as the test set (Cityscapes' and COCO's test
labels are not public); :attr:`vinfo.data.DatasetEntry.unseen_split` names the split no codec
trains on, which the probes read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from torch.utils.data import Dataset, Subset

from vinfo.data.registry import DATASETS, DatasetEntry, build_dataset, experiment_datasets
from vinfo.data.sample import Sample
from vinfo.data.splits import SPLIT_NAMES, holdout_size, split_sizes, synthetic_split_config
from vinfo.data.synthetic import SyntheticConfig, SyntheticScenes
from vinfo.data.transforms import ColorJitter, Compose, Downscale, RandomHorizontalFlip

Transform = Callable[[Sample], Sample]


class Splits(NamedTuple):
    """The three datasets of an experiment.

    Attributes:
        train: training images (with the training transform, e.g. flips and jitter).
        val: validation images for early stopping (no augmentation).
        test: test images for the reported metrics (no augmentation).
    """

    train: Dataset
    val: Dataset
    test: Dataset

    def get(self, name: str) -> Dataset:
        """The split called ``name`` (``train``, ``val`` or ``test``)."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)


def split_indices(
    num_images: int, val_fraction: float = 0.125, test_fraction: float = 0.125
) -> tuple[range, range, range]:
    """Contiguous, disjoint ``(train, val, test)`` index ranges covering ``range(num_images)``.

    Val and test get ``max(1, round(fraction · n))`` images each; train gets the rest
    (:func:`vinfo.data.split_sizes` with fractions ``(1 - val - test, val, test)``; the same
    sizes as :func:`vinfo.data.partition` without a seed).

    Raises:
        ValueError: fractions outside ``(0, 1)`` or too few images for three non-empty splits.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be in (0, 1), got {value}")
    n_train, n_val, _ = split_sizes(
        num_images, (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    )
    return (
        range(0, n_train),
        range(n_train, n_train + n_val),
        range(n_train + n_val, num_images),
    )


def synthetic_splits(
    config: SyntheticConfig | str = "tiny",
    *,
    val_fraction: float = 0.125,
    test_fraction: float = 0.125,
    train_transform: Transform | None = None,
    val_transform: Transform | None = None,
    test_transform: Transform | None = None,
) -> Splits:
    """Split a synthetic dataset's ``train`` split by index (see :func:`split_indices`).

    Args:
        config: a :class:`~vinfo.data.SyntheticConfig` or a preset name (``tiny``, ``small``);
            its ``train`` split (:func:`vinfo.data.synthetic_split_config`) is the config
            itself.
        val_fraction: share of images for validation.
        test_fraction: share of images for testing.
        train_transform: applied to training samples only (augmentation).
        val_transform: applied to validation samples (e.g. the ×2 downscale the codec trains
            with, so the validation loss is the training loss).
        test_transform: applied to test samples; usually none, since evaluation scores the
            original resolution (:func:`vinfo.experiments.evaluate.evaluate` downscales itself).
    """
    config = synthetic_split_config(config, "train")
    train_data = SyntheticScenes(config, transform=train_transform)
    val_data = SyntheticScenes(config, transform=val_transform)
    test_data = SyntheticScenes(config, transform=test_transform)
    train, val, test = split_indices(len(train_data), val_fraction, test_fraction)
    return Splits(Subset(train_data, train), Subset(val_data, val), Subset(test_data, test))


class SplitRequest(NamedTuple):
    """What :func:`dataset_splits` was asked for, handed to the dataset's split rule."""

    name: str
    root: str | Path | None
    synthetic: SyntheticConfig | str
    val_fraction: float
    test_fraction: float
    train_transform: Transform | None
    val_transform: Transform | None
    test_transform: Transform | None


def _official_rule(request: SplitRequest) -> Splits:
    """A real dataset: its official training split minus a held-out tail for validation, and
    its official validation split (:attr:`vinfo.data.DatasetEntry.unseen_split`) as the test
    set."""
    name, root = request.name, request.root
    if root is None:
        raise ValueError(f"dataset {name!r} needs a data root (--data-root)")
    entry = DATASETS.get(name)
    train_data = build_dataset(name, root=root, split=entry.train_split,
                               transform=request.train_transform)
    # the same files, verified by the first construction: check only that they exist
    held = build_dataset(
        name, root=root, split=entry.train_split, transform=request.val_transform,
        verify="layout",
    )
    cut = len(train_data) - holdout_size(len(train_data), request.val_fraction)
    if cut < 1:
        raise ValueError(
            f"{root}: too few training images ({len(train_data)}) to hold out a val set"
        )
    test = build_dataset(name, root=root, split=entry.unseen_split,
                         transform=request.test_transform)
    return Splits(Subset(train_data, range(cut)), Subset(held, range(cut, len(held))), test)


def _by_index_rule(request: SplitRequest) -> Splits:
    """Synthetic scenes, split by index (:func:`synthetic_splits`; ``root`` unused)."""
    return synthetic_splits(
        request.synthetic,
        val_fraction=request.val_fraction,
        test_fraction=request.test_fraction,
        train_transform=request.train_transform,
        val_transform=request.val_transform,
        test_transform=request.test_transform,
    )


SplitRule = Callable[[SplitRequest], Splits]
"""``request → Splits``: how a dataset splits into train/val/test."""

SPLIT_RULES: dict[str, SplitRule] = {"by_index": _by_index_rule, "official": _official_rule}
"""The split rules a dataset entry names (:attr:`vinfo.data.DatasetEntry.experiment_splits`)."""


def experiment_transforms(
    *, augment: bool = True, downscale: int = 1
) -> dict[str, Transform | None]:
    """The transforms of §4.1 as keyword arguments of :func:`dataset_splits`.

    Training: random horizontal flips and a mild colour jitter (``augment``), then the ×
    ``downscale`` shrink; validation: the shrink only, so the validation loss is the training
    loss; test: nothing, since evaluation scores the original resolution itself.
    """
    if downscale < 1:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    train: list[Transform] = []
    if augment:
        train += [RandomHorizontalFlip(), ColorJitter(0.2, 0.2, 0.2, 0.02)]
    shrink: list[Transform] = [Downscale(downscale)] if downscale > 1 else []
    return {
        "train_transform": Compose(train + shrink) if train + shrink else None,
        "val_transform": Compose(shrink) if shrink else None,
        "test_transform": None,
    }


def experiment_dataset(name: str) -> DatasetEntry:
    """The registry entry of a dataset experiments can train codecs on.

    Raises:
        ValueError: an unknown dataset, or one for evaluation and probing only (no split
            rule); the message lists the datasets experiments can use.
    """
    entry = DATASETS.get(name) if name in DATASETS else None
    if entry is not None and entry.experiment_splits is not None:
        return entry
    valid = ", ".join(experiment_datasets())
    if entry is not None:
        raise ValueError(f"dataset {name!r} is for evaluation and probing only (no codec "
                         f"trains on it); experiments use one of: {valid}")
    raise ValueError(f"unknown experiment dataset {name!r}; valid: {valid}")


def dataset_splits(
    name: str,
    *,
    root: str | Path | None = None,
    synthetic: SyntheticConfig | str = "tiny",
    val_fraction: float = 0.125,
    test_fraction: float = 0.125,
    train_transform: Transform | None = None,
    val_transform: Transform | None = None,
    test_transform: Transform | None = None,
) -> Splits:
    """Splits of a registered dataset, by the rule its entry names
    (:attr:`vinfo.data.DatasetEntry.experiment_splits`, one of :data:`SPLIT_RULES`).

    ``synthetic`` splits by index (:func:`synthetic_splits`, ``root`` unused); ``coco`` and
    ``cityscapes`` read ``root``: the official training split minus its last ``val_fraction``
    for validation, and the official validation split as the test set.

    Raises:
        ValueError: an unknown dataset or one for evaluation only (the message lists those
            experiments can use), or a real dataset without ``root``.
    """
    rule = experiment_dataset(name).experiment_splits
    return SPLIT_RULES[rule](SplitRequest(
        name, root, synthetic, val_fraction, test_fraction, train_transform, val_transform,
        test_transform,
    ))


__all__ = [
    "SPLIT_NAMES",
    "SPLIT_RULES",
    "SplitRequest",
    "experiment_dataset",
    "Splits",
    "dataset_splits",
    "experiment_transforms",
    "split_indices",
    "synthetic_splits",
]
