"""The reproduce plan on a real one-node SLURM cluster (``scripts/slurm-local.sh start``, which
``make test`` and ``.ci/run`` run where ``apt-get`` can install slurm-wlm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vinfo.experiments.results import CHECKPOINT_FILE, SLURM_JOB_FILE
from vinfo.experiments.slurm import slurm_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not slurm_available(), reason="no SLURM controller answers here: "
                       "start the one-node cluster with scripts/slurm-local.sh start (needs "
                       "apt-get for slurm-wlm) and export SLURM_CONF as it prints"),
]

VINFO = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[3]
RESULT_TABLES = ("bd_table.csv", "rd_depth.csv", "rd_reconstruction.csv", "rd_segmentation.csv")


def _vinfo(*args: str, background: bool = False):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [*VINFO, *args]
    if background:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def _first_running_job(timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True,
                                 text=True, check=True).stdout.split()
        if running:
            return running[0]
        time.sleep(0.5)
    raise AssertionError("no SLURM job started running")


def _job_ids(runs: Path) -> dict[str, str]:
    return {str(record.parent.relative_to(runs)): json.loads(record.read_text())["job_id"]
            for record in runs.rglob(SLURM_JOB_FILE)}


def test_micro_plan_on_slurm_survives_scancel_and_matches_local(tmp_path):
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    # 1. a run with one job cancelled: its run and its dependents fail, the others finish
    first = _vinfo("reproduce", "--preset", "micro", "--out", str(on_slurm), "--executor",
                   "slurm", "--quiet", background=True)
    cancelled = _first_running_job()
    subprocess.run(["scancel", cancelled], check=True)
    _, stderr = first.communicate(timeout=900)
    assert first.returncode == 1, stderr
    error = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"job {cancelled} cancelled" in error[0] and "log " in error[0]

    status = _vinfo("reproduce", "--preset", "micro", "--out", str(on_slurm), "--status")
    assert status.returncode == 0, status.stderr
    failed = [line for line in status.stdout.splitlines() if " failed job " in line]
    assert any(f"job {cancelled} log " in line for line in failed)
    done_before = {run: job for run, job in _job_ids(on_slurm / "runs").items()
                   if (on_slurm / "runs" / run / CHECKPOINT_FILE).is_file()}
    assert done_before and len(failed) >= 1

    # 2. the rerun submits only what is missing
    again = _vinfo("reproduce", "--preset", "micro", "--out", str(on_slurm), "--executor",
                   "slurm", "--quiet")
    assert again.returncode == 0, again.stderr
    after = _job_ids(on_slurm / "runs")
    assert all(after[run] == job for run, job in done_before.items())  # not resubmitted
    rerun = {run for run in after if run not in done_before}
    assert rerun and all(int(after[run]) > int(cancelled) for run in rerun)
    status = _vinfo("reproduce", "--preset", "micro", "--out", str(on_slurm), "--status")
    assert status.stdout.splitlines()[-1] == f"{len(after)} done"

    # 3. the same results as the local executor: tables byte for byte, weights exactly
    here = _vinfo("reproduce", "--preset", "micro", "--out", str(local), "--executor",
                  "local", "--quiet")
    assert here.returncode == 0, here.stderr
    for table in RESULT_TABLES:
        assert (on_slurm / table).read_bytes() == (local / table).read_bytes(), table
    checkpoints = sorted((local / "runs").rglob(CHECKPOINT_FILE))
    assert len(checkpoints) == len(after)
    for path in checkpoints:
        theirs = load_file(on_slurm / path.relative_to(local))
        ours = load_file(path)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[key], theirs[key]) for key in ours), path


def test_probe_grid_as_a_job_array_matches_the_probes_in_process(tmp_path):
    from probes.bundles import save_bundle

    generator = torch.Generator().manual_seed(0)
    bundles = []
    for name in ("a", "b"):
        bundles += ["--repr", str(tmp_path / f"{name}.safetensors")]
        save_bundle(tmp_path / f"{name}.safetensors",
                    torch.randn(100, 2, 4, 4, generator=generator), torch.arange(100))
    study = [*bundles, "--target", "depth,segmentation", "--family", "linear,conv",
             "--bootstrap", "50", "--max-epochs", "2", "--quiet"]
    here = _vinfo("probe", *study, "--out", str(tmp_path / "local.csv"),
                  "--paired-out", str(tmp_path / "local-paired.csv"))
    assert here.returncode == 0, here.stderr
    grid = tmp_path / "cells"
    on_slurm = _vinfo("probe", *study, "--executor", "slurm", "--grid-dir", str(grid),
                      "--out", str(tmp_path / "slurm.csv"),
                      "--paired-out", str(tmp_path / "slurm-paired.csv"))
    assert on_slurm.returncode == 0, on_slurm.stderr
    # 2 representations × 2 targets × 2 families × 1 seed (controls ride on those fits): 8
    # cells, one job array
    assert len(list(grid.glob("*.json"))) == 8
    logs = list((grid / "slurm").rglob("*_log.out"))
    assert len({log.parent.name.split("_")[0] for log in logs}) == 1 and len(logs) == 8
    for table in ("", "-paired"):
        assert (tmp_path / f"slurm{table}.csv").read_bytes() == \
            (tmp_path / f"local{table}.csv").read_bytes(), table
    # a rerun finds every cell and submits nothing
    rerun = _vinfo("probe", *study, "--executor", "slurm", "--grid-dir", str(grid),
                   "--out", str(tmp_path / "again.csv"))
    assert rerun.returncode == 0, rerun.stderr
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert len(list((grid / "slurm").rglob("*_log.out"))) == 8


def test_a_ddp_cell_trains_like_one_process(tmp_path):
    import dataclasses

    from vinfo.data import SyntheticConfig
    from vinfo.experiments.plan import LocalExecutor, Plan
    from vinfo.experiments.presets import get_preset
    from vinfo.experiments.reproduce import PresetData
    from vinfo.experiments.slurm import SlurmExecutor
    from vinfo.experiments.sweep import RunSpec, plan_lambda_sweep
    from vinfo.train import TrainConfig

    # reconstruction has no BatchNorm and no augmentation here: DDP over 2 ranks then equals one
    # process up to float summation order (as `vinfo train` under torchrun, test_cli_torchrun)
    micro = dataclasses.replace(get_preset("micro"), augment=False,
                                synthetic=SyntheticConfig.preset("micro", num_images=16))
    train = TrainConfig(lr=3e-3, max_epochs=1, max_steps=3, batch_size=8, quiet=True,
                        device="cpu")

    def plan(root) -> Plan:
        return Plan(list(plan_lambda_sweep(root, RunSpec("reconstruction", 1.0, 0.1), (1.0,),
                                           micro.codec, train)))

    single, ddp = plan(tmp_path / "single"), plan(tmp_path / "ddp")
    torch.set_num_threads(1)
    LocalExecutor().run(single, PresetData(micro), lambda line: None)
    SlurmExecutor(tmp_path / "slurm", tasks_per_node=2, cpus_per_task=1).run(
        ddp, PresetData(micro), lambda line: None)
    (run,) = ddp.runs
    expected, got = load_file(single.runs[0].checkpoint), load_file(run.checkpoint)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)
    # the two tasks of the job were the two ranks of one process group
    logs = sorted((tmp_path / "slurm").rglob("*_log.out"))
    assert [log.name.split("_")[1] for log in logs] == ["0", "1"]
    for task, log in enumerate(logs):
        assert f"{run.run_dir}: DDP rank {task} of 2" in log.read_text(), log.read_text()
