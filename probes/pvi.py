"""Pointwise V-information (PVI, Ethayarajh et al., ICML 2022, per pixel).

For a fitted probe, ``pvi(z) = log2 f[y](z) - log2 f[∅](z)`` at every target pixel: the bits
the representation saves on that pixel. Its mean over the scored pixels of a split is the
``I_V`` of :meth:`probes.estimator.VInfoProbe.score`; per-image totals rank the images whose
targets the representation explains least. Maps are returned as tensors; writing arrays and
heatmaps is left to the caller (CLI / experiments).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from probes.estimator import VInfoProbe
from probes.probe_data import ProbeData, as_probe_data


class PVIMaps(NamedTuple):
    """Pointwise V-information of a split.

    Attributes:
        maps: ``(N, H, W)`` bits per pixel (summed over target channels), 0 where not scored.
        valid: ``(N, H, W)`` bool, the scored pixels.
        totals: ``(N,)`` bits per image (sum of ``maps``).
    """

    maps: Tensor
    valid: Tensor
    totals: Tensor

    def hardest(self, k: int) -> Tensor:
        """Indices of the ``k`` images with the lowest total PVI, lowest first."""
        return torch.argsort(self.totals)[:k]


def pvi_maps(probe: VInfoProbe, data: ProbeData | tuple[Tensor, ...]) -> PVIMaps:
    """Per-pixel ``log2 f[y](z) - log2 f[∅](z)`` of a fitted probe on ``data``.

    Args:
        probe: a fitted :class:`VInfoProbe`.
        data: images to map (any split; normally chosen test images).

    Returns:
        :class:`PVIMaps`, in bits.
    """
    probe._check_fitted()
    data = as_probe_data(data)
    maps, valid = [], []
    probe.net_.eval()
    with torch.no_grad():
        for start in range(0, data.y.shape[0], probe.batch_size):
            stop = start + probe.batch_size
            y, z = data.y[start:stop], data.z[start:stop]
            mask = None if data.mask is None else data.mask[start:stop]
            null = probe.head_.nll_bits(probe.net_(None, y.shape[0]), z, mask)
            cond = probe.head_.nll_bits(probe.net_(y, y.shape[0]), z, mask)
            maps.append(null - cond)  # -log2 f[∅] - (-log2 f[y])
            valid.append(probe.head_.valid(z, mask))
    maps_t = torch.cat(maps)
    return PVIMaps(maps_t, torch.cat(valid), maps_t.double().sum((1, 2)))


__all__ = ["PVIMaps", "pvi_maps"]
