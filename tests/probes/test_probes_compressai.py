"""CompressAI zoo models as representations: the bundle against the model's own rounding,
both checkpoint layouts, refused pickles, and the CLI table."""

from __future__ import annotations

import pickle

import pytest
import torch
from compressai.zoo.image import model_architectures
from torch.nn import functional as F
from typer.testing import CliRunner

from cli.main import app
from probes.compressai_codecs import ARCHITECTURES, PAD_MULTIPLE, parse_spec
from probes.representations import load_representation
from probes.sources import resolve_source

DATA = {"preset": "micro", "split": "val", "n_images": 6}


def _model(architecture: str, seed: int = 0):
    torch.manual_seed(seed)
    cls = model_architectures[architecture]
    model = cls(8) if architecture.startswith("cheng") else cls(8, 12)
    return model.eval()


def _reference(model, architecture: str, x: torch.Tensor, latent: str) -> torch.Tensor:
    """The latent as CompressAI's primitives round it, written out per family."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % PAD_MULTIPLE, (-width) % PAD_MULTIPLE
    x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    with torch.no_grad():
        y = model.g_a(x)
        bottleneck = model.entropy_bottleneck
        if architecture == "bmshj2018-factorized":
            return bottleneck.quantize(y, "dequantize", bottleneck._get_medians())
        z = model.h_a(torch.abs(y) if architecture == "bmshj2018-hyperprior" else y)
        z_hat = bottleneck.quantize(z, "dequantize", bottleneck._get_medians())
        if latent == "z":
            return z_hat
        if architecture == "mbt2018-mean":
            _, means = model.h_s(z_hat).chunk(2, 1)
            return model.gaussian_conditional.quantize(y, "dequantize", means)
        return torch.round(y)  # hyperprior and the autoregressive models: their forward pass


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_bundle_is_the_latent_the_model_rounds(architecture, tmp_path):
    model = _model(architecture)
    weights = tmp_path / "weights.pth"
    torch.save(model.state_dict(), weights)
    spec = f"compressai:{architecture}:weights={weights}"
    representation = load_representation(spec, cache_dir=tmp_path / "cache", **DATA)
    source = resolve_source(None, **DATA)
    data = source.build()
    images = torch.stack([data[int(i)].image for i in source.sample_ids(data)])
    expected = _reference(model, architecture, images, "y")
    assert representation.bundle.y_hat.shape == expected.shape
    assert torch.equal(representation.bundle.y_hat, expected)
    assert not representation.from_cache
    again = load_representation(spec, cache_dir=tmp_path / "cache", **DATA)
    assert again.from_cache and torch.equal(again.bundle.y_hat, expected)


def test_hyperprior_latent_z_and_the_training_checkpoint_layout(tmp_path):
    model = _model("mbt2018-mean", seed=1)
    weights = tmp_path / "checkpoint_best_loss.pth.tar"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, weights)  # CompressAI's train.py
    spec = f"compressai:mbt2018-mean:weights={weights}:latent=z"
    representation = load_representation(spec, cache_dir=tmp_path / "cache", **DATA)
    source = resolve_source(None, **DATA)
    data = source.build()
    images = torch.stack([data[int(i)].image for i in source.sample_ids(data)])
    assert torch.equal(representation.bundle.y_hat,
                       _reference(model, "mbt2018-mean", images, "z"))
    assert representation.name == "mbt2018-mean-z"


class Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_pickle_bearing_file_is_refused(tmp_path, capsys):
    weights = tmp_path / "evil.pth"
    weights.write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(ValueError, match="weights_only"):
        load_representation(f"compressai:mbt2018:weights={weights}", cache_dir=tmp_path, **DATA)
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.parametrize(("spec", "message"), [
    ("compressai:elic:weights=w.pth", "unknown CompressAI architecture 'elic'"),
    ("compressai:mbt2018", "needs weights=PATH"),
    ("compressai:mbt2018:weights=w.pth:q=9", "q must be one of"),
    ("compressai:mbt2018:weights=w.pth:latent=x", "latent must be y or z"),
    ("compressai:bmshj2018-factorized:weights=w.pth:latent=z", "no hyperprior"),
    ("compressai:mbt2018:weights=w.pth:size=3", "bad option 'size=3'"),
])
def test_bad_specs_are_one_clear_message(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_quality_must_agree_with_the_weights(tmp_path):
    weights = tmp_path / "w.pth"
    torch.save(_model("mbt2018-mean").state_dict(), weights)
    with pytest.raises(ValueError, match=r"sizes \(8, 12\) are not those of mbt2018-mean q=3"):
        load_representation(f"compressai:mbt2018-mean:weights={weights}:q=3",
                            cache_dir=tmp_path, **DATA)


@pytest.mark.slow
def test_cli_probes_a_compressai_model_next_to_another(tmp_path):
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save(_model("mbt2018-mean", seed=2).state_dict(), first)
    torch.save(_model("bmshj2018-factorized", seed=3).state_dict(), second)
    result = CliRunner().invoke(app, [
        "probe", "--repr", f"compressai:mbt2018-mean:weights={first}",
        "--repr", f"compressai:bmshj2018-factorized:weights={second}",
        "--target", "reconstruction", "--family", "linear,conv", "--n-images", "100",
        "--max-epochs", "2", "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "mbt2018-mean" in result.stdout and "bmshj2018-factorized" in result.stdout
    assert "CI" in result.stdout and "ΔI_V" in result.stdout
