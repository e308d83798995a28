"""Representations to probe: a bundle file (:mod:`probes.bundles`), or ``ŷ`` computed from a
vinfo checkpoint, a CompressAI model (:mod:`probes.compressai_codecs`) or any torch encoder
(:mod:`probes.encoders`) and cached as a bundle.

:func:`load_representation` accepts either a bundle or a vinfo base-codec checkpoint
(``.safetensors`` + its JSON spec, :mod:`vinfo.models.checkpoint`). For a checkpoint it
computes ``ŷ`` with the codec's analysis transform and quantisation on a
:class:`probes.sources.DataSource` (by default the data recorded in the checkpoint's spec),
caches the result as a bundle keyed by (SHA-256 of the checkpoint files, data source) and
reuses it on the next call. Encoding runs in batches: only one batch of images is in memory;
``ŷ`` (``(N, M, h, w)`` float32) goes to a disk-backed array when it exceeds
:func:`probes.storage.memory_budget`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn
from torch.utils.data import Dataset

from probes import compressai_codecs, encoders
from probes.bundles import FORMAT, BundleError, RepresentationBundle, load_bundle, save_bundle
from probes.sources import DEFAULT_DATASET, DataSource, recorded_data, resolve_source
from probes.storage import allocate
from vinfo.data import DATASETS
from vinfo.io import read_json
from vinfo.models import BaseCodec, load_checkpoint
from vinfo.models.checkpoint import FORMAT as CHECKPOINT_FORMAT
from vinfo.models.checkpoint import config_path

_PICKLE_PREFIXES = (b"PK\x03\x04", b"\x80")  # torch.save zip archive, legacy pickle
_CHUNK = 1 << 20


def _header(path: Path) -> dict[str, str]:
    """safetensors header metadata of ``path``; refuses pickles and other files."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such representation or checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        with path.open("rb") as handle:
            head = handle.read(8)
        if head.startswith(_PICKLE_PREFIXES):
            raise ValueError(f"{path}: this is a pickle file (torch.save); vinfo reads only "
                             "safetensors (pickles can run arbitrary code)") from None
        raise ValueError(f"{path}: not a safetensors file") from None


def checkpoint_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a checkpoint's tensors file followed by its JSON spec."""
    return _files_sha256((Path(path), config_path(path)))


def _files_sha256(paths: Sequence[Path]) -> str:
    """Hex SHA-256 of the files' bytes, one after another, read in chunks."""
    digest = hashlib.sha256()
    for part in paths:
        with part.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$VINFO_CACHE_DIR``, else ``$XDG_CACHE_HOME/vinfo/representations``, else
    ``~/.cache/vinfo/representations``."""
    if os.environ.get("VINFO_CACHE_DIR"):
        return Path(os.environ["VINFO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vinfo" / "representations"


def encode_dataset(model: BaseCodec, dataset: Dataset, ids: Tensor, batch_size: int = 16,
                   device: str | torch.device = "cpu") -> Tensor:
    """``ŷ`` of samples ``ids``: the codec's analysis transform and quantisation (§3.4).

    Args:
        model: a base codec (eval mode is set here).
        dataset: yields :class:`vinfo.data.Sample` (``image`` ``(3, H, W)`` in ``[0, 1]``).
        ids: ``(N,)`` dataset indices.
        batch_size: images encoded at once (bounds memory).
        device: where to run the codec.

    Returns:
        ``(N, M, ⌈H/16⌉, ⌈W/16⌉)`` float32 on the CPU, integer-valued.

    Raises:
        ValueError: images differ in size, or ``batch_size < 1``.
    """
    model = model.to(device).eval()
    return encode_images(lambda x: model.encode_latent(x).y_hat, dataset, ids, batch_size,
                         device)


def encode_images(encode: Callable[[Tensor], Tensor], dataset: Dataset, ids: Tensor,
                  batch_size: int = 16, device: str | torch.device = "cpu") -> Tensor:
    """``encode(images)`` of samples ``ids``, batch by batch, as one float32 tensor on the CPU.

    Args:
        encode: ``(B, 3, H, W)`` images in ``[0, 1]`` on ``device`` → ``(B, C, h, w)``.
        dataset, ids, batch_size, device: as for :func:`encode_dataset`.

    Raises:
        ValueError: images differ in size, or ``batch_size < 1``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    y_hat, size, start = None, None, 0
    with torch.no_grad():
        for batch in ids.split(batch_size):
            images = [dataset[int(i)].image for i in batch]
            sizes = {tuple(image.shape) for image in images} | ({size} if size else set())
            if len(sizes) > 1:
                raise ValueError(f"images differ in size ({sorted(sizes)[:3]}); probes need one "
                                 "image size")
            size = tuple(images[0].shape)
            x = torch.stack(images).to(device)  # (B, 3, H, W)
            rows = encode(x).float().cpu()
            if y_hat is None:  # in memory, or on disk beyond the memory budget
                y_hat = allocate((len(ids), *rows.shape[1:]), torch.float32)
            y_hat[start:start + len(rows)] = rows
            start += len(rows)
    if y_hat is None:
        raise ValueError("no image to encode")
    return y_hat


class Representation(NamedTuple):
    """A representation ready to probe.

    Attributes:
        name: display name (unique among the representations of one run).
        bundle: its ``ŷ`` and sample ids.
        source: the data its sample ids index.
        path: the bundle file read (the cache file for a checkpoint).
        from_cache: ``True`` if ``ŷ`` was read from the cache rather than computed now.
    """

    name: str
    bundle: RepresentationBundle
    source: DataSource
    path: Path
    from_cache: bool


def _checkpoint_spec(path: Path) -> dict[str, object]:
    spec_file = config_path(path)
    if not spec_file.is_file():
        raise FileNotFoundError(f"{spec_file}: the checkpoint's JSON config is missing")
    spec = read_json(spec_file)
    if not isinstance(spec, dict) or spec.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{spec_file}: not a vinfo checkpoint config")
    if spec.get("kind") != "base":
        raise ValueError(f"{path}: a {spec.get('kind')!r} checkpoint; probes read the latent "
                         "ŷ of a base codec checkpoint")
    return spec


def _cached(cache: Path, sha: str, source: DataSource) -> RepresentationBundle | None:
    if not cache.is_file():
        return None
    try:
        bundle = load_bundle(cache)
    except BundleError:
        return None  # a damaged cache entry is recomputed and replaced
    meta = bundle.metadata
    if meta.get("checkpoint_sha256") != sha or meta.get("source_digest") != source.digest():
        return None
    return bundle


def load_representation(
    path: str | Path,
    *,
    name: str | None = None,
    dataset: str | None = None,
    split: str | None = None,
    preset: str | None = None,
    root: str | Path | None = None,
    n_images: int | None = None,
    downscale: int | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> Representation:
    """Read a bundle, or compute (once) and cache the ``ŷ`` of a base-codec checkpoint.

    The data source is ``dataset``/``split``/``preset``/``root``/``n_images`` where given,
    else what the checkpoint spec (or bundle header) records, else synthetic ``tiny`` ``val``
    (:func:`probes.sources.resolve_source`). A checkpoint whose spec records synthetic
    ``train`` data (as :func:`vinfo.experiments.sweep.train_run` writes it) is probed on fresh
    images of its preset, split ``val``, not on the images it was trained on unless asked.

    Args:
        path: a representation bundle or a ``.safetensors`` base-codec checkpoint.
        name: display name; default the file stem.
        dataset: dataset name override.
        split: split override.
        preset: synthetic preset override.
        root: dataset root override.
        n_images: use only the first ``n_images`` images.
        downscale: shrink the images by this factor (default: recorded, else 1).
        cache_dir: cache directory; default :func:`default_cache_dir`.
        batch_size: images per encoding batch.
        device: where the codec runs.

    Returns:
        :class:`Representation`.

    Raises:
        FileNotFoundError: no such file, or a checkpoint without its JSON spec.
        ValueError: a pickle, a foreign safetensors file, a non-base checkpoint, tensors that
            do not fit the spec, or a bad data source.
    """
    overrides = dict(dataset=dataset, split=split, preset=preset, root=root, n_images=n_images,
                     downscale=downscale)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if compressai_codecs.is_compressai_spec(path):
        return _compressai_representation(compressai_codecs.parse_spec(path), name, overrides,
                                          directory, batch_size, device)
    if encoders.is_encoder_spec(path):
        return _torch_encoder_representation(encoders.parse_spec(path), name, overrides,
                                             directory, batch_size, device)
    path = Path(path)
    header = _header(path)
    label = name or path.stem
    if header.get("format") == FORMAT:
        bundle = load_bundle(path)
        source = resolve_source(recorded_data(bundle.metadata), **overrides)
        return Representation(label, bundle, source, path, True)
    if header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: neither a vinfo checkpoint nor a representation bundle "
                         f"(safetensors format {header.get('format')!r})")
    spec = _checkpoint_spec(path)
    recorded = recorded_data(spec)
    dataset_name = str(recorded.get("dataset", DEFAULT_DATASET))
    entry = DATASETS.get(dataset_name) if dataset_name in DATASETS else None
    if entry is not None and recorded.get("split") == entry.train_split:
        # the split the codec was trained on: probes read images it never saw (fresh images
        # of the same preset for synthetic data, the official val split of a real dataset)
        recorded["split"] = entry.unseen_split
    source = resolve_source(recorded, **overrides)
    sha = checkpoint_sha256(path)
    cache = directory / f"{sha[:16]}-{source.digest()[:16]}.safetensors"
    bundle = _cached(cache, sha, source)
    if bundle is not None:
        return Representation(label, bundle, source, cache, True)
    model: nn.Module = load_checkpoint(path)
    if not isinstance(model, BaseCodec):
        raise ValueError(f"{path}: not a base codec checkpoint")
    data = source.build()
    ids = source.sample_ids(data)
    y_hat = encode_dataset(model, data, ids, batch_size, device)
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {**source.metadata(), "checkpoint": path.name, "checkpoint_sha256": sha,
                "source_digest": source.digest(), "beta": str(getattr(model, "beta", ""))}
    save_bundle(cache, y_hat, ids, metadata)
    return Representation(label, load_bundle(cache), source, cache, False)


def _compressai_representation(spec: compressai_codecs.CompressAISpec, name: str | None,
                               overrides: dict[str, object], directory: Path, batch_size: int,
                               device: str | torch.device) -> Representation:
    """``ŷ`` (or ``ẑ``) of a CompressAI model (:mod:`probes.compressai_codecs`), cached like a
    vinfo checkpoint's: keyed by the weights' SHA-256, the architecture, the latent and the
    data source (default: the synthetic ``tiny`` scenes, ``val``)."""
    if not spec.weights.is_file():
        raise FileNotFoundError(f"{spec.weights}: no such weights file")
    weights_sha = _files_sha256((spec.weights,))
    key = hashlib.sha256(f"{weights_sha}:{spec.architecture}:{spec.latent}".encode()).hexdigest()

    def encoder() -> Callable[[Tensor], Tensor]:
        model = compressai_codecs.build_model(spec).to(device)
        return compressai_codecs.latent_encoder(model, spec.latent)

    metadata = {"checkpoint": spec.weights.name, "weights_sha256": weights_sha,
                "compressai_architecture": spec.architecture, "latent": spec.latent}
    return _encoded_representation(name or spec.label, f"compressai-{key[:16]}", key, metadata,
                                   encoder, overrides, directory, batch_size, device)


def _torch_encoder_representation(spec: encoders.EncoderSpec, name: str | None,
                                  overrides: dict[str, object], directory: Path,
                                  batch_size: int, device: str | torch.device) -> Representation:
    """Features of a ``module:function`` encoder (:mod:`probes.encoders`), cached by the
    digest of its spec, source file and state dict."""
    module, key = encoders.build_encoder(spec)
    metadata = {"checkpoint": spec.text, "encoder": spec.text}
    return _encoded_representation(
        name or spec.label, f"encoder-{key[:16]}", key, metadata,
        lambda: encoders.feature_encoder(module.to(device), spec), overrides, directory,
        batch_size, device)


def _encoded_representation(label: str, stem: str, key: str, metadata: dict[str, str],
                            encoder: Callable[[], Callable[[Tensor], Tensor]],
                            overrides: dict[str, object], directory: Path, batch_size: int,
                            device: str | torch.device) -> Representation:
    """The cached bundle ``stem-SOURCE.safetensors`` of a non-vinfo encoder keyed by ``key``,
    or ``encoder()`` run over the data source (default: synthetic ``tiny`` ``val``) and
    cached."""
    source = resolve_source(None, **overrides)
    cache = directory / f"{stem}-{source.digest()[:16]}.safetensors"
    bundle = _cached(cache, key, source)
    if bundle is not None:
        return Representation(label, bundle, source, cache, True)
    encode = encoder()
    data = source.build()
    ids = source.sample_ids(data)
    features = encode_images(encode, data, ids, batch_size, device)
    directory.mkdir(parents=True, exist_ok=True)
    save_bundle(cache, features, ids, {**source.metadata(), **metadata, "checkpoint_sha256": key,
                                       "source_digest": source.digest()})
    return Representation(label, load_bundle(cache), source, cache, False)


def _spec_label(path: str | Path) -> str | None:
    """The display name of a ``compressai:`` or ``module:function`` spec; ``None`` for a file."""
    if compressai_codecs.is_compressai_spec(path):
        return compressai_codecs.parse_spec(path).label
    if encoders.is_encoder_spec(path):
        return encoders.parse_spec(path).label
    return None


def unique_names(paths: Sequence[str | Path]) -> list[str]:
    """Short display names for files: the stem, prefixed by parent folders where stems clash;
    a ``compressai:`` spec is named by its architecture (and quality, latent), a
    ``module:function`` spec by the function, numbered where two would share a name.

    Raises:
        ValueError: the same file (or spec) is given twice.
    """
    spec_labels = [_spec_label(p) for p in paths]
    resolved = [str(p) if label is not None else Path(p).resolve()
                for p, label in zip(paths, spec_labels, strict=True)]
    if len(set(resolved)) != len(resolved):
        raise ValueError("the same representation file is given twice")
    labels = [label for label in spec_labels if label is not None]
    labels = [f"{label}-{labels[:i].count(label) + 1}" if labels.count(label) > 1 else label
              for i, label in enumerate(labels)]
    files = [p for p in resolved if isinstance(p, Path)]
    depth = 1
    while True:
        names = ["/".join(p.with_suffix("").parts[-depth:]) for p in files]
        if len(set(names)) == len(names):
            break
        depth += 1
    named_files, named_specs = iter(names), iter(labels)
    return [next(named_files) if label is None else next(named_specs) for label in spec_labels]


__all__ = [
    "Representation",
    "checkpoint_sha256",
    "default_cache_dir",
    "encode_dataset",
    "load_representation",
    "unique_names",
]
