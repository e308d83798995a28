"""CompressAI codecs as representations to probe (issue #20).

A ``--repr`` spelled ``compressai:ARCH:weights=PATH[:q=Q][:latent=y|z]`` names a model of the
CompressAI zoo (:data:`ARCHITECTURES`: ``bmshj2018-factorized``, ``bmshj2018-hyperprior``,
``mbt2018-mean``, ``mbt2018``, ``cheng2020-anchor``, ``cheng2020-attn``) with local weights:

- the weights file is a state dict saved by ``torch.save(model.state_dict())`` or a CompressAI
  training checkpoint ``{"state_dict": …}`` (``.pth``/``.pth.tar``), read with
  ``torch.load(weights_only=True)`` (a pickle of other objects is refused); the keys of a
  ``DataParallel`` model (``module.``) are accepted. The model is built as CompressAI's own
  ``eval_model`` builds it: ``ARCH_CLASS.from_state_dict(state_dict)``, which reads N and M
  from the weights and renames the entropy models' buffers (its ``load_state_dict``). ``q``, if
  given, must agree with those sizes (``compressai.zoo`` ``cfgs``);
- the representation is what the model's synthesis receives in eval mode: ``ŷ``, the input
  of ``g_s`` in ``model(x)`` (``latent=y``, default), or ``ẑ``, the input of ``h_s`` of a
  hyperprior model (``latent=z``). That is the model's own quantisation in its forward pass:
  ``round(y − median) + median`` for the factorized prior, ``round(y − μ) + μ`` for
  ``mbt2018-mean``, ``round(y)`` for ``bmshj2018-hyperprior`` and the autoregressive models
  (their forward pass rounds without the means; their ``compress`` rounds ``y − μ``);
- images are zero-padded on all sides to a multiple of 64 (the zoo's largest stride), as
  CompressAI's ``eval_model`` pads them, before the analysis; so the latent covers
  ``⌈H/64⌉·4 × ⌈W/64⌉·4`` positions (stride 16).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from compressai.zoo.image import cfgs, model_architectures
from torch import Tensor, nn
from torch.nn import functional as F

PREFIX = "compressai:"
ARCHITECTURES = ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018",
                 "cheng2020-anchor", "cheng2020-attn")
LATENTS = ("y", "z")
PAD_MULTIPLE = 64
"""Images are zero-padded to a multiple of this before the analysis (as CompressAI's
``eval_model``)."""


@dataclass(frozen=True)
class CompressAISpec:
    """A parsed ``compressai:…`` representation spec.

    Attributes:
        architecture: a name in :data:`ARCHITECTURES`.
        weights: the state-dict file.
        quality: the zoo quality the weights should match, or ``None``.
        latent: ``"y"`` (``ŷ``) or ``"z"`` (``ẑ`` of a hyperprior model).
    """

    architecture: str
    weights: Path
    quality: int | None = None
    latent: str = "y"

    @property
    def label(self) -> str:
        """A display name: ``arch[-qQ][-z]``."""
        quality = f"-q{self.quality}" if self.quality is not None else ""
        return f"{self.architecture}{quality}" + ("-z" if self.latent == "z" else "")


def is_compressai_spec(text: str | Path) -> bool:
    """Whether ``text`` is spelled ``compressai:…``."""
    return str(text).startswith(PREFIX)


def parse_spec(text: str | Path) -> CompressAISpec:
    """Parse ``compressai:ARCH:weights=PATH[:q=Q][:latent=y|z]``.

    Raises:
        ValueError: an unknown architecture, option or latent, a missing ``weights=``, a
            quality that is not a zoo quality of the architecture.
    """
    text = str(text)
    if not text.startswith(PREFIX):
        raise ValueError(f"{text!r}: a CompressAI representation starts with {PREFIX!r}")
    architecture, *options = text[len(PREFIX):].split(":")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{text}: unknown CompressAI architecture {architecture!r}; valid: "
                         f"{', '.join(ARCHITECTURES)}")
    values: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("weights", "q", "latent") or not value:
            raise ValueError(f"{text}: bad option {option!r}; expected weights=PATH, q=N or "
                             "latent=y|z")
        values[key] = value
    if "weights" not in values:
        raise ValueError(f"{text}: needs weights=PATH (a state dict; nothing is downloaded)")
    quality = None
    if "q" in values:
        qualities = sorted(cfgs[architecture])
        if not values["q"].isdigit() or int(values["q"]) not in qualities:
            raise ValueError(f"{text}: q must be one of {qualities} for {architecture}")
        quality = int(values["q"])
    latent = values.get("latent", "y")
    if latent not in LATENTS:
        raise ValueError(f"{text}: latent must be y or z, got {latent!r}")
    if latent == "z" and architecture == "bmshj2018-factorized":
        raise ValueError(f"{text}: {architecture} has no hyperprior, so no latent z")
    return CompressAISpec(architecture, Path(values["weights"]), quality, latent)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The state dict in ``path``: a plain state dict or CompressAI's ``{"state_dict": …}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file that is not a torch file of tensors only (a pickle of other
            objects is refused by ``weights_only=True``), or no state dict in it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - one clear line: what the loader refused
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise ValueError(f"{path}: not a state dict torch.load(weights_only=True) accepts "
                         f"(pickles of other objects are refused): {reason}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded or not all(
            isinstance(key, str) and isinstance(value, Tensor) for key, value in loaded.items()):
        raise ValueError(f"{path}: holds no state dict (name → tensor)")
    return {key.removeprefix("module."): value for key, value in loaded.items()}


def build_model(spec: CompressAISpec) -> nn.Module:
    """The CompressAI model of ``spec`` with its weights, in eval mode.

    Raises:
        ValueError: weights that do not fit the architecture, or sizes that contradict ``q``.
    """
    state_dict = read_state_dict(spec.weights)
    architecture = model_architectures[spec.architecture]
    try:
        model = architecture.from_state_dict(state_dict)
    except (KeyError, RuntimeError, IndexError) as error:
        reason = str(error).strip().splitlines()[0]
        raise ValueError(f"{spec.weights}: not {spec.architecture} weights ({reason})") from None
    if spec.quality is not None:
        expected = cfgs[spec.architecture][spec.quality]
        found = (model.N,) if len(expected) == 1 else (model.N, model.M)
        if tuple(found) != tuple(expected):
            raise ValueError(f"{spec.weights}: sizes {found} are not those of {spec.architecture} "
                             f"q={spec.quality} {expected}")
    return model.eval()


def latent_encoder(model: nn.Module, latent: str = "y") -> Callable[[Tensor], Tensor]:
    """``images (B, 3, H, W) in [0, 1] → latent`` as the model's synthesis (``latent="y"``,
    the input of ``g_s``) or hyper-synthesis (``"z"``, the input of ``h_s``) receives it in
    eval mode, after zero-padding to a multiple of :data:`PAD_MULTIPLE`."""
    transform = model.g_s if latent == "y" else model.h_s

    def encode(images: Tensor) -> Tensor:
        caught: list[Tensor] = []
        hook = transform.register_forward_pre_hook(lambda _, args: caught.append(args[0]))
        try:
            with torch.no_grad():
                model(pad_images(images))
        finally:
            hook.remove()
        return caught[0]

    return encode


def pad_images(images: Tensor, multiple: int = PAD_MULTIPLE) -> Tensor:
    """Zero-pad ``(B, C, H, W)`` on all sides (centred, extra on the right/bottom) to
    multiples of ``multiple``, as CompressAI's ``eval_model`` pads."""
    height, width = images.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return images
    return F.pad(images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


__all__ = [
    "ARCHITECTURES",
    "LATENTS",
    "PAD_MULTIPLE",
    "PREFIX",
    "CompressAISpec",
    "build_model",
    "is_compressai_spec",
    "latent_encoder",
    "pad_images",
    "parse_spec",
    "read_state_dict",
]
