import shutil

import pytest

from vinfo.data import DatasetFormatError, DatasetNotFoundError, export_synthetic
from vinfo.data.info import inspect_dataset


def test_inspect_coco_and_cityscapes(tmp_path):
    export_synthetic("coco", tmp_path / "coco", n=3)
    export_synthetic("cityscapes", tmp_path / "cs", n=2, split="val")
    coco = inspect_dataset(tmp_path / "coco")
    assert coco.format == "coco" and coco.splits == {"train2017": 3}
    assert coco.targets == ("detection",) and "targets: detection" in str(coco)
    assert coco.image_sizes == {(64, 64): 3} and set(coco.class_histogram) <= {
        "car", "person", "stop sign"}
    cs = inspect_dataset(tmp_path / "cs")
    assert cs.format == "cityscapes" and cs.splits == {"val": 2}
    assert cs.targets == ("segmentation", "depth")
    assert sum(cs.class_histogram.values()) == 2 * 64 * 64
    assert "road" in cs.class_histogram and "val: 2 images" in str(cs)


def test_inspect_unknown_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no known dataset layout"):
        inspect_dataset(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        inspect_dataset(tmp_path / "missing")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut short


def test_corrupt_coco_image_is_reported(tmp_path):
    export_synthetic("coco", tmp_path, n=3)
    path = tmp_path / "train2017" / f"{2:012d}.png"
    _truncate(path)
    with pytest.raises(DatasetFormatError, match=rf"{path.name}: cannot read"):
        inspect_dataset(tmp_path)


def _cityscapes_file(root, kind, suffix, i=1):
    return root / kind / "train" / "synthetic" / f"synthetic_{i:06d}_000019_{suffix}"


@pytest.mark.parametrize(
    ("kind", "suffix", "corrupt", "message"),
    [
        ("disparity", "disparity.png", _truncate, "cannot read.*16-bit disparity PNG"),
        ("camera", "camera.json", lambda p: p.write_text("{not json"), "not valid JSON"),
        ("leftImg8bit", "leftImg8bit.png", _truncate, "cannot read.*RGB PNG"),
        ("gtFine", "gtFine_labelIds.png", _truncate, "cannot read.*labelIds PNG"),
    ],
)
def test_corrupt_cityscapes_file_is_reported(tmp_path, kind, suffix, corrupt, message):
    export_synthetic("cityscapes", tmp_path, n=3)
    path = _cityscapes_file(tmp_path, kind, suffix)
    corrupt(path)
    with pytest.raises(DatasetFormatError, match=rf"{path.name}: {message}"):
        inspect_dataset(tmp_path)


def test_cityscapes_without_depth_is_summarised(tmp_path):
    # Disparity and camera are separate downloads of the real dataset; a tree may lack them.
    export_synthetic("cityscapes", tmp_path, n=2)
    shutil.rmtree(tmp_path / "camera")
    assert inspect_dataset(tmp_path).targets == ("segmentation", "depth")
    shutil.rmtree(tmp_path / "disparity")
    summary = inspect_dataset(tmp_path)
    assert summary.targets == ("segmentation",) and summary.splits == {"train": 2}

