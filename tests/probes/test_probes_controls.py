"""Controls that can fail (issue 14): the shuffled control fires on an under-trained null,
the control task on a family that can memorise the representation's types."""

import math

import torch

from probes import storage
from probes.controls import control_task, shuffled_control
from probes.estimator import VInfoProbe
from probes.probe_data import ProbeData, ProbeSplits
from probes.study import run_probes
from probes.uncertainty import bootstrap_ratio


def gaussian(n, seed, rho=0.8, levels=None, scale=1.0):
    """y (n, 2, 4, 4) (rounded to ``levels`` integer values if given); depth (n, 1, 8, 8) =
    ρ·y₀ upsampled + noise; ``y`` is returned times ``scale``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, 4, 4, generator=g)
    if levels is not None:
        y = y.round().clamp(-(levels // 2), levels // 2)
    z = torch.nn.functional.interpolate(y[:, :1], scale_factor=2)
    z = rho * z + math.sqrt(1 - rho**2) * torch.randn(z.shape, generator=g)
    return ProbeData(scale * y, z)


def test_control_task_keeps_patch_marginals_and_is_a_function_of_the_types():
    splits = ProbeSplits(gaussian(30, 1, levels=3), gaussian(10, 2, levels=3),
                         gaussian(20, 3, levels=3))
    control = control_task(splits, seed=0)
    train_patches = torch.nn.functional.pixel_unshuffle(splits.train.z, 2)
    train_patches = set(map(tuple, train_patches.permute(0, 2, 3, 1).reshape(-1, 4).tolist()))
    types = {}
    for part, original in zip(control, splits, strict=True):
        assert torch.equal(part.y, original.y) and part.z.shape == original.z.shape
        patches = torch.nn.functional.pixel_unshuffle(part.z, 2).permute(0, 2, 3, 1)
        vectors = part.y.permute(0, 2, 3, 1)
        for vector, patch in zip(vectors.reshape(-1, 2).tolist(),
                                 patches.reshape(-1, 4).tolist(), strict=True):
            assert tuple(patch) in train_patches  # drawn from the training targets' patches
            assert types.setdefault(tuple(vector), tuple(patch)) == tuple(patch)  # per type
    assert len(types) <= 9  # 3 levels × 2 channels


def test_control_task_beyond_the_budget_is_written_to_scratch_in_chunks(tmp_path, monkeypatch):
    """Past the memory budget the control targets (and masks) are scratch files filled one
    chunk of training images at a time; they equal the in-memory ones."""
    splits = [gaussian(n, s, levels=3) for n, s in ((30, 1), (10, 2), (20, 3))]
    splits[1] = splits[1]._replace(mask=torch.rand(10, 1, 8, 8) > 0.3)  # only val masked
    splits = ProbeSplits(*splits)
    in_memory = control_task(splits, seed=4)
    monkeypatch.setenv("VINFO_PROBE_MEMORY", "0")
    monkeypatch.setenv("VINFO_SCRATCH_DIR", str(tmp_path))
    monkeypatch.setattr(storage, "CHUNK_BYTES", 8 * 8 * 4 * 3)  # 3 training images a chunk
    opened = []
    real = storage.tempfile.TemporaryFile
    monkeypatch.setattr(storage.tempfile, "TemporaryFile",
                        lambda *a, **k: opened.append(1) or real(*a, **k))
    on_disk = control_task(splits, seed=4)
    assert len(opened) == 6  # a target and a mask per split
    for a, b in zip(in_memory, on_disk, strict=True):
        assert torch.equal(a.z, b.z) and torch.equal(a.mask, b.mask)
    assert on_disk.train.mask.all() and torch.equal(on_disk.val.y, splits.val.y)


def test_shuffled_control_fires_on_an_under_trained_null_and_not_on_a_converged_one():
    splits = ProbeSplits(gaussian(60, 1), gaussian(30, 2), gaussian(40, 3))
    probe = VInfoProbe("linear", "depth", solver="gradient").fit(splits.train, splits.val)

    def shuffled_ci_low(fitted):
        bits = shuffled_control(fitted, splits)
        return bootstrap_ratio(bits.null - bits.cond, bits.pixels, n_resamples=500).ci_low

    assert shuffled_ci_low(probe) <= 0
    # a null one standard unit off in mean and scale, as an under-trained one is: the shuffled
    # probe's own per-pixel prior repairs it, and the control shows the leak
    bad = probe.null_.params.clone().view(1, 2, 8, 8)
    bad[:, 0] += 1.0
    bad[:, 1] += 0.5
    probe.null_ = probe.null_._replace(params=bad.view(2, 8, 8))
    assert shuffled_ci_low(probe) > 0.1


def test_control_task_fires_on_a_memorising_family_and_selectivity_is_reported():
    few = {"few": {"depth": ProbeSplits(*(gaussian(n, s, levels=3) for n, s in
                                     ((60, 1), (30, 2), (40, 3))))}}
    frame = run_probes(few, ["mlp"], n_resamples=200, probe_kwargs={"width": 16})
    (row,) = frame.to_dict("records")
    # 9 representation types, each with a fixed random patch: the mlp memorises them
    assert row["control_iv_ci_low"] > 0.1
    assert row["selectivity"] == row["iv"] - row["control_iv"]
    assert row["shuffled_iv_ci_low"] <= 0 and not row["shuffled_flag"]
    assert row["shuffled_iv_ci_low"] <= row["shuffled_iv"] <= row["shuffled_iv_ci_high"]
    # y ×1000 (integer-valued once rounded, as ŷ): every type is unique, nothing to memorise,
    # control ≈ 0, selectivity ≈ I_V
    many = {"many": {"depth": ProbeSplits(*(gaussian(n, s, scale=1000.0) for n, s in
                                       ((60, 1), (30, 2), (40, 3))))}}
    frame = run_probes(many, ["null", "mlp"], n_resamples=200, probe_kwargs={"width": 16})
    null, mlp = frame.to_dict("records")
    assert math.isnan(null["control_iv"]) and math.isnan(null["selectivity"])
    assert abs(mlp["control_iv"]) < 0.02 and mlp["iv"] > 0.3
    assert abs(mlp["selectivity"] - mlp["iv"]) < 0.02
