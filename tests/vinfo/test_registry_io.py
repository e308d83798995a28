import hashlib
import json

import pytest

from vinfo.io import atomic_path, json_digest, read_json, write_json_atomic
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


def test_read_json_reads_what_write_json_atomic_wrote(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": [1, 2.5, None]})
    assert read_json(tmp_path / "a.json") == {"x": [1, 2.5, None]}


@pytest.mark.parametrize(("content", "message"), [
    (b'{"a": 1,\n "b" 2}', "a.json: not valid JSON (line 2, column 6: Expecting ':' delimiter)"),
    (b"", "a.json: not valid JSON (line 1, column 1: Expecting value)"),
    (b"\x89PNG\r\n", "a.json: not valid JSON (not UTF-8 text: byte 0 is 0x89)"),
])
def test_read_json_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "a.json"
    path.write_bytes(content)
    with pytest.raises(ValueError) as caught:
        read_json(path)
    assert str(caught.value) == f"{tmp_path}/{message}"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_read_json_of_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        read_json(tmp_path / "missing.json")
    assert caught.value.filename == str(tmp_path / "missing.json")


def test_json_digest_is_the_sha256_of_sorted_json_and_ignores_key_order():
    record = {"b": [1, 2.5, None], "a": {"y": "text", "x": True}}
    expected = hashlib.sha256(b'{"a": {"x": true, "y": "text"}, "b": [1, 2.5, null]}').hexdigest()
    assert json_digest(record) == expected
    assert json_digest(dict(reversed(list(record.items())))) == expected
    assert json_digest({**record, "b": [1, 2.5]}) != expected
