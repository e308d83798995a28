import pytest
import torch

from probes.estimator import VInfoProbe
from probes.probe_data import ProbeData
from probes.pvi import pvi_maps


def split(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, 4, 4, generator=g)
    z = y[:, :1] + 0.5 * torch.randn(n, 1, 4, 4, generator=g)
    z[0] += 3 * torch.randn(1, 4, 4, generator=g)  # one image the representation explains badly
    mask = torch.ones(n, 1, 4, 4, dtype=torch.bool)
    mask[:, :, 0] = False
    return ProbeData(y, z, mask)


def test_pvi_maps_average_to_the_v_information_and_rank_images():
    probe = VInfoProbe("linear", "depth").fit(split(40, 1), split(20, 2))
    test = split(10, 3)
    result = pvi_maps(probe, test)
    assert result.maps.shape == (10, 4, 4) and (result.maps[:, 0] == 0).all()
    assert not result.valid[:, 0].any()
    mean = float(result.maps.double().sum() / result.valid.sum())
    assert mean == pytest.approx(probe.score(test), abs=1e-6)
    assert int(result.hardest(1)[0]) == 0
