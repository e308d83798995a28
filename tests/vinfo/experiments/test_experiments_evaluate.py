"""Evaluation and training on datasets whose images differ in size (COCO)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vinfo.data import SyntheticConfig, SyntheticScenes, collate
from vinfo.experiments.evaluate import evaluate, trivial_metrics
from vinfo.experiments.objectives import BaseObjective
from vinfo.models import BaseCodec, codec_preset

TINY = codec_preset("tiny").replace(segmentation_classes=7)


class MixedSizes(torch.utils.data.Dataset):
    """Synthetic scenes at 32x32 and 48x32, alternating in runs of two."""

    def __init__(self) -> None:
        micro = SyntheticConfig.preset("micro", num_images=6)
        taller = dataclasses.replace(micro, height=48)
        self.parts = [SyntheticScenes(micro), SyntheticScenes(taller)]

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int):
        return self.parts[(index // 2) % 2][index]


@pytest.mark.parametrize("task", ["depth", "segmentation", "reconstruction"])
def test_mixed_sizes_evaluate_as_one_image_at_a_time(task):
    torch.manual_seed(0)
    model = BaseCodec(TINY, task, beta=0.1).eval()
    data = MixedSizes()
    batched = evaluate(model, data, batch_size=4, bitstream_images=0)
    single = evaluate(model, data, batch_size=1, bitstream_images=0)
    assert batched.metrics == pytest.approx(single.metrics, rel=1e-5)
    assert batched.bpp == pytest.approx(single.bpp, rel=1e-5)
    assert trivial_metrics(task, [data[0], data[2]], data, TINY)  # scores without padding


def test_a_mixed_size_batch_trains_on_padded_images():
    torch.manual_seed(0)
    model = BaseCodec(TINY, "depth", beta=0.1)
    data = MixedSizes()
    images, samples = collate([data[0], data[2]])
    assert images.shape == (2, 3, 48, 32)
    step = BaseObjective(1.0)(model, (images, samples))
    step.loss.backward()
    assert torch.isfinite(step.loss)


def test_trivial_predictors_are_per_pixel_priors():
    data = MixedSizes()
    same = [data[i] for i in (0, 1, 4, 5)]  # the 32x32 images
    # on its own fitting images a per-pixel mean has the least squared error of any
    # prediction that ignores the image, so it beats the global mean depth
    valid = torch.stack([s.depth_valid for s in same])
    depth = torch.stack([s.depth for s in same])
    global_rmse = (depth[valid] - depth[valid].mean()).pow(2).mean().sqrt()
    assert trivial_metrics("depth", same, same, TINY)["rmse"] < float(global_rmse)
    # identical images are predicted exactly
    copies = [same[0]] * 3
    assert trivial_metrics("depth", copies, copies, TINY)["rmse"] == pytest.approx(0, abs=1e-5)
    assert trivial_metrics("segmentation", copies, copies, TINY)["pixel_accuracy"] == 1.0


@pytest.mark.parametrize("task", ["depth", "segmentation", "reconstruction"])
def test_per_image_statistics_give_the_dataset_metric_and_rate(task):
    """The per-image rates average to the evaluation's rate, and the summed per-image
    statistics give its primary metric (what the BD bootstrap resamples)."""
    from vinfo.models.tasks import get_task

    torch.manual_seed(0)
    model = BaseCodec(TINY, task, beta=0.1).eval()
    data = MixedSizes()
    result = evaluate(model, data, batch_size=4, bitstream_images=0)
    assert len(result.image_bpp) == len(result.image_statistics) == len(data)
    assert sum(result.image_bpp) / len(data) == pytest.approx(result.bpp, rel=1e-9)
    spec = get_task(task)
    scores = spec.scores(spec.num_classes(TINY))
    total = torch.tensor(result.image_statistics, dtype=torch.float64).sum(0)
    assert scores.metric_from_statistics(total, len(data)) == pytest.approx(
        result.metrics[scores.statistic_metric], rel=1e-6)
