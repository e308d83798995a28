"""Summarise a dataset directory: which layout, splits, counts, image sizes, class histogram."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vinfo.data.cityscapes import SPLITS, TRAIN_ID_NAMES, Cityscapes
from vinfo.data.coco import CocoDetection
from vinfo.data.errors import DatasetNotFoundError
from vinfo.data.sample import DEPTH, DETECTION, IGNORE_INDEX, SEGMENTATION


@dataclass
class DatasetSummary:
    """What :func:`inspect_dataset` found.

    Attributes:
        root: the directory inspected.
        format: ``"coco"`` or ``"cityscapes"``.
        targets: the targets found and verified (``detection``; ``segmentation``, ``depth``).
        splits: number of images per split.
        image_sizes: ``(width, height)`` → number of images.
        class_histogram: class name → count (COCO: annotations; Cityscapes: labelled pixels).
    """

    root: Path
    format: str
    targets: tuple[str, ...] = ()
    splits: dict[str, int] = field(default_factory=dict)
    image_sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    class_histogram: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.format} dataset at {self.root}"]
        if self.targets:
            lines.append(f"  targets: {', '.join(self.targets)}")
        lines += [f"  split {s}: {n} images" for s, n in self.splits.items()]
        lines += [f"  size {w}x{h}: {n} images" for (w, h), n in self.image_sizes.items()]
        unit = "annotations" if self.format == "coco" else "pixels"
        lines += [f"  class {c}: {n} {unit}" for c, n in self.class_histogram.items()]
        return "\n".join(lines)


def _coco(root: Path) -> DatasetSummary:
    out = DatasetSummary(root, "coco", targets=(DETECTION,))
    sizes: Counter = Counter()
    hist: Counter = Counter()
    for ann in sorted((root / "annotations").glob("instances_*.json")):
        split = ann.stem[len("instances_"):]
        # Decode every image: the sizes reported come from the JSON, so check they are real.
        ds = CocoDetection(root, split, verify="decode")
        out.splits[split] = len(ds)
        sizes.update((i["width"], i["height"]) for i in ds.coco.dataset["images"])
        hist.update(ds.categories[a["category_id"]] for a in ds.coco.dataset["annotations"])
    out.image_sizes, out.class_histogram = dict(sizes), dict(sorted(hist.items()))
    return out


def _cityscapes(root: Path) -> DatasetSummary:
    out = DatasetSummary(root, "cityscapes")
    sizes: Counter = Counter()
    pixels = np.zeros(256, dtype=np.int64)
    found: dict[str, None] = {}
    for split in SPLITS:
        if not (root / "leftImg8bit" / split).is_dir():
            continue
        # Depth is optional (a tree may hold only images and gtFine), but whatever is there
        # is read: every sample below decodes its image, labels, disparity and camera JSON.
        targets = (SEGMENTATION, DEPTH) if (root / "disparity" / split).is_dir() else (
            SEGMENTATION,)
        depth = "metric" if (root / "camera" / split).is_dir() else "disparity"
        ds = Cityscapes(root, split, targets=targets, depth=depth, verify="header")
        out.splits[split] = len(ds)
        found.update(dict.fromkeys(targets))
        for i in range(len(ds)):
            s = ds[i]
            sizes[(s.size[1], s.size[0])] += 1
            pixels += np.bincount(s.segmentation.numpy().ravel(), minlength=256)
    names = {**dict(enumerate(TRAIN_ID_NAMES)), IGNORE_INDEX: "ignore"}
    out.targets = tuple(found)
    out.image_sizes = dict(sizes)
    out.class_histogram = {names[k]: int(pixels[k]) for k in names if pixels[k] > 0}
    return out


# (layout name, marker relative to the root, summariser)
_LAYOUTS: tuple[tuple[str, str, Callable[[Path], DatasetSummary]], ...] = (
    ("coco", "annotations", _coco),
    ("cityscapes", "leftImg8bit", _cityscapes),
)


def inspect_dataset(root: str | Path) -> DatasetSummary:
    """Detect the layout of ``root`` and summarise it.

    COCO is recognised by ``annotations/instances_*.json``, Cityscapes by ``leftImg8bit/``.
    Everything reported on is verified, so a summary is only printed for a readable tree: every
    COCO image is decoded, and every Cityscapes image, labelIds PNG and, where the split has
    them, disparity PNG and camera JSON (seconds on a small tree, minutes on a full dataset).

    Raises:
        DatasetNotFoundError: ``root`` is missing or matches no known layout.
        DatasetError: a loader rejects the tree (see :class:`CocoDetection`, :class:`Cityscapes`).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: not a directory; expected a dataset root")
    for _, marker, summarise in _LAYOUTS:
        if (root / marker).is_dir():
            return summarise(root)
    markers = " or ".join(f"{m}/" for _, m, _ in _LAYOUTS)
    raise DatasetNotFoundError(f"{root}: no known dataset layout; expected {markers}")
