"""Image metrics against scikit-image, torchmetrics and closed forms."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure
from torchmetrics.image import MultiScaleStructuralSimilarityIndexMeasure

from vinfo.metrics import MS_SSIM_BETAS, MSSSIM, PSNR, RMSE, ms_ssim, ms_ssim_min_size, psnr, rmse

# torchmetrics computes PSNR with float32 constants (log of the base and of data_range), so
# values agree with float64 references to ~1e-8 relative, not to machine precision
PSNR_RTOL = 1e-6


def _pair(batch=4, channels=3, size=32, seed=0, noise=0.05, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(batch, channels, size, size, generator=generator, dtype=dtype)
    # a different noise level per image, so per-image mean and pooled PSNR differ
    sigma = noise * torch.arange(1, batch + 1, dtype=dtype).view(-1, 1, 1, 1)
    noisy = target + sigma * torch.randn(target.shape, generator=generator, dtype=dtype)
    return noisy.clamp(0, 1), target


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_matches_skimage(data_range):
    preds, target = _pair()
    preds, target = preds * data_range, target * data_range
    reference = np.array(
        [
            sk_psnr(t.numpy(), p.numpy(), data_range=data_range)
            for p, t in zip(preds, target, strict=True)
        ]
    )
    per_image = psnr(preds, target, data_range, reduction="none")
    assert per_image.shape == (4,)
    np.testing.assert_allclose(per_image.numpy(), reference, rtol=PSNR_RTOL)
    assert psnr(preds, target, data_range).item() == pytest.approx(reference.mean(), rel=PSNR_RTOL)
    pooled = sk_psnr(target.numpy(), preds.numpy(), data_range=data_range)
    assert psnr(preds, target, data_range, reduction="pooled").item() == pytest.approx(
        pooled, rel=PSNR_RTOL
    )
    # PSNR is concave in MSE: pooling the error cannot beat the per-image mean
    assert psnr(preds, target, data_range, reduction="pooled") < psnr(preds, target, data_range)


def test_psnr_closed_form_hand_case():
    target = torch.zeros(1, 1, 4, 4)
    preds = target.clone()
    preds[..., :2, :] = 5.0  # half the pixels off by 5: MSE = 12.5
    expected = 10 * math.log10(255.0**2 / 12.5)
    assert psnr(preds, target, data_range=255.0).item() == pytest.approx(expected, rel=1e-6)
    assert rmse(preds, target).item() == pytest.approx(math.sqrt(12.5), rel=1e-6)


def test_psnr_requires_positive_data_range_and_matching_shapes():
    preds, target = _pair()
    with pytest.raises(ValueError, match="data_range"):
        psnr(preds, target, 0.0)
    with pytest.raises(ValueError, match="shape"):
        psnr(preds[:, :1], target, 1.0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        psnr(preds[0], target[0], 1.0)
    with pytest.raises(ValueError, match="reduction"):
        psnr(preds, target, 1.0, reduction="sum")


def test_rmse_matches_numpy():
    preds, target = _pair()
    diff = (preds - target).numpy()
    per_image = np.sqrt((diff**2).reshape(4, -1).mean(axis=1))
    np.testing.assert_allclose(rmse(preds, target, reduction="none").numpy(), per_image)
    assert rmse(preds, target).item() == pytest.approx(per_image.mean(), rel=1e-12)
    pooled = np.sqrt((diff**2).mean())
    assert rmse(preds, target, reduction="pooled").item() == pytest.approx(pooled, rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "pooled"])
@pytest.mark.parametrize(
    ("make_metric", "function"),
    [
        (lambda r: PSNR(data_range=1.0, reduction=r), lambda p, t, r: psnr(p, t, 1.0, r)),
        (lambda r: RMSE(reduction=r), lambda p, t, r: rmse(p, t, r)),
    ],
    ids=["psnr", "rmse"],
)
def test_accumulation_equals_one_shot(make_metric, function, reduction):
    preds, target = _pair(batch=5)
    metric = make_metric(reduction)
    for chunk in (slice(0, 2), slice(2, 3), slice(3, 5)):  # uneven batches
        metric.update(preds[chunk], target[chunk])
    expected = function(preds, target, reduction)
    assert metric.compute().item() == pytest.approx(expected.item(), rel=PSNR_RTOL)


def test_ms_ssim_identical_images_is_one():
    _, target = _pair(batch=1, size=176, dtype=torch.float32)
    assert ms_ssim(target, target, data_range=1.0).item() == pytest.approx(1.0, abs=1e-6)


def test_ms_ssim_matches_torchmetrics_class():
    preds, target = _pair(batch=2, size=176, noise=0.1, dtype=torch.float32)
    reference = MultiScaleStructuralSimilarityIndexMeasure(data_range=1.0)
    reference.update(preds, target)
    value = ms_ssim(preds, target, data_range=1.0)
    assert 0.0 < value.item() < 1.0
    assert value.item() == pytest.approx(reference.compute().item(), rel=1e-6)


def test_ms_ssim_fewer_scales_for_small_images():
    preds, target = _pair(batch=2, size=48, noise=0.1)
    betas = MS_SSIM_BETAS[:3]
    reference = multiscale_structural_similarity_index_measure(
        preds, target, data_range=1.0, betas=betas
    )
    assert ms_ssim(preds, target, 1.0, betas=betas).item() == pytest.approx(reference.item())
    with pytest.raises(ValueError, match="at least 176x176"):
        ms_ssim(preds, target, data_range=1.0)


@pytest.mark.parametrize("num_scales", [1, 2, 3, 4, 5])
def test_ms_ssim_min_size_is_the_real_limit(num_scales):
    """torchmetrics itself works at the minimum size and fails just below it."""
    betas = MS_SSIM_BETAS[:num_scales]
    size = ms_ssim_min_size(num_scales)
    preds, target = _pair(batch=1, channels=1, size=size, noise=0.1, dtype=torch.float32)
    value = multiscale_structural_similarity_index_measure(preds, target, 1.0, betas=betas)
    assert torch.isfinite(value)
    smaller = (preds[..., 1:, 1:], target[..., 1:, 1:])
    with pytest.raises((ValueError, RuntimeError)):
        value = multiscale_structural_similarity_index_measure(*smaller, 1.0, betas=betas)
        if not torch.isfinite(value):
            raise ValueError("non-finite MS-SSIM")
    with pytest.raises(ValueError, match=f"at least {size}x{size}"):
        ms_ssim(*smaller, 1.0, betas=betas)


def test_msssim_accumulation_equals_one_shot():
    preds, target = _pair(batch=3, size=44, noise=0.1, dtype=torch.float32)
    betas = MS_SSIM_BETAS[:3]
    metric = MSSSIM(data_range=1.0, betas=betas)
    metric.update(preds[:1], target[:1])
    metric.update(preds[1:], target[1:])
    expected = ms_ssim(preds, target, 1.0, betas=betas)
    assert metric.compute().item() == pytest.approx(expected.item(), rel=1e-6)
