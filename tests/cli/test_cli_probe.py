"""`vinfo probe` in-process: a tiny codec checkpoint end to end, the cache, and bad input."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from cli.main import app
from probes import FAMILIES, TARGETS
from probes.bundles import save_bundle
from vinfo.models import BaseCodec, codec_preset, save_checkpoint

runner = CliRunner()
FAST = ["--n-images", "100", "--max-epochs", "2", "--bootstrap", "50"]  # 20 test images


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A random-weight tiny base checkpoint, a bundle of the same images, a cache directory."""
    root = tmp_path_factory.mktemp("probe")
    torch.manual_seed(0)
    checkpoint = root / "beta0.1.safetensors"
    save_checkpoint(BaseCodec(codec_preset("tiny"), "depth", beta=0.1), checkpoint)
    bundle = root / "noise.safetensors"
    save_bundle(bundle, torch.randn(100, 4, 4, 4), torch.arange(100))
    return {"checkpoint": checkpoint, "bundle": bundle, "cache": root / "cache"}


def test_checkpoint_end_to_end_with_two_families(files, tmp_path):
    out, plot, maps = tmp_path / "probes.csv", tmp_path / "iv.png", tmp_path / "pvi"
    result = run("probe", "--repr", files["checkpoint"], "--repr", files["bundle"],
                 "--target", "segmentation", "--family", "linear,null", *FAST,
                 "--cache-dir", files["cache"], "--out", out, "--plot", plot,
                 "--pvi-maps", maps, "--pvi-images", "1")
    assert result.exit_code == 0, result.output
    assert "beta0.1: ŷ (100, 16, 4, 4) computed" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("data: synthetic/tiny/val (first 100 images)")
    assert "H(Z|∅)" in lines[1] and "I_V" in lines[1] and "CI" in lines[1]
    assert sum(line.split()[:3] == ["beta0.1", "segmentation", "linear"] for line in lines) == 1
    frame = pd.read_csv(out, keep_default_na=False, na_values=[""])  # family "null"
    assert len(frame) == 4 and set(frame["family"]) == {"null", "linear"}
    assert frame.groupby("repr")["capacity_rank"].apply(list).tolist() == [[0, 1], [0, 1]]
    for name in ("h_null", "h_cond", "iv", "iv_normalized"):
        assert (frame[f"{name}_ci_low"] <= frame[name] + 1e-9).all()
    assert (frame["null"] == "positional").all() and (frame["n_test_images"] == 20).all()
    # how every fit stopped, the best seed, and the flags, in the file and in the table
    assert {"null_fit", "stopped_by", "budget_flag", "no_gain_flag", "best_seed", "iv_best",
            "iv_best_ci_low", "iv_best_ci_high", "shuffled_iv_ci_low", "shuffled_iv_ci_high",
            "control_iv", "control_iv_ci_low", "control_iv_ci_high",
            "selectivity"} <= set(frame.columns)
    assert "select." in lines[1]
    chosen = frame[frame["family"] == "linear"]
    assert chosen["selectivity"].tolist() == pytest.approx(
        (chosen["iv"] - chosen["control_iv"]).tolist(), abs=1e-9)
    assert (frame["null_fit"] == "closed_form").all()
    linear = frame[frame["family"] == "linear"]
    assert (linear["stopped_by"] == "budget").all() and linear["budget_flag"].all()  # 2 epochs
    flags = {tuple(line.split()[:3]): line.split()[-1] for line in lines[2:] if line.strip()}
    assert "B" in flags[("noise", "segmentation", "linear")]
    assert ("N" in flags[("noise", "segmentation", "linear")]) == bool(
        linear.set_index("repr").loc["noise", "no_gain_flag"])
    # paired: both representations see the same test targets, hence the same null entropy
    nulls = frame[frame["family"] == "null"].set_index("repr")["h_null"]
    assert nulls["beta0.1"] == pytest.approx(nulls["noise"])
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert (maps / "beta0.1" / "segmentation" / "linear" / "totals.csv").is_file()
    assert len(list((maps / "noise" / "segmentation" / "linear").glob("*.npy"))) == 1
    assert not list(tmp_path.glob(".*tmp*"))


def test_two_reprs_print_and_write_the_paired_differences(files, tmp_path):
    out, paired_out = tmp_path / "probes.csv", tmp_path / "paired.csv"
    result = run("probe", "--repr", files["checkpoint"], "--repr", files["bundle"],
                 "--target", "depth", "--family", "linear", *FAST, "--cache-dir",
                 files["cache"], "--quiet", "--out", out, "--paired-out", paired_out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines.index("paired ΔI_V vs beta0.1")
    assert "ΔI_V" in lines[header + 1] and "CI" in lines[header + 1]
    assert lines[header + 2].split()[:4] == ["depth", "linear", "1", "noise"]
    frame = pd.read_csv(out).set_index("repr")
    (row,) = pd.read_csv(paired_out).to_dict("records")
    assert (row["repr"], row["anchor"], row["n_resamples"]) == ("noise", "beta0.1", 50)
    assert row["delta_iv"] == pytest.approx(frame.loc["noise", "iv"] - frame.loc["beta0.1", "iv"],
                                            abs=1e-9)
    assert row["delta_iv_ci_low"] <= row["delta_iv"] <= row["delta_iv_ci_high"]
    # the other anchor, by name, as JSON: the opposite difference
    flipped = run("probe", "--repr", files["checkpoint"], "--repr", files["bundle"],
                  "--target", "depth", "--family", "linear", *FAST, "--cache-dir",
                  files["cache"], "--quiet", "--anchor", "noise", "--paired-out",
                  tmp_path / "paired.json")
    assert flipped.exit_code == 0, flipped.output
    assert "paired ΔI_V vs noise" in flipped.stdout
    (record,) = json.loads((tmp_path / "paired.json").read_text())
    assert record["repr"] == "beta0.1" and record["delta_iv"] == pytest.approx(-row["delta_iv"])
    single = run("probe", "--repr", files["bundle"], "-t", "depth", *FAST, "--quiet")
    assert single.exit_code == 0 and "paired" not in single.stdout


def test_second_run_reads_the_cached_representation(files):
    args = ("probe", "--repr", files["checkpoint"], "--target", "depth", "--family", "linear",
            *FAST, "--cache-dir", files["cache"], "--json")
    first = run(*args)
    assert first.exit_code == 0, first.output
    (cache,) = [p for p in files["cache"].iterdir() if p.name.endswith(".safetensors")]
    mtime = cache.stat().st_mtime_ns
    second = run(*args)
    assert second.exit_code == 0, second.output
    assert "from cache" in second.stderr and cache.stat().st_mtime_ns == mtime
    records = json.loads(second.stdout)
    assert records == json.loads(first.stdout)  # deterministic given seeds and splits
    assert records[0]["target"] == "depth" and records[0]["iv_normalized"] is None


def test_quiet_prints_nothing_on_stderr_and_out_may_be_json(files, tmp_path):
    result = run("probe", "--repr", files["bundle"], "-t", "depth", "-f", "null", *FAST,
                 "--quiet", "--out", tmp_path / "probes.json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    (record,) = json.loads((tmp_path / "probes.json").read_text())
    assert record["family"] == "null" and record["iv"] == 0.0


def test_registries_are_listed():
    families = run("probe", "families")
    assert families.exit_code == 0
    ranks = [int(line.split()[0]) for line in families.stdout.splitlines()]
    assert ranks == sorted(ranks) and len(ranks) == len(FAMILIES)
    targets = run("probe", "targets")
    assert [line.split()[0] for line in targets.stdout.splitlines()] == TARGETS.names()


def _pickle(d):
    torch.save({"w": torch.ones(1)}, d / "model.pt")
    return d / "model.pt"


def test_downscale_defaults_to_the_checkpoints_record_and_can_be_given(files, tmp_path):
    recorded = tmp_path / "half.safetensors"
    recorded.write_bytes(files["checkpoint"].read_bytes())
    spec = json.loads(files["checkpoint"].with_suffix(".json").read_text())
    spec["data"] = {"dataset": "synthetic", "preset": "tiny", "split": "val", "downscale": 2}
    recorded.with_suffix(".json").write_text(json.dumps(spec))
    result = run("probe", "--repr", recorded, "--target", "depth", *FAST, "--cache-dir",
                 tmp_path / "cache")
    assert result.exit_code == 0, result.output
    # 64x64 tiny images shrunk to 32x32 before the codec's 16x downsampling
    assert "half: ŷ (100, 16, 2, 2) computed" in result.stderr
    assert result.stdout.startswith("data: synthetic/tiny/val (first 100 images, x2 downscale)")
    # the bundle's 4x4 latent divides both the full and the shrunk targets
    result = run("probe", "--repr", files["bundle"], "--target", "depth", *FAST, "--cache-dir",
                 tmp_path / "cache", "--downscale", "4", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("data: synthetic/tiny/val (first 100 images, x4 downscale)")


def test_mdl_estimator_on_a_checkpoint_and_a_bundle(files, tmp_path):
    out, plot = tmp_path / "mdl.csv", tmp_path / "mdl.png"
    result = run("probe", "--estimator", "mdl", "--repr", files["checkpoint"], "--repr",
                 files["bundle"], "--target", "segmentation", "--family", "null,linear",
                 "--n-images", "100", "--max-epochs", "2", "--seeds", "2", "--cache-dir",
                 files["cache"], "--out", out, "--plot", plot, "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("data: synthetic/tiny/val (first 100 images); online code of ")
    assert "2 block order(s)" in lines[0] and "online I_V" in lines[1] and "vs uniform" in lines[1]
    frame = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert len(frame) == 4 and (frame["estimator"] == "mdl").all()
    assert (frame["n_orders"] == 2).all() and (frame["first_block"] == "uniform").all()
    # the uniform code of 7 classes (the tiny preset's) over every coded pixel
    assert frame["uniform_bits"].tolist() == pytest.approx(
        (frame["pixels"] * math.log2(7)).tolist())
    assert frame["mdl_iv"].tolist() == pytest.approx(
        ((frame["null_online_bits"] - frame["online_bits"]) / frame["pixels"]).tolist(),
        abs=1e-9)
    assert (frame["mdl_iv_ci_low"] <= frame["mdl_iv"] + 1e-12).all()
    assert plot.read_bytes().startswith(b"\x89PNG")


def _foreign(d):
    save_file({"w": torch.ones(1)}, str(d / "foreign.safetensors"))
    return d / "foreign.safetensors"


def _bad_shape(d):
    save_bundle(d / "odd.safetensors", torch.randn(100, 4, 5, 5), torch.arange(100))
    return d / "odd.safetensors"


BAD_INPUTS = {
    "unknown family": (lambda f, d: ["-f", "linear,giant"], "unknown probe family 'giant'"),
    "unknown target": (lambda f, d: ["-t", "edges"], "valid: reconstruction, depth"),
    "target the dataset lacks": (
        lambda f, d: ["--dataset", "coco", "--data-root", d], "has no depth targets"),
    "pickle": (lambda f, d: ["--repr", _pickle(d)], "pickle"),
    "not a vinfo file": (lambda f, d: ["--repr", _foreign(d)], "neither a vinfo checkpoint"),
    "shape mismatch": (lambda f, d: ["--repr", _bad_shape(d)], "not one integer multiple"),
    "too few test images": (lambda f, d: ["--n-images", "4"], "too few images"),
    "downscale below 1": (lambda f, d: ["--downscale", "0"], "downscale must be an integer >= 1"),
    "missing output directory": (lambda f, d: ["--out", d / "no" / "p.csv"], "does not exist"),
    "paired output format": (lambda f, d: ["--paired-out", d / "p.txt"], "must end in .csv"),
    "unknown anchor": (lambda f, d: ["--anchor", "elsewhere"], "anchor 'elsewhere' is none"),
    "plot format": (lambda f, d: ["--plot", d / "iv.gif"], "must end in .png"),
    "no repr": (lambda f, d: ["--repr-less"], "give at least one --repr"),
    "unknown estimator": (lambda f, d: ["--estimator", "bayes"],
                          "--estimator must be one of iv, mdl, got 'bayes'"),
    "mdl with a paired output": (lambda f, d: ["--estimator", "mdl", "--paired-out",
                                               d / "p2.csv"], "not with --estimator mdl"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_exit_code_2(case, files, tmp_path, error_line):
    make_args, message = BAD_INPUTS[case]
    extra = make_args(files, tmp_path)
    args = ["probe", "-t", "depth", "-f", "linear", "--max-epochs", "1", "--bootstrap", "20",
            "--cache-dir", files["cache"], "--quiet"]
    if extra != ["--repr-less"]:
        args += (["--repr", files["bundle"]] if "--repr" not in extra else []) + extra
    out = tmp_path / "p.csv"
    args += [] if "--out" in extra else ["--out", out]
    before = set(tmp_path.rglob("*"))
    error_line(run(*args), message)
    assert set(tmp_path.rglob("*")) == before, "left files behind"


@pytest.mark.parametrize(("option", "message"), [("-t", "unknown probe target 'edges'"),
                                                 ("-f", "unknown probe family 'edges'")])
def test_an_unknown_name_is_one_line_before_any_progress(option, message, files, tmp_path,
                                                         error_line):
    args = ["probe", "-t", "depth", "-f", "linear", "--repr", files["bundle"], "--cache-dir",
            files["cache"], "--out", tmp_path / "p.csv", option, "edges"]  # not --quiet
    error_line(run(*args), message)
    assert not (tmp_path / "p.csv").exists()


def test_processes_executor_gives_the_table_of_one_process(files, tmp_path):
    study = ["--repr", files["checkpoint"], "--repr", files["bundle"], "--target",
             "segmentation", "--family", "linear", *FAST, "--cache-dir", files["cache"],
             "--quiet"]
    here = run("probe", *study, "--out", tmp_path / "local.csv")
    assert here.exit_code == 0, here.output
    grid = run("probe", *study, "--executor", "processes", "--workers", "2",
               "--out", tmp_path / "grid.csv")
    assert grid.exit_code == 0, grid.output
    assert (tmp_path / "grid.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert len(list((tmp_path / "grid-cells").glob("*.json"))) == 2  # the default grid dir


@pytest.mark.parametrize("options, message", [
    (["--executor", "processes", "--pvi-maps", "maps"], "not with --estimator mdl or --pvi-maps"),
    (["--executor", "slurm", "--estimator", "mdl"], "not with --estimator mdl or --pvi-maps"),
    (["--slurm-partition", "gpu"], "--slurm-partition: only with --executor slurm"),
    (["--executor", "processes", "--slurm-time", "5"], "--slurm-time: only with --executor slurm"),
    (["--grid-dir", "cells"], "--grid-dir: only with --executor processes or slurm"),
    (["--executor", "cluster"], "'cluster'; valid: local, processes, slurm"),
])
def test_grid_options_refused_in_one_line(files, tmp_path, monkeypatch, options, message):
    monkeypatch.chdir(tmp_path)
    result = run("probe", "--repr", files["bundle"], "--target", "depth", *options)
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())  # nothing written


def test_the_help_states_the_library_defaults(monkeypatch):
    # issue #18: the CLI states the defaults the library applies to an option left out
    import inspect

    from probes import DEFAULT_SEEDS, VInfoProbe, probe_files

    monkeypatch.setenv("COLUMNS", "300")
    result = run("probe", "--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    epochs = inspect.signature(VInfoProbe).parameters["max_epochs"].default
    resamples = inspect.signature(probe_files).parameters["n_resamples"].default
    assert f"fit (default {epochs};" in text and f"CIs (default {resamples})" in text
    assert f"probe (default {DEFAULT_SEEDS['iv']}); with --estimator mdl" in text
