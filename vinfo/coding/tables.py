"""CDF tables for coding ``ŷ`` under Gaussians whose means are not integers.

CompressAI codes ``ŷ − ⌊μ⌉`` with the tables of a Gaussian *centred on zero*, indexed by the
scale only. The entropy model, however, assigns ``ŷ`` the mass of ``N(μ, σ)`` over
``[ŷ − ½, ŷ + ½]``: with the symbol ``s = ŷ − ⌊μ⌉`` that is the mass of ``N(δ, σ)`` over
``[s − ½, s + ½]``, ``δ = μ − ⌊μ⌉ ∈ [−½, ½]``. Ignoring ``δ`` costs little for wide Gaussians
but a lot for narrow ones (measured on a σ ∈ [0.11, 0.5] latent: payload 82 % above the
estimate), which is where trained models put many channels. This is why CompressAI's
``mbt2018`` pays 2–9 % over its estimate.

:class:`CoderTables` therefore holds one quantised CDF per (scale, offset) pair: CompressAI's
scale ladder (:func:`compressai.models.base.get_scale_table`, 64 levels 13 % apart) times
``offset_levels`` bins of ``δ`` (centres of ``K`` equal bins). The CDFs are built with
CompressAI's own ``pmf_to_quantized_cdf``, with the tail mass as the escape symbol. Tables
depend on no weight, so they are built once per process (:func:`default_tables`).

A scale ``σ`` takes the level *nearest in log scale* (at most 6 % off), not the next level up
as ``GaussianConditional.build_indexes`` does (up to 13 % wider than the model). The cost of a
wrong scale grows with the square of ``log(σ_table / σ)``, so the nearest level costs about a
quarter; and a briefly trained model, whose scales are often too wide already, pays for
rounding up on every symbol near the mean. On a ``small`` codec trained 60 steps, 4 test
images at 256×256: table cost − estimate +1.43 % rounding up, +0.27 % to the nearest level
(``benchmarks/bench_rate_audit.py``).
"""

from __future__ import annotations

import functools

import scipy.stats
import torch
from compressai._CXX import pmf_to_quantized_cdf
from compressai.models.base import get_scale_table
from torch import Tensor

OFFSET_LEVELS = 16
"""Bins of the fractional mean ``δ``; the mean is then off by at most ``1 / 32``."""
PRECISION = 16
"""Bits of precision of the quantised CDFs (CompressAI's default)."""
TAIL_MASS = 1e-9
"""Mass left outside each table, coded with the escape symbol (CompressAI's default)."""


class CoderTables:
    """Quantised CDFs of ``N(δ, σ)`` on integer symbols, for a scale ladder × offset bins.

    Args:
        scale_table: increasing scales ``(S,)`` (σ is rounded up to the next entry).
        offset_levels: bins ``K`` of ``δ = μ − ⌊μ⌉``.

    Attributes:
        cdf: ``S·K`` quantised CDFs (row ``i·K + k``: scale ``i``, offset bin ``k``), as the
            lists of ints CompressAI's rANS coder takes.
        cdf_lengths: length of each CDF.
        offsets: symbol value of the first entry of each CDF (``−centre``).
    """

    def __init__(self, scale_table: Tensor, offset_levels: int = OFFSET_LEVELS) -> None:
        if offset_levels < 1:
            raise ValueError("offset_levels must be positive")
        self.scale_table = scale_table.double()
        self.offset_levels = offset_levels
        multiplier = -float(scipy.stats.norm.ppf(TAIL_MASS / 2))
        # +1: a table shifted by |δ| ≤ ½ needs one more symbol on one side
        centres = torch.ceil(self.scale_table * multiplier).long() + 1  # (S,)
        deltas = -0.5 + (torch.arange(offset_levels, dtype=torch.float64) + 0.5) / offset_levels
        normal = torch.distributions.Normal(0.0, 1.0)
        self.cdf: list[list[int]] = []
        self.cdf_lengths: list[int] = []
        self.offsets: list[int] = []
        for scale, centre in zip(self.scale_table.tolist(), centres.tolist(), strict=True):
            symbols = torch.arange(-centre, centre + 1, dtype=torch.float64)  # (L,)
            shifted = symbols[None, :] - deltas[:, None]  # (K, L)
            pmf = normal.cdf((shifted + 0.5) / scale) - normal.cdf((shifted - 0.5) / scale)
            tail = (1.0 - pmf.sum(dim=1, keepdim=True)).clamp_min(0.0)
            for probabilities in torch.cat((pmf, tail), dim=1).tolist():
                quantized = pmf_to_quantized_cdf(probabilities, PRECISION)
                self.cdf.append(quantized)
                self.cdf_lengths.append(len(quantized))
                self.offsets.append(-centre)
        # level i covers σ up to the geometric mean of levels i and i + 1: nearest in log σ
        log_table = self.scale_table.log()
        self._boundaries = ((log_table[:-1] + log_table[1:]) / 2).exp().float().contiguous()

    def indexes(self, means: Tensor, scales: Tensor) -> Tensor:
        """Table row of each element: scale level × ``K`` + offset bin, ``int64``.

        The scale level is the one nearest to ``σ`` in log scale (clamped to the ladder).

        Args:
            means: ``μ``, any shape.
            scales: ``σ`` after the model's lower bound, same shape.
        """
        scale_index = torch.searchsorted(self._boundaries, scales.float().contiguous())
        delta = means - torch.round(means)  # in [−½, ½]
        levels = self.offset_levels
        offset_index = torch.floor((delta + 0.5) * levels).long().clamp(0, levels - 1)
        return scale_index * levels + offset_index


@functools.lru_cache(maxsize=4)
def default_tables(offset_levels: int = OFFSET_LEVELS) -> CoderTables:
    """Tables on CompressAI's default scale ladder (0.11 … 256, 64 levels), built once."""
    return CoderTables(get_scale_table(), offset_levels)


__all__ = ["OFFSET_LEVELS", "PRECISION", "TAIL_MASS", "CoderTables", "default_tables"]
