"""Write datasets to disk in the real COCO 2017 and Cityscapes layouts.

The synthetic scenes exported here are read back by :class:`vinfo.data.coco.CocoDetection` and
:class:`vinfo.data.cityscapes.Cityscapes`, which is how the loaders are tested without the real
datasets. Each file is written through :func:`vinfo.io.atomic_path` (temporary file, then
``os.replace``), so an interrupted export never leaves a half-written file under its final name.

Images are written as PNG by default (lossless: the 8-bit synthetic images round-trip exactly).
``image_format="jpg"`` writes JPEG (quality 95) as the real COCO does, at the price of exactness.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from vinfo.data.sample import Sample
from vinfo.data.synthetic import SYNTHETIC_CLASSES, SceneClass, SyntheticConfig, SyntheticScenes
from vinfo.io import atomic_path, read_json
from vinfo.lock import LOCK_NAME, folder_lock
from vinfo.registry import Registry

CITYSCAPES_BASELINE_M = 0.209313
"""Stereo baseline of the real Cityscapes rig in metres, reused for synthetic exports."""


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _encode(array: np.ndarray, fmt: str = "png") -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(array).save(buf, format="PNG")
    elif fmt == "jpg":
        Image.fromarray(array).save(buf, format="JPEG", quality=95)
    else:
        raise ValueError(f"image_format must be 'png' or 'jpg', got {fmt!r}")
    return buf.getvalue()


def _image_uint8(sample: Sample) -> np.ndarray:
    """``(H, W, 3)`` uint8 from the ``(3, H, W)`` float image."""
    return (sample.image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def export_coco(
    samples: Iterable[Sample],
    out: str | Path,
    *,
    split: str = "train2017",
    classes: tuple[SceneClass, ...] = SYNTHETIC_CLASSES,
    image_format: str = "png",
) -> Path:
    """Write samples as a COCO 2017 instances dataset.

    Writes ``out/{split}/{image_id:012d}.{png|jpg}`` and
    ``out/annotations/instances_{split}.json`` with ``bbox`` ``[x, y, w, h]`` in pixels,
    ``area`` (mask pixels), ``iscrowd=0`` and ``segmentation`` as compressed RLE
    (``pycocotools.mask.encode``). Image ids start at 1.

    Args:
        samples: samples with ``boxes``, ``labels`` and ``masks``; ``labels`` index ``classes``.
        out: dataset root (created).
        split: split folder name.
        classes: class table; only classes with a ``coco_category_id`` may appear as labels.
        image_format: ``"png"`` (lossless) or ``"jpg"``.

    Returns:
        Path of the annotation file.
    """
    out = Path(out)
    categories = [
        {"id": c.coco_category_id, "name": c.coco_name, "supercategory": c.coco_supercategory}
        for c in classes if c.coco_category_id is not None
    ]
    images, annotations = [], []
    for image_id, sample in enumerate(samples, start=1):
        if sample.boxes is None or sample.labels is None or sample.masks is None:
            raise ValueError(f"sample {image_id - 1} lacks boxes, labels or masks")
        h, w = sample.size
        file_name = f"{image_id:012d}.{image_format}"
        _write_atomic(out / split / file_name, _encode(_image_uint8(sample), image_format))
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
        masks = np.asfortranarray(sample.masks.numpy().astype(np.uint8).transpose(1, 2, 0))
        rles = mask_utils.encode(masks) if len(sample.labels) else []
        rows = zip(sample.boxes.tolist(), sample.labels.tolist(), rles, strict=True)
        for box, label, rle in rows:
            cls = classes[label]
            if cls.coco_category_id is None:
                raise ValueError(f"class {cls.name!r} has no COCO category")
            x1, y1, x2, y2 = box
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": cls.coco_category_id,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": float(mask_utils.area(rle)),
                "iscrowd": 0,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
            })
    dataset = {
        "info": {"description": "vinfo synthetic scenes in COCO 2017 layout", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    ann_file = out / "annotations" / f"instances_{split}.json"
    _write_atomic(ann_file, json.dumps(dataset).encode())
    return ann_file


def export_cityscapes(
    samples: Iterable[Sample],
    out: str | Path,
    *,
    focal_px: float,
    split: str = "train",
    city: str = "synthetic",
    baseline_m: float = CITYSCAPES_BASELINE_M,
    classes: tuple[SceneClass, ...] = SYNTHETIC_CLASSES,
) -> Path:
    """Write samples as a Cityscapes dataset (images, fine labels, disparity, camera).

    Sample ``i`` becomes ``{city}_{i:06d}_000019`` (19 is the annotated frame of a real
    Cityscapes snippet). Segmentation is written as real ``labelIds`` via
    ``classes[k].cityscapes_label_id`` (ignore → 0, "unlabeled"), instances as
    ``*_gtFine_instanceIds.png`` (``labelId · 1000 + k`` for things), disparity ``d`` (given in
    pixels, or ``d = baseline · fx / Z`` from metric depth ``Z``) stored as
    ``p = round(d · 256) + 1`` (uint16, 0 = invalid), so reading back recovers the disparity
    (and ``Z``) up to a 1/256 px step.

    Args:
        samples: samples with ``segmentation`` and ``depth`` (disparity in px or metres).
        out: dataset root (created).
        focal_px: the focal length in pixels of the disparity's camera (``intrinsic.fx``; as
            on Cityscapes it may be a larger camera than the images').
        split: ``"train"``, ``"val"`` or ``"test"``.
        city: city folder and file-name prefix.
        baseline_m: stereo baseline in metres written to ``extrinsic.baseline``.
        classes: class table mapping segmentation ids to Cityscapes label ids.

    Returns:
        ``out``.
    """
    out = Path(out)
    lut = np.zeros(256, dtype=np.uint8)  # ignore (255) and unknown → 0 "unlabeled"
    for k, c in enumerate(classes):
        lut[k] = c.cityscapes_label_id
    for i, sample in enumerate(samples):
        if sample.segmentation is None or sample.depth is None or sample.depth_valid is None:
            raise ValueError(f"sample {i} lacks segmentation or depth")
        if sample.depth_unit not in ("m", "px"):
            raise ValueError(f"sample {i} depth is in {sample.depth_unit!r}; expected m or px")
        h, w = sample.size
        stem = f"{city}_{i:06d}_000019"
        def path(kind: str, suffix: str, stem: str = stem) -> Path:
            return out / kind / split / city / f"{stem}_{suffix}"
        _write_atomic(path("leftImg8bit", "leftImg8bit.png"), _encode(_image_uint8(sample)))
        seg = sample.segmentation.numpy()
        label_ids = lut[seg.clip(0, 255)]
        _write_atomic(path("gtFine", "gtFine_labelIds.png"), _encode(label_ids))
        inst = label_ids.astype(np.uint16)
        if sample.masks is not None and sample.labels is not None:
            pairs = zip(sample.masks.numpy(), sample.labels.tolist(), strict=True)
            for k, (m, lab) in enumerate(pairs):
                inst[m] = classes[lab].cityscapes_label_id * 1000 + k
        _write_atomic(path("gtFine", "gtFine_instanceIds.png"), _encode(inst))
        z = sample.depth[0].double().numpy()
        valid = sample.depth_valid[0].numpy() & (z > 0)
        # disparity in pixels is written as it is; metric depth Z becomes B·fx / Z
        if sample.depth_unit == "px":
            disparity = z
        else:
            disparity = baseline_m * focal_px / np.where(valid, z, 1.0)
        p = np.where(valid, np.clip(np.round(disparity * 256.0) + 1, 1, 65535), 0)
        _write_atomic(path("disparity", "disparity.png"), _encode(p.astype(np.uint16)))
        camera = {
            "extrinsic": {"baseline": baseline_m, "pitch": 0.0, "roll": 0.0, "yaw": 0.0,
                          "x": 0.0, "y": 0.0, "z": 0.0},
            "intrinsic": {"fx": focal_px, "fy": focal_px, "u0": w / 2, "v0": h / 2},
        }
        _write_atomic(path("camera", "camera.json"), json.dumps(camera, indent=2).encode())
    return out


def _coco(dataset: SyntheticScenes, out: Path, **kwargs: object) -> Path:
    return export_coco(dataset, out, classes=dataset.classes, **kwargs)


def _cityscapes(dataset: SyntheticScenes, out: Path, **kwargs: object) -> Path:
    return export_cityscapes(dataset, out, focal_px=dataset.config.disparity_focal,
                             baseline_m=dataset.config.stereo_baseline_m,
                             classes=dataset.classes, **kwargs)


EXPORT_FORMATS: Registry[Callable[..., Path]] = Registry("export format")
"""On-disk formats the synthetic dataset can be exported to: ``coco``, ``cityscapes``."""
EXPORT_FORMATS.add("coco", _coco)
EXPORT_FORMATS.add("cityscapes", _cityscapes)


EXPORT_MARKER = ".vinfo-export.json"
"""File at the root of every export, listing the splits written. A non-empty folder without it
is not an export: vinfo never writes into it nor clears anything in it."""


def _owned(format: str, out: Path, split: str) -> list[Path]:
    """The paths an export of ``split`` writes (and ``overwrite`` replaces), nothing else."""
    if format == "coco":
        return [out / split, out / "annotations" / f"instances_{split}.json"]
    return [out / kind / split for kind in ("leftImg8bit", "gtFine", "disparity", "camera")]


def _prepare(format: str, out: Path, split: str, overwrite: bool) -> dict:
    """Check ``out`` (held under :func:`vinfo.lock.folder_lock`), clear the split's old files
    if ``overwrite``; return the marker's current content.

    Raises:
        FileExistsError: ``out`` holds files but no :data:`EXPORT_MARKER`, or already holds this
            split and ``overwrite`` is false.
    """
    marker = out / EXPORT_MARKER
    entries = [entry for entry in out.iterdir() if entry.name != LOCK_NAME]
    if not entries:
        return {"format": format, "splits": {}}
    if not marker.is_file() or marker.is_symlink():
        raise FileExistsError(f"{out}: output folder is not empty and not a vinfo export (no "
                              f"{EXPORT_MARKER}); choose an empty or new folder")
    try:
        record = read_json(marker)
        stored_format = record["format"]
    except (ValueError, KeyError, TypeError):
        raise FileExistsError(f"{marker}: damaged export record; remove the folder "
                              "yourself") from None
    if stored_format != format:
        raise FileExistsError(f"{out}: holds a {stored_format} export, not {format}; choose "
                              "another folder")
    present = [path for path in _owned(format, out, split) if path.exists() or path.is_symlink()]
    if present and not overwrite:
        raise FileExistsError(f"{out}: already holds split {split!r} ({present[0]}); pass "
                              "--overwrite to replace it, or choose another folder")
    for path in present:
        # rmtree never follows a symlink out of the tree; a symlink itself is only unlinked
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    record.setdefault("splits", {}).pop(split, None)
    return record


def export_synthetic(
    format: str,
    out: str | Path,
    n: int | None = None,
    config: SyntheticConfig | str = "tiny",
    *,
    overwrite: bool = False,
    **kwargs: object,
) -> Path:
    """Export the first ``n`` synthetic samples in a real dataset layout.

    ``out`` is written by one process at a time (:func:`vinfo.lock.folder_lock`). It must be
    missing, empty or an earlier export (it holds an :data:`EXPORT_MARKER`); a split already in
    it is refused unless ``overwrite``, which first removes that split's files (and only
    those), so no file of the old export survives next to the new one.

    Args:
        format: a name in :data:`EXPORT_FORMATS` (``"coco"`` or ``"cityscapes"``).
        out: dataset root (created).
        n: number of samples, at least 1 (the loaders reject an empty tree); ``None`` means the
            config's ``num_images``.
        config: a :class:`SyntheticConfig` or preset name.
        overwrite: replace the split if ``out`` already holds it.
        **kwargs: passed to :func:`export_coco` / :func:`export_cityscapes` (e.g. ``split``).

    Returns:
        What the exporter returns (the annotation file for COCO, the root for Cityscapes).

    Raises:
        ValueError: ``n < 1``; nothing is written.
        FileExistsError: ``out`` is neither empty nor an export, or holds the split and
            ``overwrite`` is false; nothing is written.
        vinfo.lock.FolderBusyError: another process is writing ``out``.
    """
    exporter = EXPORT_FORMATS.get(format)
    cfg = SyntheticConfig.preset(config) if isinstance(config, str) else config
    n = cfg.num_images if n is None else n
    if n < 1:
        # An empty tree is not a dataset: both loaders refuse a split with no images.
        raise ValueError(f"n must be >= 1 to export a dataset, got {n}")
    cfg = replace(cfg, num_images=n)
    out = Path(out)
    split = str(kwargs.get("split", "train2017" if format == "coco" else "train"))
    with folder_lock(out):
        record = _prepare(format, out, split, overwrite)
        # before the files: an interrupted export is still recognised as one by --overwrite
        record["splits"][split] = {"num_images": n, "config": dataclasses.asdict(cfg)}
        _write_atomic(out / EXPORT_MARKER, json.dumps(record, default=str).encode())
        return exporter(SyntheticScenes(cfg), out, **kwargs)
