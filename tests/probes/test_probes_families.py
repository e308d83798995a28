import pytest
import torch

from probes.estimator import ProbeData, VInfoProbe
from probes.families import CODEC_FACTOR, FAMILIES, count_parameters, get_family
from vinfo.registry import UnknownNameError


@pytest.mark.parametrize("factor", [CODEC_FACTOR, 8])
@pytest.mark.parametrize("in_channels", [16, 192])
@pytest.mark.parametrize("out_channels", [6, 2, 19])  # RGB logistic, depth, 19 classes
def test_parameter_count_never_decreases_along_capacity_rank(factor, in_channels, out_channels):
    ranked = sorted(FAMILIES.items(), key=lambda item: item[1].capacity_rank)
    counts = [count_parameters(f.build(in_channels, out_channels, factor)) for _, f in ranked]
    assert counts == sorted(counts), dict(zip([n for n, _ in ranked], counts, strict=True))
    assert len({f.capacity_rank for _, f in ranked}) == len(ranked)


@pytest.mark.parametrize("name", FAMILIES.names())
def test_family_output_shape_and_zero_initialisation(name):
    module = get_family(name).build(4, 6, 4, width=8)
    out = module(torch.randn(2, 4, 2, 3))
    assert out.shape == (2, 6, 8, 12)
    assert (out == 0).all()  # a fresh probe is its null predictor


def tiny_reconstruction(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 4, 1, 1, generator=g)
    z = (torch.sigmoid(y[:, :3]) + 0.05 * torch.randn(n, 3, 16, 16, generator=g)).clamp(0, 1)
    return ProbeData(y, z)


@pytest.mark.parametrize("name", FAMILIES.names())
def test_every_family_fits_and_scores(name):
    probe = VInfoProbe(name, "reconstruction", width=8, max_epochs=3, patience=2, batch_size=8)
    probe.fit(tiny_reconstruction(8, 1), tiny_reconstruction(4, 2))
    scores = probe.evaluate(tiny_reconstruction(4, 3))
    assert probe.n_parameters_ == count_parameters(probe.net_.body)
    assert all(isinstance(v, float) and v == v for v in scores[:5])  # finite, not NaN
    assert scores.h_null > 0 and scores.h_cond > 0 and scores.metric == "psnr"
    if name == "null":
        assert scores.iv == 0.0


def test_unknown_family_lists_valid_names():
    with pytest.raises(UnknownNameError, match="valid: null, linear, mlp, conv, resnet, synthesis"):
        get_family("transformer")


def test_power_of_two_factor_required_for_upsampling_families():
    with pytest.raises(ValueError, match="powers of 2"):
        get_family("resnet").build(4, 2, 3)
