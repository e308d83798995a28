"""Representation bundles: precomputed ``ŷ`` with sample ids in one safetensors file.

A bundle lets probes train from a cache instead of re-running a codec. Layout of the file:

- tensor ``y_hat``: ``(N, C, h, w)`` float32, the (quantised) representations;
- tensor ``sample_ids``: ``(N,)`` int64, the dataset index of every row;
- metadata (string → string, safetensors' header): ``format`` = ``vinfo.representation``,
  ``version``, and any user entries (checkpoint hash, dataset, split, preset).

safetensors stores raw tensors only, so loading a bundle never unpickles code. Bundles are
memory-mapped, not read into memory (:mod:`probes.storage`): a bundle larger than RAM can be
probed, its rows are paged in as batches read them.

The format alone, below both :mod:`probes.sources` (which pairs bundles with targets) and
:mod:`probes.representations` (which computes bundles from checkpoints and caches them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from probes.storage import (
    StorageError,
    all_finite,
    gather_rows,
    map_safetensors,
    write_safetensors,
)

FORMAT = "vinfo.representation"
VERSION = "1"
REQUIRED_KEYS = ("y_hat", "sample_ids")


class BundleError(ValueError):
    """A file that is not a valid representation bundle."""


class RepresentationBundle(NamedTuple):
    """Representations ``y_hat (N, C, h, w)`` with ``sample_ids (N,)`` and string metadata."""

    y_hat: Tensor
    sample_ids: Tensor
    metadata: dict[str, str]

    def select(self, ids: Tensor) -> Tensor:
        """Rows of ``y_hat`` for the given sample ids, in that order.

        Raises:
            BundleError: an id is not in the bundle.
        """
        position = {int(i): row for row, i in enumerate(self.sample_ids.tolist())}
        missing = [int(i) for i in ids.tolist() if int(i) not in position]
        if missing:
            raise BundleError(f"sample ids not in the bundle: {missing[:10]}")
        return gather_rows(self.y_hat, torch.tensor([position[int(i)] for i in ids.tolist()],
                                                    dtype=torch.long))


def validate_bundle(y_hat: Tensor, sample_ids: Tensor) -> None:
    """Check shapes and ids.

    Raises:
        BundleError: ``y_hat`` is not a 4-D float tensor, ``sample_ids`` not 1-D integers of
            the same length, ids repeat, or values are not finite.
    """
    if y_hat.ndim != 4:
        raise BundleError(f"y_hat must be (N, C, h, w), got shape {tuple(y_hat.shape)}")
    if not y_hat.is_floating_point():
        raise BundleError(f"y_hat must be floating point, got {y_hat.dtype}")
    if sample_ids.ndim != 1 or sample_ids.is_floating_point() or sample_ids.dtype == torch.bool:
        raise BundleError(f"sample_ids must be a 1-D integer tensor, got {sample_ids.dtype} "
                          f"of shape {tuple(sample_ids.shape)}")
    if sample_ids.shape[0] != y_hat.shape[0]:
        raise BundleError(f"{y_hat.shape[0]} representations but {sample_ids.shape[0]} "
                          "sample ids")
    if sample_ids.unique().numel() != sample_ids.numel():
        raise BundleError("sample ids repeat")
    if not all_finite(y_hat):
        raise BundleError("y_hat holds NaN or infinite values")


def save_bundle(path: str | Path, y_hat: Tensor, sample_ids: Tensor,
                metadata: Mapping[str, str] | None = None) -> None:
    """Write a bundle atomically (never a half-written file).

    Args:
        path: destination ``.safetensors`` file; its directory must exist.
        y_hat: ``(N, C, h, w)`` representations (stored as float32).
        sample_ids: ``(N,)`` integer dataset indices (stored as int64).
        metadata: extra string entries (``checkpoint_sha256``, ``dataset``, ``split`` ...).
    """
    validate_bundle(y_hat, sample_ids)
    header = {**{str(k): str(v) for k, v in (metadata or {}).items()},
              "format": FORMAT, "version": VERSION}
    y_hat = y_hat.detach()
    if y_hat.dtype != torch.float32:  # a float32 bundle (possibly disk-backed) is not copied
        y_hat = y_hat.float()
    tensors = {"y_hat": y_hat, "sample_ids": sample_ids.detach().long()}
    write_safetensors(path, tensors, header)


def load_bundle(path: str | Path) -> RepresentationBundle:
    """Map and validate a bundle written by :func:`save_bundle` (rows are read on demand).

    Raises:
        FileNotFoundError: no such file.
        BundleError: not a safetensors file, not a vinfo bundle, missing keys, bad shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such representation bundle")
    try:
        tensors, metadata = map_safetensors(path)
    except (StorageError, OSError) as error:
        raise BundleError(f"{path}: not a safetensors representation bundle ({error})") from None
    if metadata.get("format") != FORMAT:
        raise BundleError(f"{path}: not a vinfo representation bundle (format "
                          f"{metadata.get('format')!r})")
    missing = [key for key in REQUIRED_KEYS if key not in tensors]
    if missing:
        raise BundleError(f"{path}: missing tensors {', '.join(missing)}")
    validate_bundle(tensors["y_hat"], tensors["sample_ids"])
    return RepresentationBundle(tensors["y_hat"], tensors["sample_ids"], metadata)


__all__ = [
    "FORMAT",
    "REQUIRED_KEYS",
    "VERSION",
    "BundleError",
    "RepresentationBundle",
    "load_bundle",
    "save_bundle",
    "validate_bundle",
]
