"""λ sweeps (warm start, skip, resume), evaluation (metrics, estimated and actual bpp) and the
RD table they produce."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from bdrate import read_curves
from vinfo.data import SyntheticConfig
from vinfo.experiments import rd_collect
from vinfo.experiments import sweep as sweep_module
from vinfo.experiments.datasets import synthetic_splits
from vinfo.experiments.evaluate import Evaluation, evaluate, trivial_metrics
from vinfo.experiments.rd import write_rd_csv
from vinfo.experiments.rd_collect import collect_rd, evaluate_run, find_runs
from vinfo.experiments.sweep import (
    RunSpec,
    curve_label,
    lambda_sweep,
    read_spec,
    train_curve,
    train_run,
    warm_start,
)
from vinfo.models import (
    TASKS,
    BaseCodec,
    EnhancementCodec,
    codec_preset,
    load_checkpoint,
    save_checkpoint,
)
from vinfo.models.tasks import get_task
from vinfo.train import TrainConfig, Trainer

TINY = codec_preset("tiny").replace(segmentation_classes=7)
SCENES = SyntheticConfig.preset("tiny", height=32, width=32, num_images=16)
LR = 1e-4
ONE_STEP = TrainConfig(lr=LR, max_epochs=1, max_steps=1, batch_size=4, quiet=True)


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(SCENES, val_fraction=0.125, test_fraction=0.125)


@pytest.fixture(scope="module")
def base_curve(tmp_path_factory, splits):
    root = tmp_path_factory.mktemp("base")
    return lambda_sweep(root, RunSpec("depth", 1.0, 0.1), [0.01, 1.0], TINY, splits, ONE_STEP)


def _max_difference(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if k in b)


def test_sweep_trains_highest_lambda_first_and_warm_starts_the_rest(base_curve):
    first, second = base_curve
    assert (first.spec.lmbda, second.spec.lmbda) == (1.0, 0.01)
    assert first.spec.init is None and second.spec.init == str(first.checkpoint)
    assert read_spec(second.run_dir) == second.spec
    a, b = load_file(first.checkpoint), load_file(second.checkpoint)
    # one Adam step moves every weight by at most ~lr: the second model started at the first
    assert _max_difference(a, b) <= 2 * LR
    torch.manual_seed(123)
    cold = BaseCodec(TINY, "depth", 0.1).state_dict()
    assert _max_difference(a, cold) > 100 * LR


def test_run_directory_holds_config_metrics_and_checkpoint(base_curve):
    run = base_curve[0]
    names = {p.name for p in run.run_dir.iterdir()}
    assert {"experiment.json", "train_config.json", "metrics.csv", "model.safetensors",
            "model.json"} <= names
    # the Trainer's scratch files go once the checkpoint holds the best epoch's weights
    assert not names & {"best.safetensors", "last_state.pt"}
    record = json.loads((run.run_dir / "experiment.json").read_text())
    assert record["spec"]["lmbda"] == 1.0 and record["codec"]["M"] == TINY.M
    assert isinstance(load_checkpoint(run.checkpoint), BaseCodec)


def test_finished_runs_are_skipped_and_foreign_directories_refused(base_curve, splits):
    run = base_curve[0]
    stamp = run.checkpoint.stat().st_mtime_ns
    again = train_run(run.spec, TINY, splits, ONE_STEP, run.run_dir)
    assert again.checkpoint.stat().st_mtime_ns == stamp
    other = RunSpec("depth", 1.0, 0.0)
    with pytest.raises(ValueError, match="another spec"):
        train_run(other, TINY, splits, ONE_STEP, run.run_dir)


def test_a_moved_tree_of_runs_is_still_recognised(base_curve, splits, tmp_path):
    copy = tmp_path / "moved"
    shutil.copytree(base_curve[0].run_dir.parent, copy)
    stamps = {p: p.stat().st_mtime_ns for p in copy.rglob("model.safetensors")}
    runs = lambda_sweep(copy, RunSpec("depth", 1.0, 0.1), [0.01, 1.0], TINY, splits, ONE_STEP)
    assert runs[1].spec.init == str(copy / "lmbda=1" / "model.safetensors")
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("model.safetensors")} == stamps


def test_an_interrupted_run_resumes_only_when_asked(tmp_path, splits, monkeypatch):
    spec = RunSpec("depth", 0.5, 0.1)
    config = TrainConfig(lr=LR, max_epochs=2, batch_size=4, quiet=True)
    reference = train_run(spec, TINY, splits, config, tmp_path / "reference")

    class KilledInEpochTwo(Trainer):
        def _train_epoch(self, epoch):
            if epoch == 2:
                raise KeyboardInterrupt
            return super()._train_epoch(epoch)

    monkeypatch.setattr(sweep_module, "Trainer", KilledInEpochTwo)
    with pytest.raises(KeyboardInterrupt):
        train_run(spec, TINY, splits, config, tmp_path / "killed")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="interrupted run"):
        train_run(spec, TINY, splits, config, tmp_path / "killed", resume=False)
    resumed = train_run(spec, TINY, splits, config, tmp_path / "killed")
    a, b = load_file(reference.checkpoint), load_file(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_warm_start_of_an_enhancement_model_keeps_its_own_base(base_curve):
    bases = [load_checkpoint(run.checkpoint) for run in base_curve]
    source = EnhancementCodec(bases[0], "scalable", "reconstruction", TINY)
    target = EnhancementCodec(bases[1], "scalable", "reconstruction", TINY)
    path = base_curve[0].run_dir.parent / "source.safetensors"
    save_checkpoint(source, path)
    warm_start(target, path)
    assert torch.equal(target.f_e.layers[0].weight, source.f_e.layers[0].weight)
    assert torch.equal(target.base.f_b.layers[0].weight, bases[1].f_b.layers[0].weight)
    with pytest.raises(ValueError, match="cannot warm-start"):
        warm_start(BaseCodec(TINY, "segmentation"), path)


@pytest.mark.parametrize("task", TASKS.names())
def test_evaluation_reports_metrics_and_both_rates(task, splits):
    torch.manual_seed(0)
    codec = BaseCodec(TINY, task, 0.1)
    with torch.no_grad():
        codec.f_b.layers[-1].weight.mul_(20)  # a latent that costs bits
    result = evaluate(codec, splits.test, batch_size=2)
    assert result.task == task and result.num_images == 2
    assert set(result.metrics) >= {get_task(task).metric}
    assert result.bpp_base > 0 and result.bpp_enhancement == 0
    assert result.coded_images == 2 and result.bpp_actual > 0
    header_bpp = 8 * 17 / (32 * 32)
    assert result.bpp_actual > header_bpp
    assert result.bpp_header == pytest.approx(header_bpp)  # one 17-byte header per image
    assert result.payload_overhead == pytest.approx(
        (result.bpp_actual - header_bpp) / result.bpp_estimated_coded - 1
    )
    assert result.rate_overhead == pytest.approx(
        result.bpp_actual / result.bpp_estimated_coded - 1
    )
    assert Evaluation.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_enhancement_rates_add_up_and_direct_codes_nothing(base_curve, splits):
    base = load_checkpoint(base_curve[0].checkpoint)
    scalable = evaluate(EnhancementCodec(base, "scalable", "segmentation", TINY), splits.test)
    direct = evaluate(EnhancementCodec(base, "direct", "segmentation", TINY), splits.test)
    assert scalable.bpp == pytest.approx(scalable.bpp_base + scalable.bpp_enhancement)
    assert scalable.bpp_enhancement > 0 and direct.bpp_enhancement == 0
    assert direct.bpp_base == pytest.approx(scalable.bpp_base)
    assert 0 <= scalable.metrics["miou"] <= 1


def test_downscaled_evaluation_scores_the_original_resolution(splits):
    torch.manual_seed(0)
    codec = BaseCodec(TINY, "segmentation")
    full = evaluate(codec, splits.test, bitstream_images=0)
    half = evaluate(codec, splits.test, downscale_factor=2, bitstream_images=0)
    assert full.bpp_actual is None and full.rate_overhead is None
    # predictions on 16×16 inputs were upsampled to the 32×32 targets to be scored at all
    assert set(half.metrics) == set(full.metrics) and half.num_images == full.num_images
    assert half.bpp_base > 0


def test_trivial_predictors(splits):
    depth = trivial_metrics("depth", splits.train, splits.test, TINY)
    assert depth["rmse"] > 0 and 0 <= depth["delta1"] <= 1
    seg = trivial_metrics("segmentation", splits.train, splits.test, TINY)
    assert 0 < seg["miou"] < 1
    recon = trivial_metrics("reconstruction", splits.train, splits.test, TINY)
    assert 5 < recon["psnr"] < 30


def test_rd_table_of_a_sweep_is_read_by_bdrate(base_curve, splits, tmp_path, monkeypatch):
    runs = find_runs([base_curve[0].run_dir.parent])
    assert sorted(r.spec.lmbda for r in runs) == [0.01, 1.0]
    frame = collect_rd(runs, splits.test, "test")
    assert list(frame["label"].unique()) == [curve_label("base", 0.1)] == ["base beta=0.1"]
    assert {"rmse", "delta1", "bpp_actual", "rate_overhead", "lmbda_base"} <= set(frame.columns)
    (curve,) = read_curves(write_rd_csv(frame, tmp_path / "rd.csv"))
    assert curve.label == "base beta=0.1" and len(curve.points) == 2
    # the evaluation is cached next to the checkpoint
    monkeypatch.setattr(rd_collect, "evaluate", lambda *a, **k: pytest.fail("recomputed"))
    cached = evaluate_run(runs[0], splits.test, "test")
    assert cached.metrics == pytest.approx(
        frame[frame["lmbda"] == runs[0].spec.lmbda].iloc[0][list(cached.metrics)].to_dict()
    )


def test_spec_validation():
    with pytest.raises(ValueError, match="needs a base checkpoint"):
        RunSpec("reconstruction", 1.0, strategy="scalable")
    with pytest.raises(ValueError, match="takes no base"):
        RunSpec("depth", 1.0, base="x.safetensors")
    with pytest.raises(ValueError, match="valid: "):
        RunSpec("depth", 1.0, strategy="bogus", base="x")
    for lmbda in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lmbda must be positive and finite"):
            RunSpec("depth", lmbda)
    for beta in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="beta must be non-negative and finite"):
            RunSpec("depth", 1.0, beta)
    with pytest.raises(ValueError, match="distinct"):
        lambda_sweep("unused", RunSpec("depth", 1.0), [1.0, 1.0], TINY, None, ONE_STEP)
    with pytest.raises(ValueError, match="lmbda must be positive"):
        lambda_sweep("unused", RunSpec("depth", 1.0), [1.0, 0.0], TINY, None, ONE_STEP)


@pytest.mark.parametrize(("lmbdas", "beta", "message"), [
    ([1.0, 0.0], 0.0, "lmbda must be positive and finite, got 0.0"),
    ([float("nan")], 0.0, "lmbda must be positive and finite, got nan"),
    ([0.5, 0.5], 0.0, "lambda values must be distinct"),
    ([], 0.0, "no lambda values given"),
    ([1.0], float("nan"), "beta must be non-negative and finite, got nan"),
])
def test_train_curve_refuses_bad_lambda_and_beta_before_creating_its_folder(
        tmp_path, lmbdas, beta, message):
    with pytest.raises(ValueError, match=message):
        train_curve(tmp_path / "out", task="depth", lmbdas=lmbdas, beta=beta, train=ONE_STEP)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("content", "message"), [
    ("{", r"experiment\.json: not valid JSON \(line 1, column 2: "),
    ("[]", r"experiment\.json: not a vinfo run record \(no 'spec' object\)"),
    ('{"spec": {"task": "depth"}}', r"experiment\.json: invalid run spec \(.*lmbda"),
    ('{"spec": {"task": "depth", "lmbda": 1, "colour": 3}}',
     r"experiment\.json: invalid run spec \(.*colour"),
])
def test_read_spec_names_a_damaged_experiment_json(tmp_path, content, message):
    (tmp_path / "experiment.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_spec(tmp_path)


def test_detection_base_trains_a_few_steps_and_is_scored_with_map(tmp_path, splits):
    config = TrainConfig(lr=LR, max_epochs=1, max_steps=2, batch_size=4, quiet=True)
    run = train_run(RunSpec("detection", 1.0, 0.1), TINY, splits, config, tmp_path / "det")
    history = json.loads((run.run_dir / "experiment.json").read_text())
    assert history["spec"]["task"] == "detection"
    metrics = (run.run_dir / "metrics.csv").read_text()
    assert "val_distortion" in metrics  # a validation loss exists in eval mode too
    result = evaluate(load_checkpoint(run.checkpoint), splits.test, bitstream_images=1)
    assert set(result.metrics) == {"map", "map50", "map75"}
    assert result.bpp_actual > 0
