"""The data a probe reads and the bits it reports: :class:`ProbeData` (one split of paired
representations and targets), :class:`ProbeSplits` (train, val, test), :class:`PerImageBits`
(per-image code lengths on a split) and :func:`as_probe_data`, which validates a split.

Shared by the estimator (:mod:`probes.estimator`), its closed form
(:mod:`probes.closed_form`), the controls (:mod:`probes.controls`), the study
(:mod:`probes.study`) and the data sources (:mod:`probes.sources`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from torch import Tensor


class ProbeData(NamedTuple):
    """One split of paired representations and targets.

    Attributes:
        y: ``(N, C, h, w)`` float representation (e.g. the codec's ``ŷ``).
        z: ``(N, C_t, H, W)`` target with ``H = s·h``, ``W = s·w``: floats in ``[0, 1]`` for
            reconstruction, depth values, or int64 class ids (``(N, H, W)`` is accepted).
        mask: optional ``(N, 1, H, W)`` bool, ``True`` where the target is valid.
    """

    y: Tensor
    z: Tensor
    mask: Tensor | None = None


class ProbeSplits(NamedTuple):
    """Train, validation and test :class:`ProbeData` of one representation and target."""

    train: ProbeData
    val: ProbeData
    test: ProbeData


class PerImageBits(NamedTuple):
    """Per-image code lengths on one split, each ``(N,)`` float64 numpy.

    Attributes:
        null: bits of ``f[∅]`` summed over each image's scored pixels.
        cond: bits of ``f[y]``.
        pixels: scored pixels per image.
    """

    null: np.ndarray
    cond: np.ndarray
    pixels: np.ndarray


def as_probe_data(data: ProbeData | Sequence[Tensor | None]) -> ProbeData:
    """Validate ``data`` (a :class:`ProbeData` or a ``(y, z[, mask])`` tuple).

    Raises:
        ValueError: wrong ranks, different image counts, or a target size that is not an
            integer multiple ``s`` of the representation size (the same in both directions).
    """
    if not isinstance(data, ProbeData):
        data = ProbeData(*data)
    y, z, mask = data
    if z.ndim == 3:
        z = z.unsqueeze(1)
    if y.ndim != 4 or z.ndim != 4:
        raise ValueError(f"y must be (N, C, h, w) and z (N, C_t, H, W), got {tuple(y.shape)} "
                         f"and {tuple(z.shape)}")
    if y.shape[0] != z.shape[0]:
        raise ValueError(f"y has {y.shape[0]} samples but z has {z.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError("empty split: no sample")
    (h, w), (height, width) = y.shape[-2:], z.shape[-2:]
    if height % h or width % w or height // h != width // w:
        raise ValueError(f"target size {height}x{width} is not one integer multiple of the "
                         f"representation size {h}x{w}")
    if mask is not None:
        if mask.ndim == 3:
            mask = mask.unsqueeze(1)
        if tuple(mask.shape) != (z.shape[0], 1, height, width):
            raise ValueError(f"mask must be ({z.shape[0]}, 1, {height}, {width}), "
                             f"got {tuple(mask.shape)}")
        mask = mask.bool()
    return ProbeData(y.float(), z, mask)


__all__ = ["PerImageBits", "ProbeData", "ProbeSplits", "as_probe_data"]
