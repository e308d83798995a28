"""Checkpoints trained by the sweeps record their data; probes read it back (issue #7)."""

import json

import pytest
import torch

from probes.representations import load_representation
from probes.sources import DataSource, recorded_data
from vinfo.data import SyntheticConfig
from vinfo.experiments.sweep import data_record, synthetic_preset_name, train_curve
from vinfo.models import BaseCodec, codec_preset, load_checkpoint, save_checkpoint
from vinfo.train import TrainConfig


def test_a_checkpoint_trained_on_micro_is_probed_on_fresh_micro_images(tmp_path):
    one_step = TrainConfig(lr=1e-4, max_epochs=1, max_steps=1, batch_size=4, quiet=True)
    (run,) = train_curve(tmp_path / "curve", task="depth", lmbdas=[1.0], synthetic="micro",
                         codec="tiny", train=one_step, augment=False)
    spec = json.loads(run.checkpoint.with_suffix(".json").read_text())
    assert spec["data"] == {"dataset": "synthetic", "preset": "micro", "split": "train",
                            "root": None}
    assert isinstance(load_checkpoint(run.checkpoint), BaseCodec)  # "data" is ignored there
    representation = load_representation(run.checkpoint, cache_dir=tmp_path / "cache")
    assert representation.source == DataSource(preset="micro", split="val")
    micro = SyntheticConfig.preset("micro")
    # every image of the preset, at the codec's 16x downsampling
    assert tuple(representation.bundle.y_hat.shape) == (
        micro.num_images, codec_preset("tiny").M, micro.height // 16, micro.width // 16)


def test_data_record_of_real_and_custom_synthetic_data(tmp_path):
    record = data_record("cityscapes", root=tmp_path / "." / "cs", split="train")
    assert record == {"dataset": "cityscapes", "preset": None, "split": "train",
                      "root": str((tmp_path / "cs").resolve())}
    assert recorded_data({"data": record}) == {"dataset": "cityscapes", "split": "train",
                                               "root": str((tmp_path / "cs").resolve())}
    assert synthetic_preset_name(SyntheticConfig.preset("micro")) == "micro"
    assert synthetic_preset_name(SyntheticConfig.preset("micro", num_images=3)) is None
    assert data_record("synthetic", synthetic=SyntheticConfig.preset("tiny"))["preset"] == "tiny"


def test_extra_checkpoint_entries_never_replace_the_spec(tmp_path):
    torch.manual_seed(0)
    model = BaseCodec(codec_preset("tiny"), "depth", beta=0.1)
    with pytest.raises(ValueError, match="replace the spec's \\['beta'\\]"):
        save_checkpoint(model, tmp_path / "m.safetensors", {"beta": 0.0})
    assert not (tmp_path / "m.safetensors").exists()
