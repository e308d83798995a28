"""Semantic segmentation: confusion matrix, per-class IoU, mIoU and pixel accuracy.

All scores derive from one ``(K, K)`` confusion matrix counted over every labelled pixel of the
evaluation set (rows: target class, columns: predicted class, the torchmetrics and scikit-learn
convention). Pixels whose target is ``ignore_index`` (255 in Cityscapes, ADE20K and VOC) never
count, whatever their prediction.

Convention for mIoU: a class that appears neither in the targets nor in the predictions has an
undefined IoU (0/0), reported as NaN by :func:`per_class_iou` and left out of the mean, as in
torchmetrics' ``MulticlassJaccardIndex(average="macro")`` and mmsegmentation. A class present in
the targets but never predicted (or the reverse) has IoU 0 and does count.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import multiclass_confusion_matrix


class SegmentationResult(NamedTuple):
    """Scores returned by :class:`SegmentationMetrics`.

    Attributes:
        miou: mean IoU over the classes present in targets or predictions, in ``[0, 1]``.
        per_class_iou: IoU of each class, shape ``(K,)``, NaN for absent classes.
        pixel_accuracy: fraction of labelled pixels whose predicted class is right.
    """

    miou: Tensor
    per_class_iou: Tensor
    pixel_accuracy: Tensor


def confusion_matrix(
    preds: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255
) -> Tensor:
    """Count (target class, predicted class) pairs over labelled pixels.

    Args:
        preds: predicted class ids of shape ``(B, H, W)`` (integer dtype), or per-class scores
            (logits or probabilities) of shape ``(B, K, H, W)``, reduced by arg-max over ``K``.
        target: target class ids of shape ``(B, H, W)``, in ``[0, K)`` or equal to
            ``ignore_index``.
        num_classes: number of classes ``K``.
        ignore_index: target value of unlabelled pixels, not counted; ``None`` counts every pixel.

    Returns:
        ``(K, K)`` int64 tensor; entry ``[t, p]`` counts pixels of target class ``t`` predicted
        as ``p``.

    Raises:
        ValueError: shapes disagree, or a class id lies outside ``[0, K)``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if target.ndim != 3 or target.is_floating_point():
        raise ValueError(
            f"target must hold integer class ids of shape (B, H, W), got "
            f"{target.dtype} {tuple(target.shape)}"
        )
    if preds.ndim == 4:
        if (
            preds.shape[1] != num_classes
            or preds.shape[2:] != target.shape[1:]
            or preds.shape[0] != target.shape[0]
        ):
            raise ValueError(
                f"scores of shape {tuple(preds.shape)} do not match target {tuple(target.shape)} "
                f"and num_classes={num_classes}; expected (B, K, H, W)"
            )
        preds = preds.argmax(dim=1)  # (B, H, W)
    elif preds.ndim == 3:
        if preds.is_floating_point():
            raise ValueError("class-id predictions of shape (B, H, W) must have an integer dtype")
        if preds.shape != target.shape:
            raise ValueError(
                f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape"
            )
    else:
        raise ValueError(
            f"preds must be (B, H, W) class ids or (B, K, H, W) scores, got {tuple(preds.shape)}"
        )

    labelled = (
        target != ignore_index
        if ignore_index is not None
        else torch.ones_like(target, dtype=torch.bool)
    )
    bad_target = labelled & ((target < 0) | (target >= num_classes))
    if bad_target.any():
        raise ValueError(
            f"target holds class ids outside [0, {num_classes}) that are not ignore_index="
            f"{ignore_index}: {target[bad_target].unique().tolist()[:10]}"
        )
    bad_preds = (preds < 0) | (preds >= num_classes)
    if bad_preds.any():
        raise ValueError(
            f"preds hold class ids outside [0, {num_classes}): "
            f"{preds[bad_preds].unique().tolist()[:10]}"
        )
    # ranges are checked above, so torchmetrics' own (slower) validation is not needed
    return multiclass_confusion_matrix(
        preds, target, num_classes, ignore_index=ignore_index, validate_args=False
    )


def _check_confmat(confmat: Tensor) -> None:
    if confmat.ndim != 2 or confmat.shape[0] != confmat.shape[1]:
        raise ValueError(f"expected a square (K, K) confusion matrix, got {tuple(confmat.shape)}")


def per_class_iou(confmat: Tensor) -> Tensor:
    """IoU of each class, ``TP / (TP + FP + FN)``.

    Args:
        confmat: ``(K, K)`` confusion matrix from :func:`confusion_matrix`.

    Returns:
        ``(K,)`` float64 tensor in ``[0, 1]``; NaN for classes absent from both targets and
        predictions.
    """
    _check_confmat(confmat)
    confmat = confmat.double()
    true_positive = confmat.diagonal()
    union = confmat.sum(dim=0) + confmat.sum(dim=1) - true_positive
    return true_positive / union  # 0/0 = NaN marks absent classes


def miou(confmat: Tensor) -> Tensor:
    """Mean IoU over the classes present in targets or predictions.

    Args:
        confmat: ``(K, K)`` confusion matrix from :func:`confusion_matrix`.

    Returns:
        Scalar float64 tensor in ``[0, 1]``.

    Raises:
        ValueError: the matrix counts no pixel, so no class is present.
    """
    iou = per_class_iou(confmat)
    if confmat.sum() == 0:
        raise ValueError("the confusion matrix counts no pixel: mIoU is undefined")
    return iou.nanmean()


def pixel_accuracy(confmat: Tensor) -> Tensor:
    """Fraction of labelled pixels whose predicted class is the target class.

    Args:
        confmat: ``(K, K)`` confusion matrix from :func:`confusion_matrix`.

    Returns:
        Scalar float64 tensor in ``[0, 1]``.

    Raises:
        ValueError: the matrix counts no pixel.
    """
    _check_confmat(confmat)
    total = confmat.sum()
    if total == 0:
        raise ValueError("the confusion matrix counts no pixel: pixel accuracy is undefined")
    return confmat.diagonal().sum().double() / total.double()


class SegmentationMetrics(Metric):
    """mIoU, per-class IoU and pixel accuracy from a confusion matrix summed over batches.

    Accumulation is exact: the scores are those of the confusion matrix of the whole evaluation
    set, not averages of per-batch scores.

    Args:
        num_classes: number of classes ``K``.
        ignore_index: target value of unlabelled pixels; ``None`` counts every pixel.

    Example::

        metric = SegmentationMetrics(num_classes=19)
        for logits, labels in batches:  # (B, 19, H, W), (B, H, W)
            metric.update(logits, labels)
        result = metric.compute()  # result.miou, result.per_class_iou, result.pixel_accuracy
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False
    metric_names = ("miou", "pixel-accuracy")

    def __init__(self, num_classes: int, ignore_index: int | None = 255, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state(
            "confmat",
            default=torch.zeros(num_classes, num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch: ``preds`` ``(B, H, W)`` ids or ``(B, K, H, W)`` scores, ``target`` ids."""
        self.confmat += confusion_matrix(preds, target, self.num_classes, self.ignore_index)

    def compute(self) -> SegmentationResult:
        return SegmentationResult(
            miou=miou(self.confmat),
            per_class_iou=per_class_iou(self.confmat),
            pixel_accuracy=pixel_accuracy(self.confmat),
        )


__all__ = [
    "SegmentationMetrics",
    "SegmentationResult",
    "confusion_matrix",
    "miou",
    "per_class_iou",
    "pixel_accuracy",
]
