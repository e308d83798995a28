"""`vinfo train` under torchrun (2 gloo processes on the CPU) equals one process."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

# reconstruction has no BatchNorm: per-process batch statistics (SyncBatchNorm is GPU-only)
# would otherwise make DDP differ from one process by more than float summation order
ARGS = ["train", "base", "--task", "reconstruction", "--beta", "0.1", "--lmbda", "1",
        "--synthetic", "micro", "--max-steps", "3", "--batch-size", "8", "--no-augment", "-q"]


def _train(out, *launcher: str) -> subprocess.CompletedProcess:
    command = [sys.executable, *launcher, "-m", "cli.main", *ARGS, "--out", str(out)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_two_processes_train_like_one(tmp_path):
    single = _train(tmp_path / "single")
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = _train(tmp_path / "ddp", "-m", "torch.distributed.run", "--standalone",
                 "--nproc-per-node", "2")
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert ddp.stdout.count("lambda=1: ") == 1  # rank 0 alone reports
    expected = load_file(tmp_path / "single" / "lmbda=1" / "model.safetensors")
    got = load_file(tmp_path / "ddp" / "lmbda=1" / "model.safetensors")
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)
    history = [pd.read_csv(tmp_path / run / "lmbda=1" / "metrics.csv") for run in ("single", "ddp")]
    pd.testing.assert_series_equal(history[0]["val_loss"], history[1]["val_loss"], rtol=1e-6)
    assert history[1]["step"].iloc[-1] == 3
