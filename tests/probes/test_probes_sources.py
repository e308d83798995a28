"""Data sources, targets read from datasets, and the shared probe splits."""

import hashlib
import json

import pytest
import torch

from probes.bundles import RepresentationBundle
from probes.sources import (
    DataSource,
    build_probe_inputs,
    read_targets,
    recorded_data,
    resolve_source,
    split_positions,
)
from vinfo.data import SyntheticScenes, downscale
from vinfo.registry import UnknownNameError

SOURCE = DataSource(n_images=12)


def bundle(n=12, channels=4, size=4, seed=0, ids=None):
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(n) if ids is None else ids
    return RepresentationBundle(torch.randn(len(ids), channels, size, size, generator=g), ids, {})


def test_split_positions_are_a_deterministic_sorted_partition():
    train, val, test = split_positions(20, seed=3)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(20))
    assert (len(train), len(val), len(test)) == (12, 4, 4)
    again = split_positions(20, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not torch.equal(test, split_positions(20, seed=4)[2])
    with pytest.raises(ValueError, match="too few images: 4 give"):
        split_positions(4)
    with pytest.raises(ValueError, match="three positive"):
        split_positions(20, fractions=(1, 0, 1))


def test_resolve_source_prefers_arguments_then_record_then_defaults():
    assert resolve_source() == DataSource("synthetic", "val", "tiny", None, None)
    recorded = recorded_data({"data": {"dataset": "synthetic", "preset": "small",
                                       "split": "test"}})
    assert resolve_source(recorded) == DataSource("synthetic", "test", "small")
    assert resolve_source(recorded, split="train", n_images=5) == DataSource(
        "synthetic", "train", "small", None, 5)
    # a codec preset name recorded at top level says nothing about the synthetic preset
    assert resolve_source(recorded_data({"preset": "paper", "split": "train"})).preset == "tiny"
    # a bundle header stores absent fields as empty strings
    assert recorded_data({"dataset": "synthetic", "root": "", "n_images": "7"}) == {
        "dataset": "synthetic", "n_images": 7}


def test_downscale_is_recorded_resolved_and_described():
    # explicit argument, then the record, then 1
    recorded = recorded_data({"data": {"dataset": "synthetic", "downscale": 2}})
    assert recorded == {"dataset": "synthetic", "downscale": 2}
    assert resolve_source(recorded).downscale == 2
    assert resolve_source(recorded, downscale=4).downscale == 4
    assert resolve_source().downscale == 1
    # a bundle header stores it as a string
    source = DataSource(n_images=3, downscale=2)
    assert source.metadata()["downscale"] == "2"
    assert resolve_source(recorded_data(source.metadata())) == source
    assert source.describe() == "synthetic/tiny/val (first 3 images, x2 downscale)"
    assert DataSource(n_images=3).describe() == "synthetic/tiny/val (first 3 images)"


def test_the_digest_of_an_unscaled_source_is_the_one_of_before():
    # representation caches written before the downscale field are keyed by this digest
    before = {"dataset": "synthetic", "split": "val", "preset": "tiny", "root": None,
              "n_images": 12}
    expected = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert SOURCE.digest() == expected
    assert DataSource(n_images=12, downscale=2).digest() not in (expected,
                                                                DataSource(n_images=12,
                                                                           downscale=4).digest())


def test_a_downscaled_source_shrinks_images_and_targets():
    full, half = SOURCE.build(), DataSource(n_images=12, downscale=2).build()
    assert half[0].image.shape == (3, 32, 32)
    assert torch.equal(half[0].image, downscale(full[0], 2).image)
    depth, valid = read_targets(half, torch.tensor([0, 1]), "depth")
    assert depth.shape == valid.shape == (2, 1, 32, 32)
    # depth takes the centre pixel of every 2x2 cell: no value is invented by averaging
    assert torch.equal(depth[1], full[1].depth[..., 1::2, 1::2])


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"dataset": "imagenet"}, UnknownNameError, "valid: synthetic"),
    ({"downscale": 0}, ValueError, "downscale must be an integer >= 1"),
    ({"dataset": "cityscapes"}, ValueError, "needs a data root"),
    ({"preset": "huge"}, ValueError, "unknown synthetic preset"),
    ({"split": "holdout"}, ValueError, "unknown synthetic split"),
    ({"n_images": 0}, ValueError, "must be positive"),
])
def test_bad_sources_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        resolve_source(**kwargs)


def test_synthetic_splits_are_disjoint_image_sets():
    train, val = DataSource(split="train").build(), DataSource(split="val").build()
    assert torch.equal(train[0].image, SyntheticScenes("tiny")[0].image)
    assert not torch.equal(train[0].image, val[0].image)
    assert DataSource(n_images=5).sample_ids(val).tolist() == [0, 1, 2, 3, 4]


def test_read_targets_reads_each_registered_field():
    dataset = SOURCE.build()
    ids = torch.tensor([3, 1])
    image, none = read_targets(dataset, ids, "reconstruction")
    assert none is None and torch.equal(image[0], dataset[3].image)
    depth, valid = read_targets(dataset, ids, "depth")
    assert depth.shape == valid.shape == (2, 1, 64, 64) and valid.dtype == torch.bool
    assert torch.equal(valid[1], dataset[1].depth_valid)
    labels, _ = read_targets(dataset, ids, "segmentation")
    assert labels.dtype == torch.int64 and torch.equal(labels[0, 0], dataset[3].segmentation)


def test_probe_inputs_share_splits_and_targets_between_representations():
    reverse = bundle(seed=1, ids=torch.arange(11, -1, -1))
    inputs = build_probe_inputs({"a": bundle(seed=0), "b": reverse}, ["segmentation", "depth"],
                                SOURCE)
    a, b = inputs.data["a"]["depth"], inputs.data["b"]["depth"]
    assert a.test.z is b.test.z and a.test.mask is b.test.mask  # one copy, paired
    assert [len(ids) for ids in inputs.sample_ids] == [8, 2, 2]
    dataset = SOURCE.build()
    first_test = int(inputs.sample_ids[2][0])
    assert torch.equal(a.test.z[0], dataset[first_test].depth)
    # bundle b lists its ids in reverse: rows are matched by id, not by position
    assert torch.equal(b.test.y[0], reverse.y_hat[11 - first_test])
    assert inputs.head_kwargs == {"segmentation": {"num_classes": 7}}


@pytest.mark.parametrize(("representations", "targets", "source", "message"), [
    ({"a": bundle(), "b": bundle(ids=torch.arange(1, 13))}, ["depth"], SOURCE, "different images"),
    ({"a": bundle(size=5)}, ["depth"], SOURCE, "5x5 but the depth targets are 64x64"),
    ({"a": bundle(n=3)}, ["depth"], DataSource(), "too few images"),
    ({"a": bundle(ids=torch.arange(300, 312))}, ["depth"], DataSource(), "beyond the 256"),
    ({"a": bundle()}, ["depth"], DataSource(dataset="coco", root="/nowhere"), "no depth targets"),
    ({"a": bundle()}, ["edges"], SOURCE, "valid: reconstruction"),
    ({}, ["depth"], SOURCE, "no representation"),
])
def test_bad_probe_inputs_are_refused(representations, targets, source, message):
    with pytest.raises(ValueError, match=message):
        build_probe_inputs(representations, targets, source)
