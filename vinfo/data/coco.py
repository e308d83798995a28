"""COCO 2017 detection in its official on-disk layout, read with pycocotools.

Layout read (``{split}`` is e.g. ``train2017`` or ``val2017``)::

    root/{split}/{file_name}                        images named in the annotation file
    root/annotations/instances_{split}.json         images, annotations (bbox xywh), categories

Targets follow torchvision's detection references (``references/detection/coco_utils.py``):
boxes converted to ``(x1, y1, x2, y2)``, clipped to the image, degenerate boxes dropped,
crowd annotations (``iscrowd=1``) kept out of the training targets (their boxes are in
``meta["crowd_boxes"]``; COCOeval ignores detections on them), labels are the raw COCO category
ids (torchvision's Faster R-CNN uses ``num_classes=91`` indexed by them).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from vinfo.data.errors import DatasetFormatError, DatasetNotFoundError
from vinfo.data.sample import DETECTION, RECONSTRUCTION, Sample
from vinfo.io import read_json

VERIFY_LEVELS = ("layout", "header", "decode")


def _open_image(path: Path, decode: bool) -> Image.Image:
    try:
        img = Image.open(path)
        if decode:
            img.load()
        return img
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: missing; expected a JPEG or PNG image") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DatasetFormatError(
            f"{path}: cannot read ({e}); expected a JPEG or PNG image"
        ) from None


class CocoDetection(Dataset):
    """COCO 2017 images with boxes, labels and (optionally) instance masks.

    The annotation file is parsed and the layout validated when the dataset is built, so a
    broken tree fails before training starts. ``verify`` sets how much: ``"layout"`` (the JSON
    is well formed, every annotation's category exists, every image file exists), ``"header"``
    (also opens every image header and checks its size against the JSON; the default) or
    ``"decode"`` (also decodes every image).

    Args:
        root: dataset root holding ``{split}/`` and ``annotations/``.
        split: image folder name, e.g. ``"train2017"``.
        annotation_file: defaults to ``root/annotations/instances_{split}.json``.
        remove_images_without_annotations: drop images with no usable (non-crowd, non-degenerate)
            box, as torchvision's training reference does.
        masks: also decode instance masks (``Sample.masks``) from polygons or RLE.
        transform: optional ``Sample → Sample`` callable.
        verify: ``"layout"``, ``"header"`` or ``"decode"``.

    Raises:
        DatasetNotFoundError: missing root, image folder, annotation file or image.
        DatasetFormatError: malformed JSON, unknown category id, corrupt image, size mismatch.
    """

    tasks: tuple[str, ...] = (RECONSTRUCTION, DETECTION)

    def __init__(
        self,
        root: str | Path,
        split: str = "train2017",
        *,
        annotation_file: str | Path | None = None,
        remove_images_without_annotations: bool = False,
        masks: bool = True,
        transform: Callable[[Sample], Sample] | None = None,
        verify: str = "header",
    ) -> None:
        if verify not in VERIFY_LEVELS:
            raise ValueError(f"verify must be one of {VERIFY_LEVELS}, got {verify!r}")
        self.root, self.split, self.masks, self.transform = Path(root), split, masks, transform
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"{self.root}: COCO root not found; expected a directory with {split}/ and "
                "annotations/"
            )
        self.image_dir = self.root / split
        if not self.image_dir.is_dir():
            found = sorted(path.name[len("instances_"):-len(".json")] for path in
                           (self.root / "annotations").glob("instances_*.json"))
            valid = f"; splits in this root: {', '.join(found)}" if found else ""
            raise DatasetNotFoundError(
                f"{self.image_dir}: missing; expected the {split} images{valid}")
        ann = Path(annotation_file) if annotation_file else (
            self.root / "annotations" / f"instances_{split}.json")
        if not ann.is_file():
            raise DatasetNotFoundError(f"{ann}: missing; expected a COCO instances JSON")
        self.annotation_file = ann
        self.coco = self._load(ann)
        self.categories: dict[int, str] = {
            c["id"]: c["name"] for c in self.coco.dataset["categories"]
        }
        for a in self.coco.dataset["annotations"]:
            if a.get("category_id") not in self.categories:
                raise DatasetFormatError(
                    f"{ann}: annotation {a.get('id')} has category_id {a.get('category_id')}; "
                    f"expected one of the {len(self.categories)} categories"
                )
        ids = sorted(self.coco.imgs)
        if remove_images_without_annotations:
            ids = [i for i in ids if self._targets(i)[0].shape[0] > 0]
        self.ids = ids
        self._check(verify)

    @staticmethod
    def _load(path: Path) -> COCO:
        try:
            data = read_json(path)
        except ValueError as e:  # names the path and the JSON problem
            raise DatasetFormatError(str(e)) from None
        missing = [k for k in ("images", "annotations", "categories") if k not in data]
        if missing:
            raise DatasetFormatError(f"{path}: missing keys {missing}; expected a COCO "
                                     "instances file with images, annotations, categories")
        coco = COCO()
        coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco.createIndex()
        return coco

    def _check(self, verify: str) -> None:
        present = set(os.listdir(self.image_dir))
        for i in self.ids:
            info = self.coco.imgs[i]
            if info["file_name"] not in present:
                raise DatasetNotFoundError(
                    f"{self.image_dir / info['file_name']}: missing; expected image {i} of "
                    f"{self.annotation_file.name}"
                )
            if verify == "layout":
                continue
            path = self.image_dir / info["file_name"]
            img = _open_image(path, decode=verify == "decode")
            if img.size != (info["width"], info["height"]):
                raise DatasetFormatError(
                    f"{path}: size {img.size} differs from {info['width']}x{info['height']} "
                    f"in {self.annotation_file.name}"
                )

    def _targets(self, image_id: int) -> tuple[torch.Tensor, torch.Tensor, list, torch.Tensor]:
        """``(boxes (N, 4) xyxy, labels (N,), kept annotations, crowd boxes (M, 4))``."""
        info = self.coco.imgs[image_id]
        anns = self.coco.imgToAnns.get(image_id, [])
        def xyxy(a: list) -> list:
            x, y, w, h = a
            return [x, y, x + w, y + h]
        crowd = [xyxy(a["bbox"]) for a in anns if a.get("iscrowd", 0)]
        anns = [a for a in anns if not a.get("iscrowd", 0)]
        boxes = torch.tensor([xyxy(a["bbox"]) for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 0::2].clamp_(0, info["width"])
        boxes[:, 1::2].clamp_(0, info["height"])
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        labels = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
        kept = [a for a, k in zip(anns, keep.tolist(), strict=True) if k]
        crowd_boxes = torch.tensor(crowd, dtype=torch.float32).reshape(-1, 4)
        return boxes[keep], labels[keep], kept, crowd_boxes

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_dir / info["file_name"]
        img = _open_image(path, decode=True).convert("RGB")
        image = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0
        boxes, labels, anns, crowd = self._targets(image_id)
        masks = None
        if self.masks:
            h, w = image.shape[1:]
            masks = torch.from_numpy(
                np.stack([self.coco.annToMask(a) for a in anns]).astype(bool)
                if anns else np.zeros((0, h, w), dtype=bool)
            )
        meta = {"index": index, "image_id": image_id, "file_name": str(path),
                "crowd_boxes": crowd}
        sample = Sample(image=image, boxes=boxes, labels=labels, masks=masks, meta=meta)
        return sample if self.transform is None else self.transform(sample)

    def __repr__(self) -> str:
        return f"CocoDetection({str(self.root)!r}, split={self.split!r}, n={len(self)})"
