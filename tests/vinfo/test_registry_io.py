import json

import pytest

from vinfo.io import atomic_path, write_json_atomic
from vinfo.registry import Registry, UnknownNameError


def test_registry_refuses_duplicates_and_lists_names_on_miss():
    registry: Registry[int] = Registry("widget")
    registry.add("a", 1)

    @registry.register("b")
    def _b():
        return 2

    assert registry.names() == ["a", "b"] and registry.get("a") == 1 and "b" in registry
    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", 3)
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; valid: a, b"):
        registry.get("c")


def test_atomic_write_replaces_whole_file(tmp_path):
    destination = tmp_path / "out.json"
    write_json_atomic(destination, {"x": 1})
    assert json.loads(destination.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path):
    write_json_atomic(tmp_path / "atomic.json", {})
    (tmp_path / "plain.json").write_text("{}")
    assert (tmp_path / "atomic.json").stat().st_mode == (tmp_path / "plain.json").stat().st_mode


def test_failed_write_keeps_old_content_and_leaves_no_temp_file(tmp_path):
    destination = tmp_path / "out.txt"
    destination.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(destination) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash mid-write")
    assert destination.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_nan_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "nan.json", {"x": float("nan")})
    assert not list(tmp_path.iterdir())
