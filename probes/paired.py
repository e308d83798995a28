"""Paired differences of V-information between representations: ``ΔI_V`` with a paired CI.

:func:`probes.study.run_probes` probes every representation on the same test images with
the same seeds. ``I_V(a) − I_V(b)`` is therefore bootstrapped on per-image differences
``(null^a_i − cond^a_i) − (null^b_i − cond^b_i)`` (:func:`probes.uncertainty.
bootstrap_paired_difference`): the difficulty an image has for both representations cancels,
so the interval is much narrower than the gap between two independent intervals suggests.
The per-image bits come from a :class:`probes.study.BitsRecord` filled by ``run_probes``.

:func:`save_bits` / :func:`load_bits` keep a record in one ``.npz`` file (no pickles), so a
pipeline can recompute differences against another anchor without refitting.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from probes.families import get_family
from probes.probe_data import PerImageBits
from probes.study import BitsRecord
from probes.uncertainty import bootstrap_paired_difference
from vinfo.io import atomic_path

PAIRED_COLUMNS = ("target", "family", "capacity_rank", "repr", "anchor", "delta_iv",
                  "delta_iv_ci_low", "delta_iv_ci_high", "n_seeds", "n_resamples")
"""The columns every :func:`paired_differences` table starts with (others follow)."""
EXTRA_COLUMNS = ("repr_iv", "anchor_iv", "n_test_images", "confidence")


def _pairs(record: BitsRecord, anchor: str | None,
           pairs: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    known = record.reprs()
    if pairs is not None:
        if anchor is not None:
            raise ValueError("give either anchor or pairs, not both")
        chosen = [(str(a), str(b)) for a, b in pairs]
    else:
        if not known:
            return []
        anchor = known[0] if anchor is None else anchor
        if anchor not in known:
            raise LookupError(f"unknown anchor {anchor!r}; valid: {', '.join(known)}")
        chosen = [(name, anchor) for name in known if name != anchor]
    for name in {name for pair in chosen for name in pair}:
        if name not in known:
            raise LookupError(f"unknown representation {name!r}; valid: {', '.join(known)}")
    return chosen


def paired_differences(
    record: BitsRecord,
    anchor: str | None = None,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """``ΔI_V = I_V(repr) − I_V(anchor)`` per target × family, with a paired bootstrap CI.

    Args:
        record: per-image test bits of a :func:`probes.study.run_probes` call.
        anchor: the representation every other one is compared with (default: the first
            recorded). Ignored rows: the anchor against itself.
        pairs: explicit ``(repr, anchor)`` pairs instead (e.g. β = 0.1 vs β = 0 at each λ);
            a representation may be paired with itself (ΔI_V = 0 exactly).
        n_resamples: bootstrap replicates (0: no interval, CI ends = estimate).
        confidence: CI coverage.
        seed: seed of the resampling generator (the same draws for every row).

    Returns:
        Tidy DataFrame, one row per (target, family, pair), targets and families in recorded
        order: :data:`PAIRED_COLUMNS` (``delta_iv*`` in bits per target pixel, the point
        estimate equal to the difference of the two ``run_probes`` rows' ``iv``), then
        ``repr_iv``, ``anchor_iv``, ``n_test_images``, ``confidence``. Empty (with these
        columns) when there is nothing to compare.

    Raises:
        LookupError: an unknown representation, or a fit recorded for the anchor but not for
            the representation.
        ValueError: both ``anchor`` and ``pairs``, different seeds or test images between the
            two, or bad bootstrap settings.
    """
    chosen = _pairs(record, anchor, pairs)
    combos = list(dict.fromkeys((key.target, key.family) for key in record.entries))
    rows = []
    for target, family in combos:
        for name, base in chosen:
            seeds = record.seeds(base, target, family)
            if not seeds:
                continue  # the anchor was not probed on this target × family
            other = record.seeds(name, target, family)
            if sorted(other) != sorted(seeds):
                raise ValueError(f"{name!r} and {base!r} were probed with different seeds on "
                                 f"{target} {family} ({other} vs {seeds}): not paired")
            bits_a, pixels = record.iv_bits(name, target, family, seeds)
            bits_b, pixels_b = record.iv_bits(base, target, family, seeds)
            if pixels.shape != pixels_b.shape or not np.array_equal(pixels, pixels_b):
                raise ValueError(f"{name!r} and {base!r} were scored on different {target} "
                                 "test images: not paired")
            estimate = bootstrap_paired_difference(bits_a, bits_b, pixels, n_resamples,
                                                   confidence, seed)
            rows.append({
                "target": target, "family": family,
                "capacity_rank": get_family(family).capacity_rank, "repr": name,
                "anchor": base, "delta_iv": estimate.mean,
                "delta_iv_ci_low": estimate.ci_low, "delta_iv_ci_high": estimate.ci_high,
                "n_seeds": estimate.n_seeds, "n_resamples": estimate.n_resamples,
                "repr_iv": float((bits_a.sum(1) / pixels.sum()).mean()),
                "anchor_iv": float((bits_b.sum(1) / pixels.sum()).mean()),
                "n_test_images": int(pixels.shape[0]), "confidence": confidence,
            })
    return pd.DataFrame(rows, columns=[*PAIRED_COLUMNS, *EXTRA_COLUMNS])


def save_bits(record: BitsRecord, path: str | Path) -> Path:
    """Write ``record`` atomically to an ``.npz`` file (strings and float64 arrays only).

    Raises:
        ValueError: ``path`` does not end in ``.npz``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: a bits record is written as .npz")
    keys = list(record.entries)
    values = list(record.entries.values())
    lengths = np.array([len(bits.pixels) for bits in values], dtype=np.int64)

    def flat(field: str) -> np.ndarray:
        parts = [getattr(bits, field) for bits in values]
        return np.concatenate(parts) if parts else np.zeros(0)

    buffer = io.BytesIO()
    np.savez(buffer, keys=np.array([[k.repr, k.target, k.family, str(k.seed)] for k in keys],
                                   dtype=str).reshape(len(keys), 4),
             lengths=lengths, null=flat("null"), cond=flat("cond"), pixels=flat("pixels"))
    with atomic_path(path) as temporary:
        temporary.write_bytes(buffer.getvalue())
    return path


def load_bits(path: str | Path) -> BitsRecord:
    """Read a record written by :func:`save_bits`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a bits record.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such bits record")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            keys, lengths = arrays["keys"], arrays["lengths"]
            null, cond, pixels = arrays["null"], arrays["cond"], arrays["pixels"]
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a bits record ({error})") from None
    if len(keys) != len(lengths) or not (len(null) == len(cond) == len(pixels)
                                         == int(lengths.sum())):
        raise ValueError(f"{path}: not a bits record (inconsistent lengths)")
    record = BitsRecord()
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for (name, target, family, seed), start, stop in zip(keys, bounds[:-1], bounds[1:],
                                                        strict=True):
        part = slice(int(start), int(stop))
        record.add(str(name), str(target), str(family), int(seed),
                   PerImageBits(null[part], cond[part], pixels[part]))
    return record


__all__ = [
    "EXTRA_COLUMNS",
    "PAIRED_COLUMNS",
    "load_bits",
    "paired_differences",
    "save_bits",
]
