"""Bad input at the CLI (issue 16): one line ``error: …``, exit 2, no traceback, nothing left
behind on disk."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli.errors import plain
from cli.main import app
from probes.sources import resolve_source
from vinfo.data import CocoDetection, export_synthetic
from vinfo.data.export import EXPORT_MARKER

runner = CliRunner()
FAST = ["--max-epochs", "1", "--max-steps", "1", "--batch-size", "4", "--quiet"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# data export ------------------------------------------------------------------------------

def test_export_over_an_export_is_refused_without_overwrite(tmp_path):
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


def test_export_overwrite_never_clears_a_folder_that_is_not_an_export(tmp_path):
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

def test_rd_refuses_an_output_extension_it_does_not_write(tmp_path):
    line = error_line(run("rd", tmp_path, "--out", tmp_path / "rd.xlsx"))
    assert "rd.xlsx" in line and "must end in .csv" in line
    assert list(tmp_path.iterdir()) == []


def test_bdrate_plot_to_a_folder_asks_for_an_image_extension(tmp_path):
    examples = Path(__file__).resolve().parents[2] / "examples"
    line = error_line(run("bdrate", examples / "anchor.csv", examples / "test.csv",
                          "--plot", tmp_path))
    assert "must end in .png, .pdf or .svg" in line and "Format" not in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["file", "proc"])
def test_out_that_cannot_be_a_folder_is_one_plain_line(tmp_path, where):
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


def test_enhancement_with_an_unknown_train_only_leaves_nothing(base_checkpoint, tmp_path):
    out = tmp_path / "enh"
    line = error_line(run("train", "enhancement", "--base", base_checkpoint, "--strategy",
                          "standalone", "--task", "reconstruction", "--lmbda", "1", "--out", out,
                          "--train-only", "nosuchmodule", *FAST))
    assert "nosuchmodule" in line
    assert not out.exists()


def test_unknown_train_only_in_an_existing_folder_writes_nothing(base_checkpoint, tmp_path):
    out = tmp_path / "enh"
    out.mkdir()
    error_line(run("train", "enhancement", "--base", base_checkpoint, "--strategy", "standalone",
                   "--task", "reconstruction", "--lmbda", "1", "--out", out,
                   "--train-only", "nosuchmodule", *FAST))
    assert list(out.iterdir()) == []


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
def test_out_of_range_options_are_refused_before_any_work(tmp_path, args, fragment):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    line = error_line(run(*args))
    assert fragment in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_refused_before_any_file(tmp_path):
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
