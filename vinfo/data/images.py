"""A folder of images (Kodak, CLIC, your own) as a dataset: reconstruction is the only target.

Read as CompressAI's ``compressai.utils.eval_model`` reads its image folders: the files of a
directory and its sub-folders whose suffix is in :data:`IMAGE_SUFFIXES`, in sorted order, each
converted to RGB (a grayscale image is repeated over three channels, an alpha
channel dropped). Images keep their own sizes; codecs pad them to their stride and crop the
output (:func:`vinfo.models.transforms.pad_to_stride`), so rates are charged to the real
pixels.

Every file is decoded once when the dataset is built, so an unreadable file is found before
any work starts: it is left out and listed in :attr:`ImageFolder.skipped` with a one-line
reason and a :class:`SkippedFileWarning` (``on_error="skip"``, the default), or raises
:class:`DatasetFormatError` (``on_error="raise"``).

Probes need one image size: ``crop="smallest"`` centre-crops every image to the smallest
height and the smallest width in the folder, rounded down to a multiple of ``multiple`` (16,
the stride of vinfo's and CompressAI's latents, where probes build the folder: Kodak's 768×512
and 512×768 images become 512×512), and ``crop=(H, W)`` to a given size.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vinfo.data.errors import DatasetFormatError, DatasetNotFoundError, SkippedFileWarning
from vinfo.data.sample import RECONSTRUCTION, Sample

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""File suffixes read (case-insensitive), CompressAI's ``IMG_EXTENSIONS``."""
ALL = "all"
"""The split that names the folder itself; any other split names a sub-folder."""
ON_ERROR = ("skip", "raise")

Crop = tuple[int, int] | str | None


def _read(path: Path) -> Image.Image:
    """The decoded RGB image at ``path``.

    Raises:
        DatasetFormatError: the file cannot be decoded.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatasetFormatError(f"{path}: cannot read ({reason}); expected an image "
                                 f"({', '.join(IMAGE_SUFFIXES)})") from None


def _centre_crop(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    height, width = image.shape[-2:]
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return image[..., top:top + size[0], left:left + size[1]]


class ImageFolder(torch.utils.data.Dataset):
    """The images of one folder, as :class:`Sample` with the image only.

    Args:
        root: the folder.
        split: :data:`ALL` (the folder itself) or the name of a sub-folder of ``root``.
        crop: ``None`` (each image as stored), ``"smallest"`` (centre-crop all to the smallest
            height and width found) or ``(H, W)`` (centre-crop all; images smaller than that are
            refused).
        transform: optional ``Sample → Sample`` callable.
        on_error: ``"skip"`` an unreadable file (listed in :attr:`skipped`) or ``"raise"``.
        multiple: ``crop="smallest"`` rounds the size down to a multiple of this.

    Attributes:
        files: the images read, in order (sample ``i`` is ``files[i]``; ``meta["file_name"]``
            its path relative to the folder).
        skipped: ``(file, one-line reason)`` of every file left out.
        sizes: ``(H, W)`` of each image as stored.

    Raises:
        DatasetNotFoundError: no such folder, or no readable image in it.
        DatasetFormatError: an unreadable file with ``on_error="raise"``, or an image smaller
            than ``crop``.
    """

    tasks: tuple[str, ...] = (RECONSTRUCTION,)

    def __init__(self, root: str | Path, split: str = ALL, *, crop: Crop = None,
                 transform: Callable[[Sample], Sample] | None = None,
                 on_error: str = "skip", multiple: int = 1) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if crop is not None and crop != "smallest" and not (
                isinstance(crop, tuple) and len(crop) == 2 and min(crop) >= 1):
            raise ValueError(f"crop must be None, 'smallest' or (H, W), got {crop!r}")
        self.root, self.split, self.transform = Path(root), split, transform
        self.folder = self.root if split == ALL else self.root / split
        if not self.folder.is_dir():
            raise DatasetNotFoundError(f"{self.folder}: no such image folder")
        candidates = sorted(path for path in self.folder.rglob("*")
                            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
        self.files: list[Path] = []
        self.sizes: list[tuple[int, int]] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in candidates:
            try:
                width, height = _read(path).size
            except DatasetFormatError as error:
                if on_error == "raise":
                    raise
                self.skipped.append((path, str(error)))
                warnings.warn(f"skipped {error}", SkippedFileWarning, stacklevel=2)
                continue
            self.files.append(path)
            self.sizes.append((height, width))
        if not self.files:
            raise DatasetNotFoundError(
                f"{self.folder}: no readable image ({', '.join(IMAGE_SUFFIXES)})"
                + (f"; {len(self.skipped)} unreadable" if self.skipped else ""))
        if crop == "smallest":
            height, width = min(h for h, _ in self.sizes), min(w for _, w in self.sizes)
            crop = (height - height % multiple, width - width % multiple)
            if min(crop) < 1:
                raise DatasetFormatError(f"{self.folder}: the smallest image ({height}x{width}) "
                                         f"is smaller than {multiple} pixels")
        if crop is not None:
            small = [f"{path.name} ({h}x{w})" for path, (h, w) in zip(self.files, self.sizes,
                                                                     strict=True)
                     if h < crop[0] or w < crop[1]]
            if small:
                raise DatasetFormatError(f"{self.folder}: images smaller than the crop "
                                         f"{crop[0]}x{crop[1]}: {', '.join(small[:3])}")
        self.crop: tuple[int, int] | None = crop  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        path = self.files[index]
        array = np.asarray(_read(path), dtype=np.uint8)
        image = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0
        if self.crop is not None:
            image = _centre_crop(image, self.crop)
        sample = Sample(image=image, meta={"index": index,
                                           "file_name": str(path.relative_to(self.folder)),
                                           "path": str(path)})
        return sample if self.transform is None else self.transform(sample)

    def describe(self) -> str:
        """One line: the folder, the image count, the crop and the files left out."""
        crop = f", centre-cropped to {self.crop[0]}x{self.crop[1]}" if self.crop else ""
        skipped = f", {len(self.skipped)} unreadable skipped" if self.skipped else ""
        return f"{self.folder}: {len(self)} images{crop}{skipped}"

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.folder)!r}, n={len(self)}, crop={self.crop})"


__all__ = ["ALL", "IMAGE_SUFFIXES", "ImageFolder"]
