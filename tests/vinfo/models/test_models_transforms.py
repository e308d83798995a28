import pytest
import torch

from vinfo.models import transforms
from vinfo.models.config import codec_preset
from vinfo.models.transforms import (
    AnalysisTransform,
    ResidualBottleneckBlock,
    SynthesisTransform,
    _subpixel_applies,
    _transposed_as_subpixel,
    pad_to_stride,
)


def test_shapes_through_f_and_g():
    config = codec_preset("tiny")
    x = torch.rand(2, 3, 32, 64)
    y = AnalysisTransform(config)(x)
    assert y.shape == (2, config.M, 2, 4)
    assert SynthesisTransform(config)(y).shape == x.shape
    assert SynthesisTransform(config, out_channels=5)(y).shape == (2, 5, 32, 64)


def test_no_attention_and_elu_only():
    f = AnalysisTransform(codec_preset("tiny"))
    activations = {type(m).__name__ for m in f.modules() if "LU" in type(m).__name__}
    assert activations == {"ELU"}


def test_input_size_checked_and_padding():
    f = AnalysisTransform(codec_preset("tiny"))
    with pytest.raises(ValueError, match="multiple of 16"):
        f(torch.rand(1, 3, 30, 32))
    assert pad_to_stride(torch.rand(1, 3, 30, 33)).shape == (1, 3, 32, 48)


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_inference_synthesis_is_within_1e_5_and_leaves_its_input_alone(preset):
    # without autograd the synthesis applies its ELUs (exp-based) and residual sums in place
    torch.manual_seed(0)
    g = SynthesisTransform(codec_preset(preset)).eval()
    y_hat = torch.round(torch.randn(1, g.layers[0].in_channels, 3, 5) * 3)
    before = y_hat.clone()
    expected = g(y_hat)  # autograd enabled: the training path, nn.ELU
    with torch.no_grad():
        fast = g(y_hat)
        channels_last = g(y_hat.contiguous(memory_format=torch.channels_last))
    with torch.inference_mode():
        assert torch.equal(g(y_hat), fast)
    for output in (fast, channels_last):
        torch.testing.assert_close(output, expected.detach(), rtol=0, atol=1e-5)
    assert torch.equal(y_hat, before)


def test_inference_synthesis_layout_is_a_speed_choice_only(monkeypatch):
    # channels-last inside, contiguous out, and the same image as the contiguous layout
    torch.manual_seed(0)
    g = SynthesisTransform(codec_preset("small")).eval()
    y_hat = torch.round(torch.randn(2, g.layers[0].in_channels, 4, 3) * 3)
    with torch.no_grad():
        channels_last = g(y_hat)
        monkeypatch.setattr(transforms, "INFERENCE_CHANNELS_LAST", False)
        contiguous = g(y_hat)
    assert channels_last.is_contiguous() and contiguous.is_contiguous()
    torch.testing.assert_close(channels_last, contiguous, rtol=0, atol=1e-5)


@pytest.mark.parametrize("channels", [(96, 3), (32, 8), (5, 2)])
def test_transposed_convolution_as_subpixel_convolution(channels):
    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose2d(*channels, 5, stride=2, padding=2, output_padding=1)
    x = torch.rand(2, channels[0], 5, 7)
    with torch.no_grad():
        expected = layer(x)
        for inputs in (x, x.contiguous(memory_format=torch.channels_last)):
            torch.testing.assert_close(_transposed_as_subpixel(layer, inputs), expected,
                                       rtol=1e-5, atol=1e-5)
    assert _subpixel_applies(layer) == (channels != (5, 2))
    assert not _subpixel_applies(torch.nn.ConvTranspose2d(96, 3, 3, stride=2, padding=1))


@pytest.mark.parametrize("module", ["analysis", "block"])
def test_analysis_and_blocks_stay_bit_identical_without_autograd(module):
    # ŷ = ⌊f(x)⌉ and the conditional entropy model's side information keep their training-path
    # values
    torch.manual_seed(0)
    if module == "analysis":
        layer, x = AnalysisTransform(codec_preset("small")).eval(), torch.rand(1, 3, 32, 48)
    else:
        layer, x = ResidualBottleneckBlock(8).eval(), torch.randn(1, 8, 5, 6)
    expected = layer(x)
    with torch.no_grad():
        assert torch.equal(layer(x), expected)


def test_training_path_still_has_gradients():
    g = SynthesisTransform(codec_preset("tiny"))
    y_hat = torch.randn(1, 16, 2, 2, requires_grad=True)
    g(y_hat).square().mean().backward()
    assert y_hat.grad is not None and bool(y_hat.grad.abs().sum() > 0)


def test_analysis_standardises_its_image_with_imagenet_statistics():
    # f(x) with standardisation = the same layers applied to (x - mean) / std, computed here
    # from the published ImageNet statistics; the constants are not part of the state dict
    config = codec_preset("tiny")
    torch.manual_seed(0)
    f = AnalysisTransform(config)
    plain = AnalysisTransform(config.replace(standardise_input=False))
    plain.load_state_dict(f.state_dict())
    assert set(f.state_dict()) == set(plain.state_dict())
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(f(x), plain((x - mean) / std))
    assert not torch.allclose(f(x), plain(x))
    # an analysis of other than 3 channels (no image) is left alone
    other = AnalysisTransform(config, in_channels=5)
    assert not other.standardise


# --- the ``authors`` layout against the authors' own transforms ----------------------------
# A transcription of adeandrade/research, projects/compatible-representations/
# compatible_representations/model_lst.py (ResidualBottleneckBlock, elic_lst_downsample,
# elic_lst_upsample, called with activation="elu" as their model_transfer.py does), written
# with PyTorch's own modules: the reference the layout is checked against.
class _AuthorsBlock(torch.nn.Sequential):
    def __init__(self, channels, kernel_size=3):
        nn = torch.nn
        super().__init__(
            nn.Conv2d(channels, channels, kernel_size=1), nn.ELU(),
            nn.Conv2d(channels, channels, kernel_size=kernel_size, padding="same"), nn.ELU(),
            nn.Conv2d(channels, channels, kernel_size=1),
        )

    def forward(self, inputs):
        return inputs + super().forward(inputs)


def _authors_downsample(in_channels, out_channels, num_channels, num_blocks):
    layers, previous = [], in_channels
    for width in num_channels:
        layers.append(torch.nn.Conv2d(previous, width, kernel_size=5, stride=2, padding=2))
        layers += [_AuthorsBlock(width) for _ in range(num_blocks)]
        previous = width
    layers.append(torch.nn.Conv2d(previous, out_channels, kernel_size=5, stride=2, padding=2))
    return torch.nn.Sequential(*layers)


def _authors_upsample(in_channels, out_channels, num_channels, num_blocks):
    layers, previous = [], in_channels
    for width in num_channels:
        layers.append(torch.nn.ConvTranspose2d(previous, width, 5, stride=2, padding=2,
                                               output_padding=1))
        layers += [_AuthorsBlock(width) for _ in range(num_blocks)]
        previous = width
    layers.append(torch.nn.ConvTranspose2d(previous, out_channels, 5, stride=2, padding=2,
                                           output_padding=1))
    return torch.nn.Sequential(*layers)


def _copy_parameters(source, target):
    source_parameters, target_parameters = list(source.parameters()), list(target.parameters())
    assert [p.shape for p in source_parameters] == [p.shape for p in target_parameters]
    with torch.no_grad():
        for a, b in zip(source_parameters, target_parameters, strict=True):
            b.copy_(a)


def test_authors_layout_is_the_authors_transforms():
    from vinfo.models.config import CodecConfig

    # their default widths (24, 48, 192) are N, 2N, 8N at N = 24; here N = 3: 3, 6, 24
    config = CodecConfig(N=3, M=10, blocks_per_stage=2, layout="authors",
                         standardise_input=False)
    assert config.stage_channels() == (3, 6, 24, 10)
    torch.manual_seed(0)
    f, g = AnalysisTransform(config).eval(), SynthesisTransform(config).eval()
    f_ref = _authors_downsample(3, 10, (3, 6, 24), num_blocks=2)
    g_ref = _authors_upsample(10, 3, (24, 6, 3), num_blocks=2)
    _copy_parameters(f, f_ref)
    _copy_parameters(g, g_ref)
    x = torch.rand(2, 3, 32, 48)
    torch.testing.assert_close(f(x), f_ref(x), rtol=0, atol=1e-5)
    y_hat = torch.round(f_ref(x).detach() * 4)
    torch.testing.assert_close(g(y_hat), g_ref(y_hat), rtol=0, atol=1e-5)
    with torch.no_grad():  # the inference path (in-place ELUs, channels-last) as well
        torch.testing.assert_close(g(y_hat), g_ref(y_hat), rtol=0, atol=1e-5)


def test_paper_preset_has_the_authors_widths():
    assert codec_preset("paper").stage_channels() == (24, 48, 192, 192)
    g = SynthesisTransform(codec_preset("paper"))
    assert not any("ELU" in type(m).__name__ for m in g.layers)  # none after a scaling
    assert g.layers[1].body[0].out_channels == 192  # blocks of C hidden channels
    # elic_lst_upsample's default num_blocks = 3 per stage
    assert sum(isinstance(m, ResidualBottleneckBlock) for m in g.layers) == 3 * 3


def test_authors_side_network_is_their_conditional_prediction():
    # GaussianConditionalEntropyModel.conditional_prediction of their model_entropy_balle.py:
    # ResidualBottleneckBlockStack(M_b, 2 blocks, kernel 5), Conv2d(M_b, 2M, 5, 'same'),
    # ResidualBottleneckBlockStack(2M, 2 blocks, kernel 5)
    from vinfo.models.base import BaseCodec
    from vinfo.models.config import CodecConfig
    from vinfo.models.enhancement import EnhancementCodec

    config = CodecConfig(N=2, M=6, blocks_per_stage=1, conditional_blocks=2, layout="authors",
                         head_variant="light")
    base = BaseCodec(config.replace(M=5), "depth")
    torch.manual_seed(0)
    side = EnhancementCodec(base, "scalable", "reconstruction", config).entropy_model.side_network
    reference = torch.nn.Sequential(
        _AuthorsBlock(5, 5), _AuthorsBlock(5, 5),
        torch.nn.Conv2d(5, 12, kernel_size=5, padding="same"),
        _AuthorsBlock(12, 5), _AuthorsBlock(12, 5),
    )
    _copy_parameters(side, reference)
    y_b = torch.round(torch.randn(2, 5, 4, 6) * 3)
    torch.testing.assert_close(side(y_b), reference(y_b), rtol=0, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(side(y_b), reference(y_b), rtol=0, atol=1e-5)
