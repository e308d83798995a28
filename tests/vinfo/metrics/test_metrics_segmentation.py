"""Segmentation metrics against torchmetrics' classification metrics and a numpy count."""

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from vinfo.metrics import (
    SegmentationMetrics,
    SegmentationResult,
    confusion_matrix,
    miou,
    per_class_iou,
    pixel_accuracy,
)

NUM_CLASSES = 5
ABSENT = 4  # never in targets nor predictions
IGNORE = 255


def _labels(batch=3, size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, ABSENT, (batch, size, size), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.2] = IGNORE
    # correct on ~60 % of the pixels, uniform over the present classes elsewhere
    noise = torch.randint(0, ABSENT, target.shape, generator=generator)
    keep = torch.rand(target.shape, generator=generator) < 0.6
    preds = torch.where(keep & (target != IGNORE), target, noise)
    return preds, target


def _numpy_confmat(preds, target):
    p, t = preds.numpy().ravel(), target.numpy().ravel()
    labelled = t != IGNORE
    counts = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(counts, (t[labelled], p[labelled]), 1)
    return counts


def test_confusion_matrix_matches_numpy_count():
    preds, target = _labels()
    confmat = confusion_matrix(preds, target, NUM_CLASSES)
    np.testing.assert_array_equal(confmat.numpy(), _numpy_confmat(preds, target))
    assert confmat.sum().item() == (target != IGNORE).sum().item()


def test_ignored_pixels_never_count():
    preds, target = _labels()
    ignored = target == IGNORE
    assert ignored.any()
    other_preds = preds.clone()
    other_preds[ignored] = (preds[ignored] + 1) % ABSENT
    torch.testing.assert_close(
        confusion_matrix(other_preds, target, NUM_CLASSES),
        confusion_matrix(preds, target, NUM_CLASSES),
    )


def test_scores_match_torchmetrics():
    preds, target = _labels()
    confmat = confusion_matrix(preds, target, NUM_CLASSES)

    jaccard = MulticlassJaccardIndex(NUM_CLASSES, average=None, ignore_index=IGNORE)
    reference_iou = jaccard(preds, target).double()
    iou = per_class_iou(confmat)
    assert iou.shape == (NUM_CLASSES,)
    assert torch.isnan(iou[ABSENT]) and not torch.isnan(iou[:ABSENT]).any()
    torch.testing.assert_close(iou[:ABSENT], reference_iou[:ABSENT])

    macro = MulticlassJaccardIndex(NUM_CLASSES, average="macro", ignore_index=IGNORE)
    assert miou(confmat).item() == pytest.approx(macro(preds, target).item(), rel=1e-6)

    accuracy = MulticlassAccuracy(NUM_CLASSES, average="micro", ignore_index=IGNORE)
    assert pixel_accuracy(confmat).item() == pytest.approx(accuracy(preds, target).item(), rel=1e-6)


def test_predicted_but_absent_class_counts_as_zero():
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    preds = torch.tensor([[[0, 0], [0, 1]]])
    confmat = confusion_matrix(preds, target, num_classes=3)
    iou = per_class_iou(confmat)
    assert iou[0].item() == pytest.approx(0.75)
    assert iou[1].item() == 0.0
    assert torch.isnan(iou[2])
    assert miou(confmat).item() == pytest.approx(0.375)  # class 2 left out, class 1 counted
    assert pixel_accuracy(confmat).item() == pytest.approx(0.75)


def test_logits_are_reduced_by_argmax():
    preds, target = _labels()
    logits = torch.nn.functional.one_hot(preds, NUM_CLASSES).permute(0, 3, 1, 2).float()
    logits = logits + 0.1 * torch.rand(logits.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        confusion_matrix(logits, target, NUM_CLASSES), confusion_matrix(preds, target, NUM_CLASSES)
    )


def test_accumulation_equals_one_shot():
    preds, target = _labels(batch=5)
    metric = SegmentationMetrics(NUM_CLASSES)
    metric.update(preds[:2], target[:2])
    metric.update(preds[2:], target[2:])
    result = metric.compute()
    assert isinstance(result, SegmentationResult)
    confmat = confusion_matrix(preds, target, NUM_CLASSES)
    torch.testing.assert_close(result.per_class_iou, per_class_iou(confmat), equal_nan=True)
    assert result.miou.item() == miou(confmat).item()
    assert result.pixel_accuracy.item() == pixel_accuracy(confmat).item()


def test_invalid_inputs_raise():
    preds, target = _labels()
    bad_target = target.clone()
    bad_target[0, 0, 0] = 7
    with pytest.raises(ValueError, match="target"):
        confusion_matrix(preds, bad_target, NUM_CLASSES)
    bad_preds = preds.clone()
    bad_preds[0, 0, 0] = NUM_CLASSES
    with pytest.raises(ValueError, match="preds"):
        confusion_matrix(bad_preds, target, NUM_CLASSES)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(preds[:, :4], target, NUM_CLASSES)
    empty = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.long)
    with pytest.raises(ValueError, match="no pixel"):
        miou(empty)
    with pytest.raises(ValueError, match="no pixel"):
        pixel_accuracy(empty)
