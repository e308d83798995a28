"""Where probe data comes from: the dataset split behind a representation, its targets, and
the train/val/test partition shared by every representation.

A :class:`DataSource` names a dataset split (``synthetic`` preset ``tiny``, split ``val``, or a
COCO/Cityscapes root) and the factor its images are shrunk by (``downscale``: the codec's input
resolution). Representations are computed on its first ``n_images`` samples and identified by
*sample id* = dataset index. :func:`build_probe_inputs` reads the targets of those samples from
the dataset (:attr:`probes.heads.Target.field`: reconstruction = the image, depth with its
validity mask, segmentation; downscaled like the codec's input, so probes measure information
about what the codec saw) and partitions the ids into probe train/val/test with one seeded
permutation (:func:`vinfo.data.partition`), so every representation is probed on the same
images with the same seeds and the comparisons between them are paired.

Synthetic scenes have no predefined splits and an unlimited supply of i.i.d. images: split
``s`` is the whole preset drawn with seed ``preset.seed + SYNTHETIC_SPLIT_SEEDS[s]``
(:func:`vinfo.data.synthetic_split_config`). ``train`` (offset 0) is exactly the dataset
experiments train codecs on (they carve their own train/val/test index ranges out of it);
``val`` (the default) and ``test`` are fresh image sets the codec never saw, as large as the
preset. :mod:`vinfo.data.splits` explains which splits experiments and probes use.

Memory: :func:`build_probe_inputs` reads every target of the chosen samples once (float32
``N × C_t × H × W``; int64 for segmentation, plus a bool mask for depth), shared by all
representations, and gathers each representation's ``ŷ`` rows (float32 ``N × C × h × w``), all
in probe order so that the splits are views. Arrays beyond :func:`probes.storage.memory_budget`
(1 GiB by default) are disk-backed, and the probes pass over them in batches and row chunks, so a
dataset larger than memory can be probed; ``n_images`` caps the work, not only the memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from probes.bundles import RepresentationBundle
from probes.estimator import max_label
from probes.heads import IGNORE_INDEX, get_target
from probes.probe_data import ProbeData, ProbeSplits
from probes.storage import allocate
from vinfo.data import (
    DATASETS,
    PRESETS,
    SYNTHETIC_SPLIT_SEEDS,
    Downscale,
    build_dataset,
    partition,
    synthetic_split_config,
)
from vinfo.io import json_digest
from vinfo.models.tasks import get_task

DEFAULT_DATASET = "synthetic"
DEFAULT_PRESET = "tiny"
DEFAULT_SPLIT = "val"
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
"""Probe train / val / test fractions of the chosen images."""
DATA_KEYS = ("dataset", "preset", "split", "root", "n_images", "downscale")
_INT_KEYS = ("n_images", "downscale")


@dataclass(frozen=True)
class DataSource:
    """A dataset split and how many of its images to use.

    Attributes:
        dataset: name in :data:`vinfo.data.DATASETS`.
        split: dataset split (``train``/``val``/``test``; COCO: ``val2017``...).
        preset: synthetic preset (:data:`vinfo.data.PRESETS`); ``None`` for other datasets.
        root: dataset root directory (COCO, Cityscapes); ``None`` for synthetic.
        n_images: use dataset indices ``0 .. n_images - 1``; ``None``: all.
        downscale: images (and so targets) are shrunk by this integer factor
            (:class:`vinfo.data.Downscale`), the resolution the codec was trained at; 1: as
            stored.
    """

    dataset: str = DEFAULT_DATASET
    split: str = DEFAULT_SPLIT
    preset: str | None = DEFAULT_PRESET
    root: str | None = None
    n_images: int | None = None
    downscale: int = 1

    def __post_init__(self) -> None:
        DATASETS.get(self.dataset)  # unknown names list the valid ones
        if self.n_images is not None and self.n_images < 1:
            raise ValueError(f"n_images must be positive, got {self.n_images}")
        if not isinstance(self.downscale, int) or self.downscale < 1:
            raise ValueError(f"downscale must be an integer >= 1, got {self.downscale!r}")
        if self.dataset == "synthetic":
            if self.preset not in PRESETS:
                raise ValueError(f"unknown synthetic preset {self.preset!r}; valid: "
                                 f"{', '.join(PRESETS)}")
            if self.split not in SYNTHETIC_SPLIT_SEEDS:
                raise ValueError(f"unknown synthetic split {self.split!r}; valid: "
                                 f"{', '.join(SYNTHETIC_SPLIT_SEEDS)}")
        elif self.root is None:
            raise ValueError(f"dataset {self.dataset!r} needs a data root (--data-root)")

    def build(self) -> Dataset:
        """The dataset split, downscaled, in one image size (all of it; :meth:`sample_ids` applies
        ``n_images``)."""
        transform = Downscale(self.downscale) if self.downscale > 1 else None
        if self.dataset == "synthetic":
            config = synthetic_split_config(self.preset, self.split)  # type: ignore[arg-type]
            return build_dataset("synthetic", config=config, transform=transform)
        # probes stack images: a dataset of mixed sizes is built with its one-size options
        # (an image folder: centre-cropped to its smallest size)
        return build_dataset(self.dataset, root=self.root, split=self.split, transform=transform,
                             **DATASETS.get(self.dataset).one_size)

    def sample_ids(self, dataset: Dataset) -> Tensor:
        """``(N,)`` int64 dataset indices used: the first ``n_images`` (or all)."""
        size = len(dataset)  # type: ignore[arg-type]
        if size == 0:
            raise ValueError(f"{self.describe()}: the dataset split is empty")
        return torch.arange(size if self.n_images is None else min(self.n_images, size))

    def metadata(self) -> dict[str, str]:
        """String entries for a bundle header (``""`` for ``None``)."""
        return {key: "" if value is None else str(value) for key, value in asdict(self).items()}

    def digest(self) -> str:
        """Hex digest that identifies this source in cache file names."""
        fields = asdict(self)
        if self.downscale == 1:  # the digest of sources from before the field: caches stay valid
            del fields["downscale"]
        return json_digest(fields)

    def describe(self) -> str:
        """One line: ``synthetic/tiny/val (first 24 images)``, ``…, x2 downscale)``."""
        where = self.preset if self.dataset == "synthetic" else self.root
        count = "all images" if self.n_images is None else f"first {self.n_images} images"
        scale = f", x{self.downscale} downscale" if self.downscale > 1 else ""
        crop = ", centre-cropped to one size" if "crop" in DATASETS.get(self.dataset).one_size \
            else ""
        return f"{self.dataset}/{where}/{self.split} ({count}{scale}{crop})"


def recorded_data(entries: Mapping[str, object]) -> dict[str, object]:
    """The data fields recorded in a checkpoint spec or a bundle header.

    Reads a nested ``"data"`` mapping if there is one, else top-level keys; ``root`` may also be
    spelled ``data_root``. Empty strings mean absent (bundle headers store ``None`` as ``""``).
    """
    nested = entries.get("data")
    source = nested if isinstance(nested, Mapping) else entries
    found: dict[str, object] = {}
    for key in DATA_KEYS:
        value = source.get(key, source.get("data_root") if key == "root" else None)
        if value not in (None, ""):
            found[key] = int(value) if key in _INT_KEYS else value  # type: ignore[call-overload]
    return found


def resolve_source(recorded: Mapping[str, object] | None = None, *, dataset: str | None = None,
                   split: str | None = None, preset: str | None = None,
                   root: str | Path | None = None, n_images: int | None = None,
                   downscale: int | None = None) -> DataSource:
    """The :class:`DataSource` of a representation: explicit arguments win, then what the
    checkpoint or bundle recorded (only if it names the same dataset), then the defaults
    (``synthetic``, preset ``tiny``, the dataset's unseen split, e.g. ``val`` or COCO's
    ``val2017``, all images, no downscale).

    Raises:
        ValueError: unknown dataset, preset or split; a non-synthetic dataset without root.
    """
    recorded = dict(recorded or {})
    name = dataset or str(recorded.get("dataset") or DEFAULT_DATASET)
    if recorded.get("dataset", DEFAULT_DATASET) != name:
        recorded = {}
    recorded_preset = recorded.get("preset")
    if recorded_preset not in PRESETS:  # a codec preset name ("paper") says nothing here
        recorded_preset = None
    synthetic = name == "synthetic"
    return DataSource(
        dataset=name,
        # a dataset's default is its registry's unseen split (COCO: val2017)
        split=split or str(recorded.get("split") or DATASETS.get(name).unseen_split),
        preset=(preset or recorded_preset or DEFAULT_PRESET) if synthetic else None,
        root=None if synthetic else (str(Path(root).resolve()) if root is not None
                                     else recorded.get("root")),  # type: ignore[arg-type]
        n_images=n_images if n_images is not None else recorded.get("n_images"),  # type: ignore[arg-type]
        downscale=downscale if downscale is not None else recorded.get("downscale", 1),  # type: ignore[arg-type]
    )


def split_positions(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                    min_test: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """Deterministic partition of ``0 .. n-1`` into probe train / val / test positions:
    :func:`vinfo.data.partition` with a seed.

    Args:
        n: number of images.
        fractions: train, val, test fractions (normalised to sum 1).
        seed: seed of the permutation.
        min_test: fewest test images accepted (2; :func:`probes.pipeline.probe_files` asks
            for :data:`probes.uncertainty.MIN_BOOTSTRAP_IMAGES` when it computes intervals).

    Returns:
        Three sorted int64 tensors of positions (a :class:`vinfo.data.Partition`).

    Raises:
        ValueError: bad fractions, or too few images for one train, one val and ``min_test``
            test images.
    """
    return partition(n, fractions, seed=seed, min_sizes=(1, 1, min_test))


def read_targets(dataset: Dataset, ids: Tensor, target: str) -> tuple[Tensor, Tensor | None]:
    """Targets of samples ``ids`` read from ``dataset``, one sample at a time, into arrays that
    go to disk beyond :func:`probes.storage.memory_budget` (datasets larger than memory).

    Args:
        dataset: yields :class:`vinfo.data.Sample`.
        ids: ``(N,)`` dataset indices; row ``i`` of the result is sample ``ids[i]``.
        target: name in :data:`probes.heads.TARGETS`.

    Returns:
        ``z (N, C_t, H, W)`` (float32, or int64 class ids) and the validity mask
        ``(N, 1, H, W)`` bool, or ``None`` for targets without one.

    Raises:
        ValueError: no sample, a sample lacks the target, or images differ in size.
    """
    spec = get_target(target)
    if len(ids) == 0:
        raise ValueError(f"no sample to read {target} targets from")
    z: Tensor | None = None
    mask: Tensor | None = None
    for row, index in enumerate(ids.tolist()):
        sample = dataset[index]
        value = getattr(sample, spec.field)
        if value is None:
            raise ValueError(f"sample {index} of the dataset has no {target} target")
        value = value.unsqueeze(0) if value.ndim == 2 else value
        valid = None if spec.mask_field is None else getattr(sample, spec.mask_field).bool()
        if z is None:
            dtype = torch.float32 if value.is_floating_point() else torch.int64
            z = allocate((len(ids), *value.shape), dtype)
            if valid is not None:
                mask = allocate((len(ids), *valid.shape), torch.bool)
        if value.shape != z.shape[1:]:
            raise ValueError(f"{target} targets differ in size ({tuple(z.shape[1:])} vs "
                             f"{tuple(value.shape)} of sample {index}); probes need one image "
                             "size")
        z[row] = value
        if mask is not None:
            mask[row] = valid
    return z, mask  # type: ignore[return-value]


class ProbeInputs(NamedTuple):
    """Everything :func:`probes.study.run_probes` needs, built from one data source.

    Attributes:
        data: ``data[repr][target]`` = :class:`ProbeSplits`; targets are shared tensors.
        head_kwargs: per-target head arguments (``num_classes`` for segmentation).
        sample_ids: the dataset indices of the probe train, val and test images.
        source: the data source.
    """

    data: dict[str, dict[str, ProbeSplits]]
    head_kwargs: dict[str, dict[str, object]]
    sample_ids: tuple[Tensor, Tensor, Tensor]
    source: DataSource


def _num_classes(dataset: Dataset, z: Tensor) -> int:
    observed = max_label(z, IGNORE_INDEX) + 1
    declared = len(getattr(dataset, "classes", ()) or ())
    return max(observed, declared, 2)


def build_probe_inputs(representations: Mapping[str, RepresentationBundle],
                       targets: Sequence[str], source: DataSource, *,
                       fractions: Sequence[float] = DEFAULT_FRACTIONS, split_seed: int = 0,
                       min_test: int = 2, dataset: Dataset | None = None) -> ProbeInputs:
    """Pair representations with targets and split them identically.

    Args:
        representations: name → bundle; every bundle must hold the same sample ids (those of
            ``source``; ids beyond ``source.n_images`` are dropped first).
        targets: target names.
        source: the data the ids index.
        fractions: probe train / val / test fractions.
        split_seed: seed of the partition (the same for every representation and target).
        min_test: fewest test images accepted.
        dataset: ``source.build()``, where the caller holds it already (a grid worker keeps
            one per source, with the scenes it generated; default: built here).

    Returns:
        :class:`ProbeInputs`.

    Raises:
        ValueError: no representation, unknown target, a target the dataset lacks, different
            sample ids between representations, a representation whose size does not divide
            the target's, or too few images.
    """
    if not representations:
        raise ValueError("no representation to probe")
    if not targets:
        raise ValueError("no target to probe")
    have = DATASETS.get(source.dataset).tasks
    fields = {get_task(task).field for task in have}  # a target is a field its samples hold
    for target in targets:
        if get_target(target).field not in fields:
            raise ValueError(f"dataset {source.dataset!r} has no {target} targets; it has: "
                             f"{', '.join(t for t in have if t != 'detection')}")
    ids_of = {}
    for name, bundle in representations.items():
        ids = bundle.sample_ids
        if source.n_images is not None:
            ids = ids[ids < source.n_images]
        ids_of[name] = ids.sort().values
    first_name, ids = next(iter(ids_of.items()))
    for name, other in ids_of.items():
        if not torch.equal(other, ids):
            raise ValueError(f"representations {first_name!r} and {name!r} cover different "
                             f"images ({len(ids)} vs {len(other)} sample ids): comparisons "
                             "must be paired")
    if ids.numel() == 0:
        raise ValueError(f"no representation rows for {source.describe()}")
    positions = split_positions(len(ids), fractions, split_seed, min_test)
    dataset = source.build() if dataset is None else dataset
    if int(ids.max()) >= len(dataset):  # type: ignore[arg-type]
        raise ValueError(f"sample id {int(ids.max())} is beyond the {len(dataset)} images of "  # type: ignore[arg-type]
                         f"{source.describe()}")
    # rows in probe order (train, then val, then test), so that each split is a slice: a view,
    # also of the disk-backed arrays that hold data larger than memory (probes.storage)
    ordered = ids[torch.cat(positions)]
    bounds = torch.tensor([0] + [len(p) for p in positions]).cumsum(0).tolist()
    parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    ys = {name: bundle.select(ordered) for name, bundle in representations.items()}
    data: dict[str, dict[str, ProbeSplits]] = {name: {} for name in representations}
    head_kwargs: dict[str, dict[str, object]] = {}
    for target in targets:
        z, mask = read_targets(dataset, ordered, target)
        if not z.is_floating_point():
            head_kwargs[target] = {"num_classes": _num_classes(dataset, z)}
        for name, y in ys.items():
            (h, w), (height, width) = y.shape[-2:], z.shape[-2:]
            if height % h or width % w or height // h != width // w:
                raise ValueError(f"representation {name!r} is {h}x{w} but the {target} targets "
                                 f"are {height}x{width}: not one integer multiple")
        split_z = [(z[p], None if mask is None else mask[p]) for p in parts]
        for name, y in ys.items():
            data[name][target] = ProbeSplits(*(ProbeData(y[p], zp, mp)
                                          for p, (zp, mp) in zip(parts, split_z, strict=True)))
    sample_ids = tuple(ordered[p] for p in parts)
    return ProbeInputs(data, head_kwargs, sample_ids, source)  # type: ignore[arg-type]


__all__ = [
    "DEFAULT_FRACTIONS",
    "SYNTHETIC_SPLIT_SEEDS",
    "DataSource",
    "ProbeInputs",
    "build_probe_inputs",
    "read_targets",
    "recorded_data",
    "resolve_source",
    "split_positions",
]
