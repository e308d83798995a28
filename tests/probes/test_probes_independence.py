"""No information where there is none (issue 14): with a representation independent of the
target, every family and the null give |I_V| ≤ 0.02 bits per target pixel at default settings,
for every head, on strongly positional targets, with the default and with a short budget."""

import pytest
import torch

from probes.families import FAMILIES
from probes.probe_data import ProbeData, ProbeSplits
from probes.study import run_probes

SIZE = 16  # target pixels per side; the representation is (n, 4, 4, 4), factor 4
ROWS = torch.linspace(-1, 1, SIZE).view(SIZE, 1)
COLS = torch.linspace(-1, 1, SIZE).view(1, SIZE)


def target(kind, n, generator):
    """Strongly positional targets: the per-pixel law varies far more across pixels than
    within one (a depth-like ramp of ±8 with per-pixel noise 0.2 to 1)."""
    if kind in ("gaussian", "laplace"):
        noise = torch.randn(n, 1, SIZE, SIZE, generator=generator)
        if kind == "laplace":  # Laplace(0, 1) by inversion of a uniform
            u = torch.rand(n, 1, SIZE, SIZE, generator=generator) - 0.5
            noise = -u.sign() * torch.log1p(-2 * u.abs())
        return 8 * ROWS + 3 * COLS.square() + (0.2 + 0.4 * (COLS + 1)) * noise
    if kind == "logistic":
        base = 0.5 + 0.35 * ROWS * (COLS + 1) / 2
        z = (base + 0.05 * torch.randn(n, 3, SIZE, SIZE, generator=generator)).clamp(0, 1)
        return (z * 255).round() / 255
    probabilities = torch.stack([(ROWS > 0).float().expand(SIZE, SIZE) * 0.8 + 0.1,
                                 (COLS > 0).float().expand(SIZE, SIZE) * 0.5 + 0.2,
                                 torch.full((SIZE, SIZE), 0.3)])
    probabilities = probabilities / probabilities.sum(0)
    labels = torch.multinomial(probabilities.flatten(1).T, n, replacement=True,
                               generator=generator)
    return labels.T.reshape(n, 1, SIZE, SIZE)


def independent(kind, n, seed):
    generator = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 4, 4, 4, generator=generator)  # drawn apart from the target
    return ProbeData(y, target(kind, n, generator))


TARGETS = {"gaussian": ("depth", None), "laplace": ("depth", {"kind": "laplace"}),
           "logistic": ("reconstruction", None), "categorical": ("segmentation", None)}


@pytest.mark.parametrize("max_epochs", [None, pytest.param(3, id="short-budget")])
@pytest.mark.parametrize("kind", list(TARGETS))
def test_an_independent_representation_has_no_information_for_any_family(kind, max_epochs):
    name, head_kwargs = TARGETS[kind]
    splits = ProbeSplits(independent(kind, 64, 1), independent(kind, 32, 2),
                    independent(kind, 32, 3))
    kwargs = {} if max_epochs is None else {"max_epochs": max_epochs}
    frame = run_probes({"indep": {name: splits}}, FAMILIES.names(), n_resamples=200,
                       controls=False, probe_kwargs=kwargs,
                       head_kwargs={name: head_kwargs} if head_kwargs else None)
    assert len(frame) == len(FAMILIES.names())
    worst = frame.loc[frame["iv"].abs().idxmax()]
    assert frame["iv"].abs().max() <= 0.02, (worst["family"], worst["iv"])
    assert (frame["iv_ci_low"] <= 0.0).all()  # no family claims information
    assert (frame["null_fit"] != "budget").all()  # the null never stops on a budget
    informative = frame[frame["family"] != "null"]
    if max_epochs is not None:  # the short budget is flagged
        assert informative["budget_flag"].all()
