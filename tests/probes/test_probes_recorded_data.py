"""Checkpoints trained by the sweeps record their data; probes read it back (issue #7)."""

import dataclasses
import json

import pytest
import torch

from probes.bundles import RepresentationBundle
from probes.representations import load_representation
from probes.sources import DataSource, build_probe_inputs, recorded_data
from vinfo.data import SyntheticConfig, export_synthetic
from vinfo.data.synthetic import synthetic_preset_name
from vinfo.experiments.presets import get_preset
from vinfo.experiments.probe_step import probe_source
from vinfo.experiments.sweep import data_record, train_curve
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
    record = data_record("cityscapes", root=tmp_path / "." / "cs", split="train", downscale=2)
    assert record == {"dataset": "cityscapes", "preset": None, "split": "train",
                      "root": str((tmp_path / "cs").resolve()), "downscale": 2}
    assert recorded_data({"data": record}) == {"dataset": "cityscapes", "split": "train",
                                               "root": str((tmp_path / "cs").resolve()),
                                               "downscale": 2}
    assert data_record("coco", root=tmp_path, split="train2017")["downscale"] == 1
    assert synthetic_preset_name(SyntheticConfig.preset("micro")) == "micro"
    assert synthetic_preset_name(SyntheticConfig.preset("micro", num_images=3)) is None
    assert data_record("synthetic", synthetic=SyntheticConfig.preset("tiny"))["preset"] == "tiny"
    # synthetic records keep their earlier form unless the codec saw shrunk images
    assert "downscale" not in data_record("synthetic")
    assert data_record("synthetic", downscale=2)["downscale"] == 2
    with pytest.raises(ValueError, match="downscale must be >= 1"):
        data_record("cityscapes", root=tmp_path, downscale=0)


SIZE = 64  # the exported images are 64x64; the paper preset's codec sees them at 32x32
N_VAL = 10


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory):
    """A tiny Cityscapes tree: 6 train and 10 val images of synthetic scenes."""
    root = tmp_path_factory.mktemp("cityscapes")
    export_synthetic("cityscapes", root, n=6, config="tiny", split="train")
    val = SyntheticConfig.preset("tiny", seed=1)
    export_synthetic("cityscapes", root, n=N_VAL, config=val, split="val")
    return root


def test_reproduce_probes_real_data_on_its_val_split_at_the_codec_resolution(cityscapes_root):
    paper = get_preset("paper")
    source = probe_source(paper, paper.probes, cityscapes_root)
    assert source == {"dataset": "cityscapes", "root": str(cityscapes_root.resolve()),
                      "split": "val", "n_images": paper.probes.n_images, "downscale": 2}
    data = DataSource(**source).build()
    assert len(data) == N_VAL and data[0].image.shape == (3, SIZE // 2, SIZE // 2)
    coco = dataclasses.replace(paper, dataset="coco")
    assert probe_source(coco, paper.probes, cityscapes_root)["split"] == "val2017"


def test_probe_targets_of_downscaled_cityscapes_are_half_the_exported_size(cityscapes_root):
    source = DataSource(dataset="cityscapes", split="val", root=str(cityscapes_root),
                        downscale=2)
    y = torch.randn(N_VAL, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    inputs = build_probe_inputs({"a": RepresentationBundle(y, torch.arange(N_VAL), {})},
                                ["reconstruction", "depth", "segmentation"], source)
    splits = inputs.data["a"]
    assert splits["reconstruction"].train.z.shape[-3:] == (3, SIZE // 2, SIZE // 2)
    assert splits["depth"].val.z.shape[-2:] == splits["depth"].val.mask.shape[-2:] == (
        SIZE // 2, SIZE // 2)
    assert splits["segmentation"].test.z.shape[-2:] == (SIZE // 2, SIZE // 2)
    full = dataclasses.replace(source, downscale=1).build()
    first_test = int(inputs.sample_ids[2][0])
    # labels and depth take the centre pixel of each 2x2 cell of the exported maps
    assert torch.equal(splits["segmentation"].test.z[0, 0],
                       full[first_test].segmentation[1::2, 1::2])
    assert torch.equal(splits["depth"].test.z[0], full[first_test].depth[..., 1::2, 1::2])


def test_a_codec_trained_on_downscaled_cityscapes_is_probed_at_its_resolution(
        cityscapes_root, tmp_path):
    one_step = TrainConfig(lr=1e-4, max_epochs=1, max_steps=1, batch_size=2, quiet=True)
    (run,) = train_curve(tmp_path / "curve", task="depth", lmbdas=[1.0], dataset="cityscapes",
                         data_root=cityscapes_root, codec="tiny", train=one_step, downscale=2,
                         augment=False)
    spec = json.loads(run.checkpoint.with_suffix(".json").read_text())
    assert spec["data"] == {"dataset": "cityscapes", "preset": None, "split": "train",
                            "root": str(cityscapes_root.resolve()), "downscale": 2}
    # the codec trained on the official train split: probes read the official val split
    representation = load_representation(run.checkpoint, cache_dir=tmp_path / "cache")
    assert representation.source == DataSource(dataset="cityscapes", split="val", preset=None,
                                                root=str(cityscapes_root.resolve()), downscale=2)
    # 64x64 images shrunk to 32x32, then the codec's 16x downsampling: 2x2 (4x4 unshrunk)
    assert tuple(representation.bundle.y_hat.shape) == (N_VAL, codec_preset("tiny").M, 2, 2)


def test_extra_checkpoint_entries_never_replace_the_spec(tmp_path):
    torch.manual_seed(0)
    model = BaseCodec(codec_preset("tiny"), "depth", beta=0.1)
    with pytest.raises(ValueError, match="replace the spec's \\['beta'\\]"):
        save_checkpoint(model, tmp_path / "m.safetensors", {"beta": 0.0})
    assert not (tmp_path / "m.safetensors").exists()
