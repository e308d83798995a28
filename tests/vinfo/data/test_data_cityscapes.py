import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from vinfo.data import (
    Cityscapes,
    DatasetFormatError,
    DatasetNotFoundError,
    decode_disparity,
    disparity_to_depth,
    export_synthetic,
    label_ids_to_train_ids,
)
from vinfo.data.cityscapes import VERIFY_LEVELS

# (name, labelId, trainId) copied from cityscapesScripts, cityscapesscripts/helpers/labels.py
OFFICIAL = [
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255),
    ("out of roi", 3, 255), ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255),
    ("road", 7, 0), ("sidewalk", 8, 1), ("parking", 9, 255), ("rail track", 10, 255),
    ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4), ("guard rail", 14, 255),
    ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8),
    ("terrain", 22, 9), ("sky", 23, 10), ("person", 24, 11), ("rider", 25, 12),
    ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15), ("caravan", 29, 255),
    ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18),
    ("license plate", -1, -1),
]


def test_label_ids_to_train_ids_matches_official_table():
    ids = torch.tensor([i for _, i, _ in OFFICIAL if i >= 0])
    assert ids.tolist() == list(range(34))
    expected = [t for _, i, t in OFFICIAL if i >= 0]
    assert label_ids_to_train_ids(ids).tolist() == expected
    as_png = label_ids_to_train_ids(ids.numpy().astype(np.uint8))  # what a label PNG decodes to
    assert as_png.dtype == torch.int64 and as_png.tolist() == expected
    # license plate: id -1 (trainId -1) is ignored; stored as 255 in a uint8 label image
    assert label_ids_to_train_ids(np.array([255], dtype=np.uint8)).tolist() == [255]
    assert sorted({t for t in expected if t != 255}) == list(range(19))


@pytest.mark.parametrize("bad", [34, 100, -3])
def test_label_id_outside_mapping_raises(bad):
    with pytest.raises(ValueError, match=str(bad)):
        label_ids_to_train_ids(torch.tensor([[7, bad]]))


def test_disparity_decoding_on_hand_made_pixels():
    p = np.array([[0, 1, 257, 513], [2, 65535, 129, 0]], dtype=np.uint16)
    d, valid = decode_disparity(p)
    expected = np.array([[0, 0, 1.0, 2.0], [1 / 256, 65534 / 256, 0.5, 0]])
    assert np.array_equal(d.numpy(), expected.astype(np.float32))
    assert valid.tolist() == [[False, True, True, True], [True, True, True, False]]
    z, zvalid = disparity_to_depth(d, valid, baseline_m=0.2, fx_px=2000.0)
    # p = 1 means d = 0: infinitely far, so invalid as metric depth
    assert zvalid.tolist() == [[False, False, True, True], [True, True, True, False]]
    assert z[0, 2] == pytest.approx(400.0) and z[0, 3] == pytest.approx(200.0)
    assert z[1, 2] == pytest.approx(800.0) and z[1, 0] == pytest.approx(0.2 * 2000 * 256)
    assert (z[~zvalid] == 0).all()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "cs"
    export_synthetic("cityscapes", root, n=3)
    return root


def _file(root, kind, suffix, i=0):
    return root / kind / "train" / "synthetic" / f"synthetic_{i:06d}_000019_{suffix}"


def test_loads_and_reports_tasks(tree):
    ds = Cityscapes(tree)
    s = ds[0]
    assert len(ds) == 3 and set(Cityscapes.tasks) == set(s.tasks)
    only_seg = Cityscapes(tree, targets=("segmentation",))[0]
    assert only_seg.depth is None and only_seg.segmentation is not None


def test_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="root not found"):
        Cityscapes(tmp_path / "nope")


def test_missing_split(tree):
    with pytest.raises(DatasetNotFoundError, match="leftImg8bit/val"):
        Cityscapes(tree, "val")
    with pytest.raises(ValueError, match="split"):
        Cityscapes(tree, "training")


def test_wrong_layout_no_images(tmp_path):
    (tmp_path / "leftImg8bit" / "train" / "x").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="no images"):
        Cityscapes(tmp_path)


@pytest.mark.parametrize("kind,suffix", [("gtFine", "gtFine_labelIds.png"),
                                         ("disparity", "disparity.png")])
def test_missing_target_file(tree, kind, suffix):
    path = _file(tree, kind, suffix, 1)
    path.unlink()
    with pytest.raises(DatasetNotFoundError, match=path.name):
        Cityscapes(tree)


def test_missing_camera_only_matters_for_metric_depth(tree):
    _file(tree, "camera", "camera.json").unlink()
    Cityscapes(tree)
    with pytest.raises(DatasetNotFoundError, match="camera.json"):
        Cityscapes(tree, depth="metric")


def test_bad_camera_json(tree):
    _file(tree, "camera", "camera.json").write_text(json.dumps({"extrinsic": {}}))
    with pytest.raises(DatasetFormatError, match="baseline"):
        Cityscapes(tree, depth="metric")


@pytest.mark.parametrize("kind,suffix", [("leftImg8bit", "leftImg8bit.png"),
                                         ("gtFine", "gtFine_labelIds.png"),
                                         ("disparity", "disparity.png")])
def test_corrupt_png_fails_at_construction(tree, kind, suffix):
    path = _file(tree, kind, suffix, 2)
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(DatasetFormatError, match=path.name):
        Cityscapes(tree)


def test_truncated_png_fails_at_construction_with_decode(tree):
    path = _file(tree, "leftImg8bit", "leftImg8bit.png", 0)
    path.write_bytes(path.read_bytes()[:200])
    Cityscapes(tree, verify="layout")
    with pytest.raises(DatasetFormatError, match=path.name):
        Cityscapes(tree, verify="decode")


def test_wrong_mode_and_size(tree):
    path = _file(tree, "gtFine", "gtFine_labelIds.png")
    Image.new("RGB", (64, 64)).save(path)
    with pytest.raises(DatasetFormatError, match="labelIds"):
        Cityscapes(tree)
    Image.new("L", (32, 64)).save(path)
    with pytest.raises(DatasetFormatError, match="size"):
        Cityscapes(tree)


def test_label_id_outside_mapping_in_file_fails_at_construction(tree):
    path = _file(tree, "gtFine", "gtFine_labelIds.png", 1)
    labels = np.array(Image.open(path))
    labels[0, 0] = 77
    Image.fromarray(labels).save(path)
    # The default level decodes the label PNGs, so the bad id fails before any sample is read.
    with pytest.raises(DatasetFormatError, match=rf"{path.name}: label ids \[77\].*0\.\.33"):
        Cityscapes(tree)
    with pytest.raises(DatasetFormatError, match=rf"{path.name}.*\[77\]"):
        Cityscapes(tree, verify="decode")
    ds = Cityscapes(tree, verify="header")  # the cheaper explicit level cannot see pixels ...
    ds[0]
    with pytest.raises(DatasetFormatError, match=path.name):
        ds[1]  # ... so reading the sample names the file


def test_truncated_label_png_fails_at_construction(tree):
    path = _file(tree, "gtFine", "gtFine_labelIds.png", 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact, pixel data cut short
    Cityscapes(tree, verify="header")  # the header still parses ...
    with pytest.raises(DatasetFormatError, match=rf"{path.name}: cannot read.*labelIds PNG"):
        Cityscapes(tree)  # ... but the default decodes the labels
    # Without segmentation the label files are not needed, so they are not checked.
    assert len(Cityscapes(tree, targets=("depth",))) == 3


def test_default_level_loads_the_labels_it_checked(tree):
    ds = Cityscapes(tree)
    header = Cityscapes(tree, verify="header")
    for i in range(len(ds)):
        assert torch.equal(ds[i].segmentation, header[i].segmentation)


def test_verify_levels_are_ordered_and_validated(tree):
    # Each level checks everything the previous one does.
    flags = [(lv.headers, lv.labels, lv.pixels) for lv in VERIFY_LEVELS.values()]
    assert list(VERIFY_LEVELS) == ["layout", "header", "labels", "decode"]
    assert (np.diff(np.array(flags, dtype=int), axis=0) >= 0).all()
    with pytest.raises(ValueError, match="layout, header, labels, decode"):
        Cityscapes(tree, verify="pixels")


def test_test_split_and_cities(tmp_path):
    export_synthetic("cityscapes", tmp_path, n=2, split="test", city="berlin")
    shutil.copytree(tmp_path / "leftImg8bit" / "test" / "berlin",
                    tmp_path / "leftImg8bit" / "test" / "bonn")
    with pytest.raises(DatasetNotFoundError, match="bonn"):
        Cityscapes(tmp_path, "test")
    s = Cityscapes(tmp_path, "test", targets=())[0]
    assert s.meta["city"] == "berlin" and s.tasks == ("reconstruction",)
