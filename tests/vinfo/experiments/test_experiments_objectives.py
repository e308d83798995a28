"""Objectives of eq. 3 and eq. 4 on tiny inputs, task targets and the dataset splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from vinfo.data import SyntheticConfig, SyntheticScenes, collate, experiment_datasets
from vinfo.experiments.datasets import (
    dataset_splits,
    experiment_transforms,
    split_indices,
    synthetic_splits,
)
from vinfo.experiments.objectives import (
    BaseObjective,
    EnhancementObjective,
    initialise_head_at_prior,
    objective_for,
    task_target,
)
from vinfo.models import TASKS, BaseCodec, EnhancementCodec, codec_preset
from vinfo.models.tasks import get_task, initialise_head

TINY = codec_preset("tiny").replace(segmentation_classes=7)
SMALL_SCENES = SyntheticConfig.preset("tiny", height=32, width=32, num_images=8)


def batch(n: int = 2):
    samples = [SyntheticScenes(SMALL_SCENES)[i] for i in range(n)]
    return collate(samples)


def test_every_task_has_a_target_of_the_losses_shape():
    # the target is part of each task's registry entry (issue #18): none can lack one
    assert all(callable(get_task(name).target) for name in TASKS.names())
    images, samples = batch()
    assert task_target("reconstruction", images, samples) is images
    depth = task_target("depth", images, samples)
    assert depth.shape == (2, 1, 32, 32)
    assert bool((depth[~torch.stack([s.depth_valid for s in samples])] == 0).all())
    assert task_target("segmentation", images, samples).shape == (2, 32, 32)
    boxes = task_target("detection", images, samples)
    assert len(boxes) == 2 and set(boxes[0]) == {"boxes", "labels"}


@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_base_objective_is_eq3(beta):
    torch.manual_seed(0)
    codec = BaseCodec(TINY, "depth", beta).train()
    images, samples = batch()
    output = BaseObjective(2.0)(codec, (images, samples))
    assert output.batch_size == 2
    assert set(output.metrics) == {"distortion", "bpp", "aux_rmse"}
    m = output.metrics
    expected = 2.0 * (m["distortion"] + beta * m["aux_rmse"]) + m["bpp"]
    assert output.loss.item() == pytest.approx(expected, rel=1e-5)
    assert (m["aux_rmse"] > 0) == (beta > 0)
    output.loss.backward()
    assert codec.f_b.layers[0].weight.grad is not None


@pytest.mark.parametrize("strategy", ["scalable", "standalone", "direct"])
def test_enhancement_objective_is_eq4_and_reports_the_total_rate(strategy):
    torch.manual_seed(0)
    base = BaseCodec(TINY, "depth", 0.1)
    codec = EnhancementCodec(base, strategy, "segmentation", TINY).train()
    images, samples = batch()
    output = EnhancementObjective(0.5)(codec, (images, samples))
    m = output.metrics
    assert output.loss.item() == pytest.approx(0.5 * m["distortion"] + m["bpp"], rel=1e-5)
    assert m["bpp_total"] == pytest.approx(m["bpp"] + m["bpp_base"])
    assert (m["bpp"] == 0) == (strategy == "direct")
    output.loss.backward()
    assert all(p.grad is None for p in codec.base.parameters())


def test_objective_for_dispatches_on_the_model_and_refuses_bad_lambda():
    base = BaseCodec(TINY, "depth")
    assert isinstance(objective_for(base, 1.0), BaseObjective)
    enhancement = EnhancementCodec(base, "direct", "reconstruction", TINY)
    assert isinstance(objective_for(enhancement, 1.0), EnhancementObjective)
    with pytest.raises(TypeError):
        objective_for(torch.nn.Linear(1, 1), 1.0)
    with pytest.raises(TypeError, match="EnhancementCodec"):
        EnhancementObjective(1.0)(base, batch())
    with pytest.raises(ValueError, match="lmbda must be positive"):
        BaseObjective(0.0)


def test_split_indices_are_contiguous_disjoint_and_cover_everything():
    train, val, test = split_indices(256)
    assert (len(train), len(val), len(test)) == (192, 32, 32)
    assert list(train) + list(val) + list(test) == list(range(256))
    assert split_indices(256) == (train, val, test)
    assert [len(r) for r in split_indices(10, 0.01, 0.01)] == [8, 1, 1]
    with pytest.raises(ValueError, match="too few"):
        split_indices(2)
    with pytest.raises(ValueError, match="val_fraction"):
        split_indices(100, 0.0)


def test_synthetic_splits_augment_only_training_images():
    splits = synthetic_splits(SMALL_SCENES, **experiment_transforms(augment=True))
    assert [len(s) for s in splits] == [6, 1, 1]
    plain = SyntheticScenes(SMALL_SCENES)
    assert torch.equal(splits.test[0].image, plain[7].image)
    assert torch.equal(splits.val[0].image, plain[6].image)
    torch.manual_seed(0)
    changed = [not torch.equal(splits.train[i].image, plain[i].image) for i in range(6)]
    assert all(changed)  # colour jitter touches every training image
    assert splits.get("val") is splits.val
    with pytest.raises(ValueError, match="unknown split"):
        splits.get("holdout")


def test_downscale_shrinks_training_and_validation_but_not_test_images():
    splits = synthetic_splits(SMALL_SCENES, **experiment_transforms(augment=False, downscale=2))
    assert splits.train[0].image.shape == (3, 16, 16)
    assert splits.val[0].image.shape == (3, 16, 16)
    assert splits.test[0].image.shape == (3, 32, 32)


def test_real_datasets_need_a_root_and_unknown_ones_list_the_valid_names():
    # one dataset table (issue #18): the experiment datasets are the entries with a split rule
    assert set(experiment_datasets()) == {"synthetic", "coco", "cityscapes"}
    with pytest.raises(ValueError, match="evaluation and probing only.*synthetic, coco"):
        dataset_splits("images")
    with pytest.raises(ValueError, match="data root"):
        dataset_splits("cityscapes")
    with pytest.raises(ValueError, match="valid: synthetic, coco, cityscapes"):
        dataset_splits("imagenet")


def test_a_collated_batch_trains_through_the_loader():
    loader = DataLoader(SyntheticScenes(SMALL_SCENES), batch_size=4, collate_fn=collate)
    images, samples = next(iter(loader))
    output = BaseObjective(1.0)(BaseCodec(TINY, "segmentation"), (images, samples))
    assert torch.isfinite(output.loss)


@pytest.mark.parametrize("task", ["depth", "segmentation"])
def test_head_starts_at_the_prior_loss_at_step_0_is_the_priors(task):
    scenes = SyntheticScenes(SyntheticConfig.preset("tiny", height=32, width=32, num_images=9))
    train = [scenes[i] for i in range(6)]
    torch.manual_seed(0)
    codec = BaseCodec(TINY.replace(segmentation_classes=7), task, 0.1)
    assert initialise_head_at_prior(codec, train)
    images, samples = collate([scenes[i] for i in range(6, 9)])
    output = BaseObjective(1.0)(codec, (images, samples))
    if task == "depth":  # the mean of the valid training pixels, the best constant under RMSE
        mean = np.concatenate([s.depth[s.depth_valid].numpy() for s in train]).astype(float).mean()
        target = np.stack([s.depth.numpy() for s in samples])
        valid = np.stack([s.depth_valid.numpy() for s in samples])
        expected = np.sqrt(((target - mean) ** 2)[valid].mean())
    else:  # K x cross-entropy of the add-one smoothed training class frequencies
        k = 7
        counts = np.ones(k)
        for s in train:
            labels = s.segmentation.numpy()
            counts += np.bincount(labels[labels != 255], minlength=k)
        log_q = np.log(counts / counts.sum())
        labels = np.stack([s.segmentation.numpy() for s in samples])
        expected = k * -log_q[labels[labels != 255]].mean()
    assert output.metrics["distortion"] == pytest.approx(expected, rel=1e-5)
    output.loss.backward()  # zero output weights, yet the output layer gets a gradient
    assert codec.head.net[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("task", ["depth", "segmentation"])
def test_paper_heads_output_their_prior_everywhere(task):
    config = TINY.replace(head_variant="paper", segmentation_classes=7)
    head = get_task(task).build_head(config).eval()
    bias = torch.linspace(-1.0, 2.0, 1 if task == "depth" else 7)
    initialise_head(head, bias)
    with torch.no_grad():
        out = head(torch.rand(2, 3, 64, 64))
    torch.testing.assert_close(out, bias.view(1, -1, 1, 1).expand_as(out))


def test_heads_without_a_dense_output_layer_are_refused():
    with pytest.raises(ValueError, match="no dense output layer"):
        initialise_head(get_task("reconstruction").build_head(TINY), torch.zeros(3))
    assert not get_task("reconstruction").initialise_head(nn.Identity(), [], TINY)
