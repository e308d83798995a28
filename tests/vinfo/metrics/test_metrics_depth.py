"""Depth metrics against a plain numpy implementation of the Eigen et al. definitions."""

import numpy as np
import pytest
import torch

from vinfo.metrics import DepthMetrics, DepthResult, depth_metrics


def _numpy_reference(pred, gt, mask, min_depth, max_depth):
    """Eigen et al. (2014) errors as in Monodepth2's ``compute_errors``, over valid pixels."""
    valid = mask & np.isfinite(gt) & (gt > min_depth)
    if max_depth is not None:
        valid &= gt < max_depth
    gt = gt[valid]
    pred = np.clip(pred[valid], min_depth, max_depth if max_depth is not None else np.inf)
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "abs_rel": np.mean(np.abs(gt - pred) / gt),
        "sq_rel": np.mean((gt - pred) ** 2 / gt),
        "rmse": np.sqrt(np.mean((gt - pred) ** 2)),
        "rmse_log": np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2)),
        "delta1": np.mean(thresh < 1.25),
        "delta2": np.mean(thresh < 1.25**2),
        "delta3": np.mean(thresh < 1.25**3),
    }


def _depths(batch=4, size=24, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, 20.0, size=(batch, 1, size, size))
    gt[rng.random(gt.shape) < 0.1] = 0.0  # missing LiDAR returns
    gt[rng.random(gt.shape) < 0.02] = np.nan
    pred = gt * rng.lognormal(0.0, 0.3, size=gt.shape)
    pred[np.isnan(pred) | (pred == 0)] = 1.0
    pred[rng.random(gt.shape) < 0.02] = 1e-6  # below min_depth: clamped
    mask = rng.random(gt.shape) < 0.8
    return pred, gt, mask


@pytest.mark.parametrize("max_depth", [None, 10.0])
def test_matches_numpy_reference(max_depth):
    pred, gt, mask = _depths()
    expected = _numpy_reference(pred, gt, mask, 1e-3, max_depth)
    result = depth_metrics(
        torch.from_numpy(pred),
        torch.from_numpy(gt),
        valid_mask=torch.from_numpy(mask),  # NaN targets are excluded even if the mask says not
        min_depth=1e-3,
        max_depth=max_depth,
    )
    assert isinstance(result, DepthResult)
    for name, value in expected.items():
        assert getattr(result, name).item() == pytest.approx(value, rel=1e-12), name


def test_default_mask_is_finite_positive_target():
    pred, gt, _ = _depths()
    expected = _numpy_reference(pred, gt, np.ones_like(gt, dtype=bool), 1e-3, None)
    result = depth_metrics(torch.from_numpy(pred).float(), torch.from_numpy(gt).float())
    for name, value in expected.items():
        assert getattr(result, name).item() == pytest.approx(value, rel=1e-5), name


def test_accumulation_is_per_pixel_over_all_batches():
    pred, gt, mask = _depths(batch=5)
    pred, gt, mask = torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(mask)
    metric = DepthMetrics(max_depth=15.0)
    metric.update(pred[:2], gt[:2], mask[:2])
    metric.update(pred[2:], gt[2:], mask[2:])
    accumulated = metric.compute()
    one_shot = depth_metrics(pred, gt, mask, max_depth=15.0)
    for name in DepthResult._fields:
        assert getattr(accumulated, name).item() == pytest.approx(
            getattr(one_shot, name).item(), rel=1e-12
        ), name


def test_empty_mask_raises():
    pred, gt, _ = _depths()
    pred, gt = torch.from_numpy(pred), torch.from_numpy(gt)
    with pytest.raises(ValueError, match="selects no pixel"):
        depth_metrics(pred, gt, valid_mask=torch.zeros_like(gt, dtype=torch.bool))
    with pytest.raises(ValueError, match="selects no pixel"):
        depth_metrics(pred, torch.zeros_like(gt))
    metric = DepthMetrics()
    metric.update(pred, gt, torch.zeros_like(gt, dtype=torch.bool))  # an empty batch is fine
    with pytest.raises(ValueError, match="no valid pixel"):
        metric.compute()


def test_perfect_prediction():
    _, gt, _ = _depths()
    gt = torch.from_numpy(gt)
    result = depth_metrics(torch.nan_to_num(gt, nan=1.0).clamp(min=1.0), gt.clamp(min=1.0))
    assert result.abs_rel.item() == 0.0 and result.rmse.item() == 0.0
    assert result.delta1.item() == 1.0
