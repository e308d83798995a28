"""The dataset registry: what a dataset is everywhere, one entry per dataset name.

The CLI, the experiments (which split rule, how many segmentation classes the codec's head
has) and the probes (which split no codec saw, how to give every image one size) read these
entries; adding a dataset is one entry here plus its own loader module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch.utils.data import Dataset

from vinfo.data.cityscapes import NUM_TRAIN_IDS, Cityscapes
from vinfo.data.coco import CocoDetection
from vinfo.data.images import ALL, ImageFolder
from vinfo.data.synthetic import SYNTHETIC_CLASSES, SyntheticScenes
from vinfo.registry import Registry


@dataclass(frozen=True)
class DatasetEntry:
    """What a dataset name stands for.

    Attributes:
        constructor: builds the dataset; keyword arguments are the dataset class's.
        tasks: tasks its samples have targets for (names from :data:`vinfo.data.sample.TASKS`).
        description: one line for ``--help`` and reports.
        train_split: the split codecs train on (``train``, ``train2017``).
        unseen_split: the split no codec trains or early-stops on, which probes read: a real
            dataset's official validation split (the experiments' test set, since the official
            test labels are not public); synthetic ``val``, fresh images of the preset
            (:data:`vinfo.data.SYNTHETIC_SPLIT_SEEDS`).
        one_size: constructor arguments that give every image one size, which probes need
            (an image folder: centre-crop to the smallest size, a multiple of 16); empty where
            images already share one size or the loader pads.
        experiment_splits: how experiments split it into train/val/test
            (:data:`vinfo.experiments.datasets.SPLIT_RULES`): ``"by_index"`` (synthetic scenes
            are i.i.d. by index), ``"official"`` (the official training split minus a held-out
            tail, the official validation split as the test set); ``None``: a dataset for
            evaluation and probing only, which no codec trains on.
        segmentation_classes: classes of its segmentation maps, the size of the codec's
            segmentation head in experiments; ``None`` where nothing trains on it.
    """

    constructor: Callable[..., Dataset]
    tasks: tuple[str, ...]
    description: str
    train_split: str = "train"
    unseen_split: str = "val"
    one_size: Mapping[str, object] = field(default_factory=dict)
    experiment_splits: str | None = None
    segmentation_classes: int | None = None

    def __post_init__(self) -> None:
        if self.experiment_splits is not None and self.segmentation_classes is None:
            raise ValueError("a dataset experiments train on needs segmentation_classes")


DATASETS: Registry[DatasetEntry] = Registry("dataset")
DATASETS.add("synthetic", DatasetEntry(
    SyntheticScenes, SyntheticScenes.tasks,
    "built-in procedural street scenes with all targets (default; presets tiny, small)",
    experiment_splits="by_index", segmentation_classes=len(SYNTHETIC_CLASSES)))
DATASETS.add("coco", DatasetEntry(
    CocoDetection, CocoDetection.tasks, "COCO 2017 detection, official layout, via pycocotools",
    train_split="train2017", unseen_split="val2017",
    # no segmentation maps: the head keeps the codec's default size, Cityscapes' 19
    experiment_splits="official", segmentation_classes=NUM_TRAIN_IDS))
DATASETS.add("cityscapes", DatasetEntry(
    Cityscapes, Cityscapes.tasks,
    "Cityscapes fine segmentation (19 trainIds) and disparity/depth, official layout",
    experiment_splits="official", segmentation_classes=NUM_TRAIN_IDS))

DATASETS.add("images", DatasetEntry(
    ImageFolder, ImageFolder.tasks,
    "a folder of PNG/JPEG images (Kodak, CLIC, your own), reconstruction only; --data-root DIR",
    train_split=ALL, unseen_split=ALL, one_size={"crop": "smallest", "multiple": 16}))


def experiment_datasets() -> list[str]:
    """The datasets experiments can train codecs on (those with a split rule)."""
    return [name for name, entry in DATASETS.items() if entry.experiment_splits is not None]


def build_dataset(name: str, **kwargs: object) -> Dataset:
    """Construct the dataset registered as ``name`` with ``kwargs``."""
    return DATASETS.get(name).constructor(**kwargs)
