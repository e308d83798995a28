"""A plan of runs with dependencies, and the executors that carry it out.

A study is a graph of model trainings: the warm-started models of a curve need the curve's
first model, enhancement models need their base, the standalone models need the scalable ones
they start from. :class:`Plan` holds that graph as :class:`~vinfo.experiments.sweep.PlannedRun`
entries (each a :func:`vinfo.experiments.sweep.train_run` call with its arguments) and their
dependencies; an executor runs it:

- :class:`LocalExecutor`: in this process, in plan order (``vinfo reproduce --workers 1``);
- :class:`ProcessExecutor`: a pool of worker processes on this machine, each with one torch
  thread, that starts every run as soon as its dependencies have finished.

Both give the same checkpoints: :func:`~vinfo.experiments.sweep.train_run` seeds every run
from its own :class:`~vinfo.train.TrainConfig` and builds its data from a
:class:`DataSource`, so a run does not depend on which process trains it or what ran before it.
Each run writes its own directory atomically; when one fails, the runs that do not depend on
it still run, and :class:`PlanError` lists what failed once everything else is done. A cluster
executor (one job per run, dependencies as job dependencies) only has to implement
:class:`Executor`.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from vinfo.experiments.datasets import Splits
from vinfo.experiments.results import CHECKPOINT_FILE
from vinfo.experiments.sweep import PlannedRun, train_run
from vinfo.progress import Progress, ProgressEvent


class DataSource(Protocol):
    """Builds the splits a run trains on; picklable, so a worker process can build its own."""

    def __call__(self) -> Splits: ...


@dataclass
class Plan:
    """Runs in a valid order (every run after the runs it needs).

    Attributes:
        runs: the runs; :meth:`add` checks that dependencies come first.
    """

    runs: list[PlannedRun] = field(default_factory=list)

    def add(self, run: PlannedRun) -> PlannedRun:
        """Append ``run``; its dependencies must already be in the plan or finished on disk.

        Raises:
            ValueError: a run directory planned twice, or an unknown dependency.
        """
        known = {r.run_dir for r in self.runs}
        if run.run_dir in known:
            raise ValueError(f"{run.run_dir}: planned twice")
        for needed in run.after:
            if needed not in known and not is_finished(needed):
                raise ValueError(f"{run.run_dir}: depends on {needed}, which is not planned")
        self.runs.append(run)
        return run

    def extend(self, runs: Iterable[PlannedRun]) -> None:
        for run in runs:
            self.add(run)

    def __len__(self) -> int:
        return len(self.runs)


class PlanError(RuntimeError):
    """Some runs of a plan failed; the others finished (or were skipped as dependents).

    Attributes:
        failed: run directory (or a grid cell) → the error's last line.
        skipped: run directories not started because a dependency failed.
    """

    def __init__(self, failed: Mapping[Path | str, str], skipped: Sequence[Path]) -> None:
        self.failed, self.skipped = dict(failed), list(skipped)
        lines = [f"{path}: {reason}" for path, reason in self.failed.items()]
        more = f"; {len(self.skipped)} dependent run(s) not started" if self.skipped else ""
        super().__init__(f"{len(self.failed)} run(s) failed{more}: " + "; ".join(lines))


class Executor(Protocol):
    """Carries out a :class:`Plan`."""

    def run(self, plan: Plan, source: DataSource, progress: Progress) -> None:
        """Train every run of ``plan`` on ``source``'s splits; raise :class:`PlanError` after
        the end if some failed."""
        ...


def train_planned_run(run: PlannedRun, splits: Splits | None) -> None:
    """Carry out one run (every executor's unit of work); ``splits`` may be ``None`` for a
    finished run, which is checked and skipped."""
    train_run(run.spec, run.config, splits, run.train, run.run_dir, data=run.data)


def error_line(error: BaseException) -> str:
    """``"Type: first line of the message"``, how executors report a failed run."""
    return f"{type(error).__name__}: {error}".splitlines()[0]


class LocalExecutor:
    """Runs a plan in this process, in plan order."""

    def run(self, plan: Plan, source: DataSource, progress: Progress) -> None:
        splits: Splits | None = None
        failed: dict[Path, str] = {}
        skipped: list[Path] = []
        for run in plan.runs:
            if any(needed in failed or needed in skipped for needed in run.after):
                skipped.append(run.run_dir)
                continue
            progress(run.event)
            if splits is None and not run.checkpoint.is_file():
                splits = source()
            try:
                train_planned_run(run, splits)  # a finished run is checked and skipped without data
            except Exception as error:  # noqa: BLE001 - reported with the others at the end
                failed[run.run_dir] = error_line(error)
        if failed:
            raise PlanError(failed, skipped)

    def map(self, function: Callable[[Any], Any], items: Sequence[Any],
            progress: Progress, finished: Callable[[Any], bool] | None = None) -> None:
        """Call ``function(item)`` for every item here, in order (the
        :class:`probes.grid.GridExecutor` protocol); raise :class:`PlanError` at the end if
        some failed."""
        failed: dict[str, str] = {}
        for count, item in enumerate(items, start=1):
            progress(ProgressEvent("finished", f"[{count}/{len(items)}] {item}"))
            try:
                function(item)
            except Exception as error:  # noqa: BLE001 - reported with the others at the end
                failed[str(item)] = error_line(error)
        if failed:
            raise PlanError(failed, [])


_WORKER_SPLITS: dict[int, Splits] = {}


def _worker_init(threads: int, parent: int) -> None:
    torch.set_num_threads(threads)
    exit_with_parent(parent)


PARENT_POLL_SECONDS = 1.0
"""How often a worker checks that the process that started it is still there."""


def exit_with_parent(parent: int, poll: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """End this (worker) process within ``poll`` seconds of its parent ``parent`` ending.

    A pool's workers otherwise outlive a killed ``vinfo reproduce`` (``kill``, the OOM killer,
    a node's job limit): each finishes the model it is training, after the folder lock has
    gone with the parent, so a rerun could train the same run folder beside it. Ended here,
    a worker leaves what an interrupted run leaves (atomic files, a resumable state). Polls
    :func:`os.getppid`, which changes when the parent dies (POSIX: the orphan is adopted by
    init or a subreaper); the thread is a daemon and costs nothing while the parent lives.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    thread = threading.Thread(target=watch, name="vinfo-exit-with-parent", daemon=True)
    thread.start()
    return thread


def _worker_train(run: PlannedRun, source: DataSource) -> None:
    key = hash(source)  # one build of the splits (and its scene cache) per worker and source
    if key not in _WORKER_SPLITS:
        _WORKER_SPLITS.clear()
        _WORKER_SPLITS[key] = source()
    try:
        train_planned_run(run, _WORKER_SPLITS[key])
    except Exception as error:
        # the traceback as text: exceptions of library types may not unpickle in the parent
        raise RuntimeError(error_line(error) + "\n" + traceback.format_exc()) from None


class ProcessExecutor:
    """Runs a plan in ``workers`` processes of this machine, each run once its dependencies
    have finished (``spawn`` start method, so no torch state is forked).

    Args:
        workers: worker processes (≥ 1; default one per core).
        threads: torch intra-op threads per worker (1: on a small machine two busy threads
            per process slow training down, and one process per core uses every core).
    """

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        workers = max(1, os.cpu_count() or 1) if workers is None else workers
        if workers < 1 or threads < 1:
            raise ValueError(f"workers and threads must be >= 1, got {workers}, {threads}")
        self.workers, self.threads = workers, threads

    def run(self, plan: Plan, source: DataSource, progress: Progress) -> None:
        planned = {run.run_dir for run in plan.runs}
        pending = list(plan.runs)
        done: set[Path] = set()
        failed: dict[Path, str] = {}
        skipped: list[Path] = []
        running: dict[Future[None], PlannedRun] = {}

        def ready(run: PlannedRun) -> bool:
            return all(n in done or (n not in planned and is_finished(n)) for n in run.after)

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, context, _worker_init,
                                 (self.threads, os.getpid())) as pool:
            while pending or running:
                for run in list(pending):
                    if any(n in failed or n in skipped for n in run.after):
                        pending.remove(run)
                        skipped.append(run.run_dir)
                    elif ready(run) and run.checkpoint.is_file():
                        pending.remove(run)  # finished before: checked and skipped here
                        progress(run.event)
                        train_planned_run(run, None)
                        done.add(run.run_dir)
                    elif ready(run) and len(running) < self.workers:
                        pending.remove(run)
                        progress(run.event)
                        running[pool.submit(_worker_train, run, source)] = run
                if not running:
                    if pending and not any(ready(run) for run in pending):
                        raise ValueError("the plan's dependencies can never be met")
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    run = running.pop(future)
                    error = future.exception()
                    if error is None:
                        done.add(run.run_dir)
                    else:
                        failed[run.run_dir] = str(error).splitlines()[0]
                        line = f"failed: {run.run_dir}: {failed[run.run_dir]}"
                        progress(ProgressEvent("failed", line))
        if failed:
            raise PlanError(failed, skipped)

    def map(self, function: Callable[[Any], Any], items: Sequence[Any],
            progress: Progress, finished: Callable[[Any], bool] | None = None) -> None:
        """Call ``function(item)`` for every item in the worker processes, in any order
        (the :class:`probes.grid.GridExecutor` protocol: the cells of a probe grid); raise
        :class:`PlanError` after all have ended if some failed. ``finished`` is not needed
        here: a worker's exception says that its item failed."""
        failed: dict[str, str] = {}
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, context, _worker_init,
                                 (self.threads, os.getpid())) as pool:
            futures = {pool.submit(_worker_call, function, item): item for item in items}
            for count, future in enumerate(as_completed(futures), start=1):
                item = futures[future]
                error = future.exception()
                if error is None:
                    progress(ProgressEvent("finished", f"[{count}/{len(futures)}] {item}"))
                else:
                    failed[str(item)] = str(error).splitlines()[0]
                    progress(ProgressEvent("failed", f"failed: {item}: {failed[str(item)]}"))
        if failed:
            raise PlanError(failed, [])


def _worker_call(function: Callable[[Any], Any], item: Any) -> None:
    try:
        function(item)
    except Exception as error:
        # the traceback as text: exceptions of library types may not unpickle in the parent
        raise RuntimeError(error_line(error) + "\n" + traceback.format_exc()) from None


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished checkpoint."""
    return (run_dir / CHECKPOINT_FILE).is_file()


def executor_for(workers: int) -> Executor:
    """:class:`LocalExecutor` for one worker, :class:`ProcessExecutor` for more."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return LocalExecutor() if workers == 1 else ProcessExecutor(workers)


__all__ = [
    "DataSource",
    "Executor",
    "LocalExecutor",
    "Plan",
    "error_line",
    "is_finished",
    "train_planned_run",
    "PlanError",
    "ProcessExecutor",
    "executor_for",
]
