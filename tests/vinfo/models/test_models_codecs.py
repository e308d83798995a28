import pytest
import torch

from vinfo.models.base import BaseCodec, check_beta, check_lmbda
from vinfo.models.config import codec_preset
from vinfo.models.enhancement import STRATEGIES, EnhancementCodec
from vinfo.models.tasks import TASKS

TINY = codec_preset("tiny")
DENSE_TASKS = [name for name in TASKS.names() if name != "detection"]


def target_for(task, x):
    if task == "reconstruction":
        return x
    if task == "depth":
        return x[:, :1] + 0.1
    if task == "segmentation":
        return (x[:, 0] * TINY.segmentation_classes).long().clamp(max=18)
    return [{"boxes": torch.tensor([[2.0, 3.0, 20.0, 28.0]]), "labels": torch.tensor([1])}]


@pytest.mark.parametrize("beta", [0.0, 0.1])
@pytest.mark.parametrize("task", TASKS.names())
def test_base_codec_shapes_and_loss(task, beta):
    torch.manual_seed(0)
    codec = BaseCodec(TINY, task, beta).train()
    x = torch.rand(1, 3, 40, 36)  # not a multiple of 16: padded, then cropped
    target = target_for(task, x)
    out = codec(x, target)
    assert out.y_hat.shape == (1, TINY.M, 3, 3)
    assert out.x_tilde.shape == x.shape
    assert (out.x_hat is None) == (beta == 0) == (codec.g_a is None)
    if beta:
        assert out.x_hat.shape == x.shape
    torch.testing.assert_close(out.bpp, out.rate_bits / (40 * 36))
    terms = codec.loss(out, x, target, lmbda=10.0)
    # the authors' weighting: λ · (d + β · D_recon) + R (β relative to the task distortion)
    expected = 10.0 * (terms.distortion + beta * terms.aux_distortion) + terms.bpp
    torch.testing.assert_close(terms.loss, expected)
    terms.loss.backward()
    assert codec.f_b.layers[0].weight.grad is not None


def test_auxiliary_synthesis_has_blocks_as_the_layout_or_the_config_says():
    # by default as the layout says: linear, the paper's "simple synthesis transform", no
    # residual blocks; authors, their decoder_reconstruction, elic_lst_upsample with its blocks
    # (else it would be linear); auxiliary_blocks=True/False chooses for any layout
    from vinfo.models.transforms import ResidualBottleneckBlock

    def blocks(module):
        return sum(isinstance(m, ResidualBottleneckBlock) for m in module.modules())

    for layout, default in (("linear", 0), ("authors", 3 * 2)):
        for auxiliary_blocks, expected in ((None, default), (True, 3 * 2), (False, 0)):
            config = TINY.replace(layout=layout, blocks_per_stage=2,
                                  auxiliary_blocks=auxiliary_blocks)
            codec = BaseCodec(config, "depth", beta=0.1)
            assert blocks(codec.g_a) == expected
            assert blocks(codec.g_b) == 3 * 2
            if expected:  # then the same transform as the task synthesis
                assert ([p.shape for p in codec.g_a.parameters()]
                        == [p.shape for p in codec.g_b.parameters()])


@pytest.mark.parametrize("beta", [-0.1, float("nan"), float("inf")])
def test_negative_or_non_finite_beta_refused(beta):
    with pytest.raises(ValueError, match="beta must be non-negative and finite"):
        BaseCodec(TINY, "depth", beta)


@pytest.mark.parametrize("value", [0, 0.0, -1.0, float("nan"), float("inf"), -float("inf"),
                                   True, "0.1", None])
def test_check_lmbda_refuses_all_but_finite_positive_numbers(value):
    with pytest.raises(ValueError, match=r"^lam must be positive and finite, got "):
        check_lmbda(value, "lam")


@pytest.mark.parametrize("value", [-1e-12, float("nan"), float("inf"), False, "0", None])
def test_check_beta_refuses_all_but_finite_non_negative_numbers(value):
    with pytest.raises(ValueError, match=r"^beta must be non-negative and finite, got "):
        check_beta(value)


def test_checks_return_floats_of_valid_values():
    assert check_lmbda(2) == 2.0 and isinstance(check_lmbda(2), float)
    assert check_lmbda(torch.tensor(0.5).item()) == 0.5
    assert check_beta(0) == 0.0 and check_beta(0.1) == 0.1


@pytest.mark.parametrize("strategy", STRATEGIES.names())
@pytest.mark.parametrize("task", ["reconstruction", "segmentation"])
def test_enhancement_shapes_and_no_gradient_into_base(strategy, task):
    torch.manual_seed(0)
    base = BaseCodec(TINY, "depth", 0.1)
    with torch.no_grad():
        base(torch.rand(1, 3, 32, 32))  # compressai's MaskedConv2d masks its weight in place
    before = {k: v.clone() for k, v in base.state_dict().items()}
    codec = EnhancementCodec(base, strategy, task, TINY).train()
    assert not base.training
    x = torch.rand(2, 3, 32, 32)
    target = target_for(task, x)
    out = codec(x, target)
    assert out.x_tilde.shape == x.shape
    assert out.base_bpp.shape == out.bpp.shape == (2,)
    if STRATEGIES.get(strategy).codes_latent:
        assert out.y_hat.shape == (2, TINY.M, 2, 2)
        assert bool((out.bpp > 0).all())
    else:
        assert out.y_hat is None and bool((out.bpp == 0).all())
    codec.loss(out, target, lmbda=5.0).loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in base.parameters())
    assert any(p.grad is not None for p in codec.g_e.parameters())
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())


def test_standalone_ignores_base_and_scalable_uses_it():
    torch.manual_seed(0)
    base = BaseCodec(TINY, "depth")
    with torch.no_grad():
        base.f_b.layers[-1].weight.mul_(100)  # an untrained f_b rounds to ŷ_b = 0
    x = torch.rand(1, 3, 32, 32)
    scalable = EnhancementCodec(base, "scalable", "reconstruction", TINY).eval()
    standalone = EnhancementCodec(base, "standalone", "reconstruction", TINY).eval()
    standalone.load_state_dict(scalable.state_dict())
    with torch.no_grad():
        a, b = scalable(x), standalone(x)
        expected = scalable.entropy_model(scalable.f_e(x), torch.zeros_like(a.y_hat_b))
    assert bool(a.y_hat_b.abs().sum() > 0)
    assert torch.equal(a.y_hat, b.y_hat)
    assert not torch.equal(a.likelihoods, b.likelihoods)
    assert torch.equal(b.likelihoods, expected.likelihoods)


def test_unknown_strategy_lists_valid_names():
    with pytest.raises(ValueError, match="valid: scalable, standalone, direct"):
        EnhancementCodec(BaseCodec(TINY, "depth"), "bogus", "reconstruction", TINY)
