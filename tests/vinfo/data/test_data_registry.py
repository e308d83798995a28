import pytest

from vinfo.data import DATASETS, TASKS, build_dataset, export_synthetic
from vinfo.registry import UnknownNameError


def _synthetic(tmp_path):
    return {"config": "tiny"}


def _coco(tmp_path):
    export_synthetic("coco", tmp_path, n=2)
    return {"root": tmp_path}


def _cityscapes(tmp_path):
    export_synthetic("cityscapes", tmp_path, n=2)
    return {"root": tmp_path}


def _images(tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 12), (10, 20, 30)).save(tmp_path / "a.png")
    return {"root": tmp_path}


# Every registered dataset needs a way to build a small instance here; a new entry without one
# fails test_every_entry_is_tested instead of going untested.
BUILD_KWARGS = {"synthetic": _synthetic, "coco": _coco, "cityscapes": _cityscapes,
                "images": _images}


def test_every_entry_is_tested():
    assert set(DATASETS.names()) == set(BUILD_KWARGS)


@pytest.mark.parametrize("name", DATASETS.names())
def test_entry_builds_and_yields_its_tasks(name, tmp_path):
    entry = DATASETS.get(name)
    assert set(entry.tasks) <= set(TASKS) and entry.description
    ds = build_dataset(name, **BUILD_KWARGS[name](tmp_path))
    sample = ds[0]
    assert set(entry.tasks) <= set(sample.tasks)
    assert ds.tasks == entry.tasks


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError, match="synthetic"):
        build_dataset("imagenet")
