"""A plan of runs as SLURM jobs, through submitit (Meta's launcher, as DINOv2 and DETR use).

:class:`SlurmExecutor` implements :class:`~vinfo.experiments.plan.Executor`: every run of a
plan that has not finished becomes one job, submitted in plan order with its dependencies as
SLURM job dependencies (``--dependency=afterok:…``, ``--kill-on-invalid-dep=yes``), so SLURM
starts a run as soon as the runs it needs have finished and cancels it when one of them failed.
The driver (``vinfo reproduce``) submits a stage, waits for its jobs, evaluates, and submits
the next stage, exactly as with the local executors; the checkpoints are the same, because
:func:`~vinfo.experiments.sweep.train_run` seeds each run from its own config.

Cells are idempotent and resumable: a run that finished before is checked and skipped without a
job; a job that times out or is preempted is requeued by submitit's checkpointing protocol
(:class:`submitit.helpers.Checkpointable`) and resumes from its ``last_state.pt``; a job that
was cancelled (``scancel``) or failed is reported with its log path, and a rerun submits only
what is missing. Each job writes ``slurm.json`` into its run directory (job id, log paths), read
by :func:`cell_states` for ``vinfo reproduce --status``.

Options left ``None`` are not passed, so submitit's and the cluster's defaults stand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import submitit
import torch

from vinfo.experiments.plan import (
    DataSource,
    Plan,
    PlanError,
    is_finished,
    train_planned_run,
)
from vinfo.experiments.results import EXPERIMENT_FILE, SLURM_JOB_FILE
from vinfo.experiments.sweep import PlannedRun
from vinfo.io import read_json, write_json_atomic
from vinfo.progress import Progress, ProgressEvent
from vinfo.train.distributed import process_group_from_env

_POLL_SECONDS = 2.0
K = TypeVar("K")


class _SlurmRun(submitit.helpers.Checkpointable):
    """One run as a job: builds its splits and trains (resuming a requeued run)."""

    def __init__(self, run: PlannedRun, source: DataSource, threads: int) -> None:
        self.run, self.source, self.threads = run, source, threads

    def __call__(self) -> str:
        torch.set_num_threads(self.threads)
        splits = None if self.run.checkpoint.is_file() else self.source()
        if submitit.JobEnvironment().num_tasks > 1:
            # a DDP cell (tasks_per_node > 1): every task is one rank of the torchrun-style
            # environment, and train_run takes the path of `vinfo train` under torchrun
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False,
                                                                  overwrite=True)
        with process_group_from_env() as distributed:  # one task: nothing
            if distributed:
                print(f"{self.run.run_dir}: DDP rank {torch.distributed.get_rank()} of "
                      f"{torch.distributed.get_world_size()}", flush=True)
            train_planned_run(self.run, splits)  # resumes from last_state.pt after a requeue
        return str(self.run.checkpoint)


class _SlurmCall(submitit.helpers.Checkpointable):
    """``function(item)`` as the task of a job array, with the job's torch threads (a task
    that times out is requeued and calls it again: grid cells are idempotent)."""

    def __init__(self, function: Callable[[Any], Any], threads: int) -> None:
        self.function, self.threads = function, threads

    def __call__(self, item: Any) -> None:
        torch.set_num_threads(self.threads)
        self.function(item)


@dataclass(frozen=True)
class SlurmExecutor:
    """Runs a plan as SLURM jobs (one per unfinished run), through submitit.

    Attributes:
        folder: where submitit writes the jobs' pickles and logs (``%j`` is the job id).
        partition: ``--partition``.
        gpus_per_node: ``--gpus-per-node``.
        time_min: ``--time`` in minutes.
        cpus_per_task: ``--cpus-per-task``.
        mem_gb: ``--mem`` in GB.
        tasks_per_node: ``--ntasks-per-node`` (a DDP cell: submitit sets the torchrun-style
            environment in each task).
        threads: torch threads per job (default: ``cpus_per_task``, else 1).
        cluster: submitit's ``cluster`` (``None``: SLURM when ``sbatch`` is there; ``"local"``
            and ``"debug"`` run without a scheduler).
    """

    folder: Path
    partition: str | None = None
    gpus_per_node: int | None = None
    time_min: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    tasks_per_node: int | None = None
    threads: int | None = None
    cluster: str | None = None

    def _executor(self) -> submitit.AutoExecutor:
        executor = submitit.AutoExecutor(folder=Path(self.folder) / "%j", cluster=self.cluster)
        options = {
            "slurm_partition": self.partition,
            "gpus_per_node": self.gpus_per_node,
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
            "tasks_per_node": self.tasks_per_node,
        }
        executor.update_parameters(**{k: v for k, v in options.items() if v is not None})
        return executor

    def run(self, plan: Plan, source: DataSource, progress: Progress) -> None:
        executor = self._executor()
        threads = self.threads or self.cpus_per_task or 1
        jobs: dict[Path, submitit.Job[Any]] = {}
        for run in plan.runs:
            progress(run.event)
            if run.checkpoint.is_file():  # finished before: checked (spec, config), skipped
                train_planned_run(run, None)
                continue
            needed = [jobs[n] for n in run.after if n in jobs]
            extra: dict[str, Any] = {"name": f"vinfo:{run.run_dir.name}"}
            if executor.cluster == "slurm":  # set on every job: parameters persist
                extra["slurm_additional_parameters"] = {
                    "dependency": "afterok:" + ":".join(job.job_id for job in needed),
                    "kill-on-invalid-dep": "yes",
                } if needed else {}
            else:  # submitit's local and debug executors have no dependencies: wait here
                for job in needed:
                    job.wait()
            executor.update_parameters(**extra)
            job = executor.submit(_SlurmRun(run, source, threads))
            jobs[run.run_dir] = job
            run.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(run.run_dir / SLURM_JOB_FILE, _job_record(job))
        self._wait(plan, jobs, progress)

    def map(self, function: Callable[[Any], Any], items: Sequence[Any],
            progress: Progress, finished: Callable[[Any], bool] | None = None) -> None:
        """Call ``function(item)`` for every item as one SLURM job array (submitit's
        ``map_array``; the :class:`probes.grid.GridExecutor` protocol: the cells of a probe
        grid), wait for it, and raise :class:`PlanError` naming every task that ended without
        ``finished(item)`` (default: without a successful end), with its log.

        The tasks run as the cluster allows; a task that times out is requeued.
        """
        items = list(items)
        if not items:
            return
        executor = self._executor()
        executor.update_parameters(name="vinfo:grid", slurm_additional_parameters={})
        threads = self.threads or self.cpus_per_task or 1
        jobs = executor.map_array(_SlurmCall(function, threads), items)
        progress(ProgressEvent("submitted", f"submitted {len(jobs)} cells as SLURM job array "
                               f"{str(jobs[0].job_id).split('_')[0]}; logs in {self.folder}"))
        done = 0

        def ended(index: int, failure: str | None) -> None:
            nonlocal done
            if failure is None:
                done += 1
                progress(ProgressEvent("finished", f"[{done}/{len(items)}] {items[index]}"))
            else:
                progress(ProgressEvent("failed", f"failed: {items[index]}: {failure}"))

        failed = _wait_for(dict(enumerate(jobs)), lambda index, state: (
            finished(items[index]) if finished is not None else state in ("COMPLETED", "ENDED")),
            ended)
        if failed:
            raise PlanError({str(items[index]): reason for index, reason in failed.items()}, [])

    def _wait(self, plan: Plan, jobs: Mapping[Path, submitit.Job[Any]], progress: Progress
              ) -> None:
        def ended(run_dir: Path, failure: str | None) -> None:
            if failure is not None:
                progress(ProgressEvent("failed", f"failed: {run_dir}: {failure}"))

        failed = _wait_for(jobs, lambda run_dir, state: is_finished(run_dir), ended)
        if failed:
            by_dir = {run.run_dir: run for run in plan.runs}
            skipped = [d for d in failed if any(n in failed for n in by_dir[d].after)]
            raise PlanError({d: r for d, r in failed.items() if d not in skipped}, skipped)


_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING",
           "SUSPENDED", "STAGE_OUT"}
"""SLURM job states of a job that has not ended."""


def _wait_for(jobs: Mapping[K, submitit.Job[Any]], succeeded: Callable[[K, str], bool],
              ended: Callable[[K, str | None], None]) -> dict[K, str]:
    """Poll the queue until every job of ``jobs`` (key → job) has ended; a job that ended
    without ``succeeded(key, state)`` failed. ``ended(key, failure)`` is called as each ends
    (``failure``: ``None``, or the line of :func:`_failure`).

    Returns:
        key → failure line, for the jobs that failed.
    """
    pending = dict(jobs)
    failed: dict[K, str] = {}
    while pending:
        states = queue_states([job.job_id for job in pending.values()])
        for key, job in list(pending.items()):
            state = states.get(job.job_id, "ENDED")
            if state in _ACTIVE or (state == "ENDED" and not _job_ended(job)):
                continue
            del pending[key]
            if not succeeded(key, state):
                failed[key] = _failure(job, state)
            ended(key, failed.get(key))
        if pending:
            time.sleep(_POLL_SECONDS)
    return failed


def queue_states(job_ids: list[str]) -> dict[str, str]:
    """``job id → SLURM state`` from ``squeue`` (which, unlike ``sacct``, needs no accounting
    database); jobs the controller has forgotten are absent. Empty where there is no
    ``squeue`` (submitit's local executors)."""
    if not job_ids or shutil.which("squeue") is None:
        return {}
    result = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-o", "%i %T", "-j", ",".join(job_ids)],
        capture_output=True, text=True, check=False,
    )
    states = {}
    for line in result.stdout.splitlines():
        job_id, _, state = line.partition(" ")
        states[job_id] = state.strip().split()[0] if state.strip() else "UNKNOWN"
    return states


def _job_ended(job: submitit.Job[Any]) -> bool:
    """A job no queue lists: a SLURM job has ended (the controller lists every job it has
    accepted until ``MinJobAge`` after its end); one of submitit's local executors has ended
    once it says so."""
    return isinstance(job, submitit.SlurmJob) or job.done()


def _job_record(job: submitit.Job[Any]) -> dict[str, str]:
    return {"job_id": str(job.job_id), "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr)}


def _failure(job: submitit.Job[Any], state: str) -> str:
    """One line: the job's state, the last line of its error log, and where that log is."""
    log = Path(job.paths.stderr)
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    last = next((line for line in reversed(lines) if line.strip()), "no error output")
    return f"job {job.job_id} {state.lower()}: {last.strip()[:200]}; log {log}"


CELL_STATES = ("done", "running", "pending", "failed", "not submitted")


def cell_states(runs_dir: str | Path) -> list[dict[str, str]]:
    """Every run directory under ``runs_dir`` with its state: ``done`` (a checkpoint),
    ``running``/``pending``/``failed`` (from its SLURM job, through ``squeue``) or
    ``not submitted``; with the job id and log path where there is a job."""
    rows = []
    runs_dir = Path(runs_dir)
    marks = [*runs_dir.rglob(EXPERIMENT_FILE), *runs_dir.rglob(SLURM_JOB_FILE)]
    for run_dir in sorted({mark.parent for mark in marks}):
        row = {"run": str(run_dir.relative_to(runs_dir)), "state": "not submitted",
               "job_id": "", "log": ""}
        record_path = run_dir / SLURM_JOB_FILE
        if record_path.is_file():
            record = read_json(record_path)
            row["job_id"], row["log"] = record["job_id"], record["stderr"]
        if is_finished(run_dir):
            row["state"] = "done"
        rows.append(row)
    # one squeue call for every job still to be told apart
    states = queue_states([row["job_id"] for row in rows
                           if row["job_id"] and row["state"] != "done"])
    for row in rows:
        if row["job_id"] and row["state"] != "done":
            row["state"] = _cell_state(states.get(row["job_id"], "ENDED"))
    return rows


def _cell_state(state: str) -> str:
    """A SLURM job state as a cell state of :data:`CELL_STATES`."""
    if state in ("RUNNING", "COMPLETING"):
        return "running"
    if state in _ACTIVE:
        return "pending"
    return "failed"  # ended without a checkpoint (cancelled, failed, timed out, forgotten)


def slurm_available() -> bool:
    """Whether a SLURM controller answers here (``sbatch`` exists and ``sinfo`` works)."""
    return submitit.AutoExecutor.which() == "slurm" and os.system("sinfo -h >/dev/null 2>&1") == 0


__all__ = ["CELL_STATES", "SlurmExecutor", "cell_states", "slurm_available"]
