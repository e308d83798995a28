"""`vinfo reproduce`: presets and plans, the BD table layout, and a `micro` run end to end."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from bdrate import read_curves
from cli.main import app
from vinfo.experiments.paper_layout import paper_comparisons, paper_figure
from vinfo.experiments.presets import REPRODUCE_PRESETS, describe_plan, get_preset
from vinfo.experiments.rd import Comparison, RDPoint, bd_table, pareto_front, rd_frame
from vinfo.experiments.reproduce import reproduce
from vinfo.progress import ProgressEvent


@pytest.mark.parametrize("name", REPRODUCE_PRESETS.names())
def test_every_preset_builds_its_plan_without_training(name):
    preset = get_preset(name)
    plan = describe_plan(preset, f"results/{name}")
    assert plan.startswith("reproduce: ") and f"{preset.num_models()} models" in plan
    assert len(preset.base_lmbdas) >= 4 or name == "micro"
    assert preset.betas == (0.0, 0.1)
    assert preset.base_task == ("detection" if name == "small" else "depth")
    json.dumps(preset.to_dict())  # the frozen config is JSON


@pytest.mark.parametrize(("change", "message"), [
    ({"base_lmbdas": (1.0, 0.0)}, "base_lmbdas must be positive and finite, got 0.0"),
    ({"base_lmbdas": (1.0, float("inf"))}, "base_lmbdas must be positive and finite, got inf"),
    ({"betas": (0.0, -0.1)}, "betas must be non-negative and finite, got -0.1"),
    ({"betas": (0.0, float("nan"))}, "betas must be non-negative and finite, got nan"),
])
def test_preset_refuses_bad_lambda_and_beta(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(get_preset("micro"), **change)


def test_secondary_refuses_bad_lambda():
    secondary = get_preset("micro").secondary[0]
    with pytest.raises(ValueError, match="lmbdas must be positive and finite, got -3.0"):
        dataclasses.replace(secondary, lmbdas=(30.0, -3.0))
    with pytest.raises(ValueError, match="direct_lmbda must be positive and finite, got 0"):
        dataclasses.replace(secondary, direct_lmbda=0)


def test_small_preset_is_the_coco_experiment():
    small = get_preset("small")
    assert small.base_task == "detection" and small.synthetic.height == 128
    assert [(s.task, s.strategies) for s in small.secondary] == [
        ("reconstruction", ("direct", "scalable", "standalone"))
    ]
    figures = {(c.figure, c.anchor) for _, c in paper_comparisons(small)}
    assert {("Fig. 2e", "base beta=0"), ("Fig. 2a", "direct beta=0"),
            ("Fig. 2c", "scalable beta=0")} <= figures


@pytest.mark.slow
def test_small_preset_runs_a_few_steps_at_micro_scale(tmp_path):
    """The detection branch end to end: the `small` study with micro data and a few steps."""
    small = get_preset("small")
    steps = dataclasses.replace(small.first, max_epochs=1, max_steps=2, batch_size=4,
                                device="cpu")
    quick = dataclasses.replace(
        small,
        codec=get_preset("micro").codec,
        synthetic=get_preset("micro").synthetic,
        base_lmbdas=(1.0, 0.1),
        secondary=(dataclasses.replace(small.secondary[0], lmbdas=(30.0, 3.0)),),
        first=steps,
        warm=steps,
        bitstream_images=1,
        probes=None,
        threads=1,
    )
    result = reproduce(quick, tmp_path / "small")
    detection = pd.read_csv(tmp_path / "small" / "rd_detection.csv")
    assert set(detection["label"]) == {"base beta=0", "base beta=0.1"}
    assert {"map", "map50", "map75"} <= set(detection.columns)
    assert list(result.bd_table["figure"].unique()) == ["Fig. 2e", "Fig. 2a", "Fig. 2c"]
    assert result.report.is_file()


def test_tiny_preset_matches_the_issue():
    tiny = get_preset("tiny")
    strategies = {s.task: s.strategies for s in tiny.secondary}
    assert strategies == {
        "reconstruction": ("direct", "scalable", "standalone"),
        "segmentation": ("scalable", "standalone"),
    }
    assert all(len(s.lmbdas) >= 4 for s in tiny.secondary)
    seed_replicas = 2 * 2 * (len(tiny.pair_seeds) - 1)  # base + direct per β and extra seed
    assert len(tiny.pair_seeds) >= 2
    assert tiny.num_models() == 2 * 4 + (2 * 4 + 2 * 4 + 4) + (2 * 4 + 4) + seed_replicas


def test_paper_preset_needs_the_dataset(tmp_path):
    paper = get_preset("paper")
    assert paper.codec.M == 192 and paper.downscale == 2 and paper.first.lr == 1e-4
    with pytest.raises(ValueError, match="--data-root"):
        reproduce("paper", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_comparisons_follow_the_papers_figures():
    rows = paper_comparisons(get_preset("tiny"))
    by_figure = {(c.figure, c.anchor, c.test, c.metric) for _, c in rows}
    assert ("Fig. 2f", "base beta=0", "base beta=0.1", "rmse") in by_figure
    assert ("Fig. 2b", "direct beta=0", "direct beta=0.1", "psnr") in by_figure
    assert ("Fig. 2d", "scalable beta=0", "scalable beta=0.1", "psnr") in by_figure
    assert ("Fig. 3", "scalable beta=0", "scalable beta=0.1", "miou") in by_figure
    assert ("Fig. 3", "standalone", "scalable beta=0", "miou") in by_figure
    assert paper_figure("reconstruction", "scalable", "detection") == "Fig. 2c"


def test_pareto_front_drops_dominated_points_and_rescues_the_bd_table():
    points = [
        RDPoint(label, 0.0, i, "depth", "base", bpp, metrics={"rmse": rmse})
        for label, values in {
            "a": [(0.1, 10.0), (0.2, 11.0), (0.3, 8.0), (0.4, 7.0)],  # 0.2 is dominated
            "b": [(0.1, 9.0), (0.2, 8.5), (0.3, 7.5), (0.4, 6.5)],
        }.items()
        for i, (bpp, rmse) in enumerate(values)
    ]
    frame = rd_frame(points)
    front = pareto_front(frame[frame["label"] == "a"], "rmse")
    assert list(front["bpp"]) == [0.1, 0.3, 0.4]
    comparison = [Comparison("Fig. 2f", "a", "b", "rmse")]
    strict = bd_table(frame, comparison)
    assert math.isnan(strict.loc[0, "bd_rate_percent"]) and "strictly" in strict.loc[0, "note"]
    rescued = bd_table(frame, comparison, prune_dominated=True)
    assert rescued.loc[0, "bd_rate_percent"] < 0  # b needs fewer bits for the same RMSE
    note = rescued.loc[0, "note"]
    assert note.startswith("BD-rate on the Pareto fronts (dominated points dropped: anchor 3 of 4")
    # BD-metric keeps every point; here Akima overshoots the dip, which the guard refuses
    assert math.isnan(rescued.loc[0, "bd_metric"]) and "BD-metric: anchor curve" in note
    assert "outside the range of the curve's points" in note and "BD-rate: anchor" not in note


@pytest.mark.slow
def test_micro_progress_is_one_typed_event_per_step(micro_run):
    # issue #18: the pipeline reports ProgressEvents; reproduce numbers the train events
    _, _, lines = micro_run
    assert all(isinstance(line, ProgressEvent) for line in lines)
    train = [line for line in lines if line.kind == "train"]
    total = get_preset("micro").num_models()
    assert len(train) == total
    assert [line.split()[1] for line in train] == [f"[{k}/{total}]" for k in range(1, total + 1)]
    assert {line.kind for line in lines} >= {"train", "evaluate", "probe", "note"}
    assert lines[-1].kind == "note"


@pytest.mark.slow
def test_micro_reproduce_end_to_end(micro_run):
    out, result, lines = micro_run
    expected = {
        "rd_depth.csv",
        "rd_reconstruction.csv",
        "rd_segmentation.csv",
        "bd_table.csv",
        "bd_table.md",
        "fig2.png",
        "fig2.pdf",
        "fig3.png",
        "fig3.pdf",
        "trivial.csv",
        "summary.md",
        "pair.json",
        "reproduce.json",
        "probes.csv",
        "probes_paired.csv",
        "fig_iv_capacity.png",
        "pair_seeds.csv",
        "loss_terms.csv",
        "verdicts.csv",
        "timings.json",
    }
    assert expected <= {p.name for p in out.iterdir()}
    report = {"report/report.md", "report/report.html"}
    assert {p.relative_to(out).as_posix() for p in result.files} == expected | report
    assert result.report == out / "report" / "report.md"
    assert str(result.report) in lines[-1]  # the last progress line says where the report is
    assert all(p.stat().st_size > 0 for p in result.files)
    # the micro curves are chains upward: the lowest λ is trained first
    first = min(get_preset("micro").base_lmbdas)
    assert any(line.endswith(f"train depth base beta=0 lambda={first:g}") for line in lines)
    verdicts = pd.read_csv(out / "verdicts.csv")
    assert set(verdicts["verdict"]) <= {"reproduced", "not reproduced", "inconclusive"}
    assert len(verdicts) >= 4 and verdicts["measured"].str.len().min() > 0
    seeds = pd.read_csv(out / "pair_seeds.csv")
    assert sorted(zip(seeds["seed"], seeds["beta"], strict=True)) == [
        (0, 0.0), (0, 0.1), (1, 0.0), (1, 0.1)]
    assert seeds["direct_psnr"].notna().all()
    terms = pd.read_csv(out / "loss_terms.csv")
    # λ·d is recomputed from the logged distortion: the rule of eq. 3 as the authors weigh it
    assert (terms["task_term"] == terms["lmbda"] * terms["distortion"]).all()
    assert "Verdicts on the paper's claims" in result.report.read_text()

    micro = get_preset("micro")
    depth = pd.read_csv(out / "rd_depth.csv")
    assert len(depth) == 2 * len(micro.base_lmbdas)
    assert set(depth["label"]) == {"base beta=0", "base beta=0.1"}
    recon = pd.read_csv(out / "rd_reconstruction.csv")
    assert set(recon["label"]) == {
        "direct beta=0", "direct beta=0.1", "scalable beta=0", "scalable beta=0.1", "standalone"
    }
    scalable = recon[recon["strategy"] == "scalable"]
    assert (scalable["bpp"] - scalable["bpp_base"] - scalable["bpp_enhancement"]).abs().max() < 1e-9
    pair = json.loads((out / "pair.json").read_text())
    assert set(pair) == {"beta=0", "beta=0.1"}
    assert set(scalable["bpp_base"].round(12)) == {round(v["bpp"], 12) for v in pair.values()}
    table = pd.read_csv(out / "bd_table.csv")
    assert list(table["figure"].unique()) == ["Fig. 2f", "Fig. 2b", "Fig. 2d", "Fig. 3"]
    assert "BD-rate < 0" in (out / "bd_table.md").read_text()
    assert {"bd_rate_overlap", "bd_metric_overlap", "min_overlap"} <= set(table.columns)
    assert "| overlap [%] |" in (out / "bd_table.md").read_text()

    # the RD CSVs are what `vinfo bdrate` reads
    curves = read_curves(out / "rd_depth.csv")
    assert [c.label for c in curves] == ["base beta=0", "base beta=0.1"]
    run = CliRunner().invoke(
        app, ["bdrate", str(out / "rd_depth.csv"), "-m", "rmse", "--method", "polyfit", "--json"]
    )
    if run.exit_code == 0:
        (record,) = json.loads(run.stdout)
        assert (record["anchor"], record["test"]) == ("base beta=0", "base beta=0.1")
    else:  # the curves were read; only the BD value of a 2-minute run may be undefined
        assert run.exit_code == 2 and "'base beta=0.1' vs anchor 'base beta=0'" in run.stderr

    # a rerun skips every finished model
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("model.safetensors")}
    started = time.perf_counter()
    reproduce("micro", out)
    assert time.perf_counter() - started < 20
    assert {p: p.stat().st_mtime_ns for p in out.rglob("model.safetensors")} == stamps


def test_direct_decoders_and_their_seed_replicas_train_with_the_direct_budget(tmp_path):
    """``ReproducePreset.direct`` sets every direct decoder's training, the pair's seed
    replicas included; the base and scalable models keep ``first``/``warm``."""
    from vinfo.experiments.reproduce import _pair_seed_plan, _secondary_plan
    from vinfo.experiments.sweep import FinishedRun, RunSpec, plan_lambda_sweep

    tiny = get_preset("tiny")
    assert tiny.direct_train == (tiny.first if tiny.direct is None else tiny.direct)
    direct = dataclasses.replace(tiny.first, max_epochs=tiny.first.max_epochs + 7)
    preset = dataclasses.replace(tiny, direct=direct)
    runs = tmp_path / "runs"
    base_plan = {
        beta: plan_lambda_sweep(runs / "base" / f"beta={beta:g}", RunSpec("depth", 1.0, beta),
                                preset.base_lmbdas, preset.codec, preset.first, preset.warm,
                                warm_start=preset.warm_start)
        for beta in preset.betas
    }
    base_runs = {b: [FinishedRun(r.spec, r.run_dir) for r in p] for b, p in base_plan.items()}
    chosen = {b: finished[-1] for b, finished in base_runs.items()}
    reconstruction = preset.secondary[0]
    plans = {"reconstruction": _secondary_plan(preset, reconstruction, base_runs, chosen, runs)}
    by_strategy = {}
    for run in plans["reconstruction"]:
        by_strategy.setdefault(run.spec.strategy, []).append(run.train.max_epochs)
    assert by_strategy["direct"] == [direct.max_epochs] * 2 * len(preset.base_lmbdas)
    assert set(by_strategy["scalable"]) <= {preset.first.max_epochs, preset.warm.max_epochs}
    replicas = _pair_seed_plan(preset, base_plan, chosen, plans, runs)
    for seed, per_beta in replicas.items():
        for base_replica, direct_replica in per_beta.values():
            assert direct_replica.spec.strategy == "direct"
            assert direct_replica.train == dataclasses.replace(direct, seed=seed)
            assert base_replica.train.max_epochs != direct.max_epochs
    with pytest.raises(ValueError, match="seed"):
        dataclasses.replace(tiny, direct=dataclasses.replace(direct, seed=5))
