import math

import numpy as np
import pytest
import torch

from probes.closed_form import linear_gaussian_closed_form
from probes.controls import shuffle_representation
from probes.estimator import VInfoProbe
from probes.probe_data import ProbeData, ProbeSplits, as_probe_data
from probes.study import run_probes
from vinfo.registry import UnknownNameError


def patch_gaussian(n, seed, factor=2, masked=False):
    """y (n, 3, 4, 4); z (n, 1, 4s, 4s) linear in the latent of its patch, with a position bias."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.randn(factor * factor, 3, generator=torch.Generator().manual_seed(7))
    y = torch.randn(n, 3, 4, 4, generator=g)
    mean = torch.einsum("kc,nchw->nkhw", weights, y)  # (n, s², 4, 4)
    z = torch.nn.functional.pixel_shuffle(mean, factor)
    z = z + torch.linspace(-1, 1, 4 * factor) + 0.5 * torch.randn(z.shape, generator=g)
    mask = None
    if masked:
        mask = torch.rand(z.shape, generator=g) > 0.2
        z = torch.where(mask, z, torch.full_like(z, float("nan")))
    return ProbeData(y, z, mask)


def test_init_only_stores_arguments_and_fit_returns_self():
    probe = VInfoProbe("linear", "depth", seed=3)
    assert vars(probe) == {**probe.get_params()}
    train, val = patch_gaussian(20, 1), patch_gaussian(10, 2)
    assert probe.fit(train, val) is probe
    learned = set(vars(probe)) - set(probe.get_params())
    assert learned and all(name.endswith("_") for name in learned)
    with pytest.raises(RuntimeError, match="not fitted"):
        VInfoProbe().score(train)


@pytest.mark.parametrize("masked", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_closed_form_matches_gradient_linear_probe_with_patches(masked):
    train, val, test = (patch_gaussian(n, s, masked=masked) for n, s in ((48, 1), (24, 2), (48, 3)))
    closed = VInfoProbe("linear", "depth", solver="closed_form", batch_size=8).fit(train, val)
    gradient = VInfoProbe("linear", "depth", solver="gradient", lr=0.03, max_epochs=150,
                          batch_size=8).fit(train, val)
    assert closed.score(test) > 1.0
    assert abs(closed.score(test) - gradient.score(test)) < 0.02
    assert closed.evaluate(test).h_null == gradient.evaluate(test).h_null  # one null


def test_closed_form_recovers_weights():
    fit = linear_gaussian_closed_form(patch_gaussian(200, 1))
    weights = torch.randn(4, 3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(fit.weight, weights, atol=0.03, rtol=0)
    assert fit.log_sigma.exp().mean() == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("masked", [False, True])
def test_closed_form_is_least_squares_with_one_intercept_per_pixel(masked):
    """Against scikit-learn: per patch output q, LinearRegression on y and a one-hot column per
    latent position (one intercept per target pixel), fitted on the valid pixels only."""
    from sklearn.linear_model import LinearRegression

    data = patch_gaussian(60, 4, masked=masked)
    fit = linear_gaussian_closed_form(data)
    factor, positions = 2, 16
    x = data.y.flatten(2).transpose(1, 2).reshape(-1, 3).double().numpy()  # (N·P, C)
    x = np.concatenate([x, np.tile(np.eye(positions), (60, 1))], 1)
    z = torch.nn.functional.pixel_unshuffle(data.z.double(), factor).flatten(2)
    z = z.transpose(1, 2).reshape(-1, factor**2).numpy()  # (N·P, Q)
    valid = np.isfinite(z)
    for q in range(factor**2):
        model = LinearRegression(fit_intercept=False).fit(x[valid[:, q]], z[valid[:, q], q])
        np.testing.assert_allclose(fit.weight[q].numpy(), model.coef_[:3], atol=1e-5)
        np.testing.assert_allclose(fit.intercept[q].numpy(), model.coef_[3:], atol=1e-5)


def segmentation_split(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, 4, 4, generator=g)
    labels = (y[:, :1] > 0).long() + 2 * (y[:, 1:] > 0).long()  # 4 classes
    z = torch.nn.functional.interpolate(labels.float(), scale_factor=2).long()
    z[:, :, 0, 0] = 255
    return ProbeData(y, z[:, 0])


def test_segmentation_probe_reports_bits_and_miou():
    train, val = segmentation_split(40, 1), segmentation_split(20, 2)
    test = segmentation_split(20, 3)
    probe = VInfoProbe("linear", "segmentation", lr=0.05, max_epochs=100).fit(train, val)
    scores = probe.evaluate(test)
    assert probe.head_.num_classes == 4
    assert scores.h_null == pytest.approx(2.0, abs=0.1)  # four equiprobable classes
    assert scores.iv > 1.5 and scores.metric == "miou" and scores.metric_value > 0.9
    assert 0 < scores.iv_normalized <= 1
    assert scores.iv_bits_per_image == pytest.approx(scores.iv * (64 - 1))


def test_reconstruction_probe_reports_psnr_and_per_subpixel_bits():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(30, 3, 2, 2, generator=g)
    z = torch.nn.functional.interpolate(y, scale_factor=4)
    data = ProbeData(y, z)
    probe = VInfoProbe("linear", "reconstruction", lr=0.03, batch_size=4).fit(data, data)
    scores = probe.evaluate(data)
    assert scores.iv > 6 and scores.metric_value > 30
    assert scores.iv_bits_per_element == pytest.approx(scores.iv / 3)


def test_bad_input_is_refused_with_clear_errors():
    train = patch_gaussian(4, 1)
    with pytest.raises(UnknownNameError, match="valid: null, linear"):
        VInfoProbe("deep", "depth").fit(train, train)
    with pytest.raises(UnknownNameError, match="valid: reconstruction, depth, segmentation"):
        VInfoProbe("linear", "edges").fit(train, train)
    with pytest.raises(ValueError, match="integer multiple"):
        as_probe_data((torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 10, 8)))
    with pytest.raises(ValueError, match="samples"):
        as_probe_data((torch.zeros(2, 3, 4, 4), torch.zeros(3, 1, 8, 8)))
    with pytest.raises(ValueError, match="train and val shapes differ"):
        VInfoProbe("linear", "depth").fit(train, patch_gaussian(4, 1, factor=4))
    with pytest.raises(ValueError, match="3 channels"):
        VInfoProbe("linear", "reconstruction").fit(train, train)
    with pytest.raises(ValueError, match="closed form"):
        VInfoProbe("mlp", "depth", solver="closed_form").fit(train, train)
    with pytest.raises(ValueError, match="null must be"):
        VInfoProbe("linear", "depth", null="none").fit(train, train)
    with pytest.raises(ValueError, match="null must be"):
        VInfoProbe("linear", "depth", null="global").fit(train, train)


def test_shuffle_representation_moves_every_image():
    data = patch_gaussian(7, 1)
    shuffled = shuffle_representation(data, seed=4)
    for i in range(7):
        assert not torch.equal(shuffled.y[i], data.y[i])
    assert torch.equal(shuffled.z, data.z)


def test_run_probes_is_paired_across_representations():
    splits = ProbeSplits(patch_gaussian(30, 1), patch_gaussian(15, 2), patch_gaussian(20, 3))
    torch.manual_seed(0)
    noisy = ProbeSplits(*(d._replace(y=d.y + torch.randn_like(d.y)) for d in splits))
    frame = run_probes({"clean": {"depth": splits}, "noisy": {"depth": noisy}},
                       ["null", "linear"], n_resamples=100, controls=False)
    assert len(frame) == 4 and set(frame["repr"]) == {"clean", "noisy"}
    by = frame.set_index(["repr", "family"])["iv"]
    assert by["clean", "null"] == 0 and by["clean", "linear"] > by["noisy", "linear"] > 0
    assert not frame.isna()[["h_null", "h_cond", "iv", "gap"]].any().any()
    other = ProbeSplits(splits.train, splits.val, patch_gaussian(20, 9))
    with pytest.raises(ValueError, match="paired"):
        run_probes({"a": {"depth": splits}, "b": {"depth": other}}, ["linear"])
    assert math.isfinite(float(np.asarray(frame["h_cond_train"])[1]))


def test_the_null_is_shared_between_families_fixed_and_checked():
    train, val, test = patch_gaussian(20, 1), patch_gaussian(8, 2), patch_gaussian(8, 3)
    first = VInfoProbe("null", "depth").fit(train, val)
    second = VInfoProbe("mlp", "depth", max_epochs=30, seed=4).fit(train, val, null_from=first)
    assert second.null_ is first.null_
    assert torch.equal(second.net_.null, first.null_.params)  # training never moved the null
    assert second.evaluate(test).h_null == pytest.approx(first.evaluate(test).h_null)
    assert first.evaluate(test).iv == 0.0 and first.stopped_by_ == "null"
    with pytest.raises(ValueError, match="null_from must share"):
        VInfoProbe("mlp", "depth", head_kwargs={"kind": "laplace"}).fit(
            train, val, null_from=first)
    with pytest.raises(RuntimeError, match="not fitted"):
        VInfoProbe("mlp", "depth").fit(train, val, null_from=VInfoProbe("null", "depth"))


def test_global_null_is_refused_as_no_family_null():
    train = patch_gaussian(4, 1)
    with pytest.raises(ValueError, match="not the null of any family"):
        VInfoProbe("linear", "depth", null="global").fit(train, train)


def test_fits_record_how_they_stopped():
    train, val = patch_gaussian(20, 1), patch_gaussian(8, 2)
    short = VInfoProbe("mlp", "depth", max_epochs=2, patience=5).fit(train, val)
    assert short.stopped_by_ == "budget" and short.null_.method == "closed_form"
    long = VInfoProbe("mlp", "depth", max_epochs=200, patience=2, lr=0.05).fit(train, val)
    assert long.stopped_by_ == "patience" and long.epochs_[1] < 200
    closed = VInfoProbe("linear", "depth", solver="closed_form").fit(train, val)
    assert closed.stopped_by_ == "closed_form" and closed.epochs_ == (0, 0)


def heteroscedastic(n, seed):
    """One latent channel, 1x2 positions, s = 1: pixel 0 is y + noise 0.01, pixel 1 is
    -y + noise 1. Least squares shares one weight between the two pixels and finds about 0
    (worse than the null on pixel 1); weighing pixels by their precision, the weight is about 1
    and pixel 0 alone carries about log2(1 / 0.01) = 6.6 bits."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 1, 1, 2, generator=g)
    noise = torch.randn(n, 1, 1, 2, generator=g) * torch.tensor([0.01, 1.0])
    return ProbeData(y, y * torch.tensor([1.0, -1.0]) + noise, None)


def test_closed_form_weighs_pixels_by_precision_as_the_gradient_fit_does():
    train, val, test = heteroscedastic(256, 1), heteroscedastic(128, 2), heteroscedastic(256, 3)
    closed = VInfoProbe("linear", "depth", solver="closed_form").fit(train, val)
    gradient = VInfoProbe("linear", "depth", solver="gradient", lr=0.05, max_epochs=100).fit(
        train, val)
    assert closed.solver_ == "closed_form" and gradient.epochs_[1] > 0
    # mean over 2 pixels of (6.6 bits gained on pixel 0 - 0.66 bits lost on pixel 1) ~ 2.9
    assert closed.score(test) > 2.5 and gradient.score(test) > 2.5
    # one ordinary least-squares pass alone (the first of the reweighted passes) is far worse
    from probes import estimator

    original = estimator.CLOSED_FORM_PASSES
    try:
        estimator.CLOSED_FORM_PASSES = 1
        one_pass = VInfoProbe("linear", "depth", solver="closed_form").fit(train, val)
    finally:
        estimator.CLOSED_FORM_PASSES = original
    assert one_pass.score(test) < 0.5
