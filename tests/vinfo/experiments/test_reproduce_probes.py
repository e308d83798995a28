"""The probe step of `vinfo reproduce` (issue #8): every base model probed on the same images."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest

from probes.families import FAMILIES
from vinfo.data.synthetic import SyntheticConfig
from vinfo.experiments.presets import REPRODUCE_PRESETS, ProbeStudy, describe_plan, get_preset
from vinfo.experiments.probe_step import probe_source
from vinfo.experiments.reproduce import default_workers, reproduce
from vinfo.registry import UnknownNameError

PROBE_FILES = {"probes.csv", "probes_paired.csv", "fig_iv_capacity.png"}


def test_presets_carry_a_probe_study():
    micro, tiny, paper = (get_preset(name).probes for name in ("micro", "tiny", "paper"))
    assert micro is not None and tiny is not None and paper is not None
    assert {"linear", "conv"} <= set(tiny.families)
    assert paper.families == ("linear", "mlp", "conv", "resnet", "synthesis")
    assert (len(paper.seeds), paper.n_resamples) == (3, 1000)
    for name in REPRODUCE_PRESETS.names():
        study = get_preset(name).probes
        assert study.targets == ("reconstruction", "depth", "segmentation")
        # the plan counts 2 betas x len(lambdas) models x targets x families x seeds fits
        fits = study.num_fits(2 * len(get_preset(name).base_lmbdas))
        assert f"; {fits} fits" in describe_plan(get_preset(name), "out")
        assert fits == 2 * len(get_preset(name).base_lmbdas) * 3 * len(study.families) * len(
            study.seeds)


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"families": ("linear", "giant")}, UnknownNameError, "giant"),
    ({"targets": ("edges",)}, UnknownNameError, "edges"),
    ({"seeds": (0, 0)}, ValueError, "distinct"),
    ({"seeds": ()}, ValueError, "at least one"),
    ({"max_epochs": 0}, ValueError, "max_epochs"),
    ({"width": 0}, ValueError, "width"),
    ({"controls": "all"}, ValueError, "controls must be True, False or .pair."),
])
def test_a_bad_probe_study_is_refused(changes, error, message):
    with pytest.raises(error, match=message):
        ProbeStudy(**changes)


def test_probe_data_is_fresh_images_of_the_presets_scenes(tmp_path):
    micro = get_preset("micro")
    assert probe_source(micro, micro.probes, None) == {
        "dataset": "synthetic", "preset": "micro", "split": "val", "n_images": None}
    custom = dataclasses.replace(micro, synthetic=SyntheticConfig.preset("micro", num_images=40))
    with pytest.raises(ValueError, match="matches none"):
        probe_source(custom, micro.probes, None)
    paper = get_preset("paper")
    assert probe_source(paper, paper.probes, tmp_path)["root"] == str(tmp_path.resolve())


@pytest.mark.slow
def test_micro_probes_every_base_model_and_pairs_the_betas(micro_run):
    out, result, lines = micro_run
    micro = get_preset("micro")
    study = micro.probes
    assert PROBE_FILES <= {p.name for p in result.files}
    n_models = len(micro.betas) * len(micro.base_lmbdas)
    assert sum(line.split()[1:2] == ["probe"] for line in lines) == study.num_fits(n_models)

    frame = pd.read_csv(out / "probes.csv")
    assert len(frame) == n_models * len(study.targets) * len(study.families)
    assert frame["beta"].dtype == float and frame["lmbda"].dtype == float
    assert set(zip(frame["beta"], frame["lmbda"], strict=True)) == {
        (beta, lmbda) for beta in micro.betas for lmbda in micro.base_lmbdas}
    assert (frame["repr"] == [f"beta={b:g}/lmbda={v:g}" for b, v in
                              zip(frame["beta"], frame["lmbda"], strict=True)]).all()
    assert (frame["source"] == "synthetic/micro/val (all images)").all()
    assert (frame["n_seeds"] == len(study.seeds)).all()
    # paired probes: every model sees the same test targets, hence the same null entropy
    assert frame.groupby(["target", "family"])["h_null"].nunique().max() == 1

    paired = pd.read_csv(out / "probes_paired.csv")
    assert len(paired) == len(micro.base_lmbdas) * len(study.targets) * len(study.families)
    iv = frame.set_index(["beta", "lmbda", "target", "family"])["iv"]
    baseline, proposed = micro.betas
    for row in paired.itertuples():
        assert row.repr == f"beta={proposed:g}/lmbda={row.lmbda:g}"
        assert row.anchor == f"beta={baseline:g}/lmbda={row.lmbda:g}"
        expected = (iv[(proposed, row.lmbda, row.target, row.family)]
                    - iv[(baseline, row.lmbda, row.target, row.family)])
        assert row.delta_iv == pytest.approx(expected, abs=1e-9)
        assert row.delta_iv_ci_low <= row.delta_iv + 1e-12 <= row.delta_iv_ci_high + 2e-12
        assert row.capacity_rank == FAMILIES.get(row.family).capacity_rank
    assert (paired["n_resamples"] == study.n_resamples).all()

    assert (out / "fig_iv_capacity.png").read_bytes().startswith(b"\x89PNG")
    summary = (out / "summary.md").read_text()
    assert "## V-information probes of the similar-rate pair" in summary
    # the base checkpoints record their data, so `vinfo probe` finds the same images
    run_dir = out / "runs" / "base" / "beta=0.1" / "lmbda=30"
    spec = json.loads((run_dir / "model.json").read_text())
    assert spec["data"] == {"dataset": "synthetic", "preset": "micro", "split": "train",
                            "root": None}


@pytest.mark.slow
def test_a_rerun_reuses_the_probe_fits(micro_run):
    out, _, _ = micro_run
    before = (out / "probes.csv").stat().st_mtime_ns
    paired = pd.read_csv(out / "probes_paired.csv")
    lines: list[str] = []
    reproduce("micro", out, progress=lines.append)
    assert not any(line.split()[1:2] == ["probe"] for line in lines)
    assert any("probes.csv is up to date" in line for line in lines)
    assert (out / "probes.csv").stat().st_mtime_ns == before
    pd.testing.assert_frame_equal(pd.read_csv(out / "probes_paired.csv"), paired)


@pytest.mark.slow
def test_probes_in_worker_processes_equal_the_probes_in_process(micro_run, tmp_path):
    # the fixture probed through the training's worker processes where it had two cores (a
    # grid of cells), else in its own process; refitting the copy the other way gives the same
    # table and paired differences, to the last bit
    out, _, lines = micro_run
    fixture_workers = default_workers(get_preset("micro"))
    assert not list((out / "probe_cache").glob("grid-*"))  # removed once the table is written
    if fixture_workers > 1:  # one probe event per cell, as in process
        assert any(line.kind == "probe" and "[1/" in line for line in lines)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "probe_cache" / "probes.json").unlink()  # the fits are redone, nothing else
    lines_again: list[str] = []
    reproduce("micro", copy, workers=1 if fixture_workers > 1 else 2,
              progress=lines_again.append)
    assert sum(line.split()[1:2] == ["probe"] for line in lines_again) > 0

    def read(folder, name):  # the checkpoints' paths differ between the copies
        frame = pd.read_csv(folder / name, keep_default_na=False, na_values=[""])
        return frame.drop(columns=["repr_path"], errors="ignore")

    for name in ("probes.csv", "probes_paired.csv"):
        pd.testing.assert_frame_equal(read(copy, name), read(out, name), check_exact=True)
