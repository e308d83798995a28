"""Probe arrays larger than memory: disk-backed tensors and passes over them in row chunks.

Probes read three kinds of large arrays, each with one row per image: the representations
``ŷ``, the targets (full-resolution images, depth maps, label maps) and their validity masks.
A dataset larger than RAM must not have to fit in RAM, so:

- **Bundles are memory-mapped** (:func:`map_safetensors`): a representation bundle or cache
  file is read as tensors backed by the file (copy-on-write), so the operating system pages
  rows in when a batch reads them and may drop them again; :func:`write_safetensors` writes a
  valid safetensors file chunk by chunk from tensors that are themselves mapped.
- **Large intermediate arrays live on disk** (:func:`allocate`): an array of more than
  :func:`memory_budget` bytes (default 1 GiB; ``$VINFO_PROBE_MEMORY``, e.g. ``512M``) is a
  tensor backed by an unlinked temporary file in :func:`scratch_dir` (``$VINFO_SCRATCH_DIR``,
  else the system temporary directory: point it at a disk if ``/tmp`` is a RAM disk). The file
  is deleted when the tensor is freed.
- **Whole-array statistics run in row chunks** (:func:`row_chunks`) of at most
  :data:`CHUNK_BYTES`, so that no pass allocates a temporary as large as the array.

The budget applies to each array: a probe run holds a handful of them (the targets and their
mask, one ``ŷ`` per representation, the shuffled control's copies), each in memory only if it
is below the budget. Peak memory is then at most a few budgets plus the model, one batch and one
chunk, whatever the number of images; the price on a dataset larger than RAM is disk reads.
Small arrays stay ordinary in-memory tensors, as before.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from vinfo.io import atomic_path

CHUNK_BYTES = 16 << 20
"""Largest slice of an array that a chunked pass reads at once; its float64 temporaries take a
few times more."""
DEFAULT_MEMORY_BUDGET = 1 << 30
"""Bytes above which :func:`allocate` puts an array on disk, unless ``$VINFO_PROBE_MEMORY``."""

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class StorageError(ValueError):
    """A file that is not a safetensors file vinfo can map."""


def parse_bytes(text: str) -> int:
    """``"512M"`` → 536870912; plain integers are bytes; units K, M, G, T (powers of 1024).

    Raises:
        ValueError: not a non-negative size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a size in bytes: {text!r} (examples: 1073741824, 512M, 4G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def memory_budget() -> int:
    """Bytes an array may take in memory before :func:`allocate` puts it on disk."""
    value = os.environ.get("VINFO_PROBE_MEMORY")
    try:
        return DEFAULT_MEMORY_BUDGET if not value else parse_bytes(value)
    except ValueError as error:
        raise ValueError(f"VINFO_PROBE_MEMORY: {error}") from None


def scratch_dir() -> Path:
    """Where disk-backed arrays go: ``$VINFO_SCRATCH_DIR``, else the temporary directory."""
    return Path(os.environ.get("VINFO_SCRATCH_DIR") or tempfile.gettempdir())


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype.newbyteorder("<")


def allocate(shape: tuple[int, ...], dtype: torch.dtype, *, budget: int | None = None) -> Tensor:
    """An uninitialised tensor: in memory up to ``budget`` bytes, else backed by a deleted
    temporary file in :func:`scratch_dir` (freed with the tensor).

    Args:
        shape: tensor shape.
        dtype: a dtype of :data:`_DTYPES`.
        budget: bytes allowed in memory (default :func:`memory_budget`).
    """
    nbytes = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
    if nbytes <= (memory_budget() if budget is None else budget) or nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    directory = scratch_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory) as handle:  # unlinked: gone when unmapped
        handle.truncate(nbytes)
        array = np.memmap(handle, dtype=_numpy_dtype(dtype), mode="r+", shape=shape)
    return torch.from_numpy(array)


def row_chunks(tensor: Tensor, chunk_bytes: int | None = None) -> Iterator[slice]:
    """Slices of the first dimension of ``tensor`` (at least 1-D) of at most ``chunk_bytes``
    each (default :data:`CHUNK_BYTES`), and at least one row."""
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    rows = tensor.shape[0]
    row_bytes = max(tensor[0].numel() * tensor.element_size() if rows else 1, 1)
    step = max(1, chunk_bytes // row_bytes)
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def gather_rows(tensor: Tensor, index: Tensor, *, budget: int | None = None) -> Tensor:
    """``tensor[index]`` for a 1-D integer ``index``, gathered chunk by chunk into
    :func:`allocate` (on disk if large) instead of one in-memory copy."""
    out = allocate((len(index), *tensor.shape[1:]), tensor.dtype, budget=budget)
    for part in row_chunks(out):
        out[part] = tensor[index[part]]
    return out


def all_finite(tensor: Tensor) -> bool:
    """``torch.isfinite(tensor).all()`` without a full-size temporary."""
    return all(bool(torch.isfinite(tensor[part]).all()) for part in row_chunks(tensor))


class Moments(NamedTuple):
    """Per-channel statistics over valid values, float64 ``(C,)`` each.

    Attributes:
        count: number of valid values.
        mean: their mean (0 where there is none).
        m2: sum of squared deviations from the mean (variance = ``m2 / count``).
    """

    count: Tensor
    mean: Tensor
    m2: Tensor

    def pooled(self) -> tuple[float, float, float]:
        """``(count, mean, m2)`` of all channels together."""
        count = float(self.count.sum())
        mean = float((self.count * self.mean).sum()) / max(count, 1.0)
        m2 = float((self.m2 + self.count * (self.mean - mean).square()).sum())
        return count, mean, m2


def channel_moments(x: Tensor, mask: Tensor | None = None) -> Moments:
    """Count, mean and squared deviations of ``x (N, C, ...)`` per channel (dimension 1),
    over the values where ``mask (N, 1, ...)`` is true (all if ``None``).

    Two passes in row chunks, in float64: no temporary as large as ``x``, and no cancellation
    of raw second moments. Masked-out values may be NaN.
    """
    channels = x.shape[1]
    dims = [d for d in range(x.ndim) if d != 1]
    shape = (1, channels) + (1,) * (x.ndim - 2)

    def chunks() -> Iterator[tuple[Tensor, Tensor | None]]:
        for part in row_chunks(x):
            # a copy even of float64 input: the second pass works on it in place
            chunk = x[part].to(torch.float64, copy=True)
            keep = None if mask is None else mask[part].bool().expand(-1, channels, *x.shape[2:])
            yield chunk, keep

    count = torch.zeros(channels, dtype=torch.float64)
    total = torch.zeros(channels, dtype=torch.float64)
    for chunk, keep in chunks():
        if keep is not None:
            chunk = torch.where(keep, chunk, 0.0)
            count += keep.sum(dims)
        else:
            count += chunk[:, 0].numel()
        total += chunk.sum(dims)
    mean = total / count.clamp_min(1)
    m2 = torch.zeros(channels, dtype=torch.float64)
    for chunk, keep in chunks():
        deviation = chunk.sub_(mean.view(shape)).square_()  # in place: one chunk-sized array
        if keep is not None:
            deviation = deviation.masked_fill_(~keep, 0.0)
        m2 += deviation.sum(dims)
    return Moments(count, mean, m2)


# safetensors files ------------------------------------------------------------------------------

def write_safetensors(path: str | Path, tensors: Mapping[str, Tensor],
                      metadata: Mapping[str, str] | None = None) -> None:
    """Write a safetensors file atomically, copying each tensor in row chunks.

    The file is byte-compatible with :func:`safetensors.torch.save_file` readers; unlike it,
    the tensors (which may be memory-mapped) are never copied whole into memory.
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    if "__metadata__" in tensors:
        raise StorageError("a tensor may not be called '__metadata__'")
    # widest elements first (as safetensors orders them), so that every tensor starts aligned
    # to its element size
    order = sorted(tensors, key=lambda name: -tensors[name].element_size())
    offset = 0
    for name in order:
        tensor = tensors[name]
        if tensor.dtype not in _CODES:
            raise StorageError(f"tensor {name!r}: dtype {tensor.dtype} is not supported")
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": _CODES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    start = 8 + len(text)
    with atomic_path(path) as temporary:
        with open(temporary, "r+b") as handle:
            handle.write(struct.pack("<Q", len(text)) + text)
            handle.truncate(start + offset)
        for name, tensor in tensors.items():
            if tensor.numel() == 0:
                continue
            begin = header[name]["data_offsets"][0]  # type: ignore[index]
            target = np.memmap(temporary, dtype=_numpy_dtype(tensor.dtype), mode="r+",
                               offset=start + begin, shape=tuple(tensor.shape))
            # a scalar is copied as one row; reshape of the mapped tensor is a view of the file
            mapped = torch.from_numpy(target).reshape(-1, *tensor.shape[1:])
            source = tensor.detach().cpu().reshape(mapped.shape)
            for part in row_chunks(source):
                mapped[part] = source[part]
            target.flush()
            del mapped, target


def read_header(path: str | Path) -> tuple[dict[str, dict], dict[str, str], int]:
    """``(tensor entries, metadata, data start)`` of a safetensors file.

    Raises:
        StorageError: not a safetensors file.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > min(path.stat().st_size, 100 << 20):
                raise ValueError("header length beyond the file")
            header = json.loads(handle.read(length))
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise StorageError(f"{path}: not a safetensors file ({error})") from None
    if not isinstance(header, dict):
        raise StorageError(f"{path}: not a safetensors file (header is not an object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise StorageError(f"{path}: not a safetensors file (metadata is not string to string)")
    return header, dict(metadata), 8 + length


def map_safetensors(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors of a safetensors file, memory-mapped copy-on-write, and its metadata.

    Reading never unpickles anything; writing to a returned tensor changes a private copy of
    the touched pages, never the file.

    Raises:
        StorageError: not a safetensors file, an unsupported dtype, or entries that do not fit
            the file.
    """
    path = Path(path)
    entries, metadata, start = read_header(path)
    size = path.stat().st_size
    tensors = {}
    for name, entry in entries.items():
        if isinstance(entry, dict) and entry.get("dtype") not in _DTYPES:
            raise StorageError(f"{path}: tensor {name!r} has dtype {entry.get('dtype')}, which "
                               f"vinfo does not read (supported: {', '.join(_DTYPES)})")
        try:
            dtype = _DTYPES[entry["dtype"]]
            shape = tuple(int(n) for n in entry["shape"])
            begin, end = (int(n) for n in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise StorageError(f"{path}: tensor {name!r} has an unsupported entry "
                               f"{entry!r}") from None
        if end - begin != math.prod(shape) * torch.empty(0, dtype=dtype).element_size() \
                or start + end > size or begin < 0:
            raise StorageError(f"{path}: tensor {name!r} does not fit the file")
        if end == begin:
            tensors[name] = torch.empty(shape, dtype=dtype)
            continue
        array = np.memmap(path, dtype=_numpy_dtype(dtype), mode="c", offset=start + begin,
                          shape=shape)
        tensors[name] = torch.from_numpy(array)
    return tensors, metadata


__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MEMORY_BUDGET",
    "Moments",
    "StorageError",
    "all_finite",
    "allocate",
    "channel_moments",
    "gather_rows",
    "map_safetensors",
    "memory_budget",
    "parse_bytes",
    "read_header",
    "row_chunks",
    "scratch_dir",
    "write_safetensors",
]
