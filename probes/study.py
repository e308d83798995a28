"""The probe study: representations × targets × families × seeds, one cell at a time.

A *cell* is one fit, :class:`StudyCell` = (representation, target, family, seed).
:func:`fit_cell` fits it and returns a :class:`CellResult`: plain data (the per-image test
bits, the scores, how the fit stopped, the controls' per-image bits) that travels between
processes and SLURM jobs as JSON (:meth:`CellResult.to_json`, exact: floats are written with
all their digits). :func:`study_table` turns the results of a study into its tidy table, one
row per (repr, target, family), with CIs that bootstrap test images and seeds jointly.

:func:`run_probes` fits every cell in this process and shares one null per target (the null
never sees ``y``, so it serves every family, seed and representation with the same targets).
Fitting the null again in another process gives the same bits: the null solver is
deterministic and draws no random number, and every fit seeds itself. This is what lets a grid
fit its cells anywhere (``vinfo probe --executor processes|slurm``) and get the same table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from probes.controls import SHUFFLE_TOLERANCE, control_task, shuffled_control
from probes.estimator import ProbeScores, VInfoProbe
from probes.families import get_family
from probes.heads import get_target
from probes.probe_data import PerImageBits, ProbeSplits, as_probe_data
from probes.uncertainty import (
    MIN_BOOTSTRAP_IMAGES,
    bootstrap_entropies,
    bootstrap_ratio,
    capacity_check,
)


class StudyCell(NamedTuple):
    """One fit of a study, also the key of its per-image test bits in a :class:`BitsRecord`."""

    repr: str
    target: str
    family: str
    seed: int


BitsKey = StudyCell
"""Which fit a :class:`PerImageBits` belongs to (the cell that produced it)."""


class BitsRecord:
    """Per-image test bits of every fit of :func:`run_probes` (``run_probes(record=...)``).

    The table of :func:`run_probes` keeps only ratios over all test images; comparing two
    representations with a paired interval needs the bits of each test image, per seed
    (:func:`probes.paired.paired_differences`). Entries are :class:`PerImageBits` keyed by
    :class:`BitsKey`, in insertion order. For a study of ``R`` reprs, ``T`` targets, ``F``
    families, ``S`` seeds and ``N`` test images it holds ``3·R·T·F·S·N`` float64.
    """

    def __init__(self) -> None:
        self.entries: dict[BitsKey, PerImageBits] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, repr: str, target: str, family: str, seed: int, bits: PerImageBits) -> None:
        """Record one fit's test bits (a repeated key replaces the old entry)."""
        self.entries[BitsKey(repr, target, family, int(seed))] = PerImageBits(
            *(np.asarray(values, dtype=np.float64) for values in bits))

    def reprs(self) -> list[str]:
        """Representation names, in first-recorded order."""
        return list(dict.fromkeys(key.repr for key in self.entries))

    def seeds(self, repr: str, target: str, family: str) -> list[int]:
        """Seeds recorded for one (repr, target, family), in recorded order."""
        return [key.seed for key in self.entries
                if (key.repr, key.target, key.family) == (repr, target, family)]

    def iv_bits(self, repr: str, target: str, family: str,
                seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(S, N)`` per-image ``null - cond`` bits of ``seeds`` (in that order) and the
        ``(N,)`` scored pixels.

        Raises:
            LookupError: a (repr, target, family, seed) was not recorded.
        """
        rows, pixels = [], None
        for seed in seeds:
            key = BitsKey(repr, target, family, int(seed))
            if key not in self.entries:
                raise LookupError(f"no test bits recorded for {repr!r} {target} {family} "
                                  f"seed {seed}")
            bits = self.entries[key]
            rows.append(bits.null - bits.cond)
            pixels = bits.pixels if pixels is None else pixels
        if pixels is None:
            raise LookupError("no seed given")
        return np.stack(rows), pixels


class FitEvent(NamedTuple):
    """Reported by :func:`run_probes` after every fit (for progress bars and PVI maps).

    Attributes:
        repr: representation name.
        target: target name.
        family: family name.
        seed: training seed of this fit.
        probe: the fitted :class:`VInfoProbe` (``None`` where the fit ran in another process
            or job: a grid reports finished cells only).
        splits: the splits it was fitted and will be scored on (``None`` likewise).
    """

    repr: str
    target: str
    family: str
    seed: int
    probe: VInfoProbe | None
    splits: ProbeSplits | None


@dataclass(frozen=True)
class CellResult:
    """What the table needs of one fitted cell.

    Attributes:
        cell: the cell.
        bits: per-image test bits of the fit.
        scores: :meth:`VInfoProbe.evaluate` on the test split.
        params: parameters of the family's body.
        null_fit: how the null was fitted (``closed_form``, ``converged``, ``budget``).
        discrete: whether the target is discrete (``iv_normalized`` defined).
        h_cond_val: validation ``H_V(Z|Y)`` (the best seed has the lowest).
        beats_null: the fit beat the null on validation (:data:`probes.estimator.BEATS_NULL_Z`).
        stopped_by: how the conditional fit stopped.
        shuffled: per-image test bits of the shuffled-representation control, where run.
        control: per-image test bits of the control task, where run.
    """

    cell: StudyCell
    bits: PerImageBits
    scores: ProbeScores
    params: int
    null_fit: str
    discrete: bool
    h_cond_val: float
    beats_null: bool
    stopped_by: str
    shuffled: PerImageBits | None = None
    control: PerImageBits | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (float64 values exactly: JSON floats keep every digit)."""
        def arrays(bits: PerImageBits | None) -> dict[str, list[float]] | None:
            return None if bits is None else {k: np.asarray(v, dtype=np.float64).tolist()
                                              for k, v in bits._asdict().items()}

        scores = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                  for k, v in self.scores._asdict().items()}
        return {"cell": self.cell._asdict(), "bits": arrays(self.bits), "scores": scores,
                "params": self.params, "null_fit": self.null_fit, "discrete": self.discrete,
                "h_cond_val": self.h_cond_val, "beats_null": self.beats_null,
                "stopped_by": self.stopped_by, "shuffled": arrays(self.shuffled),
                "control": arrays(self.control)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> CellResult:
        """The inverse of :meth:`to_json`."""
        def arrays(values: Mapping[str, list[float]] | None) -> PerImageBits | None:
            return None if values is None else PerImageBits(
                *(np.asarray(values[k], dtype=np.float64) for k in PerImageBits._fields))

        scores = {k: (float("nan") if v is None else v) for k, v in record["scores"].items()}
        bits = arrays(record["bits"])
        assert bits is not None
        return cls(StudyCell(**record["cell"]), bits, ProbeScores(**scores),
                   int(record["params"]), str(record["null_fit"]), bool(record["discrete"]),
                   float(record["h_cond_val"]), bool(record["beats_null"]),
                   str(record["stopped_by"]), arrays(record["shuffled"]),
                   arrays(record["control"]))


def study_cells(targets_of: Mapping[str, Sequence[str]], families: Sequence[str],
                seeds: Sequence[int]) -> list[StudyCell]:
    """Every cell in table order: representation, target, family by capacity rank, seed."""
    ranked = sorted(families, key=lambda name: get_family(name).capacity_rank)
    return [StudyCell(repr_name, target, family, int(seed))
            for repr_name, targets in targets_of.items() for target in targets
            for family in ranked for seed in seeds]


Controls = bool | Collection[str]
"""Which representations get the controls: all (``True``), none (``False``), or those named."""


def controls_for(controls: Controls, representation: str) -> bool:
    """Whether ``representation`` gets the controls (:data:`Controls`)."""
    return controls if isinstance(controls, bool) else representation in controls


def check_controls(controls: Controls, representations: Collection[str]) -> None:
    """Raise ``ValueError`` when ``controls`` names a representation the study does not have."""
    if not isinstance(controls, bool):
        unknown = sorted(set(controls) - set(representations))
        if unknown:
            raise ValueError(f"controls name unknown representations: {', '.join(unknown)}")


def control_seed(cell: StudyCell, seeds: Sequence[int], controls: Controls) -> int | None:
    """The seed of ``cell``'s controls, or ``None``: the controls run once per representation
    (of those :data:`Controls` selects), target and family above ``null``, on the first
    seed."""
    wanted = controls_for(controls, cell.repr)
    return seeds[0] if wanted and cell.seed == seeds[0] and cell.family != "null" else None


def probe_arguments(target: str, probe_kwargs: Mapping[str, object] | None,
                    head_kwargs: Mapping[str, Mapping[str, object]] | None) -> dict[str, object]:
    """:class:`VInfoProbe` arguments of one target: ``probe_kwargs`` with that target's
    ``head_kwargs`` merged over ``probe_kwargs["head_kwargs"]``."""
    kwargs: dict[str, object] = dict(probe_kwargs or {})
    if head_kwargs and target in head_kwargs:
        shared = kwargs.get("head_kwargs") or {}
        kwargs["head_kwargs"] = {**shared, **head_kwargs[target]}  # type: ignore[dict-item]
    return kwargs


def fit_cell(splits: ProbeSplits, cell: StudyCell, kwargs: Mapping[str, object], *,
             control: ProbeSplits | None = None, null_from: VInfoProbe | None = None,
             control_null_from: VInfoProbe | None = None
             ) -> tuple[CellResult, VInfoProbe, VInfoProbe | None]:
    """Fit one cell, score it on the test split and run its controls.

    Args:
        splits: the cell's representation and target splits.
        cell: which fit.
        kwargs: :class:`VInfoProbe` arguments (:func:`probe_arguments`).
        control: the control task's splits (:func:`probes.controls.control_task`): run the
            shuffled-representation control and the control task on this fit (``None``: no
            controls; the null family never has any).
        null_from: a fitted probe whose null to reuse (same targets), else the null is fitted.
        control_null_from: likewise for the control task.

    Returns:
        The result, the fitted probe and the control task's probe (``None`` without controls).
    """
    probe = VInfoProbe(cell.family, cell.target, seed=cell.seed, **kwargs)  # type: ignore[arg-type]
    fit = probe.fit(splits.train, splits.val, null_from=null_from)
    shuffled = control_bits = control_probe = None
    if control is not None and cell.family != "null":
        shuffled = shuffled_control(fit, splits, seed=cell.seed)
        control_probe = fit.clone().fit(control.train, control.val,
                                        null_from=control_null_from)
        control_bits = control_probe.per_image_bits(control.test)
    result = CellResult(
        cell, fit.per_image_bits(splits.test), fit.evaluate(splits.test), fit.n_parameters_,
        fit.null_.method, fit.head_.discrete, float(fit.h_cond_val_), bool(fit.beats_null_),
        fit.stopped_by_, shuffled, control_bits)
    return result, fit, control_probe


def check_study(data: Mapping[str, Mapping[str, ProbeSplits]], seeds: Sequence[int],
                n_resamples: int) -> None:
    """What :func:`run_probes` refuses before any fit (see there)."""
    if not seeds:
        raise ValueError("at least one seed is needed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    _check_paired(data)
    for targets in data.values():
        for target, splits in targets.items():
            get_target(target)
            n_test = as_probe_data(splits[2]).y.shape[0]
            if n_resamples > 0 and n_test < MIN_BOOTSTRAP_IMAGES:
                raise ValueError(f"too few test images for a confidence interval: {target} has "
                                 f"{n_test}, need at least {MIN_BOOTSTRAP_IMAGES} (use more "
                                 "images, or n_resamples=0 for point estimates only)")


def run_probes(
    data: Mapping[str, Mapping[str, ProbeSplits]],
    families: Sequence[str] = ("linear",),
    seeds: Sequence[int] = (0,),
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    controls: Controls = True,
    probe_kwargs: Mapping[str, object] | None = None,
    head_kwargs: Mapping[str, Mapping[str, object]] | None = None,
    callback: Callable[[FitEvent], None] | None = None,
    record: BitsRecord | None = None,
) -> pd.DataFrame:
    """Probe representations × targets × families × seeds with paired splits and seeds.

    Args:
        data: ``data[repr][target]`` = :class:`ProbeSplits`. For a given target every
            representation must share the same test targets (same images, same order), which
            makes the comparison between representations paired.
        families: family names, any order (rows are sorted by capacity rank).
        seeds: training seeds; each is combined with the image bootstrap.
        n_resamples: bootstrap replicates of the CIs (0: no interval, CI ends = estimate).
        confidence: CI coverage.
        controls: also run the shuffled-representation control and the control task (first
            seed, families above ``null``) and set flags: for every representation
            (``True``), none (``False``), or the representations named (:data:`Controls`).
        probe_kwargs: extra :class:`VInfoProbe` arguments (``width``, ``null``, ...).
        head_kwargs: per-target head arguments, ``{"segmentation": {"num_classes": 7}}``,
            merged over ``probe_kwargs["head_kwargs"]`` for that target only.
        callback: called with a :class:`FitEvent` after every fit (not the controls').
        record: if given, receives the per-image test bits of every (repr, target, family,
            seed) fit, for paired differences (:func:`probes.paired.paired_differences`).

    Returns:
        The table of :func:`study_table`.

    Raises:
        ValueError: unknown names, unpaired test targets between representations, or fewer
            than :data:`probes.uncertainty.MIN_BOOTSTRAP_IMAGES` test images with
            ``n_resamples > 0`` (checked before any fit).
    """
    check_study(data, seeds, n_resamples)
    check_controls(controls, data)
    for family in families:
        get_family(family)
    results = []
    shared_nulls = SharedNulls()
    prepared: dict[tuple[str, str], tuple[ProbeSplits, ProbeSplits | None, dict[str, object]]] = {}
    control_nulls: dict[tuple[str, str], VInfoProbe] = {}
    for cell in study_cells({name: list(targets) for name, targets in data.items()},
                            families, seeds):
        key = (cell.repr, cell.target)
        if key not in prepared:
            splits = ProbeSplits(*(as_probe_data(split) for split in data[cell.repr][cell.target]))
            control = (control_task(splits, seed=seeds[0])
                       if controls_for(controls, cell.repr) else None)
            prepared[key] = (splits, control, probe_arguments(cell.target, probe_kwargs,
                                                              head_kwargs))
        splits, control, kwargs = prepared[key]
        null_from = shared_nulls.get(cell.target, splits, kwargs)
        result, fit, control_probe = fit_cell(
            splits, cell, kwargs,
            control=None if control_seed(cell, seeds, controls) is None else control,
            null_from=null_from, control_null_from=control_nulls.get(key))
        if null_from is None:
            shared_nulls.keep(cell.target, splits, kwargs, fit)
        if control_probe is not None:
            control_nulls.setdefault(key, control_probe)
        results.append(result)
        if record is not None:
            record.add(*cell, result.bits)
        if callback is not None:
            callback(FitEvent(*cell, fit, splits))
    return study_table(results, n_resamples=n_resamples, confidence=confidence)


def study_table(results: Sequence[CellResult], *, n_resamples: int = 1000,
                confidence: float = 0.95) -> pd.DataFrame:
    """The tidy table of a study's cells, one row per (repr, target, family) in the order
    the cells come (:func:`study_cells`), seeds in the order given.

    Columns: ``capacity_rank``, ``params``, ``null``, ``n_seeds``, ``n_resamples``,
    ``h_null``, ``h_cond``, ``iv`` (bits per target pixel, means over seeds), ``iv_normalized``
    (NaN for densities), each of these four with ``*_ci_low`` / ``*_ci_high`` from one joint
    bootstrap, ``iv_bits_per_image``, ``iv_bits_per_element``, ``h_cond_train``, ``gap``,
    ``metric``, ``metric_value``, ``n_test_images``, ``null_fit`` (how the null was fitted:
    ``closed_form``, ``converged`` or ``budget``), ``stopped_by`` (how the conditional fits
    stopped: ``patience``, ``closed_form``, ``null`` for the null family, or ``budget`` if any
    seed ran out of epochs), ``budget_flag`` (the null or a fit stopped on its budget: it may
    not have converged), ``best_seed`` (lowest validation ``H_V(Z|Y)``, the infimum the
    definition asks for) with its ``iv_best``, ``iv_best_ci_low``, ``iv_best_ci_high`` (image
    bootstrap of that seed), ``no_gain_flag`` (no seed beat the null on validation by
    :data:`probes.estimator.BEATS_NULL_Z` standard errors: ``iv`` is then the raw test
    difference of the best trained state, often negative), ``shuffled_iv`` with
    ``shuffled_iv_ci_low``/``_high`` (the first seed's fit repeated on shuffled
    representations, :func:`probes.controls.shuffled_control`) and ``shuffled_flag`` (above
    :data:`probes.controls.SHUFFLE_TOLERANCE` with a CI above 0: a leak), ``control_iv`` with
    its CI (the same fit on the control task, :func:`probes.controls.control_task`) and
    ``selectivity = iv - control_iv`` (Hewitt & Liang 2019), NaN without controls, then
    ``capacity_flag``.
    """
    groups: dict[tuple[str, str, str], list[CellResult]] = {}
    for result in results:
        groups.setdefault(result.cell[:3], []).append(result)
    rows = [_row(cells, n_resamples, confidence) for cells in groups.values()]
    frame = pd.DataFrame(rows)
    frame["capacity_flag"] = capacity_check(frame) if len(frame) else []
    return frame


def _row(cells: Sequence[CellResult], n_resamples: int, confidence: float) -> dict[str, Any]:
    """The row of one (repr, target, family): its seeds' cells, the first seed first."""
    first = cells[0]
    repr_name, target, family, _ = first.cell
    bits = [cell.bits for cell in cells]
    scores = [cell.scores for cell in cells]
    estimates = bootstrap_entropies(np.stack([b.null for b in bits]),
                                    np.stack([b.cond for b in bits]),
                                    bits[0].pixels, n_resamples, confidence)
    row: dict[str, Any] = {
        "repr": repr_name, "target": target, "family": family,
        "capacity_rank": get_family(family).capacity_rank,
        "params": first.params, "null": first.scores.null,
        "n_seeds": estimates.iv.n_seeds, "n_resamples": estimates.iv.n_resamples,
    }
    for field in ProbeScores._fields:
        values = [getattr(score, field) for score in scores]
        if isinstance(values[0], float):
            row[field] = float(np.mean(values))
    for name, estimate in estimates._asdict().items():
        keep = first.discrete or name != "iv_normalized"
        row[name] = estimate.mean if keep else float("nan")
        row[f"{name}_ci_low"] = estimate.ci_low if keep else float("nan")
        row[f"{name}_ci_high"] = estimate.ci_high if keep else float("nan")
    row.update(metric=first.scores.metric, n_test_images=first.scores.n_images)
    # H_V is an infimum: the seed with the best validation NLL is the family's estimate of it;
    # the seed mean above is the estimator's average
    best = int(np.argmin([cell.h_cond_val for cell in cells]))
    best_iv = bootstrap_ratio(bits[best].null - bits[best].cond, bits[best].pixels,
                              n_resamples, confidence)
    row.update(best_seed=int(cells[best].cell.seed), iv_best=best_iv.mean,
               iv_best_ci_low=best_iv.ci_low, iv_best_ci_high=best_iv.ci_high)
    # no seed beat the null on validation: iv is the raw held-out difference of the best
    # trained state, flagged (not 0 with an interval [0, 0])
    row["no_gain_flag"] = family != "null" and not any(cell.beats_null for cell in cells)
    stops = [cell.stopped_by for cell in cells]
    row.update(null_fit=first.null_fit, stopped_by="budget" if "budget" in stops else stops[0])
    row["budget_flag"] = row["null_fit"] == "budget" or row["stopped_by"] == "budget"
    row.update(_controls(first, n_resamples, confidence, row["iv"]))
    return row


_NO_CONTROLS = {name: float("nan") for name in (
    "shuffled_iv", "shuffled_iv_ci_low", "shuffled_iv_ci_high", "control_iv",
    "control_iv_ci_low", "control_iv_ci_high", "selectivity")} | {"shuffled_flag": False}


def _controls(cell: CellResult, n_resamples: int, confidence: float,
              iv: float) -> dict[str, object]:
    """The shuffled control and the control task of one cell, with their CIs."""
    if cell.shuffled is None or cell.control is None:
        return dict(_NO_CONTROLS)
    shuffled = cell.shuffled
    shuffled_iv = bootstrap_ratio(shuffled.null - shuffled.cond, shuffled.pixels, n_resamples,
                                  confidence)
    # a leak is a CI above 0 by a margin that matters (without a CI: the margin alone)
    flag = shuffled_iv.mean > SHUFFLE_TOLERANCE and (n_resamples == 0 or shuffled_iv.ci_low > 0)
    control = cell.control
    control_iv = bootstrap_ratio(control.null - control.cond, control.pixels, n_resamples,
                                 confidence)
    return {
        "shuffled_iv": shuffled_iv.mean, "shuffled_iv_ci_low": shuffled_iv.ci_low,
        "shuffled_iv_ci_high": shuffled_iv.ci_high, "shuffled_flag": bool(flag),
        "control_iv": control_iv.mean, "control_iv_ci_low": control_iv.ci_low,
        "control_iv_ci_high": control_iv.ci_high, "selectivity": iv - control_iv.mean,
    }


class SharedNulls:
    """One fitted null per target, for the fits that follow on the same targets.

    The null never sees ``y``: a probe fitted on the same training and validation targets
    with the same arguments (:func:`probe_arguments`) serves as ``null_from`` to every
    family, seed and representation (the null solver is deterministic: the same bits as a
    null fitted anew, a fit fewer; the discretised null of the ``tiny`` preset's
    reconstruction target, 512 images of 64×64, is 6.7 s of a 14 s linear probe).
    :func:`run_probes` keeps one per study, a grid worker one per process
    (:func:`probes.grid.fit_cell_job`).
    """

    def __init__(self) -> None:
        self._by_target: dict[str, tuple[ProbeSplits, dict[str, object], VInfoProbe]] = {}

    def get(self, target: str, splits: ProbeSplits,
            kwargs: Mapping[str, object]) -> VInfoProbe | None:
        """The kept probe for ``target`` if it was fitted on the same targets and arguments."""
        kept = self._by_target.get(target)
        if kept is None or kept[1] != dict(kwargs) or not _same_targets(kept[0], splits):
            return None
        return kept[2]

    def keep(self, target: str, splits: ProbeSplits, kwargs: Mapping[str, object],
             fit: VInfoProbe) -> None:
        """Keep ``fit`` (which fitted its own null on ``splits``) for ``target``."""
        self._by_target[target] = (splits, dict(kwargs), fit)


def _same_targets(a: ProbeSplits, b: ProbeSplits) -> bool:
    """Whether two splits hold the same training and validation targets and masks."""
    for one, other in ((a.train, b.train), (a.val, b.val)):
        if one.z.shape != other.z.shape or not torch.equal(one.z, other.z):
            return False
        if (one.mask is None) != (other.mask is None):
            return False
        if one.mask is not None and not torch.equal(one.mask, other.mask):  # type: ignore[arg-type]
            return False
    return True


def _check_paired(data: Mapping[str, Mapping[str, ProbeSplits]]) -> None:
    reference: dict[str, Tensor] = {}
    for repr_name, targets in data.items():
        for target, splits in targets.items():
            test_z = as_probe_data(splits[2]).z
            if target in reference and not (reference[target].shape == test_z.shape
                                             and torch.equal(reference[target], test_z)):
                raise ValueError(f"representation {repr_name!r} has different {target} test "
                                 "targets than the others: comparisons must be paired")
            reference.setdefault(target, test_z)


__all__ = [
    "BitsKey",
    "BitsRecord",
    "CellResult",
    "Controls",
    "FitEvent",
    "SharedNulls",
    "StudyCell",
    "check_controls",
    "check_study",
    "control_seed",
    "controls_for",
    "fit_cell",
    "probe_arguments",
    "run_probes",
    "study_cells",
    "study_table",
]
