import json

import pytest
import torch

from vinfo.data import CocoDetection, DatasetFormatError, DatasetNotFoundError, export_synthetic


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "coco"
    export_synthetic("coco", root, n=3)
    return root


def _ann_path(root):
    return root / "annotations" / "instances_train2017.json"


def _edit(root, fn):
    path = _ann_path(root)
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_loads_with_categories(tree):
    ds = CocoDetection(tree)
    assert len(ds) == 3 and ds.categories == {3: "car", 1: "person", 13: "stop sign"}
    s = ds[0]
    assert set(s.tasks) == set(CocoDetection.tasks)
    assert s.masks.shape == (len(s.boxes), 64, 64)
    assert CocoDetection(tree, masks=False)[0].masks is None


def test_crowd_and_degenerate_boxes_are_kept_out_of_targets(tree):
    def add(data):
        first = data["annotations"][0]
        data["annotations"].append({**first, "id": 1000, "iscrowd": 1, "bbox": [1, 2, 3, 4]})
        data["annotations"].append({**first, "id": 1001, "bbox": [5, 5, 0, 3]})
    n_before = len(CocoDetection(tree)[0].boxes)
    _edit(tree, add)
    s = CocoDetection(tree)[0]
    assert len(s.boxes) == n_before
    assert s.meta["crowd_boxes"].tolist() == [[1.0, 2.0, 4.0, 6.0]]


def test_images_without_annotations_kept_or_filtered(tree):
    _edit(tree, lambda d: d.update(annotations=[a for a in d["annotations"]
                                                if a["image_id"] != 2]))
    assert len(CocoDetection(tree)) == 3
    assert len(CocoDetection(tree)[1].boxes) == 0
    filtered = CocoDetection(tree, remove_images_without_annotations=True)
    assert [s.meta["image_id"] for s in filtered] == [1, 3]


def test_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="root not found"):
        CocoDetection(tmp_path / "nope")


def test_missing_image_dir(tree):
    with pytest.raises(DatasetNotFoundError, match="val2017"):
        CocoDetection(tree, "val2017")


def test_missing_annotation_file(tree):
    _ann_path(tree).unlink()
    with pytest.raises(DatasetNotFoundError, match="instances_train2017.json"):
        CocoDetection(tree)


def test_malformed_json(tree):
    _ann_path(tree).write_text("{not json")
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        CocoDetection(tree)
    _ann_path(tree).write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetFormatError, match="missing keys"):
        CocoDetection(tree)


def test_unknown_category(tree):
    _edit(tree, lambda d: d["annotations"][0].update(category_id=999))
    with pytest.raises(DatasetFormatError, match="category_id 999"):
        CocoDetection(tree)


def test_missing_image(tree):
    (tree / "train2017" / "000000000002.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="000000000002.png"):
        CocoDetection(tree)


def test_corrupt_image(tree):
    (tree / "train2017" / "000000000003.png").write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match="000000000003.png"):
        CocoDetection(tree)


def test_size_mismatch(tree):
    _edit(tree, lambda d: d["images"][0].update(width=65))
    with pytest.raises(DatasetFormatError, match="size"):
        CocoDetection(tree)


def test_boxes_follow_torchvision_convention(tree):
    s = CocoDetection(tree)[0]
    assert s.boxes.dtype == torch.float32 and s.labels.dtype == torch.int64
    assert (s.boxes[:, 2:] > s.boxes[:, :2]).all()
