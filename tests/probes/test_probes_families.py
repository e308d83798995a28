import pytest
import torch

from probes.estimator import VInfoProbe
from probes.families import (
    CODEC_FACTOR,
    FAMILIES,
    MIN_WIDTH,
    count_parameters,
    default_width,
    embed,
    get_family,
)
from probes.probe_data import ProbeData
from vinfo.registry import UnknownNameError


@pytest.mark.parametrize("width", [1, 8, 16, None])
@pytest.mark.parametrize("factor", [CODEC_FACTOR, 8])
@pytest.mark.parametrize("in_channels", [16, 192])
@pytest.mark.parametrize("out_channels", [6, 2, 19, 60])  # RGB logistic, depth, classes
def test_parameter_count_grows_along_capacity_rank(factor, in_channels, out_channels, width):
    ranked = sorted(FAMILIES.items(), key=lambda item: item[1].capacity_rank)
    counts = [count_parameters(f.build(in_channels, out_channels, factor, width))
              for _, f in ranked]
    assert all(a < b for a, b in zip(counts, counts[1:], strict=False)), dict(
        zip([n for n, _ in ranked], counts, strict=True))
    assert len({f.capacity_rank for _, f in ranked}) == len(ranked)


def test_each_family_is_the_one_below_plus_a_branch():
    ranked = sorted((f for _, f in FAMILIES.items()), key=lambda family: family.capacity_rank)
    for lower, higher in zip(ranked[1:], ranked[2:], strict=False):
        assert higher.lower == lower.name
        built_lower, built_higher = lower.build(4, 6, 4, 8), higher.build(4, 6, 4, 8)
        branch = count_parameters(built_higher) - count_parameters(built_lower)
        assert branch == count_parameters(built_higher.branch) > 0


@pytest.mark.parametrize("higher", ["mlp", "conv", "resnet", "synthesis"])
def test_a_higher_family_initialised_to_reproduce_a_lower_one_scores_the_same_nll(higher):
    """Fit a lower family, embed it in a higher one: the same distribution parameters, the same
    held-out NLL (the nesting that capacity_check relies on)."""
    train, val, test = (tiny_reconstruction(n, s) for n, s in ((16, 1), (8, 2), (8, 3)))
    lower_name = FAMILIES.names()[FAMILIES.names().index(higher) - 1]
    lower = VInfoProbe(lower_name, "reconstruction", width=8, max_epochs=3, batch_size=8)
    lower.fit(train, val)
    probe = VInfoProbe(higher, "reconstruction", width=8, max_epochs=0).fit(
        train, val, null_from=lower)
    torch.nn.init.normal_(probe.net_.body.branch[0].weight)  # anything: embed must undo it
    embed(lower.net_.body, probe.net_.body)
    probe.net_.load_state_dict({**probe.net_.state_dict(), "prior.value": lower.net_.prior.value,
                                "y_loc": lower.net_.y_loc, "y_scale": lower.net_.y_scale})
    torch.testing.assert_close(probe.predict_params(test.y), lower.predict_params(test.y))
    assert probe.evaluate(test).h_cond == pytest.approx(lower.evaluate(test).h_cond, abs=1e-6)
    deeper = get_family("synthesis").build(4, 6, 4, 8)
    embed(get_family("linear").build(4, 6, 4, 8), deeper)  # any level below
    with pytest.raises(ValueError, match="not a family contained"):
        embed(get_family("synthesis").build(4, 6, 4, 8), get_family("mlp").build(4, 6, 4, 8))


def test_default_width_scales_with_the_representation_and_the_target():
    assert default_width(16, 2, CODEC_FACTOR) == MIN_WIDTH  # tiny latent, depth
    assert default_width(16, 7, CODEC_FACTOR) == 40  # tiny latent, 7 classes
    assert default_width(192, 19, CODEC_FACTOR) == 192  # the paper's latent: as wide as ŷ
    assert default_width(16, 60, CODEC_FACTOR) > default_width(16, 19, CODEC_FACTOR)
    assert all(default_width(c, o, 8) % 8 == 0 for c in (1, 16, 100) for o in (1, 7, 19))
    built = get_family("conv").build(16, 7, CODEC_FACTOR)
    assert built.branch[0].out_channels == default_width(16, 7, CODEC_FACTOR)


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


def test_default_learning_rates():
    """The deep families default to a smaller Adam rate; the null's rate is the one every
    family's shared null trains at (probes.estimator.VInfoProbe._train)."""
    rates = {name: family.lr for name, family in FAMILIES.items()}
    assert all(rate > 0 for rate in rates.values())
    assert rates["resnet"] < rates["linear"] and rates["synthesis"] < rates["linear"]
    assert VInfoProbe("synthesis").lr is None  # None: the family's rate
