import pytest
import torch

from vinfo.models.entropy import AutoregressiveEntropyModel, rate_bits, rate_bpp
from vinfo.models.quantize import latent_from_symbols, quantize_ste, symbols_from_latent


def test_straight_through_gradient_is_identity():
    y = (torch.randn(2, 4, 3, 3) * 3).requires_grad_()
    weights = torch.randn_like(y)
    (quantize_ste(y) * weights).sum().backward()
    torch.testing.assert_close(y.grad, weights, rtol=0, atol=0)


def test_y_hat_exactly_reproduced_from_symbols_and_mu():
    generator = torch.Generator().manual_seed(0)
    y_hat = quantize_ste(torch.randn(2, 8, 5, 5, generator=generator) * 10)
    mu = torch.randn(2, 8, 5, 5, generator=generator) * 10
    mu[0, 0, 0, :3] = torch.tensor([0.5, -1.5, 2.5])  # rounding ties
    symbols = symbols_from_latent(y_hat, mu)
    assert symbols.dtype == torch.int32
    # the paper's form ⌊ŷ − μ⌉ away from ties
    away = (mu - mu.floor() - 0.5).abs() > 1e-3
    assert torch.equal(symbols[away], torch.round(y_hat - mu)[away].int())
    assert torch.equal(latent_from_symbols(symbols, mu), y_hat)


def test_symbols_refuse_unquantised_latent():
    with pytest.raises(ValueError, match="integer"):
        symbols_from_latent(torch.tensor([0.3]), torch.tensor([0.0]))


def test_rate_of_forward_equals_rate_of_decoded_latent():
    torch.manual_seed(0)
    model = AutoregressiveEntropyModel(M=8).eval()
    y = torch.randn(1, 8, 4, 4) * 4
    out = model(y)
    # decoder side: ŷ rebuilt from the symbols and the means it predicts itself
    decoded = latent_from_symbols(symbols_from_latent(out.y_hat, out.means), out.means)
    assert torch.equal(decoded, out.y_hat)
    torch.testing.assert_close(rate_bits(model(decoded).likelihoods), rate_bits(out.likelihoods))
    bits = rate_bits(out.likelihoods)
    torch.testing.assert_close(rate_bpp(out.likelihoods, 64 * 64), bits / 4096)
