import pytest
import torch

from vinfo.data import (
    DEPTH,
    DETECTION,
    IGNORE_INDEX,
    RECONSTRUCTION,
    SEGMENTATION,
    Sample,
    collate,
    same_size_batches,
)


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


def test_collate_pads_mixed_sizes_with_what_no_target_counts():
    small = Sample(
        torch.rand(3, 4, 5),
        depth=torch.ones(1, 4, 5),
        depth_valid=torch.ones(1, 4, 5, dtype=torch.bool),
        depth_unit="m",
        segmentation=torch.zeros(4, 5, dtype=torch.int64),
        boxes=torch.tensor([[1.0, 1, 3, 3]]),
        labels=torch.tensor([2]),
        masks=torch.ones(1, 4, 5, dtype=torch.bool),
    )
    large = Sample(torch.rand(3, 6, 3))
    images, (padded, same) = collate([small, large])
    assert images.shape == (2, 3, 6, 5)
    assert torch.equal(images[0, :, :4, :5], small.image) and images[0, :, 4:].abs().sum() == 0
    assert torch.equal(images[1, :, :, :3], large.image) and images[1, :, :, 3:].abs().sum() == 0
    assert padded.depth_valid.sum() == small.depth_valid.sum()  # padding is invalid depth
    assert (padded.segmentation[4:] == IGNORE_INDEX).all() and padded.masks.sum() == 20
    assert torch.equal(padded.boxes, small.boxes) and same.meta["unpadded_size"] == (6, 3)
    with pytest.raises(ValueError, match="smaller"):
        small.pad_to(3, 5)


def test_same_size_batches_split_on_size_changes_and_never_pad():
    sizes = [(4, 4), (4, 4), (4, 4), (6, 4), (4, 4)]
    samples = [Sample(torch.rand(3, h, w)) for h, w in sizes]
    batches = list(same_size_batches(samples, batch_size=2))
    assert [tuple(images.shape) for images, _ in batches] == [
        (2, 3, 4, 4), (1, 3, 4, 4), (1, 3, 6, 4), (1, 3, 4, 4)
    ]
    assert torch.equal(torch.cat([b[0].flatten() for b in batches]),
                       torch.cat([s.image.flatten() for s in samples]))
