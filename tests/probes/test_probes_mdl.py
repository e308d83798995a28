"""Online code length (MDL) probes (issue 14, item 6): the code of the linear-Gaussian case
approaches the closed-form conditional entropy as data grows; the table is built from the
per-block codes."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from probes.estimator import VInfoProbe
from probes.mdl import BLOCK_FRACTIONS, block_ends, mdl_probes, online_code
from probes.probe_data import ProbeData, ProbeSplits


def gaussian(n, seed, rho=0.8):
    """X ~ N(0, I) (n, 4, 8, 8); Z = ρ·w·X + √(1-ρ²)·ε per position (depth, no mask)."""
    w = torch.randn(4, generator=torch.Generator().manual_seed(99))
    w = w / w.norm()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, 8, 8, generator=g)
    noise = torch.randn(n, 1, 8, 8, generator=g)
    z = rho * torch.einsum("c,nchw->nhw", w, x).unsqueeze(1) + math.sqrt(1 - rho**2) * noise
    return ProbeData(x, z)


def test_block_ends_grow_from_one_image_to_all():
    assert block_ends(1000) == (1, 2, 4, 8, 16, 32, 62, 125, 250, 500, 1000)
    assert block_ends(100) == (1, 2, 3, 6, 12, 25, 50, 100)  # rounding merges small blocks
    assert BLOCK_FRACTIONS[-1] == 1
    with pytest.raises(ValueError, match="end at 1"):
        block_ends(10, (0.1, 0.5))
    with pytest.raises(ValueError, match="fewer than two blocks"):
        block_ends(1)


def test_online_code_of_the_linear_gaussian_case_approaches_the_conditional_entropy():
    rho = 0.8
    h_cond = 0.5 * math.log2(2 * math.pi * math.e * (1 - rho**2))  # 1.3101 bits
    h_marginal = 0.5 * math.log2(2 * math.pi * math.e)  # Z ~ N(0, 1): 2.0471 bits
    val = gaussian(100, 2, rho)
    per_pixel, last_block = [], []
    for n in (100, 400, 1600):
        code = online_code(VInfoProbe("linear", "depth"), gaussian(n, 1, rho), val)
        assert math.isnan(code.bits[0])  # a density has no uniform code for block 1
        per_pixel.append(code.bits[1:].sum() / code.pixels[1:].sum())
        last_block.append(code.bits[-1] / code.pixels[-1])
        null = code.null_bits[1:].sum() / code.pixels[1:].sum()
        assert null > per_pixel[-1]  # y helps from the first blocks on
    # the online code pays for learning: above the entropy, less so with more data
    assert per_pixel[0] > per_pixel[1] > per_pixel[2] > h_cond
    assert per_pixel[2] - h_cond < 0.03
    assert abs(last_block[2] - h_cond) < 0.015  # 800 images fitted: close to the truth
    assert abs(null - h_marginal) < 0.03


def test_mdl_table_is_the_per_block_codes_with_t_intervals_across_orders():
    data = {"r": {"depth": ProbeSplits(gaussian(200, 1), gaussian(50, 2), gaussian(20, 3))}}
    frame = mdl_probes(data, ["linear", "null"], orders=(0, 1, 2))
    assert list(frame["family"]) == ["null", "linear"]  # by capacity rank
    row = frame.set_index("family").loc["linear"]
    codes = [online_code(VInfoProbe("linear", "depth"), data["r"]["depth"].train,
                         data["r"]["depth"].val, order) for order in (0, 1, 2)]
    online = np.array([c.bits[1:].sum() / c.pixels[1:].sum() for c in codes])
    gain = np.array([(c.null_bits[1:].sum() - c.bits[1:].sum()) / c.pixels[1:].sum()
                     for c in codes])
    assert row["first_block"] == "excluded" and math.isnan(row["compression"])
    assert row["online_bits_per_pixel"] == pytest.approx(online.mean())
    assert row["mdl_iv"] == pytest.approx(gain.mean())
    low, high = stats.t.interval(0.95, 2, loc=gain.mean(), scale=stats.sem(gain))
    assert (row["mdl_iv_ci_low"], row["mdl_iv_ci_high"]) == pytest.approx((low, high))
    assert row["mdl_iv"] > 0.5  # ρ = 0.8: I = 0.737 bits, less the cost of learning
    assert row["compression_null"] == pytest.approx(
        np.mean([c.null_bits[1:].sum() / c.bits[1:].sum() for c in codes]))
    null = frame.set_index("family").loc["null"]
    assert null["mdl_iv"] == pytest.approx(0.0, abs=1e-9) and null["params"] == 0


def test_categorical_block_one_is_sent_with_the_uniform_code():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(120, 2, 4, 4, generator=g)
    labels = (y[:, :1] > 0).long() + 2 * (y[:, 1:] > 0).long()  # 4 classes, a function of y
    z = torch.nn.functional.interpolate(labels.float(), scale_factor=2).long()
    splits = ProbeSplits(ProbeData(y[:80], z[:80]), ProbeData(y[80:], z[80:]),
                    ProbeData(y[80:], z[80:]))
    frame = mdl_probes({"r": {"segmentation": splits}}, ["linear"], orders=(0,))
    (row,) = frame.to_dict("records")
    code = online_code(VInfoProbe("linear", "segmentation", head_kwargs={"num_classes": 4}),
                       splits.train, splits.val)
    assert code.bits[0] == code.uniform_bits[0] == 2.0 * 64 * code.ends[0]  # log2 4 per pixel
    assert row["first_block"] == "uniform" and row["pixels"] == 80 * 64
    assert row["uniform_bits"] == pytest.approx(2.0 * 80 * 64)
    assert row["compression"] == pytest.approx(row["uniform_bits"] / row["online_bits"])
    assert row["compression"] > 1 and row["mdl_iv"] > 0  # the classes are a function of y
    assert row["n_orders"] == 1 and row["mdl_iv_ci_low"] == row["mdl_iv"]


def test_orders_must_be_distinct():
    data = {"r": {"depth": ProbeSplits(gaussian(20, 1), gaussian(10, 2), gaussian(10, 3))}}
    with pytest.raises(ValueError, match="distinct block orders"):
        mdl_probes(data, orders=(0, 0))
