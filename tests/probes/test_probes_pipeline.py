"""run_probes' CIs, per-target head arguments and callbacks; figures and PVI files; probe_files."""

import numpy as np
import pandas as pd
import pytest
import torch

from probes.bundles import save_bundle
from probes.estimator import VInfoProbe
from probes.pipeline import probe_files
from probes.probe_data import ProbeData, ProbeSplits
from probes.pvi import pvi_maps
from probes.report import plot_iv_by_capacity, write_pvi_maps
from probes.study import run_probes
from vinfo.figures import save_figure


def labelled(n, seed, classes=3):
    """y (n, 2, 4, 4); labels (n, 1, 8, 8) = the class whose latent channel sign matches."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, 4, 4, generator=g)
    labels = ((y[:, :1] > 0).long() + (y[:, 1:] > 1).long()).clamp_max(classes - 1)
    return ProbeData(y, torch.nn.functional.interpolate(labels.float(), scale_factor=2).long())


def depth(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, 4, 4, generator=g)
    z = torch.nn.functional.interpolate(y[:, :1], scale_factor=2)
    return ProbeData(y, z + 0.3 * torch.randn(z.shape, generator=g))


KWARGS = {"max_epochs": 15, "patience": 3, "lr": 3e-2}


def test_rows_carry_a_ci_for_every_quantity():
    data = {"a": {"segmentation": ProbeSplits(labelled(24, 0), labelled(8, 1), labelled(20, 2)),
                  "depth": ProbeSplits(depth(24, 0), depth(8, 1), depth(20, 2))}}
    events = []
    frame = run_probes(data, ["linear", "null"], seeds=[0, 1], n_resamples=100,
                       controls=False, probe_kwargs=KWARGS, callback=events.append)
    assert [(e.target, e.family, e.seed) for e in events][:4] == [
        ("segmentation", "null", 0), ("segmentation", "null", 1),
        ("segmentation", "linear", 0), ("segmentation", "linear", 1)]
    assert all(isinstance(e.probe, VInfoProbe) and hasattr(e.probe, "net_") for e in events)
    for name in ("h_null", "h_cond", "iv", "iv_normalized"):
        discrete = frame[frame["target"] == "segmentation"]
        assert (discrete[f"{name}_ci_low"] <= discrete[name] + 1e-12).all()
        assert (discrete[name] <= discrete[f"{name}_ci_high"] + 1e-12).all()
    linear = frame.set_index(["target", "family"]).loc[("segmentation", "linear")]
    assert linear["iv_ci_low"] > 0.1 and linear["h_cond_ci_high"] < linear["h_null_ci_low"]
    assert frame[frame["target"] == "depth"]["iv_normalized_ci_low"].isna().all()


def test_head_arguments_are_per_target():
    train, val = labelled(24, 0, classes=2), labelled(8, 1, classes=2)
    test = labelled(12, 2, classes=3)  # a class the training split never shows
    data = {"a": {"segmentation": ProbeSplits(train, val, test)}}
    with pytest.raises(ValueError, match="outside"):
        run_probes(data, ["null"], n_resamples=0, controls=False, probe_kwargs=KWARGS)
    frame = run_probes(data, ["null"], n_resamples=0, controls=False, probe_kwargs=KWARGS,
                       head_kwargs={"segmentation": {"num_classes": 3}, "depth": {"kind": "x"}})
    assert np.isfinite(frame["h_null"]).all()


def test_too_few_test_images_fail_before_any_fit():
    data = {"a": {"depth": ProbeSplits(depth(8, 0), depth(4, 1), depth(19, 2))}}
    events = []
    with pytest.raises(ValueError, match="depth has 19, need at least 20"):
        run_probes(data, ["linear"], callback=events.append)
    assert events == []
    assert len(run_probes(data, ["linear"], n_resamples=0, controls=False)) == 1


def test_plot_and_pvi_files(tmp_path):
    frame = pd.DataFrame({
        "repr": ["a", "a", "b", "b"], "target": "depth", "family": ["null", "linear"] * 2,
        "capacity_rank": [0, 1] * 2, "params": [0, 120] * 2, "iv": [0, 0.5, 0, 0.3],
        "iv_ci_low": [0, 0.4, 0, 0.2], "iv_ci_high": [0, 0.6, 0, 0.4], "null": "positional"})
    # the complexity-information plot: I_V against parameters (log), the null is the 0 line
    figure = plot_iv_by_capacity(frame)
    axis = figure.axes[0]
    assert axis.get_xscale() == "log" and "parameters" in axis.get_xlabel()
    lines = [line for line in axis.get_lines() if line.get_label() in ("a", "b")]
    assert [list(line.get_xdata()) for line in lines] == [[120], [120]]
    assert [list(line.get_ydata()) for line in lines] == [[0.5], [0.3]]
    (path,) = save_figure(figure, tmp_path / "iv.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    mdl = frame.rename(columns={"iv": "mdl_iv", "iv_ci_low": "mdl_iv_ci_low",
                                "iv_ci_high": "mdl_iv_ci_high"})
    assert "MDL" in plot_iv_by_capacity(mdl).axes[0].get_ylabel()  # chosen from the columns
    with pytest.raises(ValueError, match="no family above the null"):
        plot_iv_by_capacity(frame[frame["family"] == "null"])
    with pytest.raises(ValueError, match="non-empty"):
        plot_iv_by_capacity(frame.iloc[:0])
    with pytest.raises(ValueError, match="figures are written as"):
        save_figure(plot_iv_by_capacity(frame), tmp_path / "iv.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iv.png"]

    probe = VInfoProbe("linear", "depth", **KWARGS).fit(depth(16, 0), depth(6, 1))
    test = depth(5, 2)
    mask = torch.ones(5, 1, 8, 8, dtype=torch.bool)
    mask[:, :, :2] = False
    maps = pvi_maps(probe, ProbeData(test.y, test.z, mask))
    written = write_pvi_maps(maps, torch.tensor([10, 11, 12, 13, 14]), tmp_path / "pvi", 2)
    assert len(written) == 5
    totals = pd.read_csv(tmp_path / "pvi" / "totals.csv")
    assert totals["rank"].tolist() == [1, 2, 3, 4, 5]
    assert totals["pvi_bits"].is_monotonic_increasing and (totals["pixels"] == 48).all()
    hardest = int(totals["sample_id"].iloc[0])
    array = np.load(tmp_path / "pvi" / f"sample_{hardest}.npy")
    assert array.shape == (8, 8) and np.isnan(array[:2]).all()
    assert np.nansum(array) == pytest.approx(totals["pvi_bits"].iloc[0], rel=1e-4)
    assert (tmp_path / "pvi" / f"sample_{hardest}.png").read_bytes().startswith(b"\x89PNG")


def test_probe_files_pairs_bundles_on_the_same_images(tmp_path):
    from probes.sources import DataSource

    n = 100  # 20 test images: the fewest a CI accepts
    dataset, ids = DataSource(n_images=n).build(), torch.arange(n)
    valid = torch.stack([dataset[i].depth_valid for i in range(n)])  # (n, 1, 64, 64)
    depth = torch.stack([dataset[i].depth for i in range(n)]).where(valid, 0.0)
    # a latent that knows the depth: its 16×16 patch means, and the valid fraction
    pooled = torch.cat([torch.nn.functional.avg_pool2d(depth, 16),
                        torch.nn.functional.avg_pool2d(valid.float(), 16)], 1)  # (10, 2, 4, 4)
    save_bundle(tmp_path / "pooled.safetensors", pooled, ids, {"n_images": str(n)})
    save_bundle(tmp_path / "noise.safetensors", torch.randn(n, 2, 4, 4), ids.flip(0),
                {"n_images": str(n)})
    run = probe_files([tmp_path / "pooled.safetensors", tmp_path / "noise.safetensors"],
                      ["depth"], ["linear"], n_resamples=50, controls=False,
                      pvi_dir=tmp_path / "pvi", pvi_images=1)
    frame = run.frame.set_index("repr")
    # beyond the per-pixel null (the scene layout), the patch means still tell about depth
    assert frame.loc["pooled", "iv_ci_low"] > 0.1 and abs(frame.loc["noise", "iv"]) < 0.02
    assert frame["source"].iloc[0] == "synthetic/tiny/val (first 100 images)"
    assert [len(i) for i in run.inputs.sample_ids] == [60, 20, 20]
    assert (tmp_path / "pvi" / "pooled" / "depth" / "linear" / "totals.csv").is_file()
    # paired ΔI_V against the first representation: the difference of the two rows' I_V
    (row,) = run.paired.to_dict("records")
    assert (row["repr"], row["anchor"], row["target"], row["family"]) == (
        "noise", "pooled", "depth", "linear")
    assert row["delta_iv"] == pytest.approx(frame.loc["noise", "iv"] - frame.loc["pooled", "iv"],
                                            abs=1e-12)
    assert row["delta_iv_ci_low"] <= row["delta_iv"] <= row["delta_iv_ci_high"] < 0
    flipped = probe_files([tmp_path / "pooled.safetensors", tmp_path / "noise.safetensors"],
                          ["depth"], ["linear"], n_resamples=50, controls=False,
                          anchor=tmp_path / "noise.safetensors").paired
    assert flipped["repr"].tolist() == ["pooled"]
    assert flipped["delta_iv"].iloc[0] == pytest.approx(-row["delta_iv"], abs=1e-12)
    single = probe_files([tmp_path / "pooled.safetensors"], ["depth"], ["linear"],
                         n_resamples=50, controls=False)
    assert single.paired.empty and "delta_iv_ci_low" in single.paired.columns
    with pytest.raises(LookupError, match="anchor 'other'"):
        probe_files([tmp_path / "pooled.safetensors"], ["depth"], ["linear"], anchor="other")
    save_bundle(tmp_path / "other.safetensors", pooled, ids, {"split": "test"})
    with pytest.raises(ValueError, match="index different data"):
        probe_files([tmp_path / "pooled.safetensors", tmp_path / "other.safetensors"],
                    ["depth"], ["linear"], n_images=n)


def test_controls_for_named_representations_are_those_of_the_full_study():
    splits = ProbeSplits(depth(24, 0), depth(8, 1), depth(20, 2))
    other = ProbeSplits(*(ProbeData(torch.randn_like(s.y), s.z) for s in splits))
    data = {"a": {"depth": splits}, "b": {"depth": other}}
    control_columns = ["shuffled_iv", "shuffled_iv_ci_low", "control_iv", "selectivity"]
    everyone = run_probes(data, ["linear"], n_resamples=20, controls=True, probe_kwargs=KWARGS)
    only_b = run_probes(data, ["linear"], n_resamples=20, controls=["b"], probe_kwargs=KWARGS)
    # b's rows (controls included) are those of the full study; a's have no controls
    # but the same fit
    pd.testing.assert_frame_equal(only_b[only_b["repr"] == "b"].reset_index(drop=True),
                                  everyone[everyone["repr"] == "b"].reset_index(drop=True),
                                  check_like=True)
    a_only, a_all = only_b[only_b["repr"] == "a"], everyone[everyone["repr"] == "a"]
    assert a_only[control_columns].isna().all().all()
    assert a_all[control_columns].notna().all().all()
    assert a_only["iv"].tolist() == a_all["iv"].tolist()
    with pytest.raises(ValueError, match="unknown representations: c"):
        run_probes(data, ["linear"], n_resamples=0, controls=["b", "c"], probe_kwargs=KWARGS)
