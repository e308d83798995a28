"""From files to a V-information table: what ``vinfo probe`` runs.

:func:`probe_files` loads (or computes and caches) every representation, checks that they
index the same images, builds one shared train/val/test partition with the targets read from
the dataset, runs :func:`probes.study.run_probes` over families × targets × seeds and
compares every representation with an anchor (:func:`probes.paired.paired_differences`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from probes.families import get_family
from probes.grid import CellJob, GridExecutor, run_grid
from probes.heads import get_target
from probes.mdl import mdl_probes
from probes.paired import paired_differences
from probes.report import PVIWriter
from probes.representations import (
    Representation,
    default_cache_dir,
    load_representation,
    unique_names,
)
from probes.sources import DEFAULT_FRACTIONS, ProbeInputs, build_probe_inputs
from probes.study import (
    BitsRecord,
    Controls,
    FitEvent,
    check_controls,
    check_study,
    control_seed,
    run_probes,
    study_cells,
    study_table,
)
from probes.uncertainty import MIN_BOOTSTRAP_IMAGES
from vinfo.progress import Progress

ESTIMATORS = ("iv", "mdl")
"""Estimators of :func:`probe_files`: held-out V-information or the online code length."""

DEFAULT_SEEDS = {"iv": 1, "mdl": 3}
"""Seeds per estimator where none are chosen (``vinfo probe``): one training seed for held-out
V-information; for MDL the seeds are block orders, whose spread gives its CI."""


class ProbeRun(NamedTuple):
    """Result of :func:`probe_files`.

    Attributes:
        frame: the tidy table of :func:`probes.study.run_probes`, plus ``source`` (the data
            probed) and ``repr_path`` (the file given).
        representations: the loaded representations, in the order given.
        inputs: the shared splits (their ``sample_ids`` name the test images).
        paired: ``ΔI_V`` of every other representation against the anchor, per target ×
            family, with paired CIs (:func:`probes.paired.paired_differences`); empty (same
            columns) with one representation.
        bits: the per-image test bits of every fit (for other comparisons).
    """

    frame: pd.DataFrame
    representations: list[Representation]
    inputs: ProbeInputs
    paired: pd.DataFrame
    bits: BitsRecord


def probe_files(
    paths: Sequence[str | Path],
    targets: Sequence[str],
    families: Sequence[str] = ("linear",),
    seeds: Sequence[int] = (0,),
    *,
    names: Sequence[str] | None = None,
    anchor: str | Path | None = None,
    dataset: str | None = None,
    split: str | None = None,
    preset: str | None = None,
    root: str | Path | None = None,
    n_images: int | None = None,
    downscale: int | None = None,
    cache_dir: str | Path | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    controls: Controls = True,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    split_seed: int = 0,
    probe_kwargs: Mapping[str, object] | None = None,
    pvi_dir: str | Path | None = None,
    pvi_images: int = 4,
    on_representation: Callable[[Representation], None] | None = None,
    callback: Callable[[FitEvent], None] | None = None,
    estimator: str = "iv",
    grid: GridExecutor | None = None,
    grid_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> ProbeRun:
    """Probe representation files (checkpoints or bundles) on the same images and seeds.

    Args:
        paths: base-codec checkpoints and/or representation bundles.
        targets: target names (:data:`probes.heads.TARGETS`).
        families: family names (:data:`probes.families.FAMILIES`).
        seeds: training seeds.
        names: display names of the representations (default: file stems, made unique).
        anchor: the representation the others are compared with in ``paired``, by display
            name or by the path given (default: the first).
        dataset: data source overrides, see :func:`probes.sources.resolve_source`.
        split: see ``dataset``.
        preset: see ``dataset``.
        root: see ``dataset``.
        n_images: see ``dataset``.
        downscale: see ``dataset`` (shrinks images and targets; default: recorded, else 1).
        cache_dir: representation cache (default :func:`probes.representations.default_cache_dir`).
        n_resamples: bootstrap replicates.
        confidence: CI coverage.
        controls: run the shuffled-representation control and the control task, for
            every representation (``True``), none, or those named in ``names``.
        fractions: probe train / val / test fractions.
        split_seed: seed of the shared partition.
        probe_kwargs: extra :class:`probes.estimator.VInfoProbe` arguments.
        pvi_dir: if given, write pointwise V-information maps of the test images for every
            non-null fit of the first seed into ``pvi_dir/<repr>/<target>/<family>/``
            (:class:`probes.report.PVIWriter`).
        pvi_images: maps written per probe (the hardest test images).
        on_representation: called after each representation is loaded or computed.
        callback: called after every probe fit (see :func:`probes.study.run_probes`).
        estimator: ``iv`` (held-out V-information, :func:`probes.study.run_probes`) or
            ``mdl`` (online code length, :func:`probes.mdl.mdl_probes`: ``seeds`` are then the
            block orders; no bootstrap, controls, PVI maps or paired table, ``paired`` is
            empty).
        grid: fit the cells as independent jobs through this executor (worker processes, a
            SLURM job array; :mod:`probes.grid`) instead of in this process; the table is the
            same. Every representation is computed (or read from the cache) here first.
        grid_dir: where the grid's cells write their results (needed with ``grid``); a rerun
            fits only the cells without one.
        progress: called with the grid's messages (cells submitted, finished, failed).

    Returns:
        :class:`ProbeRun`.

    Raises:
        LookupError: an anchor that names no given representation (before any work).
        ValueError: unknown names (before any work), representations on different data, and
            everything :func:`probes.sources.build_probe_inputs` and
            :func:`probes.representations.load_representation` refuse.
    """
    if not paths:
        raise ValueError("no representation given (--repr)")
    if not seeds:
        raise ValueError("at least one seed is needed")
    if not families or not targets:
        raise ValueError("at least one family and one target are needed")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    if estimator == "mdl" and pvi_dir is not None:
        raise ValueError("PVI maps come from held-out fits: not with the mdl estimator")
    if grid is not None and (estimator == "mdl" or pvi_dir is not None or grid_dir is None):
        raise ValueError("a grid fits held-out cells into grid_dir: it needs grid_dir, and "
                         "neither the mdl estimator nor PVI maps")
    for family in families:
        get_family(family)
    for target in targets:
        get_target(target)
    if names is None:
        names = unique_names(paths)
    else:
        names = [str(name) for name in names]
        if len(names) != len(paths) or len(set(names)) != len(names):
            raise ValueError(f"need {len(paths)} distinct names, got {names}")
    anchor_name = _anchor(anchor, paths, names)
    representations = []
    for path, name in zip(paths, names, strict=True):
        representation = load_representation(
            path, name=name, dataset=dataset, split=split, preset=preset, root=root,
            n_images=n_images, downscale=downscale, cache_dir=cache_dir)
        representations.append(representation)
        if on_representation is not None:
            on_representation(representation)
    sources = {r.source for r in representations}
    if len(sources) > 1:
        described = "; ".join(f"{r.name}: {r.source.describe()}" for r in representations)
        raise ValueError(f"representations index different data ({described}); pass "
                         "--dataset/--split/--preset/--n-images to probe them on the same images")
    source = representations[0].source
    mdl = estimator == "mdl"
    min_test = MIN_BOOTSTRAP_IMAGES if n_resamples > 0 and not mdl else 1
    inputs = build_probe_inputs({r.name: r.bundle for r in representations}, targets, source,
                                fractions=fractions, split_seed=split_seed, min_test=min_test)
    paths_by_name = {name: str(path) for name, path in zip(names, paths, strict=True)}
    if mdl:
        frame = mdl_probes(inputs.data, families, seeds, confidence=confidence,
                           probe_kwargs=probe_kwargs, head_kwargs=inputs.head_kwargs)
        frame.insert(1, "repr_path", frame["repr"].map(paths_by_name))
        frame["source"] = source.describe()
        return ProbeRun(frame, representations, inputs, pd.DataFrame(), BitsRecord())
    callbacks = [] if callback is None else [callback]
    if pvi_dir is not None:
        callbacks.insert(0, PVIWriter(pvi_dir, inputs.sample_ids[2], pvi_images, seeds[0]))

    def report(event: FitEvent) -> None:
        for function in callbacks:
            function(event)

    bits = BitsRecord()
    if grid is None:
        frame = run_probes(inputs.data, families, seeds, n_resamples=n_resamples,
                           confidence=confidence, controls=controls, probe_kwargs=probe_kwargs,
                           head_kwargs=inputs.head_kwargs, callback=report, record=bits)
    else:
        check_study(inputs.data, seeds, n_resamples)
        check_controls(controls, inputs.data)
        load = {"dataset": dataset, "split": split, "preset": preset,
                "root": None if root is None else str(Path(root).resolve()),
                "n_images": n_images, "downscale": downscale,
                "cache_dir": str(Path(cache_dir or default_cache_dir()).resolve())}
        jobs = [CellJob(_job_path(paths_by_name[cell.repr]), cell.repr, load, tuple(fractions),
                        split_seed, min_test, cell, dict(probe_kwargs or {}),
                        control_seed(cell, seeds, controls))
                for cell in study_cells({r.name: list(targets) for r in representations},
                                        families, seeds)]
        assert grid_dir is not None
        results = run_grid(jobs, grid_dir, grid, progress)
        for result in results:
            bits.add(*result.cell, result.bits)
            report(FitEvent(*result.cell, None, None))
        frame = study_table(results, n_resamples=n_resamples, confidence=confidence)
    frame.insert(1, "repr_path", frame["repr"].map(paths_by_name))
    frame["source"] = source.describe()
    paired = paired_differences(bits, anchor_name, n_resamples=n_resamples,
                                confidence=confidence)
    return ProbeRun(frame, representations, inputs, paired, bits)


def _job_path(path: str) -> str:
    """A representation file as an absolute path (a job may start in another directory); a
    spec (``compressai:…``, ``module:function``) as given."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def _anchor(anchor: str | Path | None, paths: Sequence[str | Path],
            names: Sequence[str]) -> str:
    """The display name of ``anchor`` (a name or one of ``paths``; default the first)."""
    if anchor is None:
        return names[0]
    if str(anchor) in names:
        return str(anchor)
    resolved = Path(anchor).resolve()
    for path, name in zip(paths, names, strict=True):
        if Path(path).resolve() == resolved:
            return name
    raise LookupError(f"anchor {str(anchor)!r} is none of the representations: "
                      f"{', '.join(names)}")


__all__ = ["ESTIMATORS", "ProbeRun", "probe_files"]
