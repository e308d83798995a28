import pytest

from bdrate.directions import (
    METRIC_DIRECTIONS,
    UnknownMetricError,
    higher_is_better,
    known_metrics,
    metric_direction,
    normalize_metric_name,
)


@pytest.mark.parametrize(
    ("name", "canonical", "higher"),
    [
        ("PSNR", "psnr", True),
        ("psnr-rgb", "psnr", True),
        ("ms_ssim_rgb", "ms-ssim", True),
        ("mIoU", "miou", True),
        ("mAP", "map", True),
        ("RMSE", "rmse", False),
        ("abs_rel", "abs-rel", False),
        ("Sq Rel", "sq-rel", False),
        ("rmse_log", "rmse-log", False),
        ("delta1", "delta1", True),
    ],
)
def test_spellings_resolve_to_one_direction(name, canonical, higher):
    assert metric_direction(name).name == canonical
    assert higher_is_better(name) is higher


def test_every_key_is_normalized_and_canonical_names_are_unique():
    assert all(key == normalize_metric_name(key) for key in METRIC_DIRECTIONS)
    assert len(known_metrics()) == len(set(known_metrics()))


def test_unknown_metric_lists_known_ones():
    with pytest.raises(UnknownMetricError, match="known metrics: psnr, ms-ssim"):
        metric_direction("sharpness")
