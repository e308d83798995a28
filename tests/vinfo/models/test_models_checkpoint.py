import json

import pytest
import torch

from vinfo.models.base import BaseCodec
from vinfo.models.checkpoint import DERIVED_BUFFERS, config_path, load_checkpoint, save_checkpoint
from vinfo.models.config import codec_preset
from vinfo.models.enhancement import EnhancementCodec

TINY = codec_preset("tiny")


def assert_same_state(a, b):
    state_b = b.state_dict()
    for key, value in a.state_dict().items():
        if key.rsplit(".", 1)[-1] not in DERIVED_BUFFERS:
            assert torch.equal(value, state_b[key]), key


def test_base_round_trip(tmp_path):
    torch.manual_seed(0)
    model = BaseCodec(TINY, "segmentation", beta=0.1).eval()
    save_checkpoint(model, tmp_path / "base.safetensors")
    loaded = load_checkpoint(tmp_path / "base.safetensors")
    assert isinstance(loaded, BaseCodec) and loaded.beta == 0.1 and loaded.config == TINY
    assert_same_state(model, loaded)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).task_output, model(x).task_output)


def test_enhancement_round_trip_after_coder_update(tmp_path):
    torch.manual_seed(0)
    model = EnhancementCodec(BaseCodec(TINY, "depth"), "scalable", "reconstruction", TINY)
    model.entropy_model.gaussian_conditional.update_scale_table([0.11, 1.0, 10.0])
    save_checkpoint(model, tmp_path / "enh.safetensors")
    spec = json.loads(config_path(tmp_path / "enh.safetensors").read_text())
    assert spec["kind"] == "enhancement" and spec["base"]["task"] == "depth"
    loaded = load_checkpoint(tmp_path / "enh.safetensors")
    assert loaded.strategy.name == "scalable"
    assert_same_state(model, loaded)


def test_safetensors_header_length_ending_in_0x80_is_not_taken_for_a_pickle(tmp_path):
    from safetensors.torch import load_file, save_file

    path = tmp_path / "m.safetensors"
    save_checkpoint(BaseCodec(TINY, "reconstruction"), path)
    tensors = load_file(path)
    for pad in range(256):  # metadata of growing length until the header size is 0x..80
        save_file(tensors, str(path), metadata={"format": "vinfo-checkpoint", "pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert isinstance(load_checkpoint(path), BaseCodec)


def test_pickle_and_foreign_files_refused(tmp_path):
    model = BaseCodec(TINY, "reconstruction")
    save_checkpoint(model, tmp_path / "m.safetensors")
    pickled = tmp_path / "p.safetensors"
    torch.save(model.state_dict(), pickled)
    config_path(pickled).write_text(config_path(tmp_path / "m.safetensors").read_text())
    with pytest.raises(ValueError, match="pickle"):
        load_checkpoint(pickled)
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    config_path(garbage).write_text("{}")
    with pytest.raises(ValueError, match="safetensors"):
        load_checkpoint(garbage)
    config_path(tmp_path / "m.safetensors").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a vinfo-checkpoint"):
        load_checkpoint(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=".safetensors"):
        save_checkpoint(model, tmp_path / "m.pt")


def test_mismatched_tensors_refused(tmp_path):
    save_checkpoint(BaseCodec(TINY, "reconstruction"), tmp_path / "m.safetensors")
    spec_file = config_path(tmp_path / "m.safetensors")
    spec = json.loads(spec_file.read_text())
    spec["beta"] = 0.5  # the config now asks for g_a, which has no tensors
    spec_file.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="do not match"):
        load_checkpoint(tmp_path / "m.safetensors")
    spec["beta"], spec["config"]["M"] = 0.0, 24  # same keys, other shapes
    spec_file.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="do not match"):
        load_checkpoint(tmp_path / "m.safetensors")
