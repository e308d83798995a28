"""`vinfo train`, `vinfo eval`, `vinfo rd`, `vinfo reproduce`: a tiny happy path and one-line
errors (exit 2) for bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from vinfo.experiments.sweep import read_spec

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


FAST = ["--max-epochs", "1", "--max-steps", "1", "--batch-size", "4", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    base = run("train", "base", "--task", "depth", "--beta", "0.1", "--lmbda", "0.1",
               "--lmbda", "0.01", "--out", root / "base", *FAST)
    assert base.exit_code == 0, base.output
    checkpoint = root / "base" / "lmbda=0.1" / "model.safetensors"
    enhancement = run("train", "enhancement", "--base", checkpoint, "--strategy", "scalable",
                      "--task", "reconstruction", "--lmbda", "3", "--out", root / "recon", *FAST)
    assert enhancement.exit_code == 0, enhancement.output
    return root, checkpoint


def test_train_prints_one_checkpoint_per_lambda(trained):
    root, checkpoint = trained
    assert (root / "base" / "lmbda=0.01" / "model.safetensors").is_file()
    assert (root / "recon" / "lmbda=3" / "model.json").is_file()
    spec = read_spec(root / "recon" / "lmbda=3")
    assert spec.beta == 0.1 and spec.base == str(checkpoint) and spec.strategy == "scalable"


def test_eval_json_and_table(trained):
    root, checkpoint = trained
    result = run("eval", root / "recon" / "lmbda=3" / "model.safetensors", "--split", "val",
                 "--bitstream-images", "2", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["task"] == "reconstruction" and record["coded_images"] == 2
    assert record["bpp"] == pytest.approx(record["bpp_base"] + record["bpp_enhancement"])
    table = run("eval", checkpoint, "--bitstream-images", "1")
    assert table.exit_code == 0 and "bpp (actual)" in table.stdout and "rmse" in table.stdout


def test_rd_writes_a_csv_that_bdrate_reads(trained, tmp_path):
    root, _ = trained
    result = run("rd", root / "base", "--out", tmp_path / "rd.csv", "--compressai-json",
                 tmp_path / "json", "--quiet", "--bitstream-images", "0")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "rd.csv")
    assert list(frame["label"]) == ["base beta=0.1"] * 2
    assert (tmp_path / "json" / "base_beta=0.1.json").is_file()
    bd = run("bdrate", tmp_path / "rd.csv")
    assert "need at least two curves" in bd.stderr  # read fine: one curve only


def test_reproduce_plan_prints_without_training(tmp_path):
    result = run("reproduce", "--preset", "paper", "--plan", "--out", tmp_path / "p")
    assert result.exit_code == 0, result.output
    assert "M=192" in result.stdout and "pick the similar-rate base pair" in result.stdout
    assert not (tmp_path / "p").exists()


BAD_INPUTS = {
    "eval missing checkpoint": (["eval", "{tmp}/missing.safetensors"], "no such checkpoint"),
    "eval bad split": (["eval", "{ckpt}", "--split", "holdout"], "unknown split"),
    "eval bad dataset": (["eval", "{ckpt}", "--dataset", "imagenet"], "valid: synthetic"),
    "train unknown task": (
        ["train", "base", "--task", "ocr", "--lmbda", "1", "--out", "{tmp}/x"], "unknown task"
    ),
    "train negative lambda": (
        ["train", "base", "--task", "depth", "--lmbda", "-1", "--out", "{tmp}/x"],
        "lmbda must be positive",
    ),
    "train bad lr": (
        ["train", "base", "--task", "depth", "--lmbda", "1", "--lr", "0", "--out", "{tmp}/x"],
        "lr must be positive",
    ),
    "train cityscapes without root": (
        ["train", "base", "--task", "depth", "--lmbda", "1", "--dataset", "cityscapes",
         "--out", "{tmp}/x"],
        "data root",
    ),
    "enhancement unknown strategy": (
        ["train", "enhancement", "--base", "{ckpt}", "--strategy", "layered", "--task",
         "reconstruction", "--lmbda", "1", "--out", "{tmp}/x"],
        "unknown enhancement strategy",
    ),
    "enhancement missing base": (
        ["train", "enhancement", "--base", "{tmp}/none.safetensors", "--strategy", "direct",
         "--task", "reconstruction", "--lmbda", "1", "--out", "{tmp}/x"],
        "no such checkpoint",
    ),
    "rd missing directory": (["rd", "{tmp}/nothing", "--out", "{tmp}/rd.csv"], "no such"),
    "reproduce unknown preset": (["reproduce", "--preset", "huge"], "unknown reproduce preset"),
    "reproduce paper without data": (
        ["reproduce", "--preset", "paper", "--out", "{tmp}/p", "--quiet"], "--data-root"
    ),
    "reproduce unknown executor": (
        ["reproduce", "--preset", "micro", "--out", "{tmp}/p", "--executor", "cloud"],
        "valid: local, processes, slurm",
    ),
    "reproduce slurm option without slurm": (
        ["reproduce", "--preset", "micro", "--out", "{tmp}/p", "--slurm-partition", "gpu",
         "--slurm-tasks-per-node", "2"],
        "--slurm-partition, --slurm-tasks-per-node: only with --executor slurm",
    ),
    "reproduce status of nothing": (
        ["reproduce", "--preset", "micro", "--out", "{tmp}/none", "--status"], "no runs yet"
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, trained, tmp_path, error_line):
    _, checkpoint = trained
    args, message = BAD_INPUTS[case]
    args = [a.format(tmp=tmp_path, ckpt=checkpoint) for a in args]
    error_line(run(*args), message)
