import hashlib
import json
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from vinfo.models.base import BaseCodec
from vinfo.models.checkpoint import (
    DERIVED_BUFFERS,
    check_spec,
    config_path,
    load_checkpoint,
    model_spec,
    save_checkpoint,
    tensor_digest,
)
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
    path = tmp_path / "m.safetensors"
    save_checkpoint(BaseCodec(TINY, "reconstruction"), path)
    tensors = load_file(path)
    for pad in range(256):  # metadata of growing length until the header size is 0x..80
        metadata = {"format": "vinfo-checkpoint", "sha256": tensor_digest(tensors),
                    "pad": "x" * pad}
        save_file(tensors, str(path), metadata=metadata)
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


def reference_digest(tensors):
    """The documented canonical form, computed with numpy and hashlib only."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name].numpy())  # (makes 0-d arrays 1-d)
        head = json.dumps([name, str(tensors[name].dtype), list(tensors[name].shape)]).encode()
        for part in (head, array.tobytes()):
            digest.update(struct.pack(">Q", len(part)) + part)
    return digest.hexdigest()


def test_digest_is_stored_and_matches_an_independent_computation(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(BaseCodec(TINY, "depth"), path)
    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as handle:
        stored = handle.metadata()["sha256"]
    assert stored == reference_digest(tensors) == tensor_digest(tensors)
    odd = {"b": torch.arange(6, dtype=torch.int16).reshape(2, 3).T, "a": torch.tensor(True)}
    assert tensor_digest(odd) == reference_digest({k: v.contiguous() for k, v in odd.items()})
    # names are part of it: the same bytes under swapped names hash differently
    same = {"x": torch.zeros(3), "y": torch.ones(3)}
    assert tensor_digest(same) != tensor_digest({"x": same["y"], "y": same["x"]})


def flip_tensor_bit(path, from_end=3):
    """Flip one bit in the tensor data (after the JSON header) of a safetensors file."""
    data = bytearray(path.read_bytes())
    (header_length,) = struct.unpack("<Q", data[:8])
    position = len(data) - from_end
    assert position >= 8 + header_length  # in the data, not the header
    data[position] ^= 0x10
    path.write_bytes(bytes(data))


def test_one_flipped_bit_in_the_tensor_data_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    model = BaseCodec(TINY, "depth")
    save_checkpoint(model, path)
    flip_tensor_bit(path)
    with pytest.raises(ValueError, match=r"m\.safetensors: tensor data does not match"):
        load_checkpoint(path)
    loaded = load_checkpoint(path, verify=False)  # the flip is real: exactly one tensor differs
    differing = [key for key, value in model.state_dict().items()
                 if key.rsplit(".", 1)[-1] not in DERIVED_BUFFERS
                 and not torch.equal(value, loaded.state_dict()[key])]
    assert len(differing) == 1


def test_checkpoint_without_a_digest_is_refused_unless_unverified(tmp_path):
    path = tmp_path / "old.safetensors"
    model = BaseCodec(TINY, "depth")
    save_checkpoint(model, path)
    save_file(load_file(path), str(path), metadata={"format": "vinfo-checkpoint", "version": "1"})
    with pytest.raises(ValueError, match="old.safetensors: no tensor digest"):
        load_checkpoint(path)
    assert_same_state(model, load_checkpoint(path, verify=False))


def good_spec(kind="base"):
    base = BaseCodec(TINY, "depth", beta=0.1)
    if kind == "base":
        return model_spec(base)
    return model_spec(EnhancementCodec(base, "scalable", "reconstruction", TINY))


def edit(spec, path, value):
    *parents, last = path.split(".")
    target = spec
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return spec


SPEC_ERRORS = [
    # (kind, field, new value or KeyError to delete it, message)
    ("base", "kind", KeyError, "kind is missing"),
    ("base", "config", KeyError, "config is missing"),
    ("base", "kind", "basic", "kind must be one of base, enhancement, got 'basic'"),
    ("base", "config", [1, 2], "config must be a JSON object, got [1, 2]"),
    ("base", "config.M", "x", "config.M must be an int, got 'x'"),
    ("base", "config.M", 0, "config.M must be positive, got 0"),
    ("base", "config.M", 1.5, "config.M must be an int, got 1.5"),
    ("base", "config.N", True, "config.N must be an int, got true"),
    ("base", "config.M", KeyError, "config.M is missing"),
    ("base", "config.colour", 3, "config.colour is not a CodecConfig field"),
    ("base", "config.scale_bound", "0.1", "config.scale_bound must be a number, got '0.1'"),
    ("base", "config.scale_bound", 0, "config.scale_bound must be positive, got 0"),
    ("base", "config.context_kernel", 4, "config.context_kernel must be odd"),
    ("base", "config.blocks_per_stage", -1, "config.blocks_per_stage must be non-negative"),
    ("base", "config.standardise_input", 1, "config.standardise_input must be true or false"),
    ("base", "config.detection_min_size", "a", "must be an int or null, got 'a'"),
    ("base", "config.head_variant", "big", "config.head_variant must be one of"),
    ("base", "config.layout", "wide", "config.layout must be one of"),
    ("base", "config.layout", 3, "config.layout must be a string, got 3"),
    ("base", "task", "ocr", "task must be one of"),
    ("base", "beta", -0.5, "beta must be a non-negative number, got -0.5"),
    ("base", "beta", None, "beta must be a non-negative number, got null"),
    ("enhancement", "strategy", 3, "strategy must be one of"),
    ("enhancement", "base.config.M", -2, "base.config.M must be positive, got -2"),
    ("enhancement", "base", "x", "base must be a JSON object"),
]


@pytest.mark.parametrize(("kind", "field", "value", "message"), SPEC_ERRORS)
def test_invalid_spec_is_one_line_naming_the_field(kind, field, value, message):
    spec = edit(good_spec(kind), field, value)
    with pytest.raises(ValueError) as error:
        check_spec(spec, "run/model.json")
    text = str(error.value)
    assert text.startswith("run/model.json: ") and message in text, text
    assert "\n" not in text


@pytest.mark.parametrize("auxiliary_blocks", [None, True, False])
def test_checkpoints_of_both_layouts_round_trip_and_old_ones_have_no_new_entries(
    tmp_path, auxiliary_blocks
):
    # a linear spec of the default g_a is what was written before CodecConfig.layout and
    # CodecConfig.auxiliary_blocks existed (no such keys); it loads as it was, and the other
    # configs keep what they say
    for layout in ("linear", "authors"):
        torch.manual_seed(0)
        config = TINY.replace(layout=layout, auxiliary_blocks=auxiliary_blocks)
        model = BaseCodec(config, "depth", beta=0.1).eval()
        path = tmp_path / f"{layout}-{auxiliary_blocks}.safetensors"
        save_checkpoint(model, path)
        spec = json.loads(config_path(path).read_text())
        assert ("layout" in spec["config"]) == (layout == "authors")
        assert ("auxiliary_blocks" in spec["config"]) == (auxiliary_blocks is not None)
        loaded = load_checkpoint(path)
        assert loaded.config == config
        assert_same_state(model, loaded)


def test_valid_specs_pass_and_extra_entries_are_left_alone():
    for kind in ("base", "enhancement"):
        check_spec(good_spec(kind))
    check_spec({**good_spec(), "data": {"dataset": "synthetic"}})
    check_spec(edit(good_spec(), "config.detection_min_size", None))
    check_spec(edit(good_spec(), "beta", 0))  # an int is a number
