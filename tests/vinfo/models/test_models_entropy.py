import pytest
import torch

from vinfo.models.entropy import AutoregressiveEntropyModel, ConditionalEntropyModel


def test_autoregressive_shapes_and_likelihood_bounds():
    torch.manual_seed(0)
    model = AutoregressiveEntropyModel(M=8)
    out = model(torch.randn(2, 8, 3, 5) * 20)
    for tensor in out:
        assert tensor.shape == (2, 8, 3, 5)
    assert bool((out.likelihoods >= 1e-9).all()) and bool((out.likelihoods <= 1).all())


def test_context_is_causal():
    torch.manual_seed(0)
    model = AutoregressiveEntropyModel(M=4)
    y = torch.randn(1, 4, 6, 6) * 3
    changed = y.clone()
    changed[0, :, 3, 3] += 5  # a later position must not change earlier parameters
    a, b = model(y), model(changed)
    assert torch.equal(a.means[..., :3, :], b.means[..., :3, :])
    assert torch.equal(a.means[..., 3, :4], b.means[..., 3, :4])
    assert not torch.equal(a.means[..., 3, 4], b.means[..., 3, 4])


def test_conditional_model_uses_base_latent():
    torch.manual_seed(0)
    model = ConditionalEntropyModel(M=4, base_channels=6, blocks=1)
    y = torch.randn(2, 4, 3, 3) * 3
    base = torch.randn(2, 6, 3, 3).round()
    a, b = model(y, base), model(y, torch.zeros_like(base))
    assert a.means.shape == (2, 4, 3, 3)
    assert not torch.equal(a.means, b.means)
    with pytest.raises(ValueError, match="needs the base latent"):
        model(y)
    with pytest.raises(ValueError, match="side_network must be one of"):
        ConditionalEntropyModel(M=4, base_channels=6, side_network="deep")
    with pytest.raises(ValueError, match="does not match"):
        model(y, base[..., :2])
