"""Rate in bits and bpp against closed forms and CompressAI's rate-distortion loss."""

import math

import numpy as np
import pytest
import torch

from vinfo.metrics import (
    bits_from_bytes,
    bits_from_likelihoods,
    bpp_from_bytes,
    bpp_from_likelihoods,
)

# compressai's entropy models call torch.jit.script, deprecated in torch 2.14
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


def _likelihoods(seed=0, batch=2):
    generator = torch.Generator().manual_seed(seed)
    return {
        "y": torch.rand(batch, 8, 4, 4, generator=generator, dtype=torch.float64) * 0.99 + 0.01,
        "z": torch.rand(batch, 4, 1, 1, generator=generator, dtype=torch.float64) * 0.99 + 0.01,
    }


def test_bits_closed_form():
    likelihoods = _likelihoods()["y"]
    expected = -np.log2(likelihoods.numpy()).reshape(2, -1).sum(axis=1)
    bits = bits_from_likelihoods(likelihoods)
    assert bits.shape == (2,)
    np.testing.assert_allclose(bits.numpy(), expected, rtol=1e-12)
    # p = 1/2 everywhere: one bit per element
    half = torch.full((3, 5, 2, 2), 0.5)
    torch.testing.assert_close(bits_from_likelihoods(half), torch.full((3,), 20.0))


def test_dict_and_list_sum_over_entries():
    likelihoods = _likelihoods()
    expected = bits_from_likelihoods(likelihoods["y"]) + bits_from_likelihoods(likelihoods["z"])
    torch.testing.assert_close(bits_from_likelihoods(likelihoods), expected)
    torch.testing.assert_close(bits_from_likelihoods(list(likelihoods.values())), expected)


def test_bpp_from_likelihoods_divides_by_original_pixels():
    likelihoods = _likelihoods()
    num_pixels = 64 * 48
    torch.testing.assert_close(
        bpp_from_likelihoods(likelihoods, num_pixels),
        bits_from_likelihoods(likelihoods) / num_pixels,
    )
    with pytest.raises(ValueError, match="num_pixels"):
        bpp_from_likelihoods(likelihoods, 0)


def test_bpp_matches_compressai_rate_distortion_loss():
    from compressai.losses import RateDistortionLoss

    likelihoods = {k: v.float() for k, v in _likelihoods(batch=3).items()}
    target = torch.rand(3, 3, 16, 12)
    loss = RateDistortionLoss()({"likelihoods": likelihoods, "x_hat": target}, target)
    # CompressAI's bpp_loss is the batch mean of the per-image bpp
    bpp = bpp_from_likelihoods(likelihoods, num_pixels=16 * 12)
    assert bpp.mean().item() == pytest.approx(loss["bpp_loss"].item(), rel=1e-5)


def test_non_positive_likelihoods_are_rejected():
    for bad in (0.0, -0.1, math.nan):
        likelihoods = torch.full((1, 2, 2, 2), 0.5)
        likelihoods[0, 0, 0, 0] = bad
        with pytest.raises(ValueError, match="positive"):
            bits_from_likelihoods({"y": likelihoods})


def test_bits_are_differentiable():
    likelihoods = torch.full((1, 4), 0.25, requires_grad=True)
    bits_from_likelihoods(likelihoods).sum().backward()
    expected = -1.0 / (0.25 * math.log(2))  # d(-log2 p)/dp
    torch.testing.assert_close(likelihoods.grad, torch.full((1, 4), expected))


def test_bpp_from_bytes():
    assert bpp_from_bytes(b"abcd", 16) == len(b"abcd") * 8 / 16
    # CompressAI layout: one list per latent, one bytes per image
    strings = [[b"\x00\x01\x02"], [b"\xff" * 5]]
    assert bits_from_bytes(strings) == 8 * 8
    assert bpp_from_bytes(strings, num_pixels=32 * 32) == (3 + 5) * 8 / (32 * 32)
    with pytest.raises(TypeError):
        bits_from_bytes(["not bytes"])
    with pytest.raises(ValueError, match="num_pixels"):
        bpp_from_bytes(strings, -1)


def test_estimated_rate_is_close_to_actual_bitstream():
    from compressai.zoo import bmshj2018_factorized

    torch.manual_seed(0)
    net = bmshj2018_factorized(quality=1, pretrained=False).eval()
    net.update()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        estimated = bpp_from_likelihoods(net(x)["likelihoods"], 64 * 64).item()
        actual = bpp_from_bytes(net.compress(x)["strings"], 64 * 64)
    # the range coder adds a few bytes of overhead over the ideal code length
    assert actual == pytest.approx(estimated, rel=0.02)
