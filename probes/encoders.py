"""Any torch encoder as a representation to probe: ``--repr module:function`` (issue #20).

A ``--repr`` spelled ``MODULE:FUNCTION`` (a dotted module name, as in ``examples.encoders:
space_to_depth``) or ``FILE.py:FUNCTION`` names a callable that takes no argument and returns
a :class:`torch.nn.Module` mapping images ``(B, 3, H, W)`` in ``[0, 1]`` to features
``(B, C, h, w)``: a frozen vision backbone, a home-made codec's analysis transform, a
control. The same spelling as Python's entry points (``module:attr``); the module is imported
with the current directory first on ``sys.path``, as ``uvicorn`` and ``gunicorn`` import
``module:app``.

The module runs in eval mode without gradients on the images as they are: no padding, so an
encoder of stride ``s`` needs image sides divisible by ``s`` for its features to tile the
target (the probes check it). The features are cached like a checkpoint's ``ŷ``, keyed by the
spec, the bytes of the module's source file and every tensor of the module's state dict, so a
change to either computes them again.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn

_SPEC = re.compile(r"^(?P<module>[A-Za-z_][\w.]*|.+\.py):(?P<function>[A-Za-z_][\w.]*)$")


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed ``MODULE:FUNCTION`` or ``FILE.py:FUNCTION`` spec.

    Attributes:
        module: a dotted module name, or the path of a ``.py`` file.
        function: the attribute path of the factory in the module (``build``, ``Encoders.make``).
    """

    module: str
    function: str

    @property
    def text(self) -> str:
        return f"{self.module}:{self.function}"

    @property
    def label(self) -> str:
        """A display name: the factory's name."""
        return self.function.rsplit(".", 1)[-1]

    @property
    def is_file(self) -> bool:
        return self.module.endswith(".py")


def is_encoder_spec(text: str | Path) -> bool:
    """Whether ``text`` is spelled ``MODULE:FUNCTION`` or ``FILE.py:FUNCTION`` (and is not an
    existing file, nor a ``compressai:`` spec)."""
    text = str(text)
    return (not text.startswith("compressai:") and _SPEC.match(text) is not None
            and not Path(text).exists())


def parse_spec(text: str | Path) -> EncoderSpec:
    """Parse ``MODULE:FUNCTION`` or ``FILE.py:FUNCTION``.

    Raises:
        ValueError: anything else.
    """
    match = _SPEC.match(str(text))
    if match is None or str(text).startswith("compressai:"):
        raise ValueError(f"{text!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    return EncoderSpec(match["module"], match["function"])


@contextmanager
def _current_directory_importable() -> Iterator[None]:
    sys.path.insert(0, str(Path.cwd()))
    try:
        yield
    finally:
        sys.path.remove(str(Path.cwd()))


def _import(spec: EncoderSpec) -> ModuleType:
    if spec.is_file:
        path = Path(spec.module)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such Python file (in --repr {spec.text})")
        loader_spec = importlib.util.spec_from_file_location(f"_vinfo_encoder_{path.stem}", path)
        if loader_spec is None or loader_spec.loader is None:
            raise ValueError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        with _current_directory_importable():
            loader_spec.loader.exec_module(module)
        return module
    with _current_directory_importable():
        try:
            return importlib.import_module(spec.module)
        except ModuleNotFoundError as error:
            raise ValueError(f"--repr {spec.text}: cannot import {spec.module!r} ({error}); "
                             "run from the folder that holds it or install it") from None


def factory(spec: EncoderSpec) -> Callable[[], nn.Module]:
    """The factory the spec names.

    Raises:
        ValueError: the module cannot be imported or lacks the attribute, or it is not callable.
    """
    target: object = _import(spec)
    for part in spec.function.split("."):
        if not hasattr(target, part):
            raise ValueError(f"--repr {spec.text}: {spec.module} has no attribute "
                             f"{spec.function!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"--repr {spec.text}: {spec.function} is not callable")
    return target  # type: ignore[return-value]


def build_encoder(spec: EncoderSpec) -> tuple[nn.Module, str]:
    """Call the factory: the module in eval mode and its digest (:func:`module_digest`).

    Raises:
        ValueError: the factory does not return a :class:`torch.nn.Module`.
    """
    make = factory(spec)
    module = make()
    if not isinstance(module, nn.Module):
        raise ValueError(f"--repr {spec.text}: returned a {type(module).__name__}, not a "
                         "torch.nn.Module")
    return module.eval(), module_digest(spec, module, make)


def module_digest(spec: EncoderSpec, module: nn.Module, make: Callable[[], nn.Module]) -> str:
    """Hex SHA-256 of the spec, the source file of the factory ``make`` and the module's state
    dict (names, dtypes, shapes and bytes of every tensor, in name order)."""
    digest = hashlib.sha256(spec.text.encode())
    try:
        source = inspect.getsourcefile(make)  # type: ignore[arg-type]
    except TypeError:  # a builtin or a C extension
        source = None
    if source is not None and Path(source).is_file():
        digest.update(Path(source).read_bytes())
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def feature_encoder(module: nn.Module, spec: EncoderSpec) -> Callable[[Tensor], Tensor]:
    """``images (B, 3, H, W) → features (B, C, h, w)``, checked.

    Raises:
        ValueError: the module returns something else than a ``(B, C, h, w)`` tensor.
    """

    def encode(images: Tensor) -> Tensor:
        with torch.no_grad():
            try:
                features = module(images)
            except (RuntimeError, ValueError, TypeError) as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise ValueError(f"--repr {spec.text}: the module failed on images of shape "
                                 f"{tuple(images.shape)} ({type(error).__name__}: {reason})"
                                 ) from None
        if not isinstance(features, Tensor) or features.ndim != 4 or (
                features.shape[0] != images.shape[0]):
            shape = tuple(features.shape) if isinstance(features, Tensor) else type(features)
            raise ValueError(f"--repr {spec.text}: the module must map (B, 3, H, W) images to "
                             f"(B, C, h, w) features; it returned {shape} for "
                             f"{tuple(images.shape)}")
        return features

    return encode


__all__ = ["EncoderSpec", "build_encoder", "factory", "feature_encoder", "is_encoder_spec",
           "module_digest", "parse_spec"]
