"""RD collection: evaluate finished runs into the tidy RD table of :mod:`vinfo.experiments.rd`.

:func:`find_runs` finds the finished runs under directories, :func:`evaluate_run` evaluates one
(cached in its run folder, ``eval_<split>.json``, recomputed when the settings or the
checkpoint change), :func:`rd_point` makes its row and :func:`collect_rd` the table;
:func:`write_rd` is ``vinfo rd``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from torch.utils.data import Dataset

from vinfo.experiments.datasets import dataset_splits
from vinfo.experiments.evaluate import Evaluation, evaluate
from vinfo.experiments.rd import (
    RDPoint,
    rd_frame_with_order,
    write_compressai_json,
    write_rd_csv,
)
from vinfo.experiments.results import CHECKPOINT_FILE, EXPERIMENT_FILE, eval_file
from vinfo.experiments.sweep import FinishedRun, RunSpec, read_spec
from vinfo.io import check_output_file, read_json, write_json_atomic
from vinfo.models.checkpoint import load_checkpoint
from vinfo.progress import Progress, ProgressEvent, silent


def find_runs(paths: Iterable[str | Path]) -> list[FinishedRun]:
    """Finished runs in ``paths``: run directories, or directories searched recursively.

    Raises:
        FileNotFoundError: a path does not exist or holds no finished run.
    """
    runs: list[FinishedRun] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such directory")
        found = sorted(
            p.parent for p in path.rglob(EXPERIMENT_FILE)
            if (p.parent / CHECKPOINT_FILE).is_file()
        )
        if not found:
            raise FileNotFoundError(
                f"{path}: no finished run (no {EXPERIMENT_FILE} + {CHECKPOINT_FILE})"
            )
        runs.extend(FinishedRun(read_spec(d), d) for d in found)
    return runs


EVALUATION_VERSION = 1
"""Version of the cached evaluation's content; 1: with the per-image rates and statistics
(:attr:`~vinfo.experiments.evaluate.Evaluation.image_statistics`). A cache of another version
is recomputed."""


def evaluate_run(
    run: FinishedRun,
    dataset: Dataset,
    split: str,
    *,
    batch_size: int = 16,
    downscale_factor: int = 1,
    bitstream_images: int | None = None,
) -> Evaluation:
    """:func:`~vinfo.experiments.evaluate.evaluate` a finished run, cached in
    ``eval_<split>.json`` (recomputed when the settings or the checkpoint change)."""
    settings = {
        "split": split,
        "num_images": len(dataset),
        "batch_size": batch_size,
        "downscale_factor": downscale_factor,
        "bitstream_images": bitstream_images,
        "checkpoint_mtime_ns": run.checkpoint.stat().st_mtime_ns,
        "per_image": EVALUATION_VERSION,
    }
    cache = run.run_dir / eval_file(split)
    if cache.is_file():
        stored = read_json(cache)
        if isinstance(stored, dict) and stored.get("settings") == settings:
            return Evaluation.from_dict(stored["evaluation"])
    evaluation = evaluate(
        load_checkpoint(run.checkpoint),
        dataset,
        batch_size=batch_size,
        downscale_factor=downscale_factor,
        bitstream_images=bitstream_images,
    )
    write_json_atomic(cache, {"settings": settings, "evaluation": evaluation.to_dict()})
    return evaluation


def rd_point(spec: RunSpec, evaluation: Evaluation, label: str | None = None) -> RDPoint:
    """One row of an RD table: the spec's curve, λ and β, the rates and every metric, plus
    ``lmbda_base`` (the base model's λ), ``bpp_actual`` and ``rate_overhead`` (NaN when no
    bitstream was written)."""
    nan = float("nan")
    metrics = {
        **evaluation.metrics,
        "lmbda_base": spec.lmbda if spec.is_base else _base_lmbda(spec),
        "bpp_actual": nan if evaluation.bpp_actual is None else evaluation.bpp_actual,
        "rate_overhead": nan if evaluation.rate_overhead is None else evaluation.rate_overhead,
    }
    return RDPoint(
        label or spec.curve,
        spec.beta,
        spec.lmbda,
        spec.task,
        spec.strategy,
        evaluation.bpp_base,
        evaluation.bpp_enhancement,
        metrics,
    )


def _base_lmbda(spec: RunSpec) -> float:
    """λ of the base model an enhancement model sits on (NaN if the base is no run dir)."""
    try:
        return read_spec(Path(spec.base).parent).lmbda
    except FileNotFoundError:
        return float("nan")


def collect_rd(
    runs: Iterable[FinishedRun], dataset: Dataset, split: str, **options: Any
) -> pd.DataFrame:
    """Evaluate finished runs on ``dataset`` and return their tidy RD table (one row each).
    ``options``: those of :func:`collect_rd_evaluations` (``batch_size``,
    ``downscale_factor``, ``bitstream_images``, ``progress``)."""
    return collect_rd_evaluations(runs, dataset, split, **options)[0]


def collect_rd_evaluations(
    runs: Iterable[FinishedRun],
    dataset: Dataset,
    split: str,
    *,
    batch_size: int = 16,
    downscale_factor: int = 1,
    bitstream_images: int | None = None,
    progress: Progress = silent,
) -> tuple[pd.DataFrame, list[Evaluation]]:
    """:func:`collect_rd` with the evaluation of each row (row ``i``: ``evaluations[i]``),
    whose per-image data the BD bootstrap resamples (:mod:`vinfo.experiments.bd_bootstrap`)."""
    points, evaluations = [], []
    for run in runs:
        progress(ProgressEvent(
            "evaluate", f"evaluate {run.spec.task} {run.spec.curve} lambda={run.spec.lmbda:g}"))
        evaluation = evaluate_run(
            run,
            dataset,
            split,
            batch_size=batch_size,
            downscale_factor=downscale_factor,
            bitstream_images=bitstream_images,
        )
        points.append(rd_point(run.spec, evaluation))
        evaluations.append(evaluation)
    frame, order = rd_frame_with_order(points)
    return frame, [evaluations[i] for i in order]


def write_rd(
    paths: Iterable[str | Path],
    out: str | Path,
    *,
    compressai_dir: str | Path | None = None,
    dataset: str = "synthetic",
    split: str = "test",
    data_root: str | Path | None = None,
    synthetic: str = "tiny",
    downscale: int = 1,
    batch_size: int = 16,
    bitstream_images: int | None = None,
    progress: Progress = silent,
) -> pd.DataFrame:
    """``vinfo rd``: evaluate the finished runs under ``paths`` and write their RD table.

    Args:
        paths: run directories or directories holding them (searched recursively).
        out: the tidy RD CSV to write (read directly by ``vinfo bdrate``).
        compressai_dir: if given, also one CompressAI results JSON per curve there.
        dataset: dataset to evaluate on; ``split`` its split (``val`` or ``test``).
        data_root: root of a real dataset.
        synthetic: synthetic preset.
        downscale: the codecs see images shrunk by this factor.
        batch_size: images per forward pass.
        bitstream_images: images coded into real bitstreams per model (``None``: all).
        progress: called with one line per model.

    Returns:
        The RD table.

    Raises:
        ValueError: ``out`` does not end in ``.csv`` (checked before any work).
    """
    check_output_file(out, (".csv",), "the RD table")
    splits = dataset_splits(dataset, root=data_root, synthetic=synthetic)
    frame = collect_rd(
        find_runs(paths),
        splits.get(split),
        split,
        batch_size=batch_size,
        downscale_factor=downscale,
        bitstream_images=bitstream_images,
        progress=progress,
    )
    write_rd_csv(frame, out)
    if compressai_dir is not None:
        directory = Path(compressai_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for label in frame["label"].unique():
            # JSON has no NaN: keep the columns this curve has a value for in every row
            curve = frame[frame["label"] == label].dropna(axis=1, how="any")
            name = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label)
            write_compressai_json(curve, label, directory / f"{name}.json")
    return frame


__all__ = ["EVALUATION_VERSION", "collect_rd", "collect_rd_evaluations", "evaluate_run",
           "find_runs", "rd_point", "write_rd"]
