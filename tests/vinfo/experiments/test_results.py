"""The results layout: run keys round-trip through their paths, no name is parsed by regex."""

from __future__ import annotations

from pathlib import PurePath

import pytest

from vinfo.experiments.results import BASE_STRATEGY, RunKey, curve_dir, lmbda_dir, pair_key

KEYS = [
    (RunKey(BASE_STRATEGY, 30.0, 0.1), "base/beta=0.1/lmbda=30"),
    (RunKey(BASE_STRATEGY, 30.0, 0.0, seed=1), "base/beta=0/seed=1/lmbda=30"),
    (RunKey("direct", 0.3, 0.0, "reconstruction"), "reconstruction/direct/beta=0/base_lmbda=0.3"),
    (RunKey("direct", 30.0, 0.1, "reconstruction", 1),
     "reconstruction/direct/beta=0.1/seed=1/base_lmbda=30"),
    (RunKey("scalable", 0.01, 0.1, "segmentation"), "segmentation/scalable/beta=0.1/lmbda=0.01"),
    (RunKey("standalone", 0.03, task="segmentation"), "segmentation/standalone/lmbda=0.03"),
]


@pytest.mark.parametrize(("key", "path"), KEYS)
def test_a_run_key_round_trips_through_its_path(key, path):
    assert key.path == PurePath(path)
    assert key.path == key.curve_path / key.path.name
    assert RunKey.from_path(path) == key
    assert RunKey.from_path(PurePath("/tmp/out/runs", path, "model.safetensors")) == key


def test_names_of_base_models_pair_entries_and_curves():
    assert RunKey(BASE_STRATEGY, 0.01, 0.1).name == "beta=0.1/lmbda=0.01"
    assert pair_key(0.1) == "beta=0.1"
    assert curve_dir("scalable", task="depth", beta=0.0) / lmbda_dir(1.0) == PurePath(
        "depth/scalable/beta=0/lmbda=1")


@pytest.mark.parametrize("path", ["model.safetensors", "out/lmbda=1", "runs/base/beta=x/lmbda=1",
                                  "runs/base/beta=0"])
def test_a_path_outside_the_layout_is_refused(path):
    with pytest.raises(ValueError, match=r"not a run directory|<number>"):
        RunKey.from_path(path)


def test_a_key_needs_a_task_exactly_when_it_is_no_base_model():
    with pytest.raises(ValueError, match="needs a task"):
        RunKey("scalable", 1.0, 0.0)
    with pytest.raises(ValueError, match="needs a task"):
        RunKey(BASE_STRATEGY, 1.0, 0.0, task="depth")
