"""Plans of runs: the process executor trains the same checkpoints as the local one, and a
failing run stops only the runs that depend on it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest
import torch
from safetensors.torch import load_file

from vinfo.data import SyntheticConfig
from vinfo.experiments.plan import (
    LocalExecutor,
    Plan,
    PlanError,
    ProcessExecutor,
    executor_for,
    exit_with_parent,
)
from vinfo.experiments.presets import get_preset
from vinfo.experiments.reproduce import PresetData
from vinfo.experiments.sweep import PlannedRun, RunSpec, plan_lambda_sweep
from vinfo.train import TrainConfig

MICRO = dataclasses.replace(
    get_preset("micro"), synthetic=SyntheticConfig.preset("micro", num_images=24)
)
TRAIN = TrainConfig(lr=3e-3, max_epochs=2, patience=2, batch_size=8, quiet=True, device="cpu")


def two_curves(root) -> Plan:
    plan = Plan()
    for beta in (0.0, 0.1):
        plan.extend(plan_lambda_sweep(root / f"beta={beta:g}", RunSpec("depth", 1.0, beta),
                                      (300.0, 30.0), MICRO.codec, TRAIN))
    return plan


def weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


@pytest.mark.slow
def test_process_executor_trains_the_checkpoints_of_the_local_one(tmp_path):
    local, parallel = two_curves(tmp_path / "local"), two_curves(tmp_path / "parallel")
    torch.set_num_threads(1)  # the workers' setting: the same kernels, the same numbers
    lines: list[str] = []
    LocalExecutor().run(local, PresetData(MICRO), lambda line: None)
    ProcessExecutor(2).run(parallel, PresetData(MICRO), lines.append)
    assert len(lines) == 4
    for a, b in zip(local.runs, parallel.runs, strict=True):
        wa, wb = weights(a.checkpoint), weights(b.checkpoint)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        ha = pd.read_csv(a.run_dir / "metrics.csv").drop(columns="seconds")
        hb = pd.read_csv(b.run_dir / "metrics.csv").drop(columns="seconds")
        pd.testing.assert_frame_equal(ha, hb)
    # a rerun finds every model finished and trains nothing
    before = {r.checkpoint: r.checkpoint.stat().st_mtime_ns for r in parallel.runs}
    ProcessExecutor(2).run(two_curves(tmp_path / "parallel"), PresetData(MICRO), lines.append)
    assert {r.checkpoint: r.checkpoint.stat().st_mtime_ns for r in parallel.runs} == before


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_stops_only_its_dependents(tmp_path, workers):
    plan = two_curves(tmp_path)
    bad_init = tmp_path / "broken" / "model.safetensors"
    bad_init.parent.mkdir()
    bad_init.write_bytes(b"not a safetensors file")
    first = plan.runs[0]
    broken = dataclasses.replace(first, spec=dataclasses.replace(first.spec, init=str(bad_init)),
                                 after=())
    plan.runs[0] = broken
    with pytest.raises(PlanError) as raised:
        executor_for(workers).run(plan, PresetData(MICRO), lambda line: None)
    assert list(raised.value.failed) == [broken.run_dir]
    assert raised.value.skipped == [plan.runs[1].run_dir]  # warm-started from the broken run
    assert not broken.checkpoint.exists() and not plan.runs[1].checkpoint.exists()
    assert all(run.checkpoint.is_file() for run in plan.runs[2:])  # the other curve finished


def test_plans_refuse_duplicates_and_unknown_dependencies(tmp_path):
    plan = two_curves(tmp_path)
    with pytest.raises(ValueError, match="planned twice"):
        plan.add(plan.runs[0])
    orphan = PlannedRun(RunSpec("depth", 1.0), MICRO.codec, TRAIN, tmp_path / "x",
                        after=(tmp_path / "nowhere",))
    with pytest.raises(ValueError, match="not planned"):
        plan.add(orphan)
    with pytest.raises(ValueError, match="workers"):
        executor_for(0)


@pytest.mark.parametrize("warm_start", ["highest", "chain"])
def test_warm_starts_of_a_curve(tmp_path, warm_start):
    warm = dataclasses.replace(TRAIN, lr=1e-3)
    runs = plan_lambda_sweep(tmp_path, RunSpec("depth", 1.0, 0.0), (0.1, 1.0, 0.01), MICRO.codec,
                             TRAIN, warm, warm_start=warm_start)
    lmbdas = [run.spec.lmbda for run in runs]
    by_lmbda = {run.spec.lmbda: run for run in runs}
    assert runs[0].spec.init is None and runs[0].train == TRAIN and runs[0].after == ()
    assert all(run.train == warm for run in runs[1:])
    if warm_start == "highest":  # the paper's: every model from the highest-λ one
        assert lmbdas == [1.0, 0.1, 0.01]
        sources = {0.1: 1.0, 0.01: 1.0}
    else:  # upward, each from the next-lower λ
        assert lmbdas == [0.01, 0.1, 1.0]
        sources = {0.1: 0.01, 1.0: 0.1}
    for lmbda, source in sources.items():
        assert by_lmbda[lmbda].spec.init == str(by_lmbda[source].checkpoint)
        assert by_lmbda[lmbda].after == (by_lmbda[source].run_dir,)
    Plan().extend(runs)  # a valid order
    with pytest.raises(ValueError, match="warm_start"):
        plan_lambda_sweep(tmp_path, RunSpec("depth", 1.0, 0.0), (1.0,), MICRO.codec, TRAIN,
                          warm_start="lowest")


PARENT_SCRIPT = """
import sys, time
from vinfo.experiments.plan import ProcessExecutor
from vinfo.progress import silent
print("ready", flush=True)
ProcessExecutor(workers=2).map(time.sleep, [600, 600], silent)
"""


def _children(pid: int) -> set[int]:
    return {child.pid for child in psutil.Process(pid).children()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="orphans are reparented on POSIX")
def test_workers_end_when_the_parent_is_killed():
    """A killed ``vinfo reproduce`` takes its worker processes with it (otherwise each
    finishes its model after the folder lock is gone)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT_SCRIPT], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline:  # spawned workers start
            workers = {pid for pid in _children(parent.pid)
                       if "spawn_main" in " ".join(psutil.Process(pid).cmdline())}
            time.sleep(0.2)
        assert len(workers) == 2
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 15
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE}
        time.sleep(0.2)
    assert not alive, f"worker processes {sorted(alive)} outlived their parent"


def test_exit_with_parent_watches_in_a_daemon_thread():
    thread = exit_with_parent(os.getppid(), poll=0.05)  # our parent is alive: nothing happens
    time.sleep(0.2)
    assert thread.is_alive() and thread.daemon
