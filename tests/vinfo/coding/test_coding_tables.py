import math

import pytest
import torch
from compressai.entropy_models import GaussianConditional
from compressai.models.base import get_scale_table

from vinfo.coding.bitstream import decode_latent, encode_latent
from vinfo.coding.tables import CoderTables, default_tables
from vinfo.models.entropy import AutoregressiveEntropyModel, rate_bits


def test_scale_level_is_the_nearest_ladder_level_in_log_scale():
    gaussian = GaussianConditional(get_scale_table().tolist())
    table = gaussian.scale_table
    tables = default_tables()

    def levels(scales):
        scales = gaussian.lower_bound_scale(scales)
        return tables.indexes(torch.zeros_like(scales), scales) // tables.offset_levels

    everything = torch.arange(len(table))
    assert torch.equal(levels(table), everything)
    # just above a level: that level (CompressAI's build_indexes takes the next one up)
    assert torch.equal(levels(table * 1.0001), everything)
    assert torch.equal(levels(table * 0.9999), everything)
    middle = (table[:-1] * table[1:]).sqrt()  # geometric mean of neighbouring levels
    assert torch.equal(levels(middle * 0.999), everything[:-1])
    assert torch.equal(levels(middle * 1.001), everything[1:])
    assert levels(torch.tensor([0.0, 1e6])).tolist() == [0, len(table) - 1]
    above = table[:-1] * 1.0001  # below the top level, where both clamp
    assert bool((levels(above) < gaussian.build_indexes(above)).all())


def test_offset_bins_cover_the_fractional_mean():
    tables = CoderTables(torch.tensor([0.5, 1.0]), offset_levels=4)
    means = torch.tensor([-0.49, -0.26, -0.24, 0.0, 0.26, 0.49, 3.49, -7.5])
    indexes = tables.indexes(means, torch.full_like(means, 0.3))
    assert indexes.tolist() == [0, 0, 1, 2, 3, 3, 3, indexes[-1].item()]
    assert 0 <= indexes[-1] < 4
    assert len(tables.cdf) == 2 * 4


def constant_model(M, low, high, seed=0):
    """An entropy model predicting fixed per-channel (μ, σ), and a latent drawn from it."""
    generator = torch.Generator().manual_seed(seed)
    model = AutoregressiveEntropyModel(M).eval()
    sigma = torch.exp(torch.empty(M).uniform_(float(torch.log(torch.tensor(low))),
                                              float(torch.log(torch.tensor(high))),
                                              generator=generator))
    mu = torch.empty(M).uniform_(-2, 2, generator=generator)
    with torch.no_grad():
        last = model.entropy_parameters[-1]
        last.weight.zero_()
        last.bias[:M], last.bias[M:] = sigma, mu
    noise = torch.randn(1, M, 16, 16, generator=generator)
    y_hat = torch.round(mu[None, :, None, None] + sigma[None, :, None, None] * noise)
    return model, y_hat


@pytest.mark.parametrize(("low", "high"), [(0.11, 0.5), (0.11, 4.0), (1.0, 20.0)])
def test_payload_matches_the_estimated_rate(low, high):
    model, y_hat = constant_model(16, low, high)
    with torch.no_grad():
        estimate = float(rate_bits(model(y_hat).likelihoods)[0])
    payload = encode_latent(model, y_hat)
    assert torch.equal(decode_latent(model, payload, (16, 16)), y_hat)
    # centred tables (CompressAI's) pay +82 % on the narrow case; offsets bring it near 0
    assert abs(8 * len(payload) / estimate - 1) < 0.03


def gaussian_bits(y_hat, mu, sigma):
    """Closed form, float64: ``−Σ log2 P(ŷ)`` of ``ŷ`` under ``N(μ, σ)`` integrated over
    ``[ŷ ± ½]``, and the expected value of it, ``N · Σ_c H_c`` (entropy of the discretised
    Gaussian of each channel ``c``), for ``ŷ`` ``(1, M, h, w)`` and ``μ, σ`` ``(M,)``."""
    mu, sigma = mu.double()[:, None], sigma.double()[:, None]
    values = y_hat[0].flatten(1).double()  # (M, h·w)
    p = torch.special.ndtr((values + 0.5 - mu) / sigma) - torch.special.ndtr(
        (values - 0.5 - mu) / sigma
    )
    support = torch.arange(-64, 65, dtype=torch.float64)  # |μ| ≤ 2, σ ≤ 8: the whole mass
    q = torch.special.ndtr((support + 0.5 - mu) / sigma) - torch.special.ndtr(
        (support - 0.5 - mu) / sigma
    )
    entropy = -(q * torch.log2(q.clamp_min(1e-300))).sum(dim=1)  # (M,) bits per symbol
    return float(-torch.log2(p).sum()), float(entropy.sum()) * values.shape[1]


@pytest.mark.parametrize(("low", "high"), [(0.11, 0.5), (0.11, 8.0)])
def test_payload_is_within_one_percent_of_the_closed_form_gaussian_rate(low, high):
    # a 512×512 image's latent (32×32) drawn from per-channel Gaussians, as a trained model's
    generator = torch.Generator().manual_seed(7)
    M, side = 32, 32
    model = AutoregressiveEntropyModel(M).eval()
    sigma = torch.empty(M).uniform_(math.log(low), math.log(high), generator=generator).exp()
    mu = torch.empty(M).uniform_(-2, 2, generator=generator)
    with torch.no_grad():
        last = model.entropy_parameters[-1]
        last.weight.zero_()
        last.bias[:M], last.bias[M:] = sigma, mu
    noise = torch.randn(1, M, side, side, generator=generator)
    y_hat = torch.round(mu[None, :, None, None] + sigma[None, :, None, None] * noise)
    information, expected = gaussian_bits(y_hat, mu, sigma)
    # the sample carries about its expected information (a check of the reference itself;
    # narrow channels carry little information per symbol, hence the sampling tolerance)
    assert abs(information / expected - 1) < 0.02
    payload = encode_latent(model, y_hat)
    assert torch.equal(decode_latent(model, payload, (side, side)), y_hat)
    overhead = 8 * len(payload) / information - 1
    assert -0.002 < overhead < 0.01, overhead
