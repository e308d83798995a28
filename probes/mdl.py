"""Online code length (MDL) probes, the second estimator (Voita & Titov, EMNLP 2020).

The training images are put in a random order and cut into blocks at growing fractions of
the split (:data:`BLOCK_FRACTIONS`: 0.1 %, 0.2 %, 0.4 %, …, 50 %, 100 %; at least one image a
block). The first block is sent with the uniform code; every later block is sent with a probe
of the family fitted (:class:`probes.estimator.VInfoProbe`, early-stopped on the validation
split) on all the blocks before it. The online code length is the sum::

    L_online = L_uniform(block 1) + Σ_{i ≥ 2} Σ_{z ∈ block i} -log2 f_{< i}[y](z)

in bits. The same blocks are also sent with the null of each fit (the per-pixel distribution
of :mod:`probes.null`, fitted on the same earlier blocks), which gives the null's online code
length; the difference per coded target pixel, ``mdl_iv = (L_null - L_online) / pixels``,
is the online counterpart of ``I_V`` (bits per target pixel). Compression is
``L_uniform / L_online`` (Voita & Titov's ratio) and ``L_null / L_online``.

A density (depth) has no uniform code: its first block is left out of every code length
(``first_block = "excluded"``; it is the same 0.1 % for every family and representation),
and the uniform code length and its ratio are NaN. For 8-bit targets the uniform code is
8 bits per channel value (24 per RGB pixel), for classes ``log2 K`` per scored pixel.

Every quantity is the mean over block orders (one random order of the training images per
``order`` seed), with a Student-t interval across orders (two orders at least; with one the
interval ends are the estimate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy import stats

from probes.estimator import VInfoProbe, max_label
from probes.families import get_family
from probes.heads import LEVELS, CategoricalHead, DiscretizedHead, Head, get_target
from probes.probe_data import ProbeData, ProbeSplits, as_probe_data
from probes.storage import gather_rows

BLOCK_FRACTIONS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1.0)
"""Ends of the blocks as fractions of the training images (Voita & Titov's timesteps)."""


class OnlineCode(NamedTuple):
    """The online code of one block order.

    Attributes:
        ends: end (in images) of every block; block ``i`` is ``[ends[i-1], ends[i])``.
        bits: ``(B,)`` bits of each block under the family's fit on the blocks before it
            (block 0: the uniform code, NaN for a density).
        null_bits: ``(B,)`` the same under the null of each fit.
        pixels: ``(B,)`` target pixels scored in each block.
        uniform_bits: ``(B,)`` the uniform code of each block (NaN for a density).
        params: parameters of the family's last fit.
    """

    ends: tuple[int, ...]
    bits: np.ndarray
    null_bits: np.ndarray
    pixels: np.ndarray
    uniform_bits: np.ndarray
    params: int


def block_ends(n: int, fractions: Sequence[float] = BLOCK_FRACTIONS) -> tuple[int, ...]:
    """Block ends in images: ``round(f·n)``, at least 1, increasing, the last ``n``.

    Raises:
        ValueError: fractions outside (0, 1], a last fraction other than 1, or fewer than two
            blocks.
    """
    if not fractions or any(not 0 < f <= 1 for f in fractions) or fractions[-1] != 1:
        raise ValueError(f"block fractions must lie in (0, 1] and end at 1, got {fractions}")
    ends = sorted({max(1, round(f * n)) for f in fractions} | {n})
    if len(ends) < 2:
        raise ValueError(f"{n} training image(s) make fewer than two blocks")
    return tuple(ends)


def _uniform_bits_per_pixel(head: Head, channels: int) -> float:
    """Bits of the uniform code per scored target pixel (NaN for a density)."""
    if isinstance(head, CategoricalHead):
        return math.log2(head.num_classes)
    if isinstance(head, DiscretizedHead):
        return channels * math.log2(LEVELS)
    return math.nan


def online_code(probe: VInfoProbe, train: ProbeData, val: ProbeData, order: int = 0,
                fractions: Sequence[float] = BLOCK_FRACTIONS) -> OnlineCode:
    """The online code of ``train``'s targets in one random order of its images.

    Args:
        probe: an unfitted :class:`VInfoProbe` (family, target and settings); a copy is fitted
            on every prefix of blocks.
        train: the data sent (its targets, given the representations).
        val: early stopping and the null's shrinkage of every fit.
        order: seed of the order of the images.
        fractions: block ends (:func:`block_ends`).
    """
    train, val = as_probe_data(train), as_probe_data(val)
    n = train.y.shape[0]
    ends = block_ends(n, fractions)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(order))
    data = ProbeData(*(None if t is None else gather_rows(t, permutation) for t in train))

    def rows(start: int, stop: int) -> ProbeData:
        return ProbeData(*(None if t is None else t[start:stop] for t in data))

    head = probe.clone()._make_head(data)  # the classes of every block (uniform code)
    per_pixel = _uniform_bits_per_pixel(head, data.z.shape[1])
    bits, null_bits, pixels, uniform = [], [], [], []
    fitted = None
    starts = (0, *ends[:-1])
    for start, stop in zip(starts, ends, strict=True):
        block = rows(start, stop)
        if start == 0:  # nothing sent yet: the uniform code
            count = float(head.valid(block.z, block.mask).sum())
            bits.append(per_pixel * count)
            null_bits.append(per_pixel * count)
            pixels.append(count)
            uniform.append(per_pixel * count)
            continue
        fitted = probe.clone().fit(rows(0, start), val)
        coded = fitted.per_image_bits(block)
        bits.append(float(coded.cond.sum()))
        null_bits.append(float(coded.null.sum()))
        pixels.append(float(coded.pixels.sum()))
        uniform.append(per_pixel * pixels[-1])
    return OnlineCode(ends, np.array(bits), np.array(null_bits), np.array(pixels),
                      np.array(uniform), int(fitted.n_parameters_))  # type: ignore[union-attr]


def _interval(values: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """Mean and Student-t interval over block orders (ends = mean with one order)."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, len(array) - 1)
                 * array.std(ddof=1) / math.sqrt(len(array)))
    return mean, mean - half, mean + half


def mdl_probes(
    data: Mapping[str, Mapping[str, ProbeSplits]],
    families: Sequence[str] = ("linear",),
    orders: Sequence[int] = (0, 1, 2),
    *,
    fractions: Sequence[float] = BLOCK_FRACTIONS,
    confidence: float = 0.95,
    probe_kwargs: Mapping[str, object] | None = None,
    head_kwargs: Mapping[str, Mapping[str, object]] | None = None,
) -> pd.DataFrame:
    """Online code lengths of representations × targets × families over block orders.

    Args:
        data: ``data[repr][target]`` = :class:`probes.probe_data.ProbeSplits`; the training split is
            sent, the validation split early-stops every fit, the test split is not used.
        families: family names (rows sorted by capacity rank).
        orders: seeds of the block orders (the interval is across them).
        fractions: block ends (:data:`BLOCK_FRACTIONS`).
        confidence: interval coverage.
        probe_kwargs: extra :class:`VInfoProbe` arguments.
        head_kwargs: per-target head arguments, as :func:`probes.study.run_probes`.

    Returns:
        One row per (repr, target, family): ``estimator`` (``mdl``), ``capacity_rank``,
        ``params`` (the last fit's), ``n_orders``, ``n_blocks``, ``n_train_images``,
        ``first_block`` (``uniform`` or ``excluded``), ``pixels`` (target pixels coded),
        ``online_bits``, ``null_online_bits``, ``uniform_bits`` (NaN for a density),
        ``online_bits_per_pixel``, ``mdl_iv`` (``(null - online) / pixels``, bits per target
        pixel like ``I_V``),
        ``compression`` (uniform / online), ``compression_null`` (null / online), each of the
        last four with ``*_ci_low`` / ``*_ci_high`` across orders.

    Raises:
        ValueError: unknown names, no order, repeated orders, or too few training images.
    """
    if not orders or len(set(orders)) != len(orders):
        raise ValueError(f"need distinct block orders, got {list(orders)}")
    ranked = sorted(families, key=lambda name: get_family(name).capacity_rank)
    rows = []
    for repr_name, targets in data.items():
        for target, splits in targets.items():
            get_target(target)
            train, val = as_probe_data(splits[0]), as_probe_data(splits[1])
            kwargs: dict[str, object] = dict(probe_kwargs or {})
            heads = dict(kwargs.get("head_kwargs") or {})  # type: ignore[call-overload]
            heads.update((head_kwargs or {}).get(target, {}))
            if not train.z.is_floating_point() and "num_classes" not in heads:
                # the uniform code and every early fit need all classes, not the first block's
                top = max(max_label(part.z, int(heads.get("ignore_index", 255)))
                          for part in (train, val))
                heads["num_classes"] = max(top + 1, 2)
            kwargs["head_kwargs"] = heads or None
            for family in ranked:
                probe = VInfoProbe(family, target, **kwargs)  # type: ignore[arg-type]
                codes = [online_code(probe, train, val, order, fractions) for order in orders]
                first = 0 if not math.isnan(codes[0].uniform_bits[0]) else 1
                per_order = {
                    "online": [c.bits[first:].sum() for c in codes],
                    "null": [c.null_bits[first:].sum() for c in codes],
                    "uniform": [c.uniform_bits[first:].sum() for c in codes],
                    "pixels": [c.pixels[first:].sum() for c in codes],
                }
                pixels = float(np.mean(per_order["pixels"]))
                row: dict[str, object] = {
                    "repr": repr_name, "target": target, "family": family,
                    "estimator": "mdl", "capacity_rank": get_family(family).capacity_rank,
                    "params": codes[-1].params, "n_orders": len(orders),
                    "n_blocks": len(codes[0].ends), "n_train_images": train.y.shape[0],
                    "first_block": "uniform" if first == 0 else "excluded",
                    "pixels": pixels,
                    "online_bits": float(np.mean(per_order["online"])),
                    "null_online_bits": float(np.mean(per_order["null"])),
                    "uniform_bits": float(np.mean(per_order["uniform"])),
                }
                ratios = {
                    "online_bits_per_pixel": [o / e for o, e in
                                              zip(per_order["online"], per_order["pixels"],
                                                  strict=True)],
                    "mdl_iv": [(m - o) / e for m, o, e in
                               zip(per_order["null"], per_order["online"],
                                   per_order["pixels"], strict=True)],
                    "compression": [u / o for u, o in
                                    zip(per_order["uniform"], per_order["online"],
                                        strict=True)],
                    "compression_null": [m / o for m, o in
                                         zip(per_order["null"], per_order["online"],
                                             strict=True)],
                }
                for name, values in ratios.items():
                    mean, low, high = _interval(values, confidence)
                    row.update({name: mean, f"{name}_ci_low": low, f"{name}_ci_high": high})
                rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["BLOCK_FRACTIONS", "OnlineCode", "block_ends", "mdl_probes", "online_code"]
