"""Checkpoints: a ``state_dict`` in safetensors plus a JSON spec that rebuilds the model.

``model.safetensors`` holds tensors only; ``model.json`` (same stem) holds the model kind and
its constructor arguments (config, task, β, strategy, the base's spec). Loading rebuilds the
model from the JSON and loads the tensors — no code is ever unpickled, so a torch pickle file
(``torch.save`` output) is refused with a clear error. Both files are written atomically
(:mod:`vinfo.io`).

The coder tables of CompressAI's ``GaussianConditional`` (``scale_table``, ``_quantized_cdf``,
``_offset``, ``_cdf_length``, filled by its ``update()``) are not saved: they are derived
data and depend on no weight (vinfo's coder builds its own, :mod:`vinfo.coding.tables`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from vinfo.io import atomic_path, write_json_atomic
from vinfo.models.base import BaseCodec
from vinfo.models.config import CodecConfig
from vinfo.models.enhancement import EnhancementCodec
from vinfo.registry import Registry

FORMAT = "vinfo-checkpoint"
VERSION = 1
DERIVED_BUFFERS = ("scale_table", "_quantized_cdf", "_offset", "_cdf_length")
"""Buffer names (last component of a key) that are rebuilt, never stored."""

_PICKLE_PREFIXES = (b"PK\x03\x04", b"\x80")  # torch.save zip archive, legacy pickle


@dataclass(frozen=True)
class ModelKind:
    """How to describe and rebuild one model class.

    Attributes:
        type: the ``nn.Module`` class.
        to_spec: JSON-ready constructor arguments of a model.
        from_spec: the model rebuilt (randomly initialised) from its spec.
    """

    type: type
    to_spec: Callable[[Any], dict[str, Any]]
    from_spec: Callable[[dict[str, Any]], nn.Module]


MODEL_KINDS: Registry[ModelKind] = Registry("model kind")


def _base_spec(model: BaseCodec) -> dict[str, Any]:
    return {"config": model.config.to_dict(), "task": model.task.name, "beta": model.beta}


def _base_from_spec(spec: dict[str, Any]) -> BaseCodec:
    return BaseCodec(CodecConfig.from_dict(spec["config"]), spec["task"], spec["beta"])


def _enhancement_spec(model: EnhancementCodec) -> dict[str, Any]:
    return {
        "config": model.config.to_dict(),
        "task": model.task.name,
        "strategy": model.strategy.name,
        "base": _base_spec(model.base),
    }


def _enhancement_from_spec(spec: dict[str, Any]) -> EnhancementCodec:
    base = _base_from_spec(spec["base"])
    return EnhancementCodec(
        base, spec["strategy"], spec["task"], CodecConfig.from_dict(spec["config"])
    )


MODEL_KINDS.add("base", ModelKind(BaseCodec, _base_spec, _base_from_spec))
MODEL_KINDS.add(
    "enhancement", ModelKind(EnhancementCodec, _enhancement_spec, _enhancement_from_spec)
)


def model_spec(model: nn.Module) -> dict[str, Any]:
    """The JSON document that rebuilds ``model`` (format, version, kind, arguments)."""
    for name, kind in MODEL_KINDS.items():
        if type(model) is kind.type:
            return {"format": FORMAT, "version": VERSION, "kind": name, **kind.to_spec(model)}
    raise TypeError(f"no checkpoint kind for {type(model).__name__}")


def build_model(spec: dict[str, Any]) -> nn.Module:
    """A randomly initialised model from a :func:`model_spec` document.

    Raises:
        ValueError: not a vinfo checkpoint spec, or an unsupported version.
    """
    if spec.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} config (format = {spec.get('format')!r})")
    if spec.get("version") != VERSION:
        raise ValueError(f"unsupported checkpoint version {spec.get('version')!r}")
    arguments = {k: v for k, v in spec.items() if k not in ("format", "version", "kind")}
    return MODEL_KINDS.get(spec["kind"]).from_spec(arguments)


def config_path(path: str | Path) -> Path:
    """The JSON spec next to a ``.safetensors`` file (same stem, ``.json``)."""
    return Path(path).with_suffix(".json")


def _is_derived(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in DERIVED_BUFFERS


def save_checkpoint(
    model: nn.Module, path: str | Path, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``path`` (safetensors ``state_dict``) and its JSON spec; return the JSON path.

    Args:
        model: a model of a registered kind.
        path: the ``.safetensors`` file; the spec goes next to it (:func:`config_path`).
        extra: JSON-ready entries added to the spec and ignored when loading, e.g. the
            ``"data"`` the model was trained on (read by ``probes.sources.recorded_data``).

    Raises:
        ValueError: ``path`` does not end in ``.safetensors``, or ``extra`` would replace a
            spec entry.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: checkpoint files must end in .safetensors")
    spec = model_spec(model)
    clash = sorted(set(extra or {}) & set(spec))
    if clash:
        raise ValueError(f"extra checkpoint entries would replace the spec's {clash}")
    spec.update(extra or {})
    tensors = {
        key: value.detach().contiguous().cpu()
        for key, value in model.state_dict().items()
        if not _is_derived(key)
    }
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": FORMAT, "version": str(VERSION)})
    write_json_atomic(config_path(path), spec)
    return config_path(path)


def _read_tensors(path: Path) -> dict[str, Tensor]:
    with path.open("rb") as handle:
        head = handle.read(9)
    # a safetensors file is an 8-byte header length, then the JSON header; its first byte is
    # that length's low byte, which may well be 0x80, so only a missing "{" makes a pickle
    if head[8:9] != b"{" and head.startswith(_PICKLE_PREFIXES):
        raise ValueError(
            f"{path}: this is a torch pickle file; vinfo loads only safetensors checkpoints "
            "(pickles can run arbitrary code)"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from None


def load_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model from ``path``'s JSON spec and load its tensors (eval mode, CPU).

    Raises:
        FileNotFoundError: the ``.safetensors`` file or its JSON spec is missing.
        ValueError: a pickle or corrupt file, a foreign spec, or tensors that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    spec_file = config_path(path)
    if not spec_file.is_file():
        raise FileNotFoundError(f"{spec_file}: the checkpoint's JSON config is missing")
    tensors = _read_tensors(path)
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{spec_file}: invalid JSON ({error})") from None
    model = build_model(spec)
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise ValueError(f"{path}: tensors do not match the config ({error})") from None
    missing = [key for key in result.missing_keys if not _is_derived(key)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: tensors do not match the config (missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]})"
        )
    return model.eval()


__all__ = [
    "MODEL_KINDS",
    "ModelKind",
    "build_model",
    "config_path",
    "load_checkpoint",
    "model_spec",
    "save_checkpoint",
]
