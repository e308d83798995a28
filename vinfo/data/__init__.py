"""Datasets: built-in synthetic scenes, COCO 2017, Cityscapes and image-folder loaders,
exporters, transforms.

Every dataset yields a :class:`Sample`; :data:`DATASETS` maps names to constructors;
:mod:`vinfo.data.splits` holds the train/val/test split rule shared by experiments and probes.
"""

from vinfo.data.cityscapes import (
    CITYSCAPES_LABELS,
    NUM_TRAIN_IDS,
    TRAIN_ID_NAMES,
    Cityscapes,
    CityscapesLabel,
    decode_disparity,
    disparity_to_depth,
    label_ids_to_train_ids,
    read_camera,
)
from vinfo.data.coco import CocoDetection
from vinfo.data.errors import (
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    SkippedFileWarning,
)
from vinfo.data.export import EXPORT_FORMATS, export_cityscapes, export_coco, export_synthetic
from vinfo.data.images import IMAGE_SUFFIXES, ImageFolder
from vinfo.data.info import DatasetSummary, inspect_dataset
from vinfo.data.registry import DATASETS, DatasetEntry, build_dataset, experiment_datasets
from vinfo.data.sample import (
    DEPTH,
    DETECTION,
    IGNORE_INDEX,
    RECONSTRUCTION,
    SEGMENTATION,
    TASKS,
    Sample,
    collate,
    same_size_batches,
)
from vinfo.data.splits import (
    SPLIT_NAMES,
    SYNTHETIC_SPLIT_SEEDS,
    Partition,
    holdout_size,
    partition,
    split_sizes,
    synthetic_split_config,
)
from vinfo.data.synthetic import (
    PRESETS,
    SYNTHETIC_CLASSES,
    SceneClass,
    SyntheticConfig,
    SyntheticScenes,
    generate_scene,
)
from vinfo.data.transforms import (
    ColorJitter,
    Compose,
    Downscale,
    RandomHorizontalFlip,
    downscale,
    hflip,
    upsample_prediction,
)

__all__ = [
    "CITYSCAPES_LABELS",
    "DATASETS",
    "DEPTH",
    "DETECTION",
    "EXPORT_FORMATS",
    "IGNORE_INDEX",
    "IMAGE_SUFFIXES",
    "NUM_TRAIN_IDS",
    "PRESETS",
    "RECONSTRUCTION",
    "SEGMENTATION",
    "SPLIT_NAMES",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_SPLIT_SEEDS",
    "TASKS",
    "TRAIN_ID_NAMES",
    "Cityscapes",
    "CityscapesLabel",
    "CocoDetection",
    "ColorJitter",
    "Compose",
    "DatasetEntry",
    "DatasetError",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "DatasetSummary",
    "Downscale",
    "ImageFolder",
    "Partition",
    "RandomHorizontalFlip",
    "Sample",
    "SceneClass",
    "SkippedFileWarning",
    "SyntheticConfig",
    "SyntheticScenes",
    "build_dataset",
    "experiment_datasets",
    "collate",
    "same_size_batches",
    "decode_disparity",
    "disparity_to_depth",
    "downscale",
    "export_cityscapes",
    "export_coco",
    "export_synthetic",
    "generate_scene",
    "hflip",
    "holdout_size",
    "inspect_dataset",
    "label_ids_to_train_ids",
    "partition",
    "read_camera",
    "split_sizes",
    "synthetic_split_config",
    "upsample_prediction",
]
