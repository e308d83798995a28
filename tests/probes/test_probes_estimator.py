import math

import numpy as np
import pytest
import torch

from probes.estimator import (
    ProbeData,
    Splits,
    VInfoProbe,
    as_probe_data,
    linear_gaussian_closed_form,
    run_probes,
    shuffle_representation,
)
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


@pytest.mark.parametrize(("null", "masked"), [
    ("positional", True),
    pytest.param("positional", False, marks=pytest.mark.slow),
    pytest.param("global", True, marks=pytest.mark.slow),
    pytest.param("global", False, marks=pytest.mark.slow),
])
def test_closed_form_matches_gradient_linear_probe_with_patches(null, masked):
    train, val, test = (patch_gaussian(n, s, masked=masked) for n, s in ((48, 1), (24, 2), (48, 3)))
    common = dict(null=null, batch_size=8)
    closed = VInfoProbe("linear", "depth", solver="closed_form", **common).fit(train, val)
    gradient = VInfoProbe("linear", "depth", solver="gradient", lr=0.03, max_epochs=150,
                          **common).fit(train, val)
    assert closed.score(test) > 1.0
    assert abs(closed.score(test) - gradient.score(test)) < 0.02
    assert abs(closed.evaluate(test).h_null - gradient.evaluate(test).h_null) < 0.02


def test_closed_form_recovers_weights():
    fit = linear_gaussian_closed_form(patch_gaussian(200, 1))
    weights = torch.randn(4, 3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(fit.weight, weights, atol=0.03, rtol=0)
    assert fit.log_sigma.exp().mean() == pytest.approx(0.5, abs=0.03)


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


def test_shuffle_representation_moves_every_image():
    data = patch_gaussian(7, 1)
    shuffled = shuffle_representation(data, seed=4)
    for i in range(7):
        assert not torch.equal(shuffled.y[i], data.y[i])
    assert torch.equal(shuffled.z, data.z)


def test_run_probes_is_paired_across_representations():
    splits = Splits(patch_gaussian(30, 1), patch_gaussian(15, 2), patch_gaussian(20, 3))
    torch.manual_seed(0)
    noisy = Splits(*(d._replace(y=d.y + torch.randn_like(d.y)) for d in splits))
    frame = run_probes({"clean": {"depth": splits}, "noisy": {"depth": noisy}},
                       ["null", "linear"], n_resamples=100, controls=False)
    assert len(frame) == 4 and set(frame["repr"]) == {"clean", "noisy"}
    by = frame.set_index(["repr", "family"])["iv"]
    assert by["clean", "null"] == 0 and by["clean", "linear"] > by["noisy", "linear"] > 0
    assert not frame.isna()[["h_null", "h_cond", "iv", "gap"]].any().any()
    other = Splits(splits.train, splits.val, patch_gaussian(20, 9))
    with pytest.raises(ValueError, match="paired"):
        run_probes({"a": {"depth": splits}, "b": {"depth": other}}, ["linear"])
    assert math.isfinite(float(np.asarray(frame["h_cond_train"])[1]))


def test_categorical_null_is_the_smoothed_class_frequency_chosen_on_validation():
    from probes.estimator import SMOOTHING_GRID, categorical_null_logits
    from probes.heads import CategoricalHead

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (40, 1, 4, 4), generator=g)
    labels[:, :, 0] = 0  # the top row is always class 0
    labels[0, 0, 3, 3] = 255  # ignored
    head = CategoricalHead(num_classes=4)
    train, val = ProbeData(torch.zeros(30, 1, 1, 1), labels[:30]), ProbeData(
        torch.zeros(10, 1, 1, 1), labels[30:])
    logits = categorical_null_logits(head, train, val, positional=True)
    assert logits.shape == (4, 4, 4)
    probabilities = logits.exp()
    assert torch.allclose(probabilities.sum(0), torch.ones(4, 4))
    assert probabilities[0, 0].min() > 0.9 and (probabilities[3] < 0.05).all()
    counts = torch.stack([(labels[:30, 0] == k).sum(0) for k in range(4)]).double()
    alphas = [a for a in SMOOTHING_GRID
              if torch.allclose(((counts + a) / (counts + a).sum(0)).float(), probabilities)]
    assert len(alphas) == 1
    global_logits = categorical_null_logits(head, train, val, positional=False)
    assert global_logits.shape == (4, 1, 1)
    # the closed-form null matches a gradient-trained one on held-out data
    data = [ProbeData(torch.randn(n, 2, 4, 4, generator=g), labels[i:i + n])
            for i, n in ((0, 24), (24, 8), (32, 8))]
    auto = VInfoProbe("null", "segmentation", head_kwargs={"num_classes": 4}).fit(*data[:2])
    gradient = VInfoProbe("null", "segmentation", head_kwargs={"num_classes": 4},
                          solver="gradient", lr=0.1).fit(*data[:2])
    assert auto.epochs_ == (0, 0)
    assert auto.evaluate(data[2]).h_null <= gradient.evaluate(data[2]).h_null + 0.02


def test_the_null_is_shared_between_families_and_checked():
    train, val, test = patch_gaussian(20, 1), patch_gaussian(8, 2), patch_gaussian(8, 3)
    first = VInfoProbe("null", "depth", solver="gradient", max_epochs=30).fit(train, val)
    second = VInfoProbe("mlp", "depth", solver="gradient", max_epochs=30).fit(
        train, val, null_from=first)
    assert torch.equal(second.null_net_.prior.value, first.null_net_.prior.value)
    assert second.epochs_[0] == first.epochs_[0]
    assert second.evaluate(test).h_null == pytest.approx(first.evaluate(test).h_null)
    with pytest.raises(ValueError, match="null_from must share"):
        VInfoProbe("mlp", "depth", seed=1).fit(train, val, null_from=first)
    with pytest.raises(RuntimeError, match="not fitted"):
        VInfoProbe("mlp", "depth").fit(train, val, null_from=VInfoProbe("null", "depth"))


def heteroscedastic(n, seed):
    """One latent channel, 1x2 positions, s = 1: pixel 0 is y + noise 0.01, pixel 1 is
    -y + noise 1. Least squares shares one weight between the two pixels and finds about 0
    (worse than the null on pixel 1); weighing pixels by their precision, the weight is about 1
    and pixel 0 alone carries about log2(1 / 0.01) = 6.6 bits."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 1, 1, 2, generator=g)
    noise = torch.randn(n, 1, 1, 2, generator=g) * torch.tensor([0.01, 1.0])
    return ProbeData(y, y * torch.tensor([1.0, -1.0]) + noise, None)


def test_auto_trains_the_linear_probe_where_least_squares_loses_to_the_null():
    train, val, test = heteroscedastic(256, 1), heteroscedastic(128, 2), heteroscedastic(256, 3)
    closed = VInfoProbe("linear", "depth", solver="closed_form").fit(train, val)
    auto = VInfoProbe("linear", "depth", solver="auto", lr=0.05, max_epochs=100).fit(train, val)
    assert closed.score(test) == 0.0  # the least-squares fit was refused: the probe is its null
    assert auto.solver_ == "gradient" and auto.epochs_[1] > 0
    # mean over 2 pixels of (6.6 bits gained on pixel 0 - 0.66 bits lost on pixel 1) ~ 2.9
    assert auto.score(test) > 2.0
