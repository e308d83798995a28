"""Bad input at the CLI (issue 16): one line ``error: …``, exit 2, no traceback, nothing left
behind on disk."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli.errors import plain
from cli.main import app
from cli.options import check_beta_option, check_lmbda_option
from probes.sources import resolve_source
from vinfo.data import CocoDetection, export_synthetic
from vinfo.data.export import EXPORT_MARKER

runner = CliRunner()
FAST = ["--max-epochs", "1", "--max-steps", "1", "--batch-size", "4", "--quiet"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# data export ------------------------------------------------------------------------------

def test_export_over_an_export_is_refused_without_overwrite(tmp_path, error_line):
    out = tmp_path / "coco"
    assert run("data", "export", "synthetic", "-f", "coco", "-o", out, "--n", "4").exit_code == 0
    before = tree(out)
    line = error_line(run("data", "export", "synthetic", "-f", "coco", "-o", out, "--n", "2"))
    assert "--overwrite" in line and "train2017" in line
    assert tree(out) == before


def test_export_overwrite_replaces_the_split_and_nothing_survives(tmp_path):
    out = tmp_path / "coco"
    export_synthetic("coco", out, n=4)
    result = run("data", "export", "synthetic", "-f", "coco", "-o", out, "--n", "2",
                 "--overwrite")
    assert result.exit_code == 0, result.output
    images = sorted(p.name for p in (out / "train2017").iterdir())
    annotations = json.loads((out / "annotations" / "instances_train2017.json").read_text())
    assert len(images) == 2 == len(annotations["images"])
    assert len(CocoDetection(out, split="train2017")) == 2


def test_export_overwrite_never_clears_a_folder_that_is_not_an_export(tmp_path, error_line):
    out = tmp_path / "mine"
    (out / "train2017").mkdir(parents=True)
    (out / "train2017" / "holiday.png").write_bytes(b"precious")
    before = tree(out)
    line = error_line(run("data", "export", "synthetic", "-f", "coco", "-o", out, "--n", "1",
                          "--overwrite"))
    assert "not a vinfo export" in line
    assert tree(out) == before


def test_export_overwrite_does_not_follow_a_symlink_out_of_the_export(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    out = tmp_path / "cs"
    export_synthetic("cityscapes", out, n=1)
    (out / "leftImg8bit" / "train" / "link").symlink_to(outside, target_is_directory=True)
    result = run("data", "export", "synthetic", "-f", "cityscapes", "-o", out, "--n", "1",
                 "--overwrite")
    assert result.exit_code == 0, result.output
    assert (outside / "keep.txt").read_text() == "keep"
    assert not (out / "leftImg8bit" / "train" / "link").exists()


def test_export_adds_a_new_split_to_an_export(tmp_path):
    out = tmp_path / "cs"
    export_synthetic("cityscapes", out, n=1, split="train")
    export_synthetic("cityscapes", out, n=2, split="val")
    record = json.loads((out / EXPORT_MARKER).read_text())
    assert sorted(record["splits"]) == ["train", "val"]


# output formats and paths -----------------------------------------------------------------

def test_rd_refuses_an_output_extension_it_does_not_write(tmp_path, error_line):
    line = error_line(run("rd", tmp_path, "--out", tmp_path / "rd.xlsx"))
    assert "rd.xlsx" in line and "must end in .csv" in line
    assert list(tmp_path.iterdir()) == []


def test_bdrate_plot_to_a_folder_asks_for_an_image_extension(tmp_path, error_line):
    examples = Path(__file__).resolve().parents[2] / "examples"
    line = error_line(run("bdrate", examples / "anchor.csv", examples / "test.csv",
                          "--plot", tmp_path))
    assert "must end in .png, .pdf or .svg" in line and "Format" not in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "proc"])
def test_out_that_cannot_be_a_folder_is_one_plain_line(tmp_path, where, error_line):
    if where == "file":
        out = tmp_path / "taken"
        out.write_text("a file")
    else:
        out = Path("/proc/vinfo-test/out")
    line = error_line(run("train", "base", "--task", "depth", "--lmbda", "0.1", "--out", out,
                          *FAST))
    assert line.startswith(f"error: cannot create output folder {out}: ") and "Errno" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == (["taken"] if where == "file" else [])


def test_plain_rewords_what_python_raises():
    raw = FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/model.json")
    assert plain(raw) == "/x/model.json: no such file or directory"
    assert plain(KeyError("kind")) == "missing entry 'kind'"
    try:
        json.loads("{")
    except json.JSONDecodeError as error:
        assert plain(error).startswith("not valid JSON: ")
    assert plain(ValueError("a library message")) == "a library message"


# set-up failures leave nothing --------------------------------------------------------------

@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    result = run("train", "base", "--task", "depth", "--lmbda", "0.1", "--out", root / "b",
                 *FAST)
    assert result.exit_code == 0, result.output
    return root / "b" / "lmbda=0.1" / "model.safetensors"


def test_enhancement_with_an_unknown_train_only_leaves_nothing(base_checkpoint, tmp_path,
                                                               error_line):
    out = tmp_path / "enh"
    line = error_line(run("train", "enhancement", "--base", base_checkpoint, "--strategy",
                          "standalone", "--task", "reconstruction", "--lmbda", "1", "--out", out,
                          "--train-only", "nosuchmodule", *FAST))
    assert "nosuchmodule" in line
    assert not out.exists()


def test_unknown_train_only_in_an_existing_folder_writes_nothing(base_checkpoint, tmp_path,
                                                                 error_line):
    out = tmp_path / "enh"
    out.mkdir()
    error_line(run("train", "enhancement", "--base", base_checkpoint, "--strategy", "standalone",
                   "--task", "reconstruction", "--lmbda", "1", "--out", out,
                   "--train-only", "nosuchmodule", *FAST))
    assert list(out.iterdir()) == []


# damaged JSON files name themselves ----------------------------------------------------------

DAMAGED = {
    "not JSON": (b'{"spec": {"task": "depth",\n  "lmbda" 0.1}}', "(line 2, column 11: "
                 "Expecting ':' delimiter)"),
    "not UTF-8": (b"\xff\xfe{}", "(not UTF-8 text: byte 0 is 0xff)"),
}


@pytest.fixture
def run_copy(base_checkpoint, tmp_path):
    """A private copy of the trained run directory (the tests damage its files)."""
    run_dir = tmp_path / "runs" / "lmbda=0.1"
    shutil.copytree(base_checkpoint.parent, run_dir)
    return run_dir


def _damage(path: Path, damage: str) -> None:
    path.write_bytes(DAMAGED[damage][0])


@pytest.mark.parametrize("damage", sorted(DAMAGED))
@pytest.mark.parametrize("name", ["experiment.json", "eval_test.json"])
def test_rd_over_a_damaged_run_json_names_the_file(run_copy, tmp_path, name, damage,
                                                   error_line):
    if name == "eval_test.json":  # a cache: written by a first rd
        result = run("rd", run_copy.parent, "--out", tmp_path / "first.csv",
                     "--bitstream-images", "0", "--quiet")
        assert result.exit_code == 0, result.output
        assert (run_copy / name).is_file()
    _damage(run_copy / name, damage)
    error_line(run("rd", run_copy.parent, "--out", tmp_path / "rd.csv", "--bitstream-images",
                   "0", "--quiet"),
               f"error: {run_copy / name}: not valid JSON {DAMAGED[damage][1]}")
    assert not (tmp_path / "rd.csv").exists()


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_train_into_a_run_with_a_damaged_experiment_json_names_it(run_copy, damage, error_line):
    _damage(run_copy / "experiment.json", damage)
    before = tree(run_copy.parent)
    error_line(run("train", "base", "--task", "depth", "--lmbda", "0.1", "--out",
                   run_copy.parent, *FAST),
               f"{run_copy / 'experiment.json'}: not valid JSON {DAMAGED[damage][1]}")
    assert tree(run_copy.parent) == before


@pytest.mark.parametrize("damage", sorted(DAMAGED))
@pytest.mark.parametrize("command", ["eval", "probe"])
def test_a_damaged_model_json_names_the_file(run_copy, tmp_path, command, damage, error_line):
    checkpoint = run_copy / "model.safetensors"
    _damage(run_copy / "model.json", damage)
    before = tree(tmp_path)
    args = {"eval": ["eval", checkpoint, "--bitstream-images", "0", "--json"],
            "probe": ["probe", "-t", "depth", "-f", "linear", "--repr", checkpoint,
                      "--cache-dir", tmp_path / "cache", "--out", tmp_path / "p.csv",
                      "--quiet"]}[command]
    error_line(run(*args), f"error: {run_copy / 'model.json'}: not valid JSON "
               f"{DAMAGED[damage][1]}")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_report_on_a_damaged_reproduce_json_names_the_file(tmp_path, damage, error_line):
    results = tmp_path / "results"
    results.mkdir()
    _damage(results / "reproduce.json", damage)
    error_line(run("report", results, "--out", tmp_path / "report"),
               f"error: {results / 'reproduce.json'}: not valid JSON {DAMAGED[damage][1]}")
    assert not (tmp_path / "report").exists()


def test_reproduce_into_a_folder_with_a_damaged_record_names_it(tmp_path, error_line):
    out = tmp_path / "out"
    out.mkdir()
    _damage(out / "reproduce.json", "not JSON")
    before = tree(out)
    error_line(run("reproduce", "--preset", "micro", "--out", out, "--quiet"),
               f"error: {out / 'reproduce.json'}: not valid JSON (line 2")
    assert tree(out) == before


# λ and β ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-0.5", "nan", "inf"])
@pytest.mark.parametrize("command", ["base", "enhancement"])
def test_lambda_must_be_positive_and_finite(base_checkpoint, tmp_path, command, value,
                                            error_line):
    out = tmp_path / "out"
    extra = [] if command == "base" else ["--base", base_checkpoint, "--strategy", "scalable"]
    task = "depth" if command == "base" else "reconstruction"
    line = error_line(run("train", command, "--task", task, *extra, "--lmbda", "0.1",
                          "--lmbda", value, "--out", out, *FAST),
                      "Invalid value for '--lmbda': lmbda must be positive and finite, got ")
    assert line.split("got ")[1].startswith(str(float(value)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["-1", "-1e-9", "nan", "inf"])
def test_beta_must_be_non_negative_and_finite(tmp_path, value, error_line):
    error_line(run("train", "base", "--task", "depth", "--beta", value, "--lmbda", "0.1",
                   "--out", tmp_path / "out", *FAST),
               "Invalid value for '--beta': beta must be non-negative and finite, got ")
    assert list(tmp_path.iterdir()) == []


def test_duplicate_lambdas_are_refused_before_the_folder_is_created(tmp_path, error_line):
    error_line(run("train", "base", "--task", "depth", "--lmbda", "0.1", "--lmbda", "0.1",
                   "--out", tmp_path / "out", *FAST), "lambda values must be distinct")
    assert list(tmp_path.iterdir()) == []


def test_valid_lambda_and_beta_pass_the_option_checks():
    assert check_beta_option(0.0) == 0.0
    assert check_lmbda_option([1e-6, 3.0]) == [1e-6, 3.0]


# options ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "fragment"), [
    (["probe", "--repr", "x.safetensors", "--target", "depth", "--max-epochs", "0"],
     "'--max-epochs'"),
    (["probe", "--repr", "x.safetensors", "--target", "depth", "--width", "0"], "'--width'"),
    (["probe", "--repr", "x.safetensors", "--target", "depth", "--n-images", "0"],
     "'--n-images'"),
    (["train", "base", "--task", "depth", "--lmbda", "0.1", "--out", "OUT", "--max-epochs", "0"],
     "max_epochs must be >= 1"),
    (["train", "base", "--task", "depth", "--lmbda", "0.1", "--out", "OUT", "--downscale", "0"],
     "'--downscale'"),
    (["train", "base", "--task", "depth", "--lmbda", "0.1", "--out", "OUT", "--beta", "-1"],
     "'--beta'"),
    (["train", "base", "--task", "depth", "--lmbda", "0.1", "--out", "OUT", "--device", "gpu"],
     "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    (["eval", "x.safetensors", "--batch-size", "0"], "'--batch-size'"),
])
def test_out_of_range_options_are_refused_before_any_work(tmp_path, args, fragment, error_line):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    line = error_line(run(*args))
    assert fragment in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_refused_before_any_file(tmp_path, error_line):
    line = error_line(run("train", "base", "--task", "depth", "--lmbda", "0.1", "--out",
                          tmp_path / "out", "--device", "cuda", *FAST))
    assert "CUDA is not available" in line
    assert list(tmp_path.iterdir()) == []


def test_coco_default_split_is_its_validation_split(tmp_path):
    assert resolve_source(dataset="coco", root=tmp_path).split == "val2017"
    assert resolve_source(dataset="cityscapes", root=tmp_path).split == "val"
    assert resolve_source().split == "val"


def test_missing_coco_split_names_the_splits_of_the_root(tmp_path):
    export_synthetic("coco", tmp_path, n=1, split="val2017")
    with pytest.raises(FileNotFoundError, match="splits in this root: val2017"):
        CocoDetection(tmp_path, split="val")
