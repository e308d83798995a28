import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from probes.heads import (
    FIELD_HEADS,
    TARGETS,
    CategoricalHead,
    ContinuousHead,
    DiscretizedHead,
    get_target,
)
from vinfo.registry import UnknownNameError

LEVELS = torch.arange(256, dtype=torch.float32).view(256, 1, 1, 1) / 255


@pytest.mark.parametrize("kind", ["logistic", "gaussian"])
@pytest.mark.parametrize(("mean", "log_scale"), [(0.3, -2.0), (0.5, -8.0), (1.3, -5.0), (0.0, 1.0)])
def test_discretized_masses_sum_to_one_and_bits_are_never_negative(kind, mean, log_scale):
    head = DiscretizedHead(kind=kind)
    params = torch.tensor([mean, log_scale]).view(1, 2, 1, 1).expand(256, 2, 1, 1)
    mass = head.log_prob_levels(params, LEVELS).exp().sum()
    assert mass == pytest.approx(1.0, abs=1e-4)
    assert (head.nll_bits(params, LEVELS) >= 0).all()


@pytest.mark.parametrize(("mean", "log_scale"), [(0.3, -2.0), (0.5, -9.0), (-3.0, -9.0),
                                                 (2.0, 4.0), (0.5, -5.5)])
def test_discretized_logistic_masses_are_exact_in_the_tails(mean, log_scale):
    """Against ``log(σ(u) - σ(l)) = c + log(2·sinh h) - log1p(e^u) - log1p(e^l)`` in float64
    (``u, l = c ± h``), exact where a difference of CDFs underflows."""
    head = DiscretizedHead()
    params = torch.tensor([mean, log_scale], dtype=torch.float64).view(1, 2, 1, 1)
    params = params.expand(256, 2, 1, 1)
    levels = torch.arange(256, dtype=torch.float64) / 255
    got = head.log_prob_levels(params, levels.view(256, 1, 1, 1)).flatten()
    centred = (levels - mean) / math.exp(log_scale)
    half = 0.5 / 255 / math.exp(log_scale)
    upper, lower = centred + half, centred - half
    inner = centred + math.log(2 * math.sinh(half)) - F.softplus(upper) - F.softplus(lower)
    expected = torch.cat([F.logsigmoid(upper[:1]), inner[1:-1], F.logsigmoid(-lower[-1:])])
    expected = expected.clamp_max(0.0)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_discretized_sums_subpixels_and_respects_the_mask():
    torch.manual_seed(0)
    head = DiscretizedHead()
    params = torch.zeros(2, 6, 4, 4)
    target = torch.rand(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    mask[:, :, :2] = True
    bits = head.nll_bits(params, target, mask)
    assert bits.shape == (2, 4, 4) and (bits[:, 2:] == 0).all() and (bits[:, :2] > 0).all()
    one_channel = head.nll_bits(params[:, :2], target[:, :1])
    assert (head.nll_bits(params, target) >= one_channel).all()


def test_gaussian_and_laplace_match_torch_distributions():
    torch.manual_seed(1)
    params = torch.randn(3, 2, 5, 5)
    target = torch.randn(3, 1, 5, 5)
    for kind, dist in (("gaussian", torch.distributions.Normal),
                       ("laplace", torch.distributions.Laplace)):
        head = ContinuousHead(kind=kind)
        reference = -dist(params[:, 0], params[:, 1].exp()).log_prob(target[:, 0]) / math.log(2)
        torch.testing.assert_close(head.nll_bits(params, target), reference)


def test_differential_bits_shift_by_log2_of_the_unit():
    torch.manual_seed(2)
    metres = torch.rand(4, 1, 3, 3) + 1
    head = ContinuousHead().fitted_to(metres)
    centi = ContinuousHead().fitted_to(metres * 100)
    params = torch.randn(4, 2, 3, 3)
    shift = centi.nll_bits(params, metres * 100) - head.nll_bits(params, metres)
    torch.testing.assert_close(shift, torch.full_like(shift, math.log2(100)), atol=1e-4, rtol=0)


def test_categorical_matches_cross_entropy_and_ignores_255():
    torch.manual_seed(3)
    head = CategoricalHead(num_classes=4)
    logits = torch.randn(2, 4, 3, 3)
    labels = torch.randint(0, 4, (2, 1, 3, 3))
    labels[0, 0, 0, 0] = 255
    bits = head.nll_bits(logits, labels)
    reference = F.cross_entropy(logits, labels[:, 0], ignore_index=255, reduction="none")
    torch.testing.assert_close(bits, reference / math.log(2))
    assert bits[0, 0, 0] == 0 and not head.valid(labels)[0, 0, 0]
    assert head.predict(logits).shape == (2, 1, 3, 3)


def test_heads_refuse_bad_shapes_and_labels():
    with pytest.raises(ValueError, match="expected 2 channels"):
        ContinuousHead().nll_bits(torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="spatial size"):
        ContinuousHead().nll_bits(torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="outside"):
        CategoricalHead(num_classes=2).nll_bits(torch.zeros(1, 2, 1, 1),
                                                torch.full((1, 1, 1, 1), 7))
    with pytest.raises(ValueError, match="kind"):
        DiscretizedHead(kind="beta")


def test_target_registry():
    assert TARGETS.names() == ["reconstruction", "depth", "segmentation"]
    assert get_target("depth").mask_field == "depth_valid"
    assert get_target("reconstruction").channels == 3
    with pytest.raises(UnknownNameError, match="valid: reconstruction, depth, segmentation"):
        get_target("normals")


def test_a_task_reading_a_probed_field_is_a_probe_target(monkeypatch):
    """Adding a task is one task entry: a task on an existing Sample field is a probe target
    at once, with its field's head, and a task on a field no head scores (boxes) is not."""
    from vinfo.models.tasks import TASKS, get_task

    assert "detection" not in TARGETS and get_task("detection").field not in FIELD_HEADS
    monkeypatch.setitem(TASKS._entries, "depth_l1",
                        dataclasses.replace(get_task("depth"), name="depth_l1"))
    assert TARGETS.names() == ["reconstruction", "depth", "segmentation", "depth_l1"]
    target = get_target("depth_l1")
    assert (target.field, target.mask_field, target.channels) == ("depth", "depth_valid", 1)
    assert isinstance(target.make_head(), ContinuousHead)
