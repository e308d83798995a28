"""Cityscapes in its official on-disk layout: images, fine labels, disparity, camera.

Layout read (``{split}`` is ``train``, ``val`` or ``test``; ``{stem}`` is
``{city}_{seq:06d}_{frame:06d}``)::

    root/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png   8-bit RGB
    root/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png    8-bit labelIds (0..33)
    root/disparity/{split}/{city}/{stem}_disparity.png       16-bit, p = d·256 + 1, 0 = invalid
    root/camera/{split}/{city}/{stem}_camera.json            extrinsic.baseline (m), intrinsic.fx

Label ids are mapped to the 19 training ids of the official ``cityscapesscripts/helpers/labels.py``
(everything else → 255), and disparity is decoded as the official toolkit does,
``d = (p − 1) / 256`` for ``p > 0``; metric depth is ``baseline · fx / d`` (Cordts et al.,
"The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from vinfo.data.errors import DatasetFormatError, DatasetNotFoundError
from vinfo.data.sample import DEPTH, IGNORE_INDEX, RECONSTRUCTION, SEGMENTATION, Sample
from vinfo.io import read_json


class CityscapesLabel(NamedTuple):
    """One row of the official label table (name, ``labelId``, ``trainId``)."""

    name: str
    id: int
    train_id: int


CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    CityscapesLabel("unlabeled", 0, 255),
    CityscapesLabel("ego vehicle", 1, 255),
    CityscapesLabel("rectification border", 2, 255),
    CityscapesLabel("out of roi", 3, 255),
    CityscapesLabel("static", 4, 255),
    CityscapesLabel("dynamic", 5, 255),
    CityscapesLabel("ground", 6, 255),
    CityscapesLabel("road", 7, 0),
    CityscapesLabel("sidewalk", 8, 1),
    CityscapesLabel("parking", 9, 255),
    CityscapesLabel("rail track", 10, 255),
    CityscapesLabel("building", 11, 2),
    CityscapesLabel("wall", 12, 3),
    CityscapesLabel("fence", 13, 4),
    CityscapesLabel("guard rail", 14, 255),
    CityscapesLabel("bridge", 15, 255),
    CityscapesLabel("tunnel", 16, 255),
    CityscapesLabel("pole", 17, 5),
    CityscapesLabel("polegroup", 18, 255),
    CityscapesLabel("traffic light", 19, 6),
    CityscapesLabel("traffic sign", 20, 7),
    CityscapesLabel("vegetation", 21, 8),
    CityscapesLabel("terrain", 22, 9),
    CityscapesLabel("sky", 23, 10),
    CityscapesLabel("person", 24, 11),
    CityscapesLabel("rider", 25, 12),
    CityscapesLabel("car", 26, 13),
    CityscapesLabel("truck", 27, 14),
    CityscapesLabel("bus", 28, 15),
    CityscapesLabel("caravan", 29, 255),
    CityscapesLabel("trailer", 30, 255),
    CityscapesLabel("train", 31, 16),
    CityscapesLabel("motorcycle", 32, 17),
    CityscapesLabel("bicycle", 33, 18),
    CityscapesLabel("license plate", -1, -1),
)
"""The official table (``cityscapesscripts/helpers/labels.py``): 34 ids plus license plate."""

NUM_TRAIN_IDS = 19
TRAIN_ID_NAMES: tuple[str, ...] = tuple(
    lab.name for lab in CITYSCAPES_LABELS if 0 <= lab.train_id < NUM_TRAIN_IDS
)
"""Names of the 19 evaluated classes, indexed by ``trainId``."""

# uint8 label PNGs cannot hold -1; a license plate written as uint8 wraps to 255.
_LICENSE_PLATE_PIXEL = 255
_UNMAPPED = -1
_LUT = np.full(256, _UNMAPPED, dtype=np.int64)
for _lab in CITYSCAPES_LABELS:
    _pix = _LICENSE_PLATE_PIXEL if _lab.id < 0 else _lab.id
    _LUT[_pix] = IGNORE_INDEX if _lab.train_id < 0 else _lab.train_id

SPLITS = ("train", "val", "test")


class VerifyLevel(NamedTuple):
    """How much :class:`Cityscapes` checks when it is built; each level adds to the previous one.

    Attributes:
        name: the ``verify=`` value.
        headers: open every PNG header (format, mode, size against the image) and parse every
            camera JSON that is needed.
        labels: decode every ``labelIds`` PNG and check its ids are in the official mapping.
        pixels: decode every image and disparity PNG too (catches truncated files).
        description: one line for docs and error messages.
    """

    name: str
    headers: bool
    labels: bool
    pixels: bool
    description: str


VERIFY_LEVELS: MappingProxyType[str, VerifyLevel] = MappingProxyType({
    level.name: level for level in (
        VerifyLevel("layout", False, False, False, "every required file exists"),
        VerifyLevel("header", True, False, False, "also PNG headers and camera JSONs"),
        VerifyLevel("labels", True, True, False, "also decodes labelIds PNGs and checks ids"),
        VerifyLevel("decode", True, True, True, "also decodes every image and disparity PNG"),
    )
})
"""Registry of verification levels, cheapest first."""

DEFAULT_VERIFY = "labels"
"""Label PNGs are small (one byte per pixel, highly compressible) and a bad id would otherwise
surface in the middle of an epoch, so the default decodes them."""


def label_ids_to_train_ids(label_ids: Tensor | np.ndarray) -> Tensor:
    """Map Cityscapes ``labelId`` pixels to the 19 ``trainId`` (others → 255).

    Args:
        label_ids: integer map of any shape, values in ``0..33`` or 255 (license plate, whose
            id −1 wraps to 255 in uint8 PNGs).

    Returns:
        int64 tensor of the same shape with values in ``0..18`` or 255.

    Raises:
        ValueError: a value is not a Cityscapes label id.
    """
    # NumPy, not torch: a table lookup on a 2048x1024 label map is ~10x faster here, which
    # matters because the default ``verify="labels"`` runs it on every file at construction.
    ids = np.asarray(label_ids)
    if ids.dtype != np.uint8:  # uint8 PNG pixels are always in 0..255
        ids = ids.astype(np.int64)
        bad = (ids < 0) | (ids > 255)
        if bad.any():
            raise _not_label_ids(ids[bad])
    out = _LUT[ids]
    bad = out == _UNMAPPED
    if bad.any():
        raise _not_label_ids(ids[bad])
    return torch.from_numpy(out)


def _not_label_ids(values: np.ndarray) -> ValueError:
    found = sorted(set(values.tolist()))[:5]
    return ValueError(
        f"label ids {found} are not Cityscapes labelIds (expected the 34 official ids 0..33, "
        "or 255 for license plate)"
    )


def decode_disparity(png: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """Decode a Cityscapes disparity PNG as the official toolkit does.

    Args:
        png: 16-bit values ``p`` of shape ``(..., H, W)``.

    Returns:
        ``(disparity, valid)``: float32 disparity ``d = (p − 1) / 256`` in pixels, and bool
        ``p > 0``. Invalid pixels hold 0.
    """
    p = torch.as_tensor(np.asarray(png, dtype=np.int64)).double()
    valid = p > 0
    disparity = torch.where(valid, (p - 1.0) / 256.0, torch.zeros_like(p))
    return disparity.float(), valid


def disparity_to_depth(
    disparity: Tensor, valid: Tensor, baseline_m: float, fx_px: float
) -> tuple[Tensor, Tensor]:
    """Metric depth ``Z = baseline · fx / d`` from disparity.

    Args:
        disparity: disparity ``d`` in pixels, any shape.
        valid: bool, same shape; pixels with ``d = 0`` (``p = 1``, infinitely far) also become
            invalid.
        baseline_m: stereo baseline in metres (``extrinsic.baseline`` of ``camera/*.json``).
        fx_px: focal length in pixels (``intrinsic.fx``).

    Returns:
        ``(depth, valid)``: float32 depth in metres (0 where invalid) and its bool mask.
    """
    valid = valid & (disparity > 0)
    safe = torch.where(valid, disparity.double(), torch.ones_like(disparity, dtype=torch.float64))
    depth = torch.where(valid, baseline_m * fx_px / safe, torch.zeros_like(safe))
    return depth.float(), valid


def _open_png(path: Path, expected: str, modes: tuple[str, ...], decode: bool) -> Image.Image:
    try:
        img = Image.open(path)
        if decode:
            img.load()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: missing; expected {expected}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DatasetFormatError(f"{path}: cannot read ({e}); expected {expected}") from None
    if img.format != "PNG" or img.mode not in modes:
        raise DatasetFormatError(
            f"{path}: got a {img.format} {img.mode} image; expected {expected}"
        )
    return img


def read_camera(path: str | Path) -> tuple[float, float]:
    """``(baseline_m, fx_px)`` from a Cityscapes ``*_camera.json``."""
    path = Path(path)
    try:
        cam = read_json(path)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: missing; expected a camera JSON") from None
    except ValueError as e:  # names the path and the JSON problem
        raise DatasetFormatError(str(e)) from None
    try:
        return float(cam["extrinsic"]["baseline"]), float(cam["intrinsic"]["fx"])
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetFormatError(
            f"{path}: bad camera JSON ({e!r}); expected extrinsic.baseline and intrinsic.fx"
        ) from None


class Cityscapes(Dataset):
    """Cityscapes images with semantic segmentation (trainIds) and depth targets.

    The tree is validated when the dataset is built, so a broken tree fails before training
    starts. ``verify`` names a :data:`VERIFY_LEVELS` entry: ``"layout"`` (every required file
    exists), ``"header"`` (also every PNG's header: format, mode, size; camera JSONs parse;
    about 0.1 ms per file), ``"labels"`` (the default: also decodes every labelIds PNG and
    checks its ids are in the official mapping, so a truncated label file or an unknown id
    fails here and not in the middle of an epoch; about 10 ms per 2048×1024 label PNG, half a
    minute for the 2975 training images) or ``"decode"`` (also decodes every image and
    disparity PNG: slow on the full dataset).

    Args:
        root: dataset root holding ``leftImg8bit/``, ``gtFine/``, ``disparity/``, ``camera/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        targets: which targets to load, a subset of ``("segmentation", "depth")``.
        depth: ``"disparity"`` (pixels, ``depth_unit="px"``) or ``"metric"`` (metres from
            ``camera/*.json``, ``depth_unit="m"``).
        transform: optional ``Sample → Sample`` callable.
        verify: a key of :data:`VERIFY_LEVELS`: ``"layout"``, ``"header"``, ``"labels"``
            (default) or ``"decode"``.

    Raises:
        DatasetNotFoundError: missing root, split directory or required file.
        DatasetFormatError: corrupt or wrong-format file, label id outside the mapping (with
            ``verify="labels"`` or ``"decode"``; with a cheaper level, when the sample is read).
    """

    tasks: tuple[str, ...] = (RECONSTRUCTION, DEPTH, SEGMENTATION)

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        targets: tuple[str, ...] = (SEGMENTATION, DEPTH),
        depth: str = "disparity",
        transform: Callable[[Sample], Sample] | None = None,
        verify: str = DEFAULT_VERIFY,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown Cityscapes split {split!r}; valid: {', '.join(SPLITS)}")
        if not set(targets) <= {SEGMENTATION, DEPTH}:
            raise ValueError(f"targets must be a subset of (segmentation, depth), got {targets}")
        if depth not in ("disparity", "metric"):
            raise ValueError(f"depth must be 'disparity' or 'metric', got {depth!r}")
        if verify not in VERIFY_LEVELS:
            raise ValueError(f"verify must be one of {', '.join(VERIFY_LEVELS)}, got {verify!r}")
        self.root, self.split, self.targets, self.depth = Path(root), split, tuple(targets), depth
        self.transform = transform
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"{self.root}: Cityscapes root not found; expected a directory with "
                "leftImg8bit/, gtFine/, disparity/, camera/"
            )
        img_dir = self.root / "leftImg8bit" / split
        if not img_dir.is_dir():
            raise DatasetNotFoundError(
                f"{img_dir}: missing; expected leftImg8bit/{split}/{{city}}/*_leftImg8bit.png"
            )
        self.images = sorted(img_dir.glob("*/*_leftImg8bit.png"))
        if not self.images:
            raise DatasetNotFoundError(
                f"{img_dir}: no images; expected {{city}}/{{city}}_{{seq}}_{{frame}}"
                "_leftImg8bit.png"
            )
        self.cameras: list[tuple[float, float] | None] = [None] * len(self.images)
        self._check(VERIFY_LEVELS[verify])

    def _paths(self, i: int) -> dict[str, Path]:
        img = self.images[i]
        city, stem = img.parent.name, img.name[: -len("_leftImg8bit.png")]
        def part(kind: str, suffix: str) -> Path:
            return self.root / kind / self.split / city / f"{stem}_{suffix}"
        return {
            "image": img,
            "labels": part("gtFine", "gtFine_labelIds.png"),
            "disparity": part("disparity", "disparity.png"),
            "camera": part("camera", "camera.json"),
        }

    def _required(self) -> list[str]:
        req = []
        if SEGMENTATION in self.targets:
            req.append("labels")
        if DEPTH in self.targets:
            req.append("disparity")
            if self.depth == "metric":
                req.append("camera")
        return req

    def _check(self, level: VerifyLevel) -> None:
        required = self._required()
        for i in range(len(self.images)):
            paths = self._paths(i)
            for key in required:
                if not paths[key].is_file():
                    raise DatasetNotFoundError(
                        f"{paths[key]}: missing; expected the {key} file for {paths['image'].name}"
                    )
            if not level.headers:
                continue
            size = _open_png(paths["image"], "an 8-bit RGB PNG", ("RGB",), level.pixels).size
            others = {"labels": ("an 8-bit labelIds PNG", ("L",), level.labels),
                      "disparity": ("a 16-bit disparity PNG", ("I", "I;16"), level.pixels)}
            for key in required:
                if key == "camera":
                    self.cameras[i] = read_camera(paths[key])
                    continue
                expected, modes, decode = others[key]
                img = _open_png(paths[key], expected, modes, decode)
                if img.size != size:
                    raise DatasetFormatError(
                        f"{paths[key]}: size {img.size} differs from its image's {size}"
                    )
                if key == "labels" and level.labels:
                    self._train_ids(paths[key], img)

    @staticmethod
    def _train_ids(path: Path, img: Image.Image) -> Tensor:
        try:
            return label_ids_to_train_ids(np.asarray(img))
        except ValueError as e:
            raise DatasetFormatError(f"{path}: {e}") from None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        paths = self._paths(index)
        img = _open_png(paths["image"], "an 8-bit RGB PNG", ("RGB",), decode=True)
        image = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0
        fields: dict = {}
        if SEGMENTATION in self.targets:
            lab = _open_png(paths["labels"], "an 8-bit labelIds PNG", ("L",), decode=True)
            fields["segmentation"] = self._train_ids(paths["labels"], lab)
        if DEPTH in self.targets:
            disp_png = _open_png(
                paths["disparity"], "a 16-bit disparity PNG", ("I", "I;16"), decode=True
            )
            disparity, valid = decode_disparity(np.array(disp_png))
            if self.depth == "metric":
                if self.cameras[index] is None:
                    self.cameras[index] = read_camera(paths["camera"])
                baseline, fx = self.cameras[index]
                d, valid = disparity_to_depth(disparity, valid, baseline, fx)
                fields.update(depth=d[None], depth_valid=valid[None], depth_unit="m")
            else:
                fields.update(depth=disparity[None], depth_valid=valid[None], depth_unit="px")
        city = paths["image"].parent.name
        meta = {"index": index, "file_name": str(paths["image"]), "city": city}
        sample = Sample(image=image, meta=meta, **fields)
        return sample if self.transform is None else self.transform(sample)

    def __repr__(self) -> str:
        return f"Cityscapes({str(self.root)!r}, split={self.split!r}, n={len(self)})"

