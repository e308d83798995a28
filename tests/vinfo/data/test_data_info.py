import pytest

from vinfo.data import DatasetNotFoundError, export_synthetic
from vinfo.data.info import inspect_dataset


def test_inspect_coco_and_cityscapes(tmp_path):
    export_synthetic("coco", tmp_path / "coco", n=3)
    export_synthetic("cityscapes", tmp_path / "cs", n=2, split="val")
    coco = inspect_dataset(tmp_path / "coco")
    assert coco.format == "coco" and coco.splits == {"train2017": 3}
    assert coco.image_sizes == {(64, 64): 3} and set(coco.class_histogram) <= {
        "car", "person", "stop sign"}
    cs = inspect_dataset(tmp_path / "cs")
    assert cs.format == "cityscapes" and cs.splits == {"val": 2}
    assert sum(cs.class_histogram.values()) == 2 * 64 * 64
    assert "road" in cs.class_histogram and "val: 2 images" in str(cs)


def test_inspect_unknown_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no known dataset layout"):
        inspect_dataset(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        inspect_dataset(tmp_path / "missing")
