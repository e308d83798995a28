"""Object detection: COCO box mAP, mAP@50 and mAP@75, computed by pycocotools.

Inputs are torchvision-style lists with one dict per image:

- prediction: ``boxes`` ``(N, 4)`` as ``(x1, y1, x2, y2)`` in pixels, ``scores`` ``(N,)``,
  ``labels`` ``(N,)`` integer category ids;
- target: ``boxes`` ``(M, 4)`` as ``(x1, y1, x2, y2)``, ``labels`` ``(M,)``, optional
  ``iscrowd`` ``(M,)`` (default 0) and optional ``area`` ``(M,)`` (default box area ``w·h``;
  COCO's own annotations carry the segment area instead, which only matters for the
  small/medium/large breakdown, not for the three scores reported here).

They are turned in memory into a COCO ground-truth set and a COCO result list, with boxes
converted to ``(x, y, w, h)``, and evaluated by ``pycocotools.cocoeval.COCOeval`` with its
default parameters (10 IoU thresholds 0.50:0.05:0.95, 101 recall points, at most 100
detections per image, all areas). pycocotools' console output is silenced.

Images with no prediction, no target or neither are allowed: a target nobody predicted is a
miss, a prediction on an image without targets is a false positive. Categories that only occur
in predictions do not enter the mean, as in COCO.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import Tensor
from torchmetrics import Metric


class DetectionResult(NamedTuple):
    """COCO box scores, each a scalar float64 tensor in ``[0, 1]``.

    Attributes:
        map: AP averaged over IoU thresholds 0.50:0.05:0.95 and categories (COCO "AP").
        map50: AP at IoU 0.50 (PASCAL VOC-like).
        map75: AP at IoU 0.75 (strict).
    """

    map: Tensor
    map50: Tensor
    map75: Tensor


class _Prediction(NamedTuple):
    boxes: Tensor  # (N, 4) xyxy, float64
    scores: Tensor  # (N,)
    labels: Tensor  # (N,)


class _Target(NamedTuple):
    boxes: Tensor  # (M, 4) xyxy, float64
    labels: Tensor  # (M,)
    iscrowd: Tensor  # (M,)
    area: Tensor  # (M,)


def _boxes(value: Tensor, key: str, index: int) -> Tensor:
    boxes = torch.as_tensor(value).detach().cpu().to(torch.float64)
    if boxes.numel() == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"image {index}: {key} must have shape (N, 4), got {tuple(boxes.shape)}")
    return boxes


def _vector(value, length: int, name: str, index: int, dtype: torch.dtype) -> Tensor:
    vector = torch.as_tensor(value).detach().cpu().to(dtype).reshape(-1)
    if vector.numel() != length:
        raise ValueError(f"image {index}: {name} has {vector.numel()} entries for {length} boxes")
    return vector


def _parse_prediction(pred: Mapping[str, Tensor], index: int) -> _Prediction:
    boxes = _boxes(pred["boxes"], "prediction boxes", index)
    n = boxes.shape[0]
    return _Prediction(
        boxes=boxes,
        scores=_vector(pred["scores"], n, "scores", index, torch.float64),
        labels=_vector(pred["labels"], n, "labels", index, torch.long),
    )


def _parse_target(target: Mapping[str, Tensor], index: int) -> _Target:
    boxes = _boxes(target["boxes"], "target boxes", index)
    m = boxes.shape[0]
    iscrowd = target.get("iscrowd")
    area = target.get("area")
    return _Target(
        boxes=boxes,
        labels=_vector(target["labels"], m, "labels", index, torch.long),
        iscrowd=(
            torch.zeros(m, dtype=torch.long)
            if iscrowd is None
            else _vector(iscrowd, m, "iscrowd", index, torch.long)
        ),
        area=(
            (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            if area is None
            else _vector(area, m, "area", index, torch.float64)
        ),
    )


def _xywh(boxes: Tensor) -> list[list[float]]:
    return torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()


def _evaluate(predictions: Sequence[_Prediction], targets: Sequence[_Target]) -> DetectionResult:
    if len(predictions) != len(targets):
        raise ValueError(
            f"{len(predictions)} prediction dicts for {len(targets)} target dicts: need one of "
            "each per image"
        )
    if not any(bool((t.iscrowd == 0).any()) for t in targets):
        raise ValueError("no non-crowd ground-truth box: mAP is undefined")

    images = [{"id": i} for i in range(len(targets))]
    annotations = []
    for image_id, target in enumerate(targets):
        for bbox, label, crowd, area in zip(
            _xywh(target.boxes),
            target.labels.tolist(),
            target.iscrowd.tolist(),
            target.area.tolist(),
            strict=True,
        ):
            # ids start at 1: COCOeval stores matched ids in arrays where 0 means "unmatched"
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": bbox,
                    "area": area,
                    "iscrowd": crowd,
                }
            )
    detections = [
        {"image_id": image_id, "category_id": label, "bbox": bbox, "score": score}
        for image_id, pred in enumerate(predictions)
        for bbox, label, score in zip(
            _xywh(pred.boxes), pred.labels.tolist(), pred.scores.tolist(), strict=True
        )
    ]
    labels = {a["category_id"] for a in annotations} | {d["category_id"] for d in detections}
    categories = [{"id": label, "name": str(label)} for label in sorted(labels)]

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        coco_gt.createIndex()
        if detections:
            coco_dt = coco_gt.loadRes(detections)
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": images, "annotations": [], "categories": categories}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = np.asarray(evaluator.stats[:3], dtype=np.float64)
    return DetectionResult(*(torch.tensor(s, dtype=torch.float64) for s in stats))


def detection_map(
    preds: Sequence[Mapping[str, Tensor]], targets: Sequence[Mapping[str, Tensor]]
) -> DetectionResult:
    """COCO box mAP, mAP@50 and mAP@75 of a set of images.

    Args:
        preds: one dict per image with ``boxes`` ``(N, 4)`` xyxy, ``scores`` ``(N,)`` and
            ``labels`` ``(N,)``, as returned by torchvision detection models in eval mode.
        targets: one dict per image with ``boxes`` ``(M, 4)`` xyxy and ``labels`` ``(M,)``,
            optionally ``iscrowd`` ``(M,)`` and ``area`` ``(M,)``.

    Returns:
        :class:`DetectionResult` of scalar float64 tensors, exactly pycocotools' ``stats[0:3]``.

    Raises:
        ValueError: lists of different lengths, malformed boxes, or no non-crowd target box.
    """
    return _evaluate(
        [_parse_prediction(p, i) for i, p in enumerate(preds)],
        [_parse_target(t, i) for i, t in enumerate(targets)],
    )


class DetectionMAP(Metric):
    """COCO box mAP over all images passed to :meth:`update`, computed by pycocotools.

    The boxes of every batch are kept (on the CPU) until :meth:`compute`, since COCO AP ranks
    all detections of a category over the whole set and cannot be summed per batch. Images are
    numbered in the order they arrive. State is not synchronised across processes.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False
    metric_names = ("map", "map50", "map75")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in (
            "pred_boxes",
            "pred_scores",
            "pred_labels",
            "target_boxes",
            "target_labels",
            "target_iscrowd",
            "target_area",
        ):
            self.add_state(name, default=[], dist_reduce_fx=None)

    def update(
        self, preds: Sequence[Mapping[str, Tensor]], targets: Sequence[Mapping[str, Tensor]]
    ) -> None:
        """Add a batch: one prediction dict and one target dict per image (see module doc)."""
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} prediction dicts for {len(targets)} target dicts")
        offset = len(self.target_boxes)
        for i, (pred, target) in enumerate(zip(preds, targets, strict=True)):
            p = _parse_prediction(pred, offset + i)
            t = _parse_target(target, offset + i)
            self.pred_boxes.append(p.boxes)
            self.pred_scores.append(p.scores)
            self.pred_labels.append(p.labels)
            self.target_boxes.append(t.boxes)
            self.target_labels.append(t.labels)
            self.target_iscrowd.append(t.iscrowd)
            self.target_area.append(t.area)

    def compute(self) -> DetectionResult:
        predictions = [
            _Prediction(*fields)
            for fields in zip(self.pred_boxes, self.pred_scores, self.pred_labels, strict=True)
        ]
        targets = [
            _Target(*fields)
            for fields in zip(
                self.target_boxes,
                self.target_labels,
                self.target_iscrowd,
                self.target_area,
                strict=True,
            )
        ]
        return _evaluate(predictions, targets)


__all__ = ["DetectionMAP", "DetectionResult", "detection_map"]
