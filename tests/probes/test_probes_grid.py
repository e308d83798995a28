"""A probe study as a grid of cells (probes.grid): the same table in-process, in worker
processes and resumed after a lost cell; results tied to their job."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from probes.bundles import save_bundle
from probes.grid import read_cell_result, result_path, run_grid
from probes.pipeline import probe_files
from probes.sources import DataSource
from probes.study import CellResult, SharedNulls
from vinfo.experiments.plan import LocalExecutor, PlanError, ProcessExecutor

N_IMAGES = 100  # 20 test images: the fewest a CI accepts
KWARGS = {"max_epochs": 3, "patience": 2}
STUDY = {"targets": ["depth", "segmentation"], "families": ["null", "linear", "conv"],
         "seeds": [0, 1], "n_resamples": 50, "controls": True, "probe_kwargs": KWARGS}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Two representations of the first 100 built-in scenes: one that knows the depth (its
    16×16 patch means), one of noise (written in the reverse image order)."""
    folder = tmp_path_factory.mktemp("bundles")
    dataset, ids = DataSource(n_images=N_IMAGES).build(), torch.arange(N_IMAGES)
    valid = torch.stack([dataset[i].depth_valid for i in range(N_IMAGES)])
    depth = torch.stack([dataset[i].depth for i in range(N_IMAGES)]).where(valid, 0.0)
    pooled = torch.cat([torch.nn.functional.avg_pool2d(depth, 16),
                        torch.nn.functional.avg_pool2d(valid.float(), 16)], 1)
    save_bundle(folder / "pooled.safetensors", pooled, ids, {"n_images": str(N_IMAGES)})
    save_bundle(folder / "noise.safetensors", torch.randn(N_IMAGES, 2, 4, 4), ids.flip(0),
                {"n_images": str(N_IMAGES)})
    return [folder / "pooled.safetensors", folder / "noise.safetensors"]


@pytest.fixture(scope="module")
def in_process(bundles):
    return probe_files(bundles, **STUDY)


class Recording(LocalExecutor):
    """The local executor, remembering which items it was given."""

    def __init__(self):
        self.items = []

    def map(self, function, items, progress, finished=None):
        self.items.extend(items)
        super().map(function, items, progress, finished)


def test_grid_in_processes_equals_the_study_in_process(bundles, in_process, tmp_path):
    grid = probe_files(bundles, grid=ProcessExecutor(workers=2), grid_dir=tmp_path, **STUDY)
    # every cell fitted apart (its own null, its own splits from the cache) gives the same bits
    pd.testing.assert_frame_equal(grid.frame, in_process.frame, check_exact=True)
    pd.testing.assert_frame_equal(grid.paired, in_process.paired, check_exact=True)
    assert len(list(tmp_path.glob("*.json"))) == 2 * 2 * 3 * 2
    # and the study measured something: the pooled latent beats its null, its control is ~0
    row = grid.frame.set_index(["repr", "target", "family"]).loc[("pooled", "depth", "linear")]
    assert row["iv_ci_low"] > 0.1 and abs(row["shuffled_iv"]) < 0.05


def test_a_rerun_fits_only_the_missing_cells(bundles, in_process, tmp_path):
    first = Recording()
    probe_files(bundles, grid=first, grid_dir=tmp_path, **STUDY)
    assert len(first.items) == 24
    lost = result_path(tmp_path, first.items[5])
    lost.unlink()
    again = Recording()
    rerun = probe_files(bundles, grid=again, grid_dir=tmp_path, **STUDY)
    assert again.items == [first.items[5]] and lost.is_file()
    pd.testing.assert_frame_equal(rerun.frame, in_process.frame, check_exact=True)
    # a cell's result is its job's: another job's file under its name is refused
    other = result_path(tmp_path, first.items[6])
    record = json.loads(other.read_text())
    record["job"]["split_seed"] += 1
    other.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="another job"):
        read_cell_result(tmp_path, first.items[6])
    # a result file holds the cell's per-image bits to the last bit
    result = read_cell_result(tmp_path, first.items[5])
    for read, fitted in zip(result.bits, in_process.bits.entries[result.cell], strict=True):
        np.testing.assert_array_equal(read, fitted)
    assert CellResult.from_json(result.to_json()).to_json() == result.to_json()


def test_a_failed_cell_is_reported_and_the_others_finish(bundles, tmp_path):
    jobs = []
    with pytest.raises(PlanError, match="collected"):
        probe_files(bundles, grid=_Collect(jobs), grid_dir=tmp_path, **STUDY)
    broken = jobs[0]._replace(path=str(tmp_path / "missing.safetensors"))
    with pytest.raises(PlanError, match="missing.safetensors") as caught:
        run_grid([broken, *jobs[1:3]], tmp_path / "cells", LocalExecutor())
    assert list(caught.value.failed) == [str(broken)]
    assert all(result_path(tmp_path / "cells", job).is_file() for job in jobs[1:3])


def test_grid_needs_a_folder_and_held_out_fits(bundles, tmp_path):
    with pytest.raises(ValueError, match="grid_dir"):
        probe_files(bundles, grid=LocalExecutor(), **STUDY)
    with pytest.raises(ValueError, match="mdl"):
        probe_files(bundles, grid=LocalExecutor(), grid_dir=tmp_path, estimator="mdl",
                    targets=["depth"], families=["linear"])


class _Collect:
    """An executor that only records the jobs (and fits none)."""

    def __init__(self, jobs):
        self.jobs = jobs

    def map(self, function, items, progress, finished=None):
        self.jobs.extend(items)
        raise PlanError({"collected": "not fitted"}, [])


def test_a_worker_fits_one_null_per_target(bundles, tmp_path, monkeypatch):
    # the cells one process fits in a row share the null of their targets, as the study in
    # process does: as many null fits, the same table
    import probes.estimator as estimator
    import probes.grid as grid_module

    study = {**STUDY, "controls": False}  # the control task's nulls are per cell
    fitted = []
    fit_null = estimator.fit_null
    monkeypatch.setattr(estimator, "fit_null",
                        lambda *args, **kwargs: fitted.append(1) or fit_null(*args, **kwargs))
    in_process = probe_files(bundles, **study)
    assert len(fitted) == len(study["targets"])  # both representations cover the same images
    fitted.clear()
    monkeypatch.setattr(grid_module, "_WORKER_NULLS", SharedNulls())
    grid = probe_files(bundles, grid=LocalExecutor(), grid_dir=tmp_path, **study)
    assert len(fitted) == len(study["targets"])
    pd.testing.assert_frame_equal(grid.frame, in_process.frame, check_exact=True)


def test_shared_nulls_are_only_for_the_same_targets_and_arguments(bundles):
    inputs = probe_files(bundles[:1], ["depth"], ["linear"], n_resamples=0, controls=False,
                         probe_kwargs=KWARGS).inputs
    splits = inputs.data["pooled"]["depth"]
    nulls, kwargs, fit = SharedNulls(), {"max_epochs": 3}, object()
    nulls.keep("depth", splits, kwargs, fit)
    assert nulls.get("depth", splits, dict(kwargs)) is fit
    assert nulls.get("depth", splits, {"max_epochs": 4}) is None
    assert nulls.get("segmentation", splits, kwargs) is None
    other_targets = splits._replace(train=splits.train._replace(z=splits.train.z + 1))
    assert nulls.get("depth", other_targets, kwargs) is None
