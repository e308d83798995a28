"""Paired ΔI_V between representations: exact invariants, a reference bootstrap, file round trip."""

import numpy as np
import pandas as pd
import pytest
import torch

from probes.paired import PAIRED_COLUMNS, load_bits, paired_differences, save_bits
from probes.probe_data import PerImageBits, ProbeData, ProbeSplits
from probes.study import BitsRecord, run_probes
from probes.uncertainty import bootstrap_paired_difference

KWARGS = {"max_epochs": 4, "patience": 2, "lr": 3e-2}


def depth(n, seed, noise):
    """y (n, 2, 4, 4); depth (n, 1, 8, 8) = y's first channel upsampled + ``noise``·N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, 4, 4, generator=g)
    z = torch.nn.functional.interpolate(y[:, :1], scale_factor=2)
    return ProbeData(y, z + noise * torch.randn(z.shape, generator=g))


def splits(noise, shuffle=False):
    parts = [depth(24, 0, noise), depth(8, 1, noise), depth(20, 2, noise)]
    if shuffle:  # same targets, a representation that no longer matches them
        parts = [ProbeData(torch.randn_like(p.y), p.z, p.mask) for p in parts]
    return ProbeSplits(*parts)


@pytest.fixture(scope="module")
def probed():
    """Two representations of the same depth targets: informative and noise; 2 seeds."""
    data = {"clean": {"depth": splits(0.3)}, "noise": {"depth": splits(0.3, shuffle=True)}}
    record, events = BitsRecord(), []
    frame = run_probes(data, ["linear", "mlp"], seeds=[0, 1], n_resamples=200, controls=False,
                       probe_kwargs=KWARGS, record=record, callback=events.append)
    return frame, record, events


def test_a_representation_paired_with_itself_differs_by_exactly_zero(probed):
    _, record, _ = probed
    paired = paired_differences(record, pairs=[("clean", "clean")], n_resamples=200)
    assert list(paired.columns[:len(PAIRED_COLUMNS)]) == list(PAIRED_COLUMNS)
    assert len(paired) == 2  # linear, mlp
    assert (paired[["delta_iv", "delta_iv_ci_low", "delta_iv_ci_high"]] == 0).all().all()
    assert (paired["n_seeds"] == 2).all() and (paired["n_resamples"] == 200).all()


def test_point_estimate_is_the_difference_of_the_rows_iv(probed):
    frame, record, _ = probed
    iv = frame.set_index(["repr", "family"])["iv"]
    paired = paired_differences(record, n_resamples=200)  # anchor: the first, "clean"
    assert paired["repr"].tolist() == ["noise", "noise"]
    assert (paired["anchor"] == "clean").all() and paired["family"].tolist() == ["linear", "mlp"]
    for row in paired.itertuples():
        expected = iv[("noise", row.family)] - iv[("clean", row.family)]
        assert row.delta_iv == pytest.approx(expected, abs=1e-12)
        assert row.repr_iv == pytest.approx(iv[("noise", row.family)], abs=1e-12)
        assert row.delta_iv_ci_low <= row.delta_iv <= row.delta_iv_ci_high
        assert row.delta_iv_ci_high < 0  # the noise representation knows nothing of depth
    flipped = paired_differences(record, "noise", n_resamples=200)
    np.testing.assert_allclose(flipped["delta_iv"], -paired["delta_iv"], atol=1e-12)
    np.testing.assert_allclose(flipped["delta_iv_ci_low"], -paired["delta_iv_ci_high"],
                               atol=1e-12)


def test_interval_equals_the_reference_bootstrap_of_the_fitted_probes(probed):
    _, record, events = probed
    # recompute the per-image bits from the fitted probes themselves, independently of record
    bits = {(e.repr, e.family, e.seed): e.probe.per_image_bits(e.splits.test) for e in events}
    a = np.stack([bits[("clean", "mlp", s)].null - bits[("clean", "mlp", s)].cond
                  for s in (0, 1)])
    b = np.stack([bits[("noise", "mlp", s)].null - bits[("noise", "mlp", s)].cond
                  for s in (0, 1)])
    reference = bootstrap_paired_difference(a, b, bits[("clean", "mlp", 0)].pixels, 300, 0.9)
    paired = paired_differences(record, pairs=[("clean", "noise")], n_resamples=300,
                                confidence=0.9)
    row = paired.set_index("family").loc["mlp"]
    assert (row["delta_iv"], row["delta_iv_ci_low"], row["delta_iv_ci_high"]) == pytest.approx(
        (reference.mean, reference.ci_low, reference.ci_high), abs=1e-12)
    assert row["delta_iv_ci_low"] > 0


def test_bits_round_trip_through_npz(probed, tmp_path):
    _, record, _ = probed
    path = save_bits(record, tmp_path / "bits.npz")
    loaded = load_bits(path)
    assert list(loaded.entries) == list(record.entries)
    for key, bits in record.entries.items():
        for mine, theirs in zip(loaded.entries[key], bits, strict=True):
            np.testing.assert_array_equal(mine, theirs)
    pd.testing.assert_frame_equal(paired_differences(loaded), paired_differences(record))
    with pytest.raises(ValueError, match=r"\.npz"):
        save_bits(record, tmp_path / "bits.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a bits record"):
        load_bits(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        load_bits(tmp_path / "missing.npz")


def test_bad_comparisons_are_refused():
    record = BitsRecord()
    ones = np.ones(4)
    record.add("a", "depth", "linear", 0, PerImageBits(2 * ones, ones, 8 * ones))
    record.add("b", "depth", "linear", 1, PerImageBits(2 * ones, ones, 8 * ones))
    record.add("c", "depth", "linear", 0, PerImageBits(2 * ones[:3], ones[:3], 8 * ones[:3]))
    with pytest.raises(LookupError, match="unknown anchor 'z'"):
        paired_differences(record, "z")
    with pytest.raises(LookupError, match="unknown representation 'z'"):
        paired_differences(record, pairs=[("z", "a")])
    with pytest.raises(ValueError, match="either anchor or pairs"):
        paired_differences(record, "a", pairs=[("b", "a")])
    with pytest.raises(ValueError, match="different seeds"):
        paired_differences(record, pairs=[("b", "a")])
    with pytest.raises(ValueError, match="different depth test images"):
        paired_differences(record, pairs=[("c", "a")])
    empty = paired_differences(BitsRecord())
    assert empty.empty and list(empty.columns[:len(PAIRED_COLUMNS)]) == list(PAIRED_COLUMNS)


def test_run_probes_refuses_repeated_seeds():
    with pytest.raises(ValueError, match="distinct"):
        run_probes({"a": {"depth": splits(0.3)}}, ["linear"], seeds=[0, 0])


def test_sharing_the_null_across_representations_changes_no_number():
    """The null never sees y: probing b after a (whose null b reuses) equals probing b alone."""
    g = torch.Generator().manual_seed(0)

    def images(n):  # reconstruction targets: the discretized null (a converged solver)
        return torch.rand(n, 3, 8, 8, generator=g)

    z = [images(40), images(20), images(20)]
    a = ProbeSplits(*(ProbeData(torch.randn(len(t), 2, 4, 4, generator=g), t) for t in z))
    b = ProbeSplits(*(ProbeData(torch.nn.functional.avg_pool2d(t, 2)[:, :2], t) for t in z))
    kwargs = {"max_epochs": 30, "lr": 3e-2}
    both = run_probes({"a": {"reconstruction": a}, "b": {"reconstruction": b}}, ["linear"],
                      n_resamples=50, controls=False, probe_kwargs=kwargs)
    alone = run_probes({"b": {"reconstruction": b}}, ["linear"], n_resamples=50,
                       controls=False, probe_kwargs=kwargs)
    pd.testing.assert_frame_equal(both.iloc[[1]].reset_index(drop=True), alone)
    assert alone["iv"].iloc[0] > 0.2  # b's latent is the target, pooled: the probe uses it
