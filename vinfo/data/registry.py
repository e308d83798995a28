"""The dataset registry: one entry per dataset name, used by the CLI and experiments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch.utils.data import Dataset

from vinfo.data.cityscapes import Cityscapes
from vinfo.data.coco import CocoDetection
from vinfo.data.images import ALL, ImageFolder
from vinfo.data.synthetic import SyntheticScenes
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
            images already
            share one size or the loader pads.
    """

    constructor: Callable[..., Dataset]
    tasks: tuple[str, ...]
    description: str
    train_split: str = "train"
    unseen_split: str = "val"
    one_size: Mapping[str, object] = field(default_factory=dict)


DATASETS: Registry[DatasetEntry] = Registry("dataset")
DATASETS.add("synthetic", DatasetEntry(
    SyntheticScenes, SyntheticScenes.tasks,
    "built-in procedural street scenes with all targets (default; presets tiny, small)"))
DATASETS.add("coco", DatasetEntry(
    CocoDetection, CocoDetection.tasks, "COCO 2017 detection, official layout, via pycocotools",
    train_split="train2017", unseen_split="val2017"))
DATASETS.add("cityscapes", DatasetEntry(
    Cityscapes, Cityscapes.tasks,
    "Cityscapes fine segmentation (19 trainIds) and disparity/depth, official layout"))

DATASETS.add("images", DatasetEntry(
    ImageFolder, ImageFolder.tasks,
    "a folder of PNG/JPEG images (Kodak, CLIC, your own), reconstruction only; --data-root DIR",
    train_split=ALL, unseen_split=ALL, one_size={"crop": "smallest", "multiple": 16}))


def build_dataset(name: str, **kwargs: object) -> Dataset:
    """Construct the dataset registered as ``name`` with ``kwargs``."""
    return DATASETS.get(name).constructor(**kwargs)
