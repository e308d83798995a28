"""Representations computed from codec checkpoints, cached on disk and reused."""

import json

import pytest
import torch
from safetensors.torch import save_file

from probes.bundles import save_bundle
from probes.representations import (
    checkpoint_sha256,
    default_cache_dir,
    encode_dataset,
    load_representation,
    unique_names,
)
from probes.sources import DataSource
from vinfo.models import (
    BaseCodec,
    EnhancementCodec,
    codec_preset,
    load_checkpoint,
    save_checkpoint,
)

TINY = codec_preset("tiny")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "base.safetensors"
    save_checkpoint(BaseCodec(TINY, "depth", beta=0.1), path)
    return path


def test_checkpoint_is_encoded_once_then_read_from_the_cache(checkpoint, tmp_path, monkeypatch):
    first = load_representation(checkpoint, n_images=6, cache_dir=tmp_path)
    assert not first.from_cache and first.path.parent == tmp_path
    assert first.bundle.y_hat.shape == (6, TINY.M, 4, 4)
    assert first.bundle.sample_ids.tolist() == list(range(6))
    meta = first.bundle.metadata
    assert meta["checkpoint_sha256"] == checkpoint_sha256(checkpoint)
    assert (meta["dataset"], meta["preset"], meta["split"]) == ("synthetic", "tiny", "val")
    mtime = first.path.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("the cached representation was recomputed")

    monkeypatch.setattr("probes.representations.encode_dataset", fail)
    second = load_representation(checkpoint, n_images=6, cache_dir=tmp_path)
    assert second.from_cache and second.path == first.path
    assert first.path.stat().st_mtime_ns == mtime
    assert torch.equal(second.bundle.y_hat, first.bundle.y_hat)
    # another split is another cache entry
    with pytest.raises(AssertionError, match="recomputed"):
        load_representation(checkpoint, n_images=6, split="test", cache_dir=tmp_path)


def test_cached_values_are_the_codecs_latent(checkpoint, tmp_path):
    representation = load_representation(checkpoint, n_images=3, cache_dir=tmp_path)
    dataset = DataSource(n_images=3).build()
    expected = encode_dataset(load_checkpoint(checkpoint), dataset, torch.arange(3), batch_size=2)
    assert torch.equal(representation.bundle.y_hat, expected)
    assert torch.equal(expected, expected.round())  # ŷ is quantised


def test_a_damaged_cache_entry_is_recomputed(checkpoint, tmp_path):
    path = load_representation(checkpoint, n_images=2, cache_dir=tmp_path).path
    path.write_bytes(b"garbage")
    again = load_representation(checkpoint, n_images=2, cache_dir=tmp_path)
    assert not again.from_cache and again.bundle.y_hat.shape[0] == 2


def test_the_data_recorded_in_the_checkpoint_spec_is_the_default(checkpoint, tmp_path):
    copy = tmp_path / "recorded.safetensors"
    copy.write_bytes(checkpoint.read_bytes())
    spec = json.loads(checkpoint.with_suffix(".json").read_text())
    spec["data"] = {"dataset": "synthetic", "preset": "tiny", "split": "test"}
    copy.with_suffix(".json").write_text(json.dumps(spec))
    representation = load_representation(copy, n_images=2, cache_dir=tmp_path)
    assert representation.source.split == "test"
    assert load_representation(copy, n_images=2, split="val",
                               cache_dir=tmp_path).source.split == "val"


def test_a_bundle_is_read_as_is(tmp_path):
    path = tmp_path / "feat.safetensors"
    save_bundle(path, torch.ones(4, 2, 4, 4), torch.arange(4), {"split": "test"})
    representation = load_representation(path, cache_dir=tmp_path / "unused")
    assert representation.name == "feat" and representation.source.split == "test"
    assert representation.path == path and not (tmp_path / "unused").exists()


def test_foreign_files_are_refused(checkpoint, tmp_path):
    pickle = tmp_path / "model.pt"
    torch.save({"w": torch.ones(1)}, pickle)
    with pytest.raises(ValueError, match="pickle"):
        load_representation(pickle, cache_dir=tmp_path)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(1)}, str(foreign))
    with pytest.raises(ValueError, match="neither a vinfo checkpoint nor a representation"):
        load_representation(foreign, cache_dir=tmp_path)
    orphan = tmp_path / "orphan.safetensors"
    orphan.write_bytes(checkpoint.read_bytes())
    with pytest.raises(FileNotFoundError, match="JSON config is missing"):
        load_representation(orphan, cache_dir=tmp_path)
    enhancement = tmp_path / "enh.safetensors"
    save_checkpoint(EnhancementCodec(BaseCodec(TINY, "depth"), "scalable", "reconstruction",
                                     TINY), enhancement)
    with pytest.raises(ValueError, match="'enhancement' checkpoint"):
        load_representation(enhancement, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError):
        load_representation(tmp_path / "absent.safetensors", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*-*.safetensors"))  # nothing cached for refused files


def test_unique_names_and_cache_dir(tmp_path, monkeypatch):
    assert unique_names(["a/x.safetensors", "b/y.safetensors"]) == ["x", "y"]
    assert unique_names(["a/x.safetensors", "b/x.safetensors"]) == ["a/x", "b/x"]
    with pytest.raises(ValueError, match="twice"):
        unique_names(["x.safetensors", "./x.safetensors"])
    monkeypatch.setenv("VINFO_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
