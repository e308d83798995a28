import pytest
import torch

from vinfo.data import (
    ColorJitter,
    Compose,
    Downscale,
    RandomHorizontalFlip,
    SyntheticConfig,
    downscale,
    generate_scene,
    hflip,
    upsample_prediction,
)

CFG = SyntheticConfig.preset("tiny", height=48, width=64)


@pytest.fixture(scope="module")
def samples():
    return [generate_scene(CFG, i) for i in range(8)]


def _tight(mask):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def test_hflip_keeps_everything_aligned(samples):
    for s in samples:
        f = hflip(s)
        assert torch.equal(f.image, s.image.flip(-1))
        assert torch.equal(f.depth, s.depth.flip(-1))
        assert torch.equal(f.depth_valid, s.depth_valid.flip(-1))
        assert torch.equal(f.segmentation, s.segmentation.flip(-1))
        # pixel (y, x) of the flip is pixel (y, W-1-x) of the original, for every target
        y, x = 20, 5
        w = s.size[1]
        assert torch.equal(f.image[:, y, x], s.image[:, y, w - 1 - x])
        assert f.depth[0, y, x] == s.depth[0, y, w - 1 - x]
        for box, mask, label in zip(f.boxes, f.masks, f.labels, strict=True):
            assert box.tolist() == _tight(mask)  # boxes still bound their flipped masks
            assert (f.segmentation[mask] == label).all()
        assert torch.equal(f.labels, s.labels)
        twice = hflip(f)
        for name in ("image", "depth", "segmentation", "boxes", "masks"):
            assert torch.equal(getattr(twice, name), getattr(s, name))


def test_hflip_on_hand_made_box():
    from vinfo.data import Sample

    mask = torch.zeros(1, 4, 10, dtype=torch.bool)
    mask[0, 1:3, 0:3] = True  # columns 0..2 → after flip columns 7..9
    s = Sample(torch.rand(3, 4, 10), boxes=torch.tensor([[0.0, 1, 3, 3]]),
               labels=torch.tensor([1]), masks=mask)
    f = hflip(s)
    assert f.boxes.tolist() == [[7.0, 1.0, 10.0, 3.0]]
    assert f.masks[0, 1, 7:].all() and not f.masks[0, :, :7].any()


def test_random_flip_probability_and_generator(samples):
    s = samples[0]
    assert RandomHorizontalFlip(p=0.0)(s) is s
    assert torch.equal(RandomHorizontalFlip(p=1.0)(s).image, hflip(s).image)
    draws = []
    for _ in range(2):
        t = RandomHorizontalFlip(0.5, generator=torch.Generator().manual_seed(0))
        draws.append([torch.equal(t(s).image, s.image) for _ in range(16)])
    assert draws[0] == draws[1] and len(set(draws[0])) == 2


def test_color_jitter_touches_the_image_only(samples):
    torch.manual_seed(0)
    s = samples[1]
    j = ColorJitter()(s)
    assert not torch.equal(j.image, s.image)
    assert 0 <= j.image.min() and j.image.max() <= 1
    for name in ("depth", "depth_valid", "segmentation", "boxes", "labels", "masks"):
        assert torch.equal(getattr(j, name), getattr(s, name))


def test_downscale_and_upsample_back(samples):
    s = samples[2]
    d = downscale(s, 2)
    assert d.size == (24, 32) and d.image.shape == (3, 24, 32)
    assert d.depth.shape == (1, 24, 32) and d.masks.shape[1:] == (24, 32)
    assert torch.equal(d.boxes, s.boxes / 2)
    assert torch.equal(d.segmentation, s.segmentation[1::2, 1::2])
    # nearest upsampling of the downscaled labels lands back on the original grid
    up = upsample_prediction(d.segmentation[None], s.size)
    assert up.shape == (1, *s.size) and up.dtype == torch.int64
    assert torch.equal(up[0, 1::2, 1::2], s.segmentation[1::2, 1::2])
    agree = (up[0] == s.segmentation).float().mean()
    assert agree > 0.9
    logits = torch.randn(2, 19, 24, 32)
    assert upsample_prediction(logits, (48, 64)).shape == (2, 19, 48, 64)
    with pytest.raises(ValueError):
        downscale(s, 0)


def test_compose(samples):
    s = samples[3]
    out = Compose([RandomHorizontalFlip(p=1.0), Downscale(2)])(s)
    assert torch.equal(out.segmentation, downscale(hflip(s)).segmentation)
