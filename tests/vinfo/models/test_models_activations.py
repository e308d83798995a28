import pytest
import torch
from torch.nn import functional as F

from vinfo.models import activations
from vinfo.models.activations import ELU, elu, elu_


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def testelu_matches_elu(alpha):
    x = torch.cat([torch.linspace(-30, 30, 10001), torch.tensor([0.0, -1e-8, 1e-8, -1e-30])])
    expected = torch.nn.functional.elu(x, alpha)
    torch.testing.assert_close(elu_(x.clone(), alpha), expected, rtol=1e-6,
                               atol=1e-7 * max(alpha, 1.0))


@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def testelu_in_pieces_is_the_whole_tensor_formula(monkeypatch, alpha, layout):
    # pieces are a speed choice only: the element-wise formula on the whole tensor, bit for bit,
    # written into x in its own layout
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 14) * 4
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = x[..., ::2]  # neither layout is dense: falls back through a copy
    negative = torch.clamp(x, max=0).exp() - 1
    expected = torch.maximum(x, negative) if alpha == 1.0 else alpha * negative + x.clamp(min=0)
    monkeypatch.setattr(activations, "ELU_CHUNK", 7)  # 7 does not divide the 420 elements
    result = elu_(x, alpha)
    assert result is x
    assert torch.equal(result, expected)
    if layout == "channels_last":
        assert result.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_out_of_place_is_elu_in_place_bit_for_bit(alpha):
    torch.manual_seed(1)
    x = torch.randn(3, 4, 9, 11) * 5
    expected = elu_(x.clone(), alpha)
    assert torch.equal(elu(x, alpha), expected)
    assert torch.equal(ELU(alpha)(x), expected)  # no autograd needed
    assert torch.equal(ELU(alpha)(x.requires_grad_()), expected)  # through autograd


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_gradient_is_pytorchs(alpha):
    # the backward pass is PyTorch's ELU gradient on the same input; torch.autograd.gradcheck
    # checks it against finite differences of the forward in float64
    torch.manual_seed(2)
    x = (torch.randn(2, 3, 5, 5) * 3).requires_grad_()
    reference = x.detach().clone().requires_grad_()
    grad = torch.randn_like(x)
    ELU(alpha)(x).backward(grad)
    F.elu(reference, alpha).backward(grad)
    assert torch.equal(x.grad, reference.grad)
    x64 = torch.randn(2, 7, dtype=torch.float64).mul_(2).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: ELU(alpha)(v), (x64,))


def test_elu_values_do_not_depend_on_the_tensor_they_sit_in():
    # each element's value is its own: one by one, in a batch, or in another layout. PyTorch's
    # ELU rounds differently in its vectorised and scalar paths, which this test would catch
    x = torch.randn(4000) * 4
    whole = elu(x)
    one_by_one = torch.cat([elu(x[i : i + 1]) for i in range(len(x))])
    assert torch.equal(whole, one_by_one)
    image = x[:3456].view(2, 6, 16, 18)
    channels_last = image.contiguous(memory_format=torch.channels_last)
    assert torch.equal(elu_(channels_last.clone()), elu(image))
