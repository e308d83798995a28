"""`vinfo eval` on a damaged checkpoint or a malformed model.json: one line, exit 2."""

from __future__ import annotations

import json
import struct

import pytest
from typer.testing import CliRunner

from cli.main import app
from vinfo.models import BaseCodec, codec_preset, save_checkpoint

runner = CliRunner()


def evaluate(checkpoint):
    return runner.invoke(app, ["eval", str(checkpoint), "--bitstream-images", "0", "--json"])


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    save_checkpoint(BaseCodec(codec_preset("tiny"), "depth"), path)
    return path


def test_intact_checkpoint_evaluates(checkpoint):
    result = evaluate(checkpoint)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["task"] == "depth"


def test_one_flipped_bit_in_the_tensor_data_is_refused(checkpoint, error_line):
    data = bytearray(checkpoint.read_bytes())
    (header_length,) = struct.unpack("<Q", data[:8])
    position = 8 + header_length + (len(data) - 8 - header_length) // 2  # mid tensor data
    data[position] ^= 0x01
    checkpoint.write_bytes(bytes(data))
    error_line(evaluate(checkpoint), str(checkpoint), "does not match the checkpoint's digest")


def spec_without(spec, key):
    return {k: v for k, v in spec.items() if k != key}


MALFORMED = {
    "no kind": (lambda spec: spec_without(spec, "kind"), "model.json: kind is missing"),
    "no config": (lambda spec: spec_without(spec, "config"), "model.json: config is missing"),
    "M a string": (
        lambda spec: {**spec, "config": {**spec["config"], "M": "x"}},
        "model.json: config.M must be an int, got 'x'",
    ),
    "unknown field": (
        lambda spec: {**spec, "config": {**spec["config"], "depth": 3}},
        "model.json: config.depth is not a CodecConfig field",
    ),
    "negative beta": (lambda spec: {**spec, "beta": -1}, "model.json: beta must be a non-neg"),
    "not an object": (lambda spec: [spec], "model.json: must be a JSON object"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_json_is_one_line_naming_the_field(checkpoint, case, error_line):
    change, message = MALFORMED[case]
    spec_file = checkpoint.with_suffix(".json")
    spec_file.write_text(json.dumps(change(json.loads(spec_file.read_text()))))
    error_line(evaluate(checkpoint), message)


def test_model_json_that_is_not_json_is_one_line(checkpoint, error_line):
    checkpoint.with_suffix(".json").write_text("{'kind': base")
    error_line(evaluate(checkpoint),
               "model.json: not valid JSON (line 1, column 2: Expecting property name")
