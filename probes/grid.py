"""A probe study as a grid of independent cells, fitted by worker processes or SLURM jobs.

Every cell of :func:`probes.study.study_cells` becomes one :class:`CellJob`: plain data that
names the representation file, the data it is probed on, the partition and the probe's
arguments, so that a worker rebuilds the cell's splits from the representation cache (the
driver computed every representation first) and needs nothing from the driver's memory.
:func:`fit_cell_job` fits it and writes its :class:`probes.study.CellResult` atomically to
``folder/<target>-<family>-seed<seed>-<key>.json``, where ``key`` hashes the job: a finished
cell is never fitted again, so a grid that was cancelled or failed halfway resumes with only
the missing cells.

A worker process shares one null per target between the cells it fits in a row on the same
targets (:class:`probes.study.SharedNulls`, as :func:`probes.study.run_probes` does within a
study); the null solver is deterministic, so the cells, and the table
:func:`probes.study.study_table` makes of them, equal those of the study in one process
(tested to the last bit).

:class:`GridExecutor` is what runs the jobs: :class:`vinfo.experiments.plan.ProcessExecutor`
(worker processes) and :class:`vinfo.experiments.slurm.SlurmExecutor` (a SLURM job array
through submitit) implement it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from torch.utils.data import Dataset

from probes.controls import control_task
from probes.representations import load_representation
from probes.sources import DataSource, build_probe_inputs
from probes.study import CellResult, SharedNulls, StudyCell, fit_cell, probe_arguments
from vinfo.io import json_digest, read_json, write_json_atomic
from vinfo.progress import Progress, note, silent


class CellJob(NamedTuple):
    """Everything a worker needs to fit one cell from files.

    Attributes:
        path: the representation (a checkpoint, bundle or spec, as given to ``--repr``).
        name: its display name.
        load: :func:`probes.representations.load_representation` arguments (dataset, split,
            preset, root, n_images, downscale, cache_dir), JSON values.
        fractions: probe train / val / test fractions.
        split_seed: seed of the shared partition.
        min_test: fewest test images accepted.
        cell: which fit.
        probe_kwargs: :class:`probes.estimator.VInfoProbe` arguments shared by every target.
        control_seed: seed of the control task, or ``None``: no controls for this cell (they
            run on the first seed of a family above ``null``).
    """

    path: str
    name: str
    load: dict[str, Any]
    fractions: tuple[float, ...]
    split_seed: int
    min_test: int
    cell: StudyCell
    probe_kwargs: dict[str, Any]
    control_seed: int | None

    def __str__(self) -> str:
        cell = self.cell
        return f"{cell.repr} {cell.target} {cell.family} seed {cell.seed}"

    def record(self) -> dict[str, Any]:
        """The job as JSON values (what its key hashes and its result file repeats)."""
        return json.loads(json.dumps({**self._asdict(), "cell": self.cell._asdict()}))

    @property
    def key(self) -> str:
        """A name for the job's result file: the SHA-256 of :meth:`record`, cut to 20 hex."""
        return json_digest(self.record())[:20]


def result_path(folder: str | Path, job: CellJob) -> Path:
    """Where :func:`fit_cell_job` writes ``job``'s result."""
    cell = job.cell
    return Path(folder) / f"{cell.target}-{cell.family}-seed{cell.seed}-{job.key}.json"


_WORKER_NULLS = SharedNulls()
"""The nulls this worker process fitted, reused by its next cells on the same targets."""

_WORKER_DATA: dict[DataSource, Dataset] = {}
"""The data source this worker process read last, built once (a synthetic dataset keeps the
scenes it generated: 0.5 s for the 512 images of the ``tiny`` preset's probes)."""


def _worker_dataset(source: DataSource) -> Dataset:
    if source not in _WORKER_DATA:
        _WORKER_DATA.clear()
        _WORKER_DATA[source] = source.build()
    return _WORKER_DATA[source]


def fit_cell_job(job: CellJob, folder: str | Path) -> Path:
    """Fit one cell from files and write its result to :func:`result_path` (atomically); a
    cell whose result is there already is not fitted again.

    Returns:
        The result file.
    """
    path = result_path(folder, job)
    if path.is_file():
        return path
    representation = load_representation(job.path, name=job.name, **job.load)
    target = job.cell.target
    inputs = build_probe_inputs({job.name: representation.bundle}, [target],
                                representation.source, fractions=job.fractions,
                                split_seed=job.split_seed, min_test=job.min_test,
                                dataset=_worker_dataset(representation.source))
    splits = inputs.data[job.name][target]
    control = None if job.control_seed is None else control_task(splits, seed=job.control_seed)
    kwargs = probe_arguments(target, job.probe_kwargs, inputs.head_kwargs)
    null_from = _WORKER_NULLS.get(target, splits, kwargs)
    result, fit, _ = fit_cell(splits, job.cell, kwargs, control=control, null_from=null_from)
    if null_from is None:
        _WORKER_NULLS.keep(target, splits, kwargs, fit)
    write_json_atomic(path, {"job": job.record(), "result": result.to_json()})
    return path


def read_cell_result(folder: str | Path, job: CellJob) -> CellResult:
    """The result :func:`fit_cell_job` wrote for ``job``.

    Raises:
        FileNotFoundError: the cell has not been fitted.
        ValueError: the file holds another job's result.
    """
    path = result_path(folder, job)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: cell {job.cell} has no result")
    record = read_json(path)
    if record.get("job") != job.record():
        raise ValueError(f"{path}: holds the result of another job")
    return CellResult.from_json(record["result"])


class GridExecutor(Protocol):
    """Runs independent jobs somewhere: ``map(function, items, progress, finished)`` calls
    ``function(item)`` for every item (in any order, anywhere), reports on ``progress``, and
    raises after all have ended if some failed (where the executor cannot see a job's
    exception, an item is done when ``finished(item)``)."""

    def map(self, function: Callable[[Any], Any], items: Sequence[Any],
            progress: Progress, finished: Callable[[Any], bool] | None = None) -> None: ...


def run_grid(jobs: Sequence[CellJob], folder: str | Path, executor: GridExecutor,
             progress: Progress | None = None) -> list[CellResult]:
    """Fit every job that has no result yet through ``executor``, then read all results.

    Returns:
        The results in the order of ``jobs``.
    """
    folder = Path(folder).resolve()  # a job may start in another directory
    folder.mkdir(parents=True, exist_ok=True)
    missing = [job for job in jobs if not result_path(folder, job).is_file()]
    report = progress or silent
    report(note(f"grid: {len(jobs)} cells, {len(jobs) - len(missing)} finished before, "
           f"{len(missing)} to fit; results in {folder}"))
    if missing:
        executor.map(partial(fit_cell_job, folder=folder), missing, report,
                     lambda job: result_path(folder, job).is_file())
    return [read_cell_result(folder, job) for job in jobs]


__all__ = ["CellJob", "GridExecutor", "fit_cell_job", "read_cell_result", "result_path",
           "run_grid"]
