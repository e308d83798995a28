"""Rate: bits and bits per pixel (bpp), estimated from likelihoods or counted from bitstreams.

Two measures of the same rate:

- *estimated* from the likelihoods ``p`` an entropy model assigns to the quantised latents,
  ``-Σ log2 p`` bits — the rate term of the training loss, differentiable;
- *actual*, from the byte strings of the arithmetic coder, 8 bits per byte — what is stored.

bpp divides bits by the number of pixels of the ORIGINAL image, ``H × W`` before any padding to
a multiple of the codec's stride and before any ×2 downscaling done inside a pipeline: the
rate must be charged to the image the user gave, otherwise padding lowers the reported bpp.
Channels are not counted (an RGB pixel is one pixel).

Likelihoods are not clamped here. CompressAI's ``RateDistortionLoss`` takes ``log`` of them as
they are, because its entropy models already bound them from below (``likelihood_bound=1e-9``
in ``EntropyBottleneck`` and ``GaussianConditional``); a zero or negative likelihood therefore
signals a bug upstream and is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

Likelihoods = Tensor | Mapping[str, Tensor] | Sequence[Tensor]
"""One tensor of shape ``(B, ...)``, or several, e.g. CompressAI's ``out["likelihoods"]``
(``{"y": (B, M, h, w), "z": (B, N, h', w')}``)."""

Strings = bytes | Sequence["Strings"]
"""Bytes, or nested lists of bytes, e.g. CompressAI's ``out["strings"]`` (one list per latent,
one ``bytes`` per image)."""


def _tensors(likelihoods: Likelihoods) -> list[Tensor]:
    if isinstance(likelihoods, Tensor):
        tensors = [likelihoods]
    elif isinstance(likelihoods, Mapping):
        tensors = list(likelihoods.values())
    else:
        tensors = list(likelihoods)
    if not tensors:
        raise ValueError("no likelihood tensor given")
    for tensor in tensors:
        if not isinstance(tensor, Tensor) or tensor.ndim < 1:
            raise TypeError("likelihoods must be tensors of shape (B, ...)")
    batch_sizes = {tensor.shape[0] for tensor in tensors}
    if len(batch_sizes) != 1:
        raise ValueError(f"likelihood tensors disagree on the batch size: {sorted(batch_sizes)}")
    return tensors


def _check_num_pixels(num_pixels: int) -> None:
    if isinstance(num_pixels, bool) or not isinstance(num_pixels, int) or num_pixels <= 0:
        raise ValueError(f"num_pixels must be a positive int (H * W), got {num_pixels!r}")


def bits_from_likelihoods(likelihoods: Likelihoods) -> Tensor:
    """Estimated code length ``-Σ log2 p`` of each image, in bits.

    Args:
        likelihoods: a tensor of shape ``(B, ...)`` or a dict / list of such tensors with the
            same ``B``; entries are summed.

    Returns:
        Bits per image, shape ``(B,)``, differentiable.

    Raises:
        ValueError: a likelihood is zero, negative or NaN.
    """
    total = None
    for tensor in _tensors(likelihoods):
        if not bool((tensor > 0).all()):
            raise ValueError(
                "likelihoods must be positive: got zero, negative or NaN values (CompressAI's "
                "entropy models bound them below by 1e-9; check the model)"
            )
        bits = -torch.log2(tensor).flatten(1).sum(dim=1)  # (B,)
        total = bits if total is None else total + bits
    return total


def bpp_from_likelihoods(likelihoods: Likelihoods, num_pixels: int) -> Tensor:
    """Estimated rate of each image in bits per pixel (bpp).

    Args:
        likelihoods: as for :func:`bits_from_likelihoods`.
        num_pixels: ``H × W`` of one original image, before padding or downscaling.

    Returns:
        bpp per image, shape ``(B,)``; ``.mean()`` gives the batch mean.
    """
    _check_num_pixels(num_pixels)
    return bits_from_likelihoods(likelihoods) / num_pixels


def bits_from_bytes(strings: Strings) -> int:
    """Actual length in bits (8 per byte) of all the byte strings in ``strings``.

    Args:
        strings: ``bytes`` or arbitrarily nested lists / tuples of ``bytes``.
    """
    if isinstance(strings, bytes | bytearray | memoryview):
        return 8 * len(strings)
    if isinstance(strings, str) or not isinstance(strings, Sequence):
        raise TypeError(f"expected bytes or (nested) lists of bytes, got {type(strings).__name__}")
    return sum(bits_from_bytes(item) for item in strings)


def bpp_from_bytes(strings: Strings, num_pixels: int) -> float:
    """Actual rate in bits per pixel (bpp) of the byte strings of an encoding.

    All the bytes in ``strings`` are charged to ``num_pixels``: pass the strings of one image
    with its ``H × W`` (CompressAI's ``compress`` output for a batch of one), or the strings of
    a whole batch with the batch's total pixel count ``B × H × W`` for the batch mean.

    Args:
        strings: ``bytes`` or nested lists of ``bytes``, e.g. CompressAI's ``out["strings"]``.
        num_pixels: original pixel count ``H × W`` (times ``B`` for a batch), before padding
            or downscaling.

    Returns:
        bpp, ``8 · (number of bytes) / num_pixels``.
    """
    _check_num_pixels(num_pixels)
    return bits_from_bytes(strings) / num_pixels


__all__ = [
    "bits_from_bytes",
    "bits_from_likelihoods",
    "bpp_from_bytes",
    "bpp_from_likelihoods",
]
