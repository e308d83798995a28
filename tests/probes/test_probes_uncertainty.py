import numpy as np
import pytest

from probes.uncertainty import (
    bootstrap_entropies,
    bootstrap_iv,
    bootstrap_paired_difference,
    bootstrap_ratio,
)


def test_constant_ratio_gives_a_degenerate_interval():
    pixels = np.arange(10.0, 210.0, 10.0)  # 20 images
    estimate = bootstrap_ratio(0.5 * pixels, pixels, n_resamples=200)
    assert estimate == pytest.approx((0.5, 0.5, 0.5, 1, 200))


def test_interval_contains_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 2000):
        pixels = np.full(n, 64.0)
        bits = rng.normal(1.0, 0.5, size=(3, n)) * pixels
        estimate = bootstrap_ratio(bits, pixels, n_resamples=500)
        assert estimate.ci_low < estimate.mean < estimate.ci_high and estimate.n_seeds == 3
        widths.append(estimate.ci_high - estimate.ci_low)
    assert widths[1] < widths[0] / 5


def test_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    n = 400
    pixels = np.full(n, 1.0)
    bits = rng.normal(0.0, 1.0, size=n)
    estimate = bootstrap_ratio(bits, pixels, n_resamples=4000)
    half = 1.96 * bits.std(ddof=1) / np.sqrt(n)
    assert estimate.ci_high - estimate.ci_low == pytest.approx(2 * half, rel=0.1)


def test_pairing_removes_shared_image_difficulty():
    rng = np.random.default_rng(2)
    pixels = np.full(50, 100.0)
    difficulty = rng.uniform(0, 800, size=50)  # varies a lot between images
    null, cond = difficulty + 100, difficulty + rng.normal(0, 1, 50)
    estimate = bootstrap_iv(null, cond, pixels, n_resamples=500)
    assert estimate.ci_high - estimate.ci_low < 0.01
    same = bootstrap_paired_difference(null - cond, null - cond, pixels, n_resamples=100)
    assert same == pytest.approx((0.0, 0.0, 0.0, 1, 100))


def test_bad_input():
    with pytest.raises(ValueError, match="at least 20 test images, got 19"):
        bootstrap_ratio(np.ones(19), np.ones(19))
    assert bootstrap_ratio(np.ones(19), np.ones(19), n_resamples=0).mean == 1.0  # no interval
    with pytest.raises(ValueError, match="must be"):
        bootstrap_ratio(np.ones(20), np.ones(21))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ratio(np.ones(20), np.ones(20), confidence=1.5)
    with pytest.raises(ValueError, match="differ in shape"):
        bootstrap_iv(np.ones((2, 20)), np.ones((1, 20)), np.ones(20))


def test_joint_bootstrap_pairs_all_four_quantities():
    rng = np.random.default_rng(3)
    pixels = rng.integers(50, 100, size=40).astype(float)
    difficulty = rng.normal(0, 0.5, size=40)  # shared by both entropies of an image
    null = (2.0 + difficulty + rng.normal(0, 0.05, size=(2, 40))) * pixels
    cond = null - (0.5 + rng.normal(0, 0.05, size=(2, 40))) * pixels
    joint = bootstrap_entropies(null, cond, pixels, n_resamples=300, seed=5)
    assert joint.iv == pytest.approx(bootstrap_iv(null, cond, pixels, n_resamples=300, seed=5))
    assert joint.h_null == pytest.approx(bootstrap_ratio(null, pixels, 300, seed=5))
    assert joint.h_cond == pytest.approx(bootstrap_ratio(cond, pixels, 300, seed=5))
    ratios = (null.sum(1) - cond.sum(1)) / null.sum(1)
    assert joint.iv_normalized.mean == pytest.approx(ratios.mean())
    for estimate in joint:
        assert estimate.ci_low <= estimate.mean <= estimate.ci_high
    assert joint.iv_normalized.ci_low > 0.2 and joint.iv_normalized.ci_high < 0.3
    # pairing: the I_V interval is far narrower than the entropies' own
    assert joint.iv.ci_high - joint.iv.ci_low < (joint.h_null.ci_high - joint.h_null.ci_low) / 2
    point = bootstrap_entropies(null, cond, pixels, n_resamples=0)
    assert point.iv_normalized.ci_low == point.iv_normalized.mean == joint.iv_normalized.mean
    with pytest.raises(ValueError, match="differ in shape"):
        bootstrap_entropies(null, cond[:1], pixels)
