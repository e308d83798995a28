"""The null predictor: per-pixel closed forms and a converged solver, checked against numpy and
scipy references computed independently (issue 14)."""

import math

import numpy as np
import pytest
import torch
from scipy import optimize, special, stats

from probes import null
from probes.estimator import VInfoProbe
from probes.heads import CategoricalHead, ContinuousHead, DiscretizedHead
from probes.null import SHRINKAGE_GRID, SMOOTHING_GRID, categorical_null_logits, fit_null
from probes.probe_data import ProbeData


def positional(n, seed, kind="gaussian"):
    """Depth-like (n, 1, 6, 5): a strong per-pixel mean and a per-column noise scale."""
    g = torch.Generator().manual_seed(seed)
    base = 10 * torch.arange(30.0).view(1, 1, 6, 5)
    scale = torch.linspace(0.1, 2.0, 5)
    noise = torch.randn(n, 1, 6, 5, generator=g)
    if kind == "laplace":
        noise = torch.distributions.Laplace(0.0, 1.0).sample((n, 1, 6, 5))
    return ProbeData(torch.zeros(n, 1, 6, 5), base + scale * noise)


def location_scale(fit):
    head, raw = fit.head, fit.params.double()
    return (head.loc + head.scale * raw[0]).numpy(), (head.scale * raw[1].exp()).numpy()


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_continuous_null_is_the_per_pixel_closed_form_with_shrinkage_chosen_on_val(kind):
    torch.manual_seed(0)
    train, val = positional(40, 1, kind), positional(20, 2, kind)
    head = ContinuousHead(kind=kind).fitted_to(train.z)
    fit = fit_null(head, train, val)
    z, zv = train.z[:, 0].double().numpy(), val.z[:, 0].double().numpy()
    location, scale = location_scale(fit)
    if kind == "gaussian":
        centre = z.mean(0)
        spread = ((z - centre) ** 2).sum(0)
        pooled = spread.sum() / z.size
    else:
        centre = np.sort(z, 0)[(z.shape[0] - 1) // 2]  # the lower median
        spread = np.abs(z - centre).sum(0)
        pooled = spread.sum() / z.size
    np.testing.assert_allclose(location, centre, rtol=0, atol=1e-4)

    def estimate(k):
        value = (spread + k * pooled) / (z.shape[0] + k)
        return np.sqrt(value) if kind == "gaussian" else value

    def val_bits(k):
        law = stats.norm if kind == "gaussian" else stats.laplace
        return -law.logpdf(zv, loc=centre, scale=estimate(k)).sum() / math.log(2)

    chosen = min(SHRINKAGE_GRID, key=val_bits)
    assert fit.shrinkage == chosen and fit.method == "closed_form"
    np.testing.assert_allclose(scale, estimate(chosen), rtol=1e-4)
    # the head works in units of the pooled within-pixel spread, not the global one
    assert fit.head.scale == pytest.approx(math.sqrt(((z - z.mean(0)) ** 2).mean()), rel=1e-6)
    assert fit.head.scale < 0.1 * z.std()


def logistic_bits(levels, counts, mean, log_scale):
    """Reference: -log2 of the discretized-logistic masses CDF(upper) - CDF(lower), bins of
    1/255, open edge bins; the difference is taken on the side of the tail it lies in."""
    s = math.exp(log_scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(levels == 255, np.inf, ((levels + 0.5) / 255 - mean) / s)
        lo = np.where(levels == 0, -np.inf, ((levels - 0.5) / 255 - mean) / s)
        left = special.log_expit(u) + np.log1p(-np.exp(special.log_expit(lo)
                                                        - special.log_expit(u)))
        right = special.log_expit(-lo) + np.log1p(-np.exp(special.log_expit(-u)
                                                           - special.log_expit(-lo)))
        log_mass = np.where(lo + u < 0, left, right)
    return -(counts * log_mass).sum() / math.log(2)


@pytest.mark.parametrize("band_bytes", [null.NEWTON_BAND_BYTES, 1])  # one band, a row a band
def test_discretized_null_converges_to_the_per_pixel_maximum_likelihood(band_bytes, monkeypatch):
    monkeypatch.setattr(null, "NEWTON_BAND_BYTES", band_bytes)
    g = torch.Generator().manual_seed(0)
    centre = torch.tensor([0.2, 0.5, 0.9, 1.0]).view(1, 1, 2, 2).expand(60, 3, 2, 2)
    z = ((centre + 0.03 * torch.randn(60, 3, 2, 2, generator=g)).clamp(0, 1) * 255).round() / 255
    train, val = ProbeData(torch.zeros(40, 1, 1, 1), z[:40]), ProbeData(
        torch.zeros(20, 1, 1, 1), z[40:])
    fit = fit_null(DiscretizedHead().fitted_to(train.z), train, val)
    assert fit.method == "converged"
    raw = fit.params.double().view(3, 2, 2, 2)
    levels = (train.z * 255).round().long().numpy()  # (40, 3, 2, 2)
    all_levels = np.arange(256)
    for c, i, j in [(0, 0, 0), (1, 0, 1), (2, 1, 0), (0, 1, 1)]:  # (1, 1) is saturated at 1
        # the shrunk histogram: counts + k pseudo-observations at the channel's 32 pooled
        # mid-quantiles (numpy's inverted-CDF quantile)
        counts = np.bincount(levels[:, c, i, j], minlength=256).astype(float)
        quantiles = np.quantile(levels[:, c].ravel(), (np.arange(32) + 0.5) / 32,
                                method="inverted_cdf")
        pseudo = np.bincount(quantiles.astype(int), minlength=256) / 32
        weights = counts + fit.shrinkage * pseudo
        reference = optimize.minimize(
            lambda p, w=weights: logistic_bits(all_levels, w, p[0], p[1]),
            x0=[levels[:, c, i, j].mean() / 255, math.log(0.02)], method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 4000})
        mean = fit.head.loc + fit.head.scale * float(raw[c, 0, i, j])
        log_scale = math.log(fit.head.scale) + float(raw[c, 1, i, j])
        ours = logistic_bits(all_levels, weights, mean, log_scale)
        assert ours <= reference.fun + 1e-6 * weights.sum()
        assert mean == pytest.approx(reference.x[0], abs=2e-3)


def test_discretized_null_matches_a_long_gradient_fit_on_held_out_data():
    """A null fitted by 600 full-batch Adam steps (no shrinkage) is no better on test."""
    g = torch.Generator().manual_seed(1)
    centre = torch.rand(1, 3, 4, 4, generator=g)
    make = lambda n: ProbeData(torch.zeros(n, 1, 1, 1), (  # noqa: E731
        (centre + 0.05 * torch.randn(n, 3, 4, 4, generator=g)).clamp(0, 1) * 255).round() / 255)
    train, val, test = make(50), make(25), make(50)
    fit = fit_null(DiscretizedHead().fitted_to(train.z), train, val)
    raw = fit.params.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([raw], lr=0.05)
    for _ in range(600):
        optimizer.zero_grad()
        loss = fit.head.nll_bits(raw.expand(50, -1, -1, -1), train.z).mean()
        loss.backward()
        optimizer.step()

    def test_bits(params):
        return float(fit.head.nll_bits(params.detach().expand(50, -1, -1, -1), test.z).mean())

    assert test_bits(fit.params) <= test_bits(raw) + 0.01


def test_categorical_null_is_the_smoothed_class_frequency_chosen_on_validation():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (40, 1, 4, 4), generator=g)
    labels[:, :, 0] = 0  # the top row is always class 0
    labels[0, 0, 3, 3] = 255  # ignored
    head = CategoricalHead(num_classes=4)
    train, val = ProbeData(torch.zeros(30, 1, 1, 1), labels[:30]), ProbeData(
        torch.zeros(10, 1, 1, 1), labels[30:])
    logits, alpha = categorical_null_logits(head, train, val)
    assert logits.shape == (4, 4, 4)
    probabilities = logits.exp()
    assert torch.allclose(probabilities.sum(0), torch.ones(4, 4))
    assert probabilities[0, 0].min() > 0.9 and (probabilities[3] < 0.05).all()
    counts = np.stack([((labels[:30, 0] == k) & (labels[:30, 0] != 255)).sum(0).numpy()
                       for k in range(4)]).astype(float)
    val_labels = labels[30:, 0].numpy()

    def val_bits(a):
        p = (counts + a) / (counts + a).sum(0)
        rows, cols = np.indices((4, 4))
        return -sum(np.log2(p[v, rows, cols]).sum() for v in val_labels)

    assert alpha == min(SMOOTHING_GRID, key=val_bits)
    np.testing.assert_allclose(probabilities.numpy(), (counts + alpha) / (counts + alpha).sum(0),
                               rtol=1e-5)
    fit = fit_null(head, train, val)
    assert fit.method == "closed_form" and torch.equal(fit.params, logits)


def test_the_probe_reports_the_null_fit_and_its_test_entropy():
    train, val, test = positional(40, 1), positional(20, 2), positional(30, 3)
    probe = VInfoProbe("mlp", "depth", max_epochs=5).fit(train, val)
    location, scale = location_scale(probe.null_)
    reference = -stats.norm.logpdf(test.z[:, 0].double().numpy(), location, scale).mean()
    assert probe.evaluate(test).h_null == pytest.approx(reference / math.log(2), rel=1e-5)
