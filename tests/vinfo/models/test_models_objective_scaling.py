"""The loss terms in the units of the authors' code, each recomputed here with NumPy.

de Andrade & Bajić (``adeandrade/research``, ``projects/compatible-representations``) weigh
``α · bpp + D_task + β · D_recon``: reconstruction as ``255 · mean(per-image RMSE)``, depth as
the disparity RMSE over valid pixels, segmentation as ``K ·`` cross-entropy. In eq. 3's form
``λ · (d + β · D_recon) + R`` with ``λ = 1/α``.
"""

import numpy as np
import pytest
import torch

from vinfo.models.base import BaseCodec
from vinfo.models.config import codec_preset
from vinfo.models.tasks import IGNORE_INDEX, reconstruction_loss, segmentation_loss

TINY = codec_preset("tiny").replace(segmentation_classes=7)


def per_image_rmse_levels(a: np.ndarray, b: np.ndarray) -> float:
    per_image = [255.0 * np.sqrt(np.mean((x - y) ** 2)) for x, y in zip(a, b, strict=True)]
    return float(np.mean(per_image))


def test_reconstruction_distortion_is_rmse_in_8_bit_levels():
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 3, 3, 8, 8))
    got = reconstruction_loss(torch.from_numpy(x), torch.from_numpy(y))
    assert float(got) == pytest.approx(per_image_rmse_levels(x, y), rel=1e-12)


def test_segmentation_distortion_is_k_times_cross_entropy():
    rng = np.random.default_rng(1)
    k = 5
    logits = rng.normal(size=(2, k, 4, 4))
    labels = rng.integers(0, k, size=(2, 4, 4))
    labels[0, 0, :2] = IGNORE_INDEX
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    keep = labels != IGNORE_INDEX
    picked = np.take_along_axis(log_p, np.where(keep, labels, 0)[:, None], axis=1)[:, 0]
    expected = k * float(-picked[keep].mean())
    got = segmentation_loss(torch.from_numpy(logits), torch.from_numpy(labels))
    assert float(got) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_base_loss_weighs_the_terms_as_the_authors(beta):
    torch.manual_seed(0)
    codec = BaseCodec(TINY, "depth", beta).train()
    x = torch.rand(2, 3, 32, 32)
    target = torch.rand(2, 1, 32, 32) * 4
    target[:, :, :5] = 0  # invalid rows
    out = codec(x, target)
    lmbda = 30.0
    terms = codec.loss(out, x, target, lmbda)

    pred = out.task_output.detach().numpy()
    t = target.numpy()
    valid = t > 0
    depth_rmse = float(np.sqrt(((pred - t) ** 2)[valid].mean()))
    likelihoods = out.likelihoods.detach().double().numpy()
    bpp = float(np.mean(-np.log2(likelihoods).reshape(2, -1).sum(axis=1) / (32 * 32)))
    recon = 0.0 if beta == 0 else per_image_rmse_levels(out.x_hat.detach().numpy(), x.numpy())
    expected = lmbda * (depth_rmse + beta * recon) + bpp
    assert float(terms.distortion) == pytest.approx(depth_rmse, rel=1e-5)
    assert float(terms.bpp) == pytest.approx(bpp, rel=1e-5)
    assert float(terms.aux_distortion) == pytest.approx(recon, rel=1e-5)
    assert float(terms.loss) == pytest.approx(expected, rel=1e-5)
