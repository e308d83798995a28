"""Every metric class agrees with bdrate.directions, the single table of metric directions."""

import pytest
from torchmetrics import Metric

import vinfo.metrics
from bdrate.directions import higher_is_better, is_known_metric

METRIC_CLASSES = [
    obj
    for name in vinfo.metrics.__all__
    if isinstance(obj := getattr(vinfo.metrics, name), type) and issubclass(obj, Metric)
]


def test_all_metric_classes_are_found():
    names = {cls.__name__ for cls in METRIC_CLASSES}
    assert names >= {
        "PSNR",
        "MSSSIM",
        "RMSE",
        "SegmentationMetrics",
        "DetectionMAP",
        "DepthMetrics",
    }


@pytest.mark.parametrize("cls", METRIC_CLASSES, ids=lambda cls: cls.__name__)
def test_higher_is_better_agrees_with_direction_table(cls):
    assert cls.metric_names, "a metric class must name what compute() returns"
    for name in cls.metric_names:
        assert is_known_metric(name), f"{cls.__name__}: {name!r} is not in bdrate.directions"
    directions = {higher_is_better(name) for name in cls.metric_names}
    # one direction for all returned values, or None when they disagree (e.g. depth errors
    # and delta accuracies)
    expected = directions.pop() if len(directions) == 1 else None
    assert cls.higher_is_better is expected


@pytest.mark.parametrize("cls", METRIC_CLASSES, ids=lambda cls: cls.__name__)
def test_metadata_is_declared(cls):
    assert cls.full_state_update is False
    assert isinstance(cls.is_differentiable, bool)
