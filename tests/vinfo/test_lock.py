"""One writer per folder (vinfo.lock): tested with real processes, since flock is per process."""

from __future__ import annotations

import fcntl
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from typer.testing import CliRunner

from cli.main import app
from vinfo.lock import LOCK_NAME, FolderBusyError, folder_lock

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

HOLDER = """
import sys
from vinfo.lock import folder_lock
with folder_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # hold until the test closes stdin
"""

RAW_HOLDER = """
import fcntl, json, socket, sys
handle = open(sys.argv[1] + "/.vinfo.lock", "w")
fcntl.flock(handle, fcntl.LOCK_EX)
json.dump({"pid": int(sys.argv[2]), "host": socket.gethostname()}, handle)
handle.flush()
print("held", flush=True)
sys.stdin.read()
"""


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


class Holder:
    """A second process holding the lock of ``folder`` until :meth:`release`."""

    def __init__(self, folder: Path, code: str = HOLDER, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(folder), *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=_env())
        assert self.process.stdout.readline().strip() == "held"

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0


@pytest.fixture
def holder(tmp_path):
    folder = tmp_path / "out"
    held = Holder(folder)
    yield folder, held
    if held.process.poll() is None:
        held.release()


def test_second_writer_of_a_folder_is_refused_with_the_holders_pid(holder):
    folder, held = holder
    with pytest.raises(FolderBusyError, match=rf"pid {held.pid} on "):
        with folder_lock(folder):
            pass
    held.release()
    assert not (folder / LOCK_NAME).exists()  # released, and the holder removed its file
    with folder_lock(folder) as locked:
        record = json.loads((locked / LOCK_NAME).read_text())
        assert record["host"] == socket.gethostname()


def test_lock_dies_with_its_process(tmp_path):
    folder = tmp_path / "out"
    held = Holder(folder)
    held.process.kill()  # no clean-up: the lock file stays, naming a dead pid
    held.process.wait(timeout=60)
    assert (folder / LOCK_NAME).is_file()
    with folder_lock(folder):  # the kernel released the flock: not blocked by the stale file
        pass
    assert not (folder / LOCK_NAME).exists()


def test_busy_message_says_when_the_named_holder_is_dead(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    folder = tmp_path / "out"
    folder.mkdir()
    held = Holder(folder, RAW_HOLDER, dead.stdout.strip())
    try:
        with pytest.raises(FolderBusyError, match="no longer running"):
            with folder_lock(folder):
                pass
    finally:
        held.release()


def test_lock_created_folder_is_removed_when_nothing_was_written(tmp_path):
    folder = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError):
        with folder_lock(folder):
            raise RuntimeError("set-up failed")
    assert not folder.exists()
    kept = tmp_path / "kept"
    with folder_lock(kept):
        (kept / "result.txt").write_text("x")
    assert sorted(p.name for p in kept.iterdir()) == ["result.txt"]


def test_lock_file_is_not_inherited_by_a_waiting_open(tmp_path):
    """The holder unlinks its file on release; a process that opened the old file before must
    not think it holds the lock of the new one (inode check)."""
    folder = tmp_path / "out"
    folder.mkdir()
    stale = open(folder / LOCK_NAME, "a+")  # opened before the holder's release
    with folder_lock(folder):
        pass
    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locks the orphan inode only
    try:
        with folder_lock(folder):  # a new file: not blocked by the orphan's lock
            assert (folder / LOCK_NAME).is_file()
    finally:
        stale.close()


def test_cli_data_export_refuses_a_folder_another_process_writes(holder, error_line):
    folder, held = holder
    line = error_line(runner.invoke(
        app, ["data", "export", "synthetic", "-f", "coco", "-o", str(folder), "--n", "1"]))
    assert f"pid {held.pid}" in line and str(folder) in line
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]  # only the holder's lock


def test_cli_train_refuses_a_folder_another_process_writes(holder, error_line):
    folder, held = holder
    line = error_line(runner.invoke(app, [
        "train", "base", "--task", "depth", "--lmbda", "0.1", "--out", str(folder),
        "--max-epochs", "1", "--max-steps", "1", "--quiet"]))
    assert f"pid {held.pid}" in line
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]


def test_cli_reproduce_refuses_a_folder_another_process_writes(holder, error_line):
    folder, held = holder
    line = error_line(runner.invoke(app, ["reproduce", "--out", str(folder), "--quiet"]))
    assert f"pid {held.pid}" in line
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]


def test_cli_probe_refuses_an_output_folder_another_process_writes(holder, error_line):
    folder, held = holder
    line = error_line(runner.invoke(app, [
        "probe", "--repr", str(folder / "missing.safetensors"), "--target", "depth",
        "--out", str(folder / "probes.csv"), "--quiet"]))
    assert f"pid {held.pid}" in line
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]


class Finished(NamedTuple):
    """A finished subprocess, shaped like a ``CliRunner`` result for ``error_line``."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def test_two_concurrent_exports_exactly_one_proceeds(tmp_path, error_line):
    folder = tmp_path / "out"
    command = [sys.executable, "-m", "cli.main", "data", "export", "synthetic", "-f",
               "cityscapes", "-o", str(folder), "--n", "8"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=_env(), cwd=ROOT) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    results = [Finished(p.returncode, *out) for p, out in zip(processes, outputs, strict=True)]
    assert sorted(r.exit_code for r in results) == [0, 2], results
    refused = error_line(next(r for r in results if r.exit_code == 2))
    # refused while the other writes (its pid, or before it has recorded it), or after it
    # finished (the split exists)
    assert ("is being written by pid" in refused
            or "is being written by another process (its pid is not recorded yet)" in refused
            or "already holds split" in refused), refused
    images = list((folder / "leftImg8bit" / "train" / "synthetic").iterdir())
    assert len(images) == 8 and not (folder / LOCK_NAME).exists()
