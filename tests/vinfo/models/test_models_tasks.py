import pytest
import torch

from bdrate.directions import metric_direction
from vinfo.models.config import HEAD_VARIANTS, codec_preset
from vinfo.models.tasks import TASKS, depth_loss, get_task

TINY = codec_preset("tiny")


def make_target(task: str, height: int = 64, width: int = 64):
    generator = torch.Generator().manual_seed(1)  # not the image's seed: RMSE 0 has no gradient
    if task == "reconstruction":
        return torch.rand(1, 3, height, width, generator=generator)
    if task == "depth":
        depth = torch.rand(1, 1, height, width, generator=generator) + 0.5
        depth[..., :4, :] = 0  # invalid rows
        return depth
    if task == "segmentation":
        classes = TINY.segmentation_classes
        labels = torch.randint(0, classes, (1, height, width), generator=generator)
        labels[..., :4] = 255
        return labels
    return [{"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0]]), "labels": torch.tensor([3])}]


@pytest.mark.parametrize("name", TASKS.names())
def test_task_entry_is_consistent(name):
    task = get_task(name)
    assert task.name == name
    assert task.higher_is_better == metric_direction(task.metric).higher_is_better
    assert set(task.heads) == set(HEAD_VARIANTS)


@pytest.mark.parametrize("name", TASKS.names())
def test_light_head_forward_and_loss(name):
    task = get_task(name)
    torch.manual_seed(0)
    head = task.build_head(TINY).train()
    image = torch.rand(1, 3, 64, 64, requires_grad=True)
    target = make_target(name)
    loss = task.loss(head(image, target), target)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert image.grad is not None and bool(image.grad.abs().sum() > 0)


@pytest.mark.parametrize("name", TASKS.names())
def test_paper_head_construction_and_eval_forward(name):
    head = get_task(name).build_head(TINY.replace(head_variant="paper")).eval()
    with torch.no_grad():
        out = head(torch.rand(1, 3, 64, 64))
    if name == "detection":
        assert set(out[0]) == {"boxes", "labels", "scores"}
    else:
        channels = {"reconstruction": 3, "depth": 1, "segmentation": TINY.segmentation_classes}
        assert out.shape == (1, channels[name], 64, 64)


def test_local_weights_are_loaded_never_downloaded(tmp_path):
    from safetensors.torch import save_file

    task = get_task("depth")
    source = task.build_head(TINY)
    save_file(source.state_dict(), tmp_path / "head.safetensors")
    loaded = task.build_head(TINY, tmp_path / "head.safetensors")
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    with pytest.raises(FileNotFoundError):
        task.build_head(TINY, tmp_path / "missing.pth")


def test_depth_loss_ignores_invalid_pixels():
    prediction = torch.ones(1, 1, 2, 2, requires_grad=True)
    target = torch.tensor([[[[2.0, float("nan")], [0.0, 1.0]]]])
    loss = depth_loss(prediction, target)
    torch.testing.assert_close(loss, torch.tensor(0.5**0.5))
    loss.backward()
    assert torch.isfinite(prediction.grad).all()
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_loss(prediction, torch.zeros(1, 1, 2, 2))


def test_detection_head_needs_targets_in_training():
    head = get_task("detection").build_head(TINY).train()
    with pytest.raises(ValueError, match="needs the targets"):
        head(torch.rand(1, 3, 64, 64))
