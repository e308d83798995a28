"""Analysis of results directories: loading, I_V across β, the conditional-coding gain (checked
against bdrate and exact BD invariants), the co-adaptation join, the paired ΔI_V summary,
figures and the notebook helpers."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bdrate import bd_rate
from vinfo.data import SyntheticConfig
from vinfo.experiments import demo
from vinfo.experiments.analysis import (
    co_adaptation_table,
    conditional_coding_gain,
    delta_verdict,
    iv_across_beta,
    paired_summary,
    plot_co_adaptation,
    plot_iv_across_beta,
    plot_paired_delta,
    simplest_family,
)
from vinfo.experiments.demo import demo_results
from vinfo.experiments.results import (
    base_checkpoints,
    data_options,
    load_results,
    pair_checkpoints,
    probe_tables,
    with_beta_lmbda,
)
from vinfo.figures import figure_png

BETAS = (0.0, 0.1)
LMBDAS = (0.01, 0.1)
PAIR = {0.0: 0.1, 0.1: 0.01}  # the similar-rate pair: different λ per β, as in real runs
FAMILIES = {"null": 0, "linear": 1, "conv": 3}
TARGETS = ("reconstruction", "depth")


def iv_value(beta: float, lmbda: float, target: str, rank: int) -> float:
    """A distinct, recognisable I_V per row (0 for the null family, as in real tables)."""
    return 0.0 if rank == 0 else 0.1 * rank + beta + lmbda + (0.5 if target == "depth" else 0)


def probes_frame() -> pd.DataFrame:
    """A probe table in the pipeline's format (``probes.csv``), conv listed before linear."""
    rows = []
    for beta in BETAS:
        for lmbda in LMBDAS:
            name = f"beta={beta:g}/lmbda={lmbda:g}"
            for target in TARGETS:
                for family in ("null", "conv", "linear"):
                    rank = FAMILIES[family]
                    iv = iv_value(beta, lmbda, target, rank)
                    half = 0.0 if rank == 0 else 0.05
                    rows.append({
                        "repr": name, "repr_path": f"runs/base/{name}/model.safetensors",
                        "target": target, "family": family, "capacity_rank": rank,
                        "params": 10 * rank, "null": "positional", "n_seeds": 1,
                        "n_resamples": 100, "h_null": 2.0, "h_cond": 2.0 - iv, "iv": iv,
                        "iv_normalized": math.nan, "iv_ci_low": iv - half,
                        "iv_ci_high": iv + half, "gap": 0.0, "metric": "psnr",
                        "metric_value": 10.0, "n_test_images": 13, "shuffled_iv": 0.0,
                        "shuffled_flag": False, "capacity_flag": False,
                        "source": "synthetic/micro/val (all images)",
                        "beta": beta, "lmbda": lmbda,
                    })
    return pd.DataFrame(rows)


def paired_frame() -> pd.DataFrame:
    rows = []
    for lmbda in LMBDAS:
        for target in TARGETS:
            for family, rank in FAMILIES.items():
                delta = 0.0 if rank == 0 else (0.02 if target == "reconstruction" else -0.02)
                half = 0.0 if rank == 0 else (0.01 if lmbda == 0.01 else 0.05)
                rows.append({"target": target, "family": family, "capacity_rank": rank,
                             "repr": f"beta=0.1/lmbda={lmbda:g}",
                             "anchor": f"beta=0/lmbda={lmbda:g}", "delta_iv": delta,
                             "delta_iv_ci_low": delta - half, "delta_iv_ci_high": delta + half,
                             "n_seeds": 1, "n_resamples": 100, "lmbda": lmbda})
    return pd.DataFrame(rows)


def rd_frames() -> dict[str, pd.DataFrame]:
    """Base curves at every (β, λ), direct reconstruction models on each, scalable curves on
    the pair only and a standalone curve: the layout of the reproduce pipeline."""
    base = [{"label": f"base beta={b:g}", "beta": b, "lmbda": v, "task": "depth",
             "strategy": "base", "bpp_base": 0.1 * v + b / 100, "bpp_enhancement": 0.0,
             "bpp": 0.1 * v + b / 100, "rmse": 10 - v - b, "lmbda_base": v}
            for b in BETAS for v in LMBDAS]
    standalone_bpp = np.array([0.1, 0.2, 0.4])
    standalone_psnr = np.array([20.0, 22.0, 23.0])
    recon = [{"label": f"direct beta={b:g}", "beta": b, "lmbda": 1.0, "task": "reconstruction",
              "strategy": "direct", "bpp_base": 0.0, "bpp_enhancement": 0.0, "bpp": 0.05,
              "psnr": 15 + 10 * b + v, "lmbda_base": v} for b in BETAS for v in LMBDAS]
    # scalable β=0.1 needs half the standalone rate at equal quality (BD-rate −50 %),
    # scalable β=0 twice the rate (+100 %)
    for beta, factor in ((0.1, 0.5), (0.0, 2.0)):
        recon += [{"label": f"scalable beta={beta:g}", "beta": beta, "lmbda": lam,
                   "task": "reconstruction", "strategy": "scalable", "bpp_base": 0.0,
                   "bpp_enhancement": factor * r, "bpp": factor * r, "psnr": p,
                   "lmbda_base": PAIR[beta]}
                  for lam, r, p in zip((1.0, 3.0, 30.0), standalone_bpp, standalone_psnr,
                                       strict=True)]
    recon += [{"label": "standalone", "beta": 0.1, "lmbda": lam, "task": "reconstruction",
               "strategy": "standalone", "bpp_base": 0.0, "bpp_enhancement": r, "bpp": r,
               "psnr": p, "lmbda_base": PAIR[0.1]}
              for lam, r, p in zip((1.0, 3.0, 30.0), standalone_bpp, standalone_psnr,
                                   strict=True)]
    return {"depth": pd.DataFrame(base), "reconstruction": pd.DataFrame(recon)}


def write_results(root, *, probes: bool = True) -> None:
    """A results directory as ``vinfo reproduce`` writes it (without checkpoints)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "reproduce.json").write_text(json.dumps({
        "description": "synthetic test run", "betas": list(BETAS), "base_task": "depth",
        "base_lmbdas": list(LMBDAS), "dataset": "synthetic",
        "synthetic": asdict(SyntheticConfig.preset("micro")),
        "secondary": [{"task": "reconstruction", "strategies": ["direct", "scalable",
                                                                  "standalone"],
                       "lmbdas": [30.0, 3.0, 1.0], "direct_lmbda": 1.0}]}))
    (root / "pair.json").write_text(json.dumps({
        f"beta={b:g}": {"lmbda": v, "bpp": 0.01, "checkpoint": f"runs/base/beta={b:g}/"
                        f"lmbda={v:g}/model.safetensors"} for b, v in PAIR.items()}))
    for task, frame in rd_frames().items():
        frame.to_csv(root / f"rd_{task}.csv", index=False)
    pd.DataFrame([{"figure": "Fig. 2f", "anchor": "base beta=0", "test": "base beta=0.1",
                   "metric": "rmse", "method": "akima", "bd_rate_percent": -12.5,
                   "bd_metric": 0.3, "bd_rate_overlap": 0.6, "bd_metric_overlap": 0.9,
                   "min_overlap": 0.75, "note": "", "task": "depth"},
                  {"figure": "Fig. 2b", "anchor": "direct beta=0", "test": "direct beta=0.1",
                   "metric": "psnr", "method": "akima", "bd_rate_percent": math.nan,
                   "bd_metric": math.nan, "bd_rate_overlap": math.nan,
                   "bd_metric_overlap": math.nan, "min_overlap": 0.75,
                   "note": "the curves do not overlap",
                   "task": "reconstruction"}]).to_csv(root / "bd_table.csv", index=False)
    pd.DataFrame([{"task": "depth", "metric": "rmse", "trivial": 17.0, "best_model": 9.0,
                   "worst_model": 9.9, "all_models_beat_trivial": True}]).to_csv(
        root / "trivial.csv", index=False)
    figure, axis = plt.subplots(figsize=(1, 1))
    for name in ("fig2.png", "fig3.png"):
        figure.savefig(root / name, dpi=20)
    plt.close(figure)
    if probes:
        probes_frame().to_csv(root / "probes.csv", index=False)
        paired_frame().to_csv(root / "probes_paired.csv", index=False)
    (root / "summary.md").write_text("# vinfo reproduce\n")


# loading --------------------------------------------------------------------------------------


def test_load_results_round_trips_every_table_and_keeps_the_null_family(tmp_path):
    write_results(tmp_path / "run")
    results = load_results(tmp_path / "run")
    assert results.finished and results.betas == BETAS and results.pair_lmbdas == PAIR
    assert set(results.rd) == {"depth", "reconstruction"}
    # pandas reads the string "null" as NaN by default; the probe family must survive
    assert set(results.probes["family"]) == set(FAMILIES)
    pd.testing.assert_frame_equal(results.probes, probes_frame(), check_dtype=False)
    assert len(results.paired) == len(paired_frame())
    assert set(results.figures) == {"fig2.png", "fig3.png"}
    assert results.bd["bd_rate_percent"].isna().sum() == 1


def test_load_results_refuses_what_is_not_a_results_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such results directory"):
        load_results(tmp_path / "missing")
    (tmp_path / "rd_depth.csv").write_text("label,bpp\n")
    with pytest.raises(ValueError, match=r"not a vinfo reproduce results directory \(no "
                                         r"reproduce.json\)"):
        load_results(tmp_path)
    write_results(tmp_path / "run", probes=False)
    (tmp_path / "run" / "rd_depth.csv").write_text("label,beta\nx,0\n")
    with pytest.raises(ValueError, match="rd_depth.csv: missing column"):
        load_results(tmp_path / "run")


def test_missing_probe_tables_are_none(tmp_path):
    write_results(tmp_path / "run", probes=False)
    results = load_results(tmp_path / "run")
    assert results.probes is None and results.paired is None and results.rd


def test_beta_and_lambda_are_parsed_from_names_when_the_table_lacks_them():
    frame = probes_frame().drop(columns=["beta", "lmbda"])
    parsed = with_beta_lmbda(frame)
    pd.testing.assert_series_equal(parsed["beta"], probes_frame()["beta"])
    pd.testing.assert_series_equal(parsed["lmbda"], probes_frame()["lmbda"])
    from_path = with_beta_lmbda(frame.assign(repr="model"))  # only repr_path says it
    assert list(from_path["lmbda"]) == list(probes_frame()["lmbda"])
    with pytest.raises(ValueError, match="no beta column"):
        with_beta_lmbda(frame.assign(repr="a", repr_path="b"))


# tables ---------------------------------------------------------------------------------------


def test_iv_across_beta_keeps_each_beta_at_the_pairs_lambda():
    table = iv_across_beta(probes_frame(), PAIR)
    assert len(table) == len(TARGETS) * len(FAMILIES) * len(BETAS)
    assert set(zip(table["beta"], table["lmbda"], strict=True)) == set(PAIR.items())
    for row in table.itertuples():
        assert row.iv == pytest.approx(iv_value(row.beta, row.lmbda, row.target,
                                                row.capacity_rank))
        assert row.iv_ci_low <= row.iv <= row.iv_ci_high
    # sorted by target (table order), then capacity rank, then β
    first = table[table["target"] == "reconstruction"]
    assert list(first["family"]) == ["null", "null", "linear", "linear", "conv", "conv"]
    assert list(table["target"].drop_duplicates()) == list(TARGETS)
    assert len(iv_across_beta(probes_frame())) == len(probes_frame())
    with pytest.raises(ValueError, match="no row at beta=0 lambda=7"):
        iv_across_beta(probes_frame(), {0.0: 7.0})


def test_conditional_coding_gain_matches_bdrate_and_the_rate_scaling_invariant():
    frames = rd_frames()
    gain = conditional_coding_gain(frames).set_index("beta")
    # scaling every test rate by c gives a BD-rate of exactly (c − 1)·100 %
    assert gain.loc[0.1, "bd_rate_percent"] == pytest.approx(-50.0)
    assert gain.loc[0.0, "bd_rate_percent"] == pytest.approx(100.0)
    assert gain.loc[0.1, "lmbda_base"] == PAIR[0.1] and gain.loc[0.0, "lmbda_base"] == PAIR[0.0]
    recon = frames["reconstruction"]
    anchor = recon[recon["strategy"] == "standalone"].sort_values("bpp")
    test = recon[recon["label"] == "scalable beta=0.1"].sort_values("bpp")
    reference = bd_rate(anchor["bpp"], anchor["psnr"], test["bpp"], test["psnr"])
    assert gain.loc[0.1, "bd_rate_percent"] == pytest.approx(reference, abs=1e-12)
    # same metric values: full overlap in the metric; rates halved: in log10(rate) the ranges
    # (span s) are shifted by log10(2), sharing s - log10(2) of a union s + log10(2)
    span, shift = np.ptp(np.log10(anchor["bpp"].to_numpy())), np.log10(2)
    assert gain.loc[0.1, "bd_rate_overlap"] == pytest.approx(1.0, abs=1e-12)
    assert gain.loc[0.1, "bd_metric_overlap"] == pytest.approx(
        (span - shift) / (span + shift), abs=1e-12
    )
    assert gain.loc[0.1, "min_overlap"] == 0.75
    assert set(gain["metric"]) == {"psnr"} and set(gain["anchor"]) == {"standalone"}
    assert "depth" not in set(gain["task"])  # no standalone curve there


def test_conditional_coding_gain_uses_the_pareto_front_and_explains_undefined_values():
    recon = rd_frames()["reconstruction"]
    # a dominated point (more rate, lower PSNR) makes the β=0.1 curve non-monotone
    extra = recon[recon["label"] == "scalable beta=0.1"].iloc[[0]].assign(bpp=0.15, psnr=19.0)
    # β=0: rates far away from the standalone curve's, no overlap on the rate axis … but the
    # BD-rate integrates over quality, so shift the quality out of range instead
    far = recon["label"] == "scalable beta=0"
    frame = pd.concat([recon.assign(psnr=np.where(far, recon["psnr"] + 50, recon["psnr"])),
                       extra])
    gain = conditional_coding_gain({"reconstruction": frame}).set_index("beta")
    assert gain.loc[0.1, "bd_rate_percent"] == pytest.approx(-50.0)
    assert "dominated points dropped" in gain.loc[0.1, "note"]
    assert math.isnan(gain.loc[0.0, "bd_rate_percent"])
    assert "do not overlap" in gain.loc[0.0, "note"]
    enhancement = conditional_coding_gain(rd_frames(), rate_column="bpp_enhancement")
    assert set(enhancement["rate_column"]) == {"bpp_enhancement"}


def test_simplest_family_is_the_lowest_non_null_rank():
    assert simplest_family(probes_frame()) == "linear"
    assert simplest_family(probes_frame().query("family != 'linear'")) == "conv"
    with pytest.raises(ValueError, match="no family other than null"):
        simplest_family(probes_frame().query("family == 'null'"))


def test_co_adaptation_joins_direct_quality_per_base_and_gain_for_the_pair_only():
    frames = rd_frames()
    gain = conditional_coding_gain(frames)
    table = co_adaptation_table(probes_frame(), frames, gain, pair=PAIR)
    assert set(table["family"]) == {"linear"}
    assert len(table) == len(BETAS) * len(LMBDAS) * len(TARGETS)  # one secondary task
    for row in table.itertuples():
        assert row.direct_value == pytest.approx(15 + 10 * row.beta + row.lmbda)
        assert row.iv == pytest.approx(iv_value(row.beta, row.lmbda, row.target, 1))
        assert row.bpp_base == pytest.approx(0.1 * row.lmbda + row.beta / 100)
        assert row.in_pair == (PAIR[row.beta] == row.lmbda)
        if row.in_pair:
            expected = -50.0 if row.beta == 0.1 else 100.0
            assert row.gain_bd_rate_percent == pytest.approx(expected)
        else:
            assert math.isnan(row.gain_bd_rate_percent)
    conv = co_adaptation_table(probes_frame(), frames, families=["conv"])
    assert set(conv["family"]) == {"conv"} and conv["gain_bd_rate_percent"].isna().all()
    with pytest.raises(ValueError, match="no family mlp"):
        co_adaptation_table(probes_frame(), frames, families=["mlp"])


@pytest.mark.parametrize(("low", "high", "verdict"), [
    (0.01, 0.02, "above 0"), (-0.3, -0.1, "below 0"), (-0.1, 0.2, "contains 0"),
    (0.0, 0.0, "exactly 0"), (math.nan, 1.0, "undefined")])
def test_delta_verdict(low, high, verdict):
    assert delta_verdict(low, high) == verdict


def test_paired_summary_sorts_and_reads_each_interval():
    summary = paired_summary(paired_frame().sample(frac=1.0, random_state=0))
    assert len(summary) == len(paired_frame())
    ranks = summary.groupby("target", sort=False)["capacity_rank"].apply(list)
    assert all(r == sorted(r) for r in ranks)
    narrow = summary[(summary["lmbda"] == 0.01) & (summary["family"] == "linear")]
    assert dict(zip(narrow["target"], narrow["verdict"], strict=True)) == {
        "reconstruction": "above 0", "depth": "below 0"}
    assert set(summary[summary["family"] == "null"]["verdict"]) == {"exactly 0"}


# figures --------------------------------------------------------------------------------------


def test_figures_have_one_panel_per_target_and_one_line_per_representation():
    figure = plot_iv_across_beta(iv_across_beta(probes_frame(), PAIR))
    axes = [a for a in figure.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == list(TARGETS)
    assert all(len(a.get_lines()) == len(BETAS) + 1 for a in axes)  # + the zero line
    plt.close(figure)
    figure = plot_paired_delta(paired_frame())
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["linear", "conv"]  # null left out, capacity order
    plt.close(figure)
    frames = rd_frames()
    gain = conditional_coding_gain(frames)
    figure = plot_co_adaptation(co_adaptation_table(probes_frame(), frames, gain, pair=PAIR),
                                gain)
    assert len([a for a in figure.axes if a.get_visible()]) == len(TARGETS) + 1
    plt.close(figure)
    without_direct = {"depth": frames["depth"]}
    with pytest.raises(ValueError, match="no base representation has a direct model"):
        plot_co_adaptation(co_adaptation_table(probes_frame(), without_direct))


# notebook helpers -----------------------------------------------------------------------------


def _no_reproduce(*args, **kwargs):
    raise AssertionError("reproduce must not run")


def test_demo_results_prefers_a_finished_run_and_reuses_a_finished_fallback(tmp_path,
                                                                          monkeypatch):
    monkeypatch.delenv(demo.NOTEBOOK_RESULTS_ENV, raising=False)
    monkeypatch.setattr(demo, "reproduce", _no_reproduce)
    write_results(tmp_path / "tiny")
    assert demo_results(tmp_path / "tiny", tmp_path / "micro") == tmp_path / "tiny"
    write_results(tmp_path / "micro")
    assert demo_results(tmp_path / "absent", tmp_path / "micro") == tmp_path / "micro"
    monkeypatch.setenv(demo.NOTEBOOK_RESULTS_ENV, str(tmp_path / "tiny"))
    assert demo_results(None, tmp_path / "micro") == tmp_path / "tiny"


def test_demo_results_runs_the_preset_once_into_the_fallback(tmp_path, monkeypatch):
    calls = []

    def fake(preset, out, **kwargs):
        calls.append((preset, out))
        write_results(out)

    monkeypatch.delenv(demo.NOTEBOOK_RESULTS_ENV, raising=False)
    monkeypatch.setattr(demo, "reproduce", fake)
    (tmp_path / "tiny").mkdir()  # unfinished: no summary.md
    for _ in range(2):
        assert demo_results(tmp_path / "tiny", tmp_path / "micro") == tmp_path / "micro"
    assert calls == [("micro", tmp_path / "micro")]


def test_demo_results_treats_a_run_without_probe_tables_as_unfinished(tmp_path, monkeypatch):
    calls = []

    def fake(preset, out, **kwargs):  # reproduce resumes: only the probe step is added
        calls.append((preset, out))
        write_results(out)

    monkeypatch.delenv(demo.NOTEBOOK_RESULTS_ENV, raising=False)
    monkeypatch.setattr(demo, "reproduce", fake)
    write_results(tmp_path / "tiny", probes=False)  # finished before the probe step existed
    write_results(tmp_path / "micro", probes=False)  # a stale fallback run
    assert (tmp_path / "tiny" / "summary.md").is_file()
    assert demo_results(tmp_path / "tiny", tmp_path / "micro") == tmp_path / "micro"
    assert calls == [("micro", tmp_path / "micro")]
    assert (tmp_path / "micro" / "probes.csv").is_file()
    assert demo_results(tmp_path / "tiny", tmp_path / "micro") == tmp_path / "micro"
    assert len(calls) == 1  # now finished: reused as it is


def fake_base_runs(root) -> None:
    """Run directories of every base model (spec only; no weights are read)."""
    from vinfo.experiments.sweep import RunSpec

    for beta in BETAS:
        for lmbda in LMBDAS:
            run_dir = root / "runs" / "base" / f"beta={beta:g}" / f"lmbda={lmbda:g}"
            run_dir.mkdir(parents=True)
            spec = RunSpec("depth", lmbda, beta).to_dict()
            (run_dir / "experiment.json").write_text(json.dumps({"spec": spec}))
            (run_dir / "model.safetensors").write_bytes(b"")


def test_pair_checkpoints_and_data_options_come_from_the_run_directory(tmp_path):
    write_results(tmp_path / "run")
    fake_base_runs(tmp_path / "run")
    results = load_results(tmp_path / "run")
    models = base_checkpoints(results)
    assert list(zip(models["beta"], models["lmbda"], strict=True)) == [
        (b, v) for b in BETAS for v in LMBDAS]
    assert list(models["repr"])[:2] == ["beta=0/lmbda=0.01", "beta=0/lmbda=0.1"]
    pair = pair_checkpoints(results)
    base = tmp_path / "run" / "runs" / "base"
    assert pair == {0.0: base / "beta=0" / "lmbda=0.1" / "model.safetensors",
                    0.1: base / "beta=0.1" / "lmbda=0.01" / "model.safetensors"}
    assert data_options(results) == {"dataset": "synthetic", "preset": "micro"}
    (base / "beta=0" / "lmbda=0.1" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="beta=0 lambda=0.1"):
        pair_checkpoints(load_results(tmp_path / "run"))


def test_probe_tables_are_the_runs_own_tables(tmp_path):
    write_results(tmp_path / "run")
    results = load_results(tmp_path / "run")
    probes, paired = probe_tables(results)
    assert probes is results.probes and paired is results.paired
    assert len(paired) == len(paired_frame())


def test_probe_tables_of_a_run_without_a_probe_step_say_how_to_add_it(tmp_path):
    write_results(tmp_path / "run", probes=False)
    with pytest.raises(ValueError) as raised:
        probe_tables(load_results(tmp_path / "run"))
    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "run") in message
    assert "no probe tables" in message
    assert "rerun `vinfo reproduce` with the same preset and --out" in message
    assert "adds the probe step" in message
    # one table alone is not enough either
    paired_frame().to_csv(tmp_path / "run" / "probes_paired.csv", index=False)
    with pytest.raises(ValueError, match="no probe tables"):
        probe_tables(load_results(tmp_path / "run"))


def test_figure_png_returns_png_bytes_and_closes_the_figure():
    figure, _ = plt.subplots()
    number = figure.number
    assert figure_png(figure).startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(number)
