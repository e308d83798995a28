"""Any torch encoder as a representation (``--repr module:function``, issue #20): the bundle
against the module's own output, the cache key, one-line errors, and the CLI on an image
folder next to a CompressAI model."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from compressai.zoo.image import model_architectures
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from cli.main import app
from probes.encoders import is_encoder_spec, parse_spec
from probes.representations import load_representation, unique_names
from probes.sources import resolve_source

DATA = {"preset": "micro", "split": "val", "n_images": 6}

ENCODER_FILE = """
import torch
from torch import nn


def conv():
    torch.manual_seed({seed})
    return nn.Sequential(nn.Conv2d(3, 5, 4, stride=4), nn.ReLU(), nn.Conv2d(5, 6, 4, stride=4))


def not_a_module():
    return 3


def flat():
    return nn.Flatten()


def fails():
    return nn.Conv2d(4, 4, 1)  # expects 4 channels
"""


@pytest.fixture
def encoder_file(tmp_path):
    path = tmp_path / "my_encoders.py"
    path.write_text(textwrap.dedent(ENCODER_FILE.replace("{seed}", "0")))
    return path


def _images(**data):
    source = resolve_source(None, **data)
    dataset = source.build()
    return torch.stack([dataset[int(i)].image for i in source.sample_ids(dataset)])


def test_the_bundle_is_the_modules_output(encoder_file, tmp_path):
    spec = f"{encoder_file}:conv"
    representation = load_representation(spec, cache_dir=tmp_path / "cache", **DATA)
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Conv2d(3, 5, 4, stride=4), nn.ReLU(),
                              nn.Conv2d(5, 6, 4, stride=4)).eval()
    with torch.no_grad():
        expected = reference(_images(**DATA))
    assert representation.bundle.y_hat.shape == (6, 6, 2, 2)
    torch.testing.assert_close(representation.bundle.y_hat, expected)
    assert representation.name == "conv" and not representation.from_cache
    again = load_representation(spec, cache_dir=tmp_path / "cache", **DATA)
    assert again.from_cache and torch.equal(again.bundle.y_hat, representation.bundle.y_hat)


def test_a_dotted_module_is_imported_from_the_current_directory(encoder_file, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_encoders", raising=False)
    dotted = load_representation("my_encoders:conv", cache_dir=tmp_path / "cache", **DATA)
    by_file = load_representation(f"{encoder_file}:conv", cache_dir=tmp_path / "c2", **DATA)
    assert torch.equal(dotted.bundle.y_hat, by_file.bundle.y_hat)
    assert str(tmp_path) not in sys.path  # the directory is not left on the path


def test_changed_weights_are_computed_again(encoder_file, tmp_path):
    spec = f"{encoder_file}:conv"
    first = load_representation(spec, cache_dir=tmp_path / "cache", **DATA)
    encoder_file.write_text(textwrap.dedent(ENCODER_FILE.replace("{seed}", "1")))
    second = load_representation(spec, cache_dir=tmp_path / "cache", **DATA)
    assert not second.from_cache and not torch.equal(first.bundle.y_hat, second.bundle.y_hat)


@pytest.mark.parametrize(("function", "message"), [
    ("not_a_module", "returned a int, not a torch.nn.Module"),
    ("flat", r"must map \(B, 3, H, W\) images to \(B, C, h, w\) features; it returned \(6, 3072\)"),
    ("fails", r"the module failed on images of shape \(6, 3, 32, 32\) \(RuntimeError"),
    ("missing", "has no attribute 'missing'"),
])
def test_a_bad_encoder_is_one_clear_message(encoder_file, tmp_path, function, message):
    with pytest.raises(ValueError, match=message):
        load_representation(f"{encoder_file}:{function}", cache_dir=tmp_path, **DATA)


def test_specs_are_told_apart_from_files(encoder_file, tmp_path):
    assert is_encoder_spec("examples.encoders:space_to_depth")
    assert is_encoder_spec(f"{encoder_file}:conv")
    assert not is_encoder_spec("compressai:mbt2018:weights=w.pth")
    assert not is_encoder_spec(encoder_file)
    odd = tmp_path / "a:b"
    odd.write_text("")
    assert not is_encoder_spec(odd)  # an existing file is a file
    with pytest.raises(ValueError, match="expected MODULE:FUNCTION"):
        parse_spec("not a spec")
    with pytest.raises(ValueError, match="cannot import 'no_such_module_x'"):
        load_representation("no_such_module_x:build", cache_dir=tmp_path, **DATA)
    assert unique_names(["a.x:build", "b.y:build", str(encoder_file)]) == [
        "build-1", "build-2", "my_encoders"]


def test_the_space_to_depth_example_holds_every_pixel(tmp_path, monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).parents[2])
    representation = load_representation("examples.encoders:space_to_depth",
                                         cache_dir=tmp_path, **DATA)
    assert torch.equal(nn.functional.pixel_shuffle(representation.bundle.y_hat, 16),
                       _images(**DATA))


def _image_folder(root, count=100):
    """``count`` synthetic scenes as PNG, a few of them larger, one grayscale, one corrupt."""
    root.mkdir()
    images = _images(preset="tiny", split="val", n_images=count)
    rng = np.random.default_rng(0)
    for index, image in enumerate(images):
        array = (255 * image.permute(1, 2, 0).numpy()).round().astype(np.uint8)
        if index % 10 == 0:  # a larger image: centre-cropped back to the smallest size
            array = np.pad(array, ((8, 8), (4, 12), (0, 0)), mode="edge")
        picture = Image.fromarray(array)
        (picture.convert("L") if index == 1 else picture).save(root / f"{index:03d}.png")
    (root / "zz-broken.jpg").write_bytes(rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
    return root


@pytest.mark.slow
def test_cli_probes_an_encoder_and_a_compressai_model_on_an_image_folder(tmp_path, encoder_file):
    folder = _image_folder(tmp_path / "images")
    torch.manual_seed(0)
    weights = tmp_path / "mbt.pth"
    torch.save(model_architectures["mbt2018-mean"](8, 12).state_dict(), weights)
    with pytest.warns(UserWarning, match="zz-broken.jpg: cannot read"):
        result = CliRunner().invoke(app, [
            "probe", "--repr", f"compressai:mbt2018-mean:weights={weights}",
            "--repr", f"{encoder_file}:conv", "--target", "reconstruction",
            "--family", "linear,conv", "--dataset", "images", "--data-root", str(folder),
            "--max-epochs", "2", "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"images/{folder}/all (all images, centre-cropped to one size)" in result.stdout
    assert "mbt2018-mean" in result.stdout and "conv" in result.stdout
    assert "CI" in result.stdout and "ΔI_V" in result.stdout
