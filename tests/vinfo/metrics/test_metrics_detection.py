"""COCO mAP against pycocotools run on real COCO-format JSON files, and torchmetrics."""

import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vinfo.metrics import DetectionMAP, DetectionResult, detection_map


def _target(boxes, labels, **extra):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.long),
        **extra,
    }


def _pred(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float64),
        "labels": torch.tensor(labels, dtype=torch.long),
    }


def _hand_targets():
    return [
        _target([[10, 10, 50, 60], [60, 20, 90, 80]], [1, 2]),
        _target([[0, 0, 30, 30]], [1]),
        _target([], []),  # an image with nothing to find
    ]


def test_perfect_predictions_give_one(capsys):
    targets = _hand_targets()
    preds = [
        _pred(t["boxes"].tolist(), [0.9] * len(t["labels"]), t["labels"].tolist()) for t in targets
    ]
    result = detection_map(preds, targets)
    assert isinstance(result, DetectionResult)
    assert (result.map.item(), result.map50.item(), result.map75.item()) == (1.0, 1.0, 1.0)
    assert capsys.readouterr().out == ""  # pycocotools' prints are silenced


def test_no_prediction_gives_zero_and_no_target_raises():
    targets = _hand_targets()
    empty = [_pred([], [], []) for _ in targets]
    assert detection_map(empty, targets) == DetectionResult(*torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="no non-crowd ground-truth"):
        detection_map(empty, [_target([], []) for _ in targets])
    with pytest.raises(ValueError, match="one of each per image"):
        detection_map(empty[:2], targets)


def _random_case(num_images=6, seed=0, with_area=True):
    """Integer boxes (exact in xyxy and xywh), jittered predictions, misses, false positives."""
    rng = np.random.default_rng(seed)
    targets, preds, gt_json = [], [], []
    for image in range(num_images):
        m = int(rng.integers(0, 5))  # some images without targets
        xy = rng.integers(0, 200, size=(m, 2))
        wh = rng.integers(8, 80, size=(m, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(float)
        labels = rng.integers(1, 4, size=m)
        iscrowd = (rng.random(m) < 0.15).astype(int)
        area = (wh.prod(axis=1) * rng.uniform(0.5, 1.0, size=m)).round(2)
        target = _target(boxes.tolist(), labels.tolist(), iscrowd=torch.tensor(iscrowd))
        if with_area:
            target["area"] = torch.tensor(area, dtype=torch.float64)
        targets.append(target)
        for j in range(m):
            x, y = xy[j].tolist()
            w, h = wh[j].tolist()
            gt_json.append(
                {
                    "image_id": 100 + image,
                    "category_id": int(labels[j]),
                    "bbox": [x, y, w, h],
                    "area": float(area[j]) if with_area else float(w * h),
                    "iscrowd": int(iscrowd[j]),
                    "segmentation": [[x, y, x, y + h, x + w, y + h, x + w, y]],
                }
            )
        keep = rng.random(m) < 0.8  # missed targets
        jitter = rng.integers(-6, 7, size=(m, 4))
        pred_boxes = (boxes + jitter)[keep]
        pred_labels = labels[keep]
        n_fp = int(rng.integers(0, 3))  # false positives
        fp_xy = rng.integers(0, 200, size=(n_fp, 2))
        fp_boxes = np.concatenate([fp_xy, fp_xy + rng.integers(8, 60, (n_fp, 2))], axis=1)
        pred_boxes = np.concatenate([pred_boxes, fp_boxes.astype(float)]).reshape(-1, 4)
        pred_labels = np.concatenate([pred_labels, rng.integers(1, 4, size=n_fp)])
        scores = rng.random(len(pred_labels))  # continuous: no ties in ranking
        preds.append(_pred(pred_boxes.tolist(), scores.tolist(), pred_labels.tolist()))
    return preds, targets, gt_json


def _pycocotools_on_json(tmp_path, preds, gt_json, num_images):
    for i, annotation in enumerate(gt_json):
        annotation["id"] = i + 1
    dataset = {
        "info": {"description": "vinfo test"},
        "licenses": [],
        "images": [
            {"id": 100 + i, "file_name": f"{i:012d}.jpg", "height": 300, "width": 300}
            for i in range(num_images)
        ],
        "annotations": gt_json,
        "categories": [{"id": c, "name": f"class{c}", "supercategory": "x"} for c in (1, 2, 3)],
    }
    gt_file = tmp_path / "instances_test.json"
    gt_file.write_text(json.dumps(dataset))
    results = [
        {
            "image_id": 100 + i,
            "category_id": label,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": score,
        }
        for i, pred in enumerate(preds)
        for (x1, y1, x2, y2), score, label in zip(
            pred["boxes"].tolist(), pred["scores"].tolist(), pred["labels"].tolist(), strict=True
        )
    ]
    results_file = tmp_path / "detections.json"
    results_file.write_text(json.dumps(results))
    coco_gt = COCO(str(gt_file))
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(results_file)), iouType="bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats[:3]


@pytest.mark.parametrize("with_area", [True, False])
def test_matches_pycocotools_on_json_files(tmp_path, with_area):
    preds, targets, gt_json = _random_case(with_area=with_area)
    reference = _pycocotools_on_json(tmp_path, preds, gt_json, len(targets))
    result = detection_map(preds, targets)
    assert 0.0 < reference[0] < 1.0  # a non-trivial case
    assert [value.item() for value in result] == reference.tolist()  # exactly


def test_matches_torchmetrics_mean_average_precision():
    detection = pytest.importorskip("torchmetrics.detection")
    preds, targets, _ = _random_case(seed=1)
    for t in targets:
        t["iscrowd"] = t["iscrowd"].bool()
    reference = detection.MeanAveragePrecision(iou_type="bbox", backend="pycocotools")
    reference.update(preds, targets)
    expected = reference.compute()
    result = detection_map(preds, targets)
    assert result.map.item() == pytest.approx(expected["map"].item(), abs=1e-6)
    assert result.map50.item() == pytest.approx(expected["map_50"].item(), abs=1e-6)
    assert result.map75.item() == pytest.approx(expected["map_75"].item(), abs=1e-6)


def test_accumulation_equals_one_shot():
    preds, targets, _ = _random_case(seed=2)
    metric = DetectionMAP()
    metric.update(preds[:2], targets[:2])
    metric.update(preds[2:], targets[2:])
    assert metric.compute() == detection_map(preds, targets)
