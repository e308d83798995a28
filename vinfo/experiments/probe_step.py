"""The probe step of ``vinfo reproduce`` (issue #8): V-information probes of every base model.

Every base model of a preset (both β, every λ) is probed on the same images, which no codec
saw (:func:`probe_source`), with the preset's :class:`~vinfo.experiments.presets.ProbeStudy`;
the step writes ``probes.csv``, the paired ``ΔI_V`` of β = proposed minus β = baseline at the
same λ (``probes_paired.csv``) and ``I_V`` against probe capacity for the similar-rate pair
(``fig_iv_capacity.png``), and skips the fits on a rerun whose study, data and checkpoints are
unchanged (``probe_cache/``). The pipeline that calls it is :mod:`vinfo.experiments.reproduce`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from probes import (
    BitsRecord,
    FitEvent,
    checkpoint_sha256,
    load_bits,
    paired_differences,
    probe_files,
    save_bits,
)
from probes.grid import GridExecutor
from probes.report import plot_iv_by_capacity
from vinfo.data.registry import DATASETS
from vinfo.data.synthetic import synthetic_preset_name
from vinfo.experiments.presets import ProbeStudy, ReproducePreset
from vinfo.experiments.results import (
    BASE_STRATEGY,
    IV_CAPACITY_FIGURE,
    PAIRED_FILE,
    PROBE_BITS_FILE,
    PROBE_CACHE_DIR,
    PROBE_RECORD_FILE,
    PROBES_FILE,
    RunKey,
)
from vinfo.experiments.sweep import FinishedRun
from vinfo.figures import save_figure
from vinfo.io import json_digest, read_json, write_json_atomic, write_text_atomic
from vinfo.progress import Progress, ProgressEvent, note


def repr_name(beta: float, lmbda: float) -> str:
    """The name of a base model in the probe tables (:attr:`RunKey.name`)."""
    return RunKey(BASE_STRATEGY, lmbda, beta).name


def probe_source(
    preset: ReproducePreset, study: ProbeStudy, data_root: str | Path | None
) -> dict[str, Any]:
    """Data source arguments of :func:`probes.probe_files`: the split of the preset's dataset
    that no codec saw (:attr:`vinfo.data.DatasetEntry.unseen_split`: fresh
    synthetic images, or a real dataset's official validation split), shrunk like the codec's
    inputs (``downscale``, given when it is not 1)."""
    split = DATASETS.get(preset.dataset).unseen_split
    if preset.dataset == "synthetic":
        name = synthetic_preset_name(preset.synthetic)
        if name is None:
            raise ValueError(
                "the probe step reads synthetic images by preset name; this preset's synthetic "
                "config matches none of vinfo.data.synthetic.PRESETS"
            )
        where: dict[str, Any] = {"preset": name}
    else:
        where = {"root": None if data_root is None else str(Path(data_root).resolve())}
    # downscale 1 stays implicit: the probe records of earlier runs stay valid
    scale = {"downscale": preset.downscale} if preset.downscale > 1 else {}
    return {"dataset": preset.dataset, **where, "split": split, "n_images": study.n_images,
            **scale}


def _controls(study: ProbeStudy, chosen: dict[float, FinishedRun]) -> bool | list[str]:
    """The representations that get the probe controls (:attr:`ProbeStudy.controls`)."""
    if isinstance(study.controls, bool):
        return study.controls
    return [repr_name(beta, run.spec.lmbda) for beta, run in chosen.items()]  # "pair"


def probe_base_models(
    preset: ReproducePreset,
    study: ProbeStudy,
    base_runs: dict[float, list[FinishedRun]],
    chosen: dict[float, FinishedRun],
    out: Path,
    data_root: str | Path | None,
    step: Progress,
    grid: GridExecutor | None = None,
) -> tuple[list[Path], pd.DataFrame]:
    """Probe every base model on the same images; write ``probes.csv``,
    ``probes_paired.csv`` and ``fig_iv_capacity.png``.

    The fits are skipped on a rerun when ``probe_cache/probes.json`` records the same study,
    data and checkpoint hashes: the table and the per-image bits (``probe_cache/bits.npz``)
    are read back, and only the bootstraps and the figure are redone.

    With ``grid`` (e.g. the worker processes that trained the models) every fit is a cell of
    a probe grid (:mod:`probes.grid`) in ``probe_cache/grid-<key>/``, ``key`` hashing the
    study, data and checkpoints: the same table to the last bit, in a fraction of the time,
    and a run stopped halfway refits only the missing cells. The folder is removed once the
    table is written.

    Returns:
        The files written and the paired ``ΔI_V`` of the similar-rate pair (proposed minus
        baseline, each at its own λ), one row per target × family.
    """
    baseline, proposed = preset.betas
    runs = [(beta, run) for beta in preset.betas for run in base_runs[beta]]
    names = [repr_name(beta, run.spec.lmbda) for beta, run in runs]
    source = probe_source(preset, study, data_root)
    cache = out / PROBE_CACHE_DIR
    record_file, bits_file = cache / PROBE_RECORD_FILE, cache / PROBE_BITS_FILE
    table_file = out / PROBES_FILE
    wanted = json.loads(json.dumps({
        "study": dataclasses.asdict(study),
        "source": source,
        "checkpoints": {name: checkpoint_sha256(run.checkpoint) for name, (_, run)
                        in zip(names, runs, strict=True)},
    }))
    stored = read_json(record_file) if record_file.is_file() else None
    if stored == wanted and bits_file.is_file() and table_file.is_file():
        step(note(f"probes: {table_file.name} is up to date (the fits are skipped)"))
        # "null" is a family name, not a missing value
        frame = pd.read_csv(table_file, keep_default_na=False, na_values=[""])
        bits = load_bits(bits_file)
    else:
        total, done = study.num_fits(len(runs)), 0

        def fitted(event: FitEvent) -> None:
            nonlocal done
            done += 1
            step(ProgressEvent("probe", f"probe [{done}/{total}] {event.repr} {event.target} "
                               f"{event.family} seed {event.seed}"))

        def cell_message(event: ProgressEvent) -> None:  # the grid's: "[k/n] <cell>"
            finished = event.kind == "finished"
            step(ProgressEvent("probe", f"probe {event}") if finished else event)

        grid_dir = cache / f"grid-{json_digest(wanted)[:16]}"
        run = probe_files(
            [r.checkpoint for _, r in runs], study.targets, study.families, study.seeds,
            names=names, cache_dir=cache, n_resamples=study.n_resamples,
            controls=_controls(study, chosen), probe_kwargs=study.probe_kwargs(),
            callback=fitted if grid is None else None, grid=grid,
            grid_dir=grid_dir if grid is not None else None,
            progress=cell_message, **source,
        )
        frame, bits = run.frame, run.bits
        where = {name: (beta, r.spec.lmbda) for name, (beta, r) in zip(names, runs, strict=True)}
        frame.insert(2, "beta", frame["repr"].map(lambda name: float(where[name][0])))
        frame.insert(3, "lmbda", frame["repr"].map(lambda name: float(where[name][1])))
        write_text_atomic(table_file, frame.to_csv(index=False))
        save_bits(bits, bits_file)
        write_json_atomic(record_file, wanted)  # last: marks the fits as complete
        for folder in cache.glob("grid-*"):  # the cells are in the table and bits.npz now
            shutil.rmtree(folder, ignore_errors=True)
    paired = paired_same_lambda(preset, bits, study)
    write_text_atomic(out / PAIRED_FILE, paired.to_csv(index=False))
    pair_names = [repr_name(beta, chosen[beta].spec.lmbda) for beta in (baseline, proposed)]
    pair_delta = paired_differences(
        bits, pairs=[(pair_names[1], pair_names[0])], n_resamples=study.n_resamples
    )
    # all 2 x len(λ) models in one panel are unreadable: the similar-rate pair only
    figure = plot_iv_by_capacity(frame[frame["repr"].isin(pair_names)])
    (figure_file,) = save_figure(figure, out / IV_CAPACITY_FIGURE)
    return [table_file, out / PAIRED_FILE, figure_file], pair_delta


def paired_same_lambda(
    preset: ReproducePreset, bits: BitsRecord, study: ProbeStudy
) -> pd.DataFrame:
    """``ΔI_V`` of β = proposed minus β = baseline at every λ, with a ``lmbda`` column."""
    baseline, proposed = preset.betas
    lmbdas = sorted(preset.base_lmbdas, reverse=True)
    pairs = [(repr_name(proposed, lmbda), repr_name(baseline, lmbda)) for lmbda in lmbdas]
    paired = paired_differences(bits, pairs=pairs, n_resamples=study.n_resamples)
    lmbda_of = {name: lmbda for (name, _), lmbda in zip(pairs, lmbdas, strict=True)}
    paired.insert(5, "lmbda", paired["repr"].map(lmbda_of).astype(float))
    return paired


__all__ = ["paired_same_lambda", "probe_base_models", "probe_source", "repr_name"]
