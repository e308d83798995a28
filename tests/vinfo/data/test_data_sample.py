import pytest
import torch

from vinfo.data import DEPTH, DETECTION, RECONSTRUCTION, SEGMENTATION, Sample, collate


def _image(h=8, w=6):
    return torch.rand(3, h, w)


def test_tasks_follow_present_targets():
    assert Sample(_image()).tasks == (RECONSTRUCTION,)
    s = Sample(
        _image(),
        depth=torch.ones(1, 8, 6), depth_valid=torch.ones(1, 8, 6, dtype=torch.bool),
        depth_unit="m", segmentation=torch.zeros(8, 6, dtype=torch.long),
        boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long),
    )
    assert s.tasks == (RECONSTRUCTION, DEPTH, SEGMENTATION, DETECTION)
    assert s.size == (8, 6)


@pytest.mark.parametrize("kwargs", [
    {"depth": torch.ones(1, 8, 6)},  # no validity mask
    {"depth": torch.ones(1, 8, 5), "depth_valid": torch.ones(1, 8, 5, dtype=torch.bool),
     "depth_unit": "m"},
    {"segmentation": torch.zeros(6, 8, dtype=torch.long)},
    {"boxes": torch.zeros(2, 4)},  # no labels
    {"boxes": torch.zeros(2, 4), "labels": torch.zeros(2, dtype=torch.long),
     "masks": torch.zeros(1, 8, 6, dtype=torch.bool)},
])
def test_shape_mismatch_is_refused(kwargs):
    with pytest.raises(ValueError):
        Sample(_image(), **kwargs)


def test_image_must_be_rgb():
    with pytest.raises(ValueError, match="image"):
        Sample(torch.rand(1, 8, 6))


def test_detection_target_and_collate():
    s = Sample(_image(), boxes=torch.tensor([[0.0, 0, 2, 2]]), labels=torch.tensor([3]),
               masks=torch.ones(1, 8, 6, dtype=torch.bool))
    t = s.detection_target()
    assert t["masks"].dtype == torch.uint8 and t["labels"].tolist() == [3]
    with pytest.raises(ValueError):
        Sample(_image()).detection_target()
    images, samples = collate([s, s])
    assert images.shape == (2, 3, 8, 6) and samples == [s, s]
