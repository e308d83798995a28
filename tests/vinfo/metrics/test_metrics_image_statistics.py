"""Per-image statistics of the task scores: any subset of images, summed, gives that subset's
metric computed independently (numpy, scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import jaccard_score

from vinfo.metrics.task_scores import DepthScores, ReconstructionScores, SegmentationScores

SUBSET = [0, 3, 3, 5, 6]  # with a repeat, as a bootstrap draw has


def _metric_of(scores, rows):
    statistics = scores.image_statistics()
    return scores.metric_from_statistics(statistics[rows].sum(0), len(rows))


def test_reconstruction_statistics_are_per_image_psnr():
    generator = torch.Generator().manual_seed(0)
    scores = ReconstructionScores(primary_only=True)
    images = [torch.rand(4, 3, 16, 16, generator=generator) for _ in range(2)]
    noisy = [(x + 0.1 * torch.randn(x.shape, generator=generator)) for x in images]
    for prediction, target in zip(noisy, images, strict=True):
        scores.add(prediction, target)
    target = torch.cat(images).double().numpy()
    prediction = torch.cat(noisy).double().clamp(0, 1).numpy()
    mse = ((prediction - target) ** 2).mean(axis=(1, 2, 3))
    expected = 10 * np.log10(1 / mse[SUBSET])
    assert _metric_of(scores, SUBSET) == pytest.approx(expected.mean(), rel=1e-5)
    assert _metric_of(scores, list(range(8))) == pytest.approx(scores.primary(), rel=1e-5)


def test_depth_statistics_give_the_rmse_over_the_valid_pixels_of_the_images():
    generator = torch.Generator().manual_seed(1)
    scores = DepthScores()
    target = 5 + 40 * torch.rand(8, 1, 12, 12, generator=generator, dtype=torch.float64)
    prediction = target + 3 * torch.randn(target.shape, generator=generator, dtype=torch.float64)
    prediction = prediction.clamp(min=1.0)
    valid = torch.rand(target.shape, generator=generator) > 0.3
    for part in (slice(0, 4), slice(4, 8)):
        scores.add(prediction[part].float(), target[part].float(), valid[part])
    p, t, v = (a.numpy() for a in (prediction.float().double(), target.float().double(), valid))
    errors = np.concatenate([(p[i] - t[i])[v[i]] for i in SUBSET])
    assert _metric_of(scores, SUBSET) == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-6)


def test_segmentation_statistics_give_the_miou_of_the_pixels_of_the_images():
    generator = torch.Generator().manual_seed(2)
    scores = SegmentationScores(num_classes=4)
    target = torch.randint(0, 4, (8, 10, 10), generator=generator)
    prediction = torch.where(torch.rand(target.shape, generator=generator) < 0.6, target,
                             torch.randint(0, 4, target.shape, generator=generator))
    target[0, 0, :3] = 255  # unlabelled pixels are ignored
    scores.add(prediction[:5], target[:5])
    scores.add(prediction[5:], target[5:])
    t = torch.cat([target[i].flatten() for i in SUBSET]).numpy()
    p = torch.cat([prediction[i].flatten() for i in SUBSET]).numpy()
    labelled = t != 255
    expected = jaccard_score(t[labelled], p[labelled], labels=range(4), average="macro")
    assert _metric_of(scores, SUBSET) == pytest.approx(expected, rel=1e-9)


def test_depth_running_scores_are_the_rmse_over_all_valid_pixels():
    # the running state is summed from the per-image sums: checked against numpy over all images
    generator = torch.Generator().manual_seed(3)
    scores = DepthScores()
    target = 5 + 40 * torch.rand(6, 1, 9, 9, generator=generator, dtype=torch.float64)
    prediction = (target + 2 * torch.randn(target.shape, generator=generator,
                                           dtype=torch.float64)).clamp(min=1.0)
    valid = torch.rand(target.shape, generator=generator) > 0.4
    scores.add(prediction[:2], target[:2], valid[:2])
    scores.add(prediction[2:], target[2:], valid[2:])
    p, t, v = (a.numpy() for a in (prediction, target, valid))
    errors = (p - t)[v]
    assert scores.primary() == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-12)
    assert scores.compute()["abs_rel"] == pytest.approx((np.abs(errors) / t[v]).mean(),
                                                        rel=1e-12)
    with pytest.raises(ValueError, match="differ in shape"):
        scores.add(prediction[:3], target[:2])


def test_segmentation_running_scores_are_the_miou_of_all_labelled_pixels():
    generator = torch.Generator().manual_seed(4)
    scores = SegmentationScores(num_classes=3)
    target = torch.randint(0, 3, (5, 7, 7), generator=generator)
    prediction = torch.randint(0, 3, target.shape, generator=generator)
    target[1, :2] = 255
    scores.add(prediction[:3], target[:3])
    scores.add(prediction[3:], target[3:])
    t, p = target.flatten().numpy(), prediction.flatten().numpy()
    labelled = t != 255
    assert scores.primary() == pytest.approx(
        jaccard_score(t[labelled], p[labelled], labels=range(3), average="macro"), rel=1e-12)
    assert scores.compute()["pixel_accuracy"] == pytest.approx(
        (t[labelled] == p[labelled]).mean(), rel=1e-12)
    with pytest.raises(ValueError, match="predictions for"):
        scores.add(prediction[:2], target[:3])


def test_segmentation_scores_take_class_scores_against_targets_with_a_channel_axis():
    # (B, K, H, W) scores and (B, 1, H, W) targets: the scores are reduced by arg-max over
    # K (the class-0 score map was taken as the prediction before)
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 3, 6, 6, generator=generator)
    target = torch.randint(0, 3, (4, 1, 6, 6), generator=generator)
    scores = SegmentationScores(num_classes=3)
    scores.add(logits, target)
    t, p = target.flatten().numpy(), logits.argmax(1).flatten().numpy()
    assert scores.primary() == pytest.approx(
        jaccard_score(t, p, labels=range(3), average="macro"), rel=1e-12)
    ids = SegmentationScores(num_classes=3)
    ids.add(logits.argmax(1, keepdim=True), target)  # ids with a channel axis
    assert ids.primary() == scores.primary()
