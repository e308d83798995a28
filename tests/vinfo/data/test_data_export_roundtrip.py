"""Export tiny synthetic trees in the real layouts and read them back with the real loaders."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from vinfo.data import (
    SYNTHETIC_CLASSES,
    Cityscapes,
    CocoDetection,
    SyntheticConfig,
    SyntheticScenes,
    export_synthetic,
    label_ids_to_train_ids,
)
from vinfo.registry import UnknownNameError

N = 12
CFG = SyntheticConfig.preset("tiny", num_images=N)


@pytest.fixture(scope="module")
def synthetic():
    return [SyntheticScenes(CFG)[i] for i in range(N)]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    export_synthetic("coco", root, config=CFG)
    return root


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    export_synthetic("cityscapes", root, config=CFG, split="val")
    return root


def test_coco_layout(coco_root):
    ann = json.loads((coco_root / "annotations" / "instances_train2017.json").read_text())
    assert {c["name"] for c in ann["categories"]} == {"car", "person", "stop sign"}
    assert len(ann["images"]) == N
    assert (coco_root / "train2017" / ann["images"][0]["file_name"]).is_file()
    a = ann["annotations"][0]
    assert a["iscrowd"] == 0 and len(a["bbox"]) == 4 and isinstance(a["segmentation"], dict)


def test_coco_round_trip_is_exact(coco_root, synthetic):
    ds = CocoDetection(coco_root, verify="decode")
    assert len(ds) == N
    coco_id = {k: c.coco_category_id for k, c in enumerate(SYNTHETIC_CLASSES)}
    for original, loaded in zip(synthetic, ds, strict=True):
        assert torch.equal(loaded.image, original.image)
        assert torch.equal(loaded.boxes, original.boxes)
        assert loaded.labels.tolist() == [coco_id[k] for k in original.labels.tolist()]
        assert torch.equal(loaded.masks, original.masks)


def test_coco_annotations_agree_with_pycocotools(coco_root):
    from pycocotools import mask as mask_utils

    coco = COCO(str(coco_root / "annotations" / "instances_train2017.json"))
    for a in coco.dataset["annotations"]:
        m = coco.annToMask(a)
        assert a["area"] == m.sum()
        rle = coco.annToRLE(a)
        assert mask_utils.toBbox(rle).tolist() == a["bbox"]


def test_coco_jpeg_export_is_readable(tmp_path):
    export_synthetic("coco", tmp_path, n=2, image_format="jpg")
    s = CocoDetection(tmp_path)[0]
    assert s.image.shape == (3, 64, 64) and s.masks.shape[0] == len(s.boxes)


def test_cityscapes_layout(cityscapes_root):
    stem = "synthetic_000000_000019"
    for kind, suffix in [("leftImg8bit", "leftImg8bit.png"), ("gtFine", "gtFine_labelIds.png"),
                         ("gtFine", "gtFine_instanceIds.png"), ("disparity", "disparity.png"),
                         ("camera", "camera.json")]:
        assert (cityscapes_root / kind / "val" / "synthetic" / f"{stem}_{suffix}").is_file()
    disp = Image.open(cityscapes_root / "disparity/val/synthetic" / f"{stem}_disparity.png")
    assert np.array(disp).dtype in (np.int32, np.uint16) and np.array(disp).max() > 255
    cam = json.loads((cityscapes_root / "camera/val/synthetic" / f"{stem}_camera.json").read_text())
    assert cam["extrinsic"]["baseline"] > 0 and cam["intrinsic"]["fx"] == CFG.disparity_focal


def test_cityscapes_round_trip(cityscapes_root, synthetic):
    ds = Cityscapes(cityscapes_root, "val", depth="metric", verify="decode")
    disp = Cityscapes(cityscapes_root, "val")
    assert len(ds) == N
    to_label_id = torch.tensor([c.cityscapes_label_id for c in SYNTHETIC_CLASSES])
    for i, original in enumerate(synthetic):
        loaded = ds[i]
        assert torch.equal(loaded.image, original.image)
        seg = original.segmentation
        expected = label_ids_to_train_ids(to_label_id[seg.clamp(max=len(to_label_id) - 1)])
        expected[seg == 255] = 255
        assert torch.equal(loaded.segmentation, expected)
        assert torch.equal(loaded.depth_valid, original.depth_valid)
        v = original.depth_valid
        assert original.depth_unit == "px"  # the synthetic default: disparity in pixels
        # disparity read back to within half a 1/256 px step; metric depth is B·fx / d
        d = disp[i].depth[v]
        assert (d - original.depth[v]).abs().max() <= 0.5 / 256 + 1e-6
        z = CFG.stereo_baseline_m * CFG.disparity_focal / original.depth[v].double()
        rel_step = 0.5 / 256 / d.min()
        err = (loaded.depth[v].double() - z).abs() / z
        assert err.max() <= rel_step * 1.01
        assert disp[i].depth_unit == "px" and loaded.depth_unit == "m"


@pytest.mark.parametrize("n", [0, -1])
def test_export_of_no_images_is_refused_and_writes_nothing(tmp_path, n):
    with pytest.raises(ValueError, match=rf"n must be >= 1.*got {n}"):
        export_synthetic("cityscapes", tmp_path / "out", n=n)
    with pytest.raises(ValueError, match="n must be >= 1"):
        export_synthetic("coco", tmp_path / "out", config=SyntheticConfig.preset("tiny",
                                                                                 num_images=0))
    assert not (tmp_path / "out").exists()


def test_unknown_export_format(tmp_path):
    with pytest.raises(UnknownNameError, match="coco"):
        export_synthetic("kitti", tmp_path, n=1)


def test_export_leaves_no_temporary_files(coco_root, cityscapes_root):
    assert not [p for p in coco_root.rglob("*.tmp*")]
    assert not [p for p in cityscapes_root.rglob("*.tmp*")]
