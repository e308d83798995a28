"""One writer per output folder: an exclusive ``flock`` on ``FOLDER/.vinfo.lock``.

Every vinfo command that writes a run folder (``vinfo train``, ``vinfo reproduce``,
``vinfo probe --out``, ``vinfo data export``) holds :func:`folder_lock` on it for as long as it
writes. A second writer of the same folder fails at once with :class:`FolderBusyError`, whose
message names the holder's pid and host, instead of interleaving its files with the first's.

The lock is the kernel's ``flock`` on an open file, not the file's existence: the operating
system releases it when the holder exits, however it exits (``kill -9`` included), so a lock
file left by a dead process never blocks anyone. The file's content (pid, host, command) only
serves the message. The holder removes the file on release, and the folder too when the lock
created it and it is still empty (a command that fails during set-up leaves nothing behind).

Worker processes started by a lock holder (``vinfo reproduce``'s training pool) write inside
the folder under the holder's lock and never take it themselves: the lock is taken once, by
the top-level command, on the top folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from vinfo.io import read_json

LOCK_NAME = ".vinfo.lock"
"""File name of the lock inside the folder it protects."""


class FolderBusyError(OSError):
    """Another process holds the folder's lock (its message names the holder)."""


def make_output_folder(folder: str | Path) -> bool:
    """Create ``folder`` (and its parents) if needed; return whether it was created.

    Raises:
        OSError: one plain line ``cannot create output folder …: reason`` (a file in the way, a
            read-only or missing parent, a path under ``/proc``).
    """
    folder = Path(folder)
    if folder.is_dir():
        return False
    if folder.exists():
        raise NotADirectoryError(f"cannot create output folder {folder}: a file of that name "
                                 "exists")
    try:
        folder.mkdir(parents=True)
    except FileExistsError:  # created meanwhile by someone else, or an ancestor is a file
        if folder.is_dir():
            return False
        raise NotADirectoryError(f"cannot create output folder {folder}: a file is in the "
                                 "way") from None
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise OSError(f"cannot create output folder {folder}: {reason}") from None
    return True


def _holder(path: Path) -> str:
    """The holder named in the lock file, as a phrase for the error message."""
    try:
        record = read_json(path)
        pid, host = int(record["pid"]), str(record["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its pid is not recorded yet)"
    phrase = f"pid {pid} on {host}"
    if host == socket.gethostname() and not _alive(pid):
        phrase += " (no longer running; a process it started may still hold the lock)"
    return phrase


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive writer lock of ``folder`` (created if missing) for a block.

    Yields:
        ``folder`` as a :class:`~pathlib.Path`.

    Raises:
        FolderBusyError: another process holds the lock; nothing is written.
        OSError: ``folder`` cannot be created (see :func:`make_output_folder`).
    """
    folder = Path(folder)
    created = make_output_folder(folder)
    path = folder / LOCK_NAME
    handle = None
    try:
        while True:
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held across the yield)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                handle = None
                raise FolderBusyError(f"{folder} is being written by {_holder(path)}; wait for "
                                      "it to finish or choose another output folder") from None
            # The previous holder may have removed the file between our open and our flock:
            # then we locked an orphan inode, and a third process could lock a new file.
            try:
                same = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
            handle = None
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "command": " ".join(sys.argv)}, handle)
        handle.flush()
        yield folder
    finally:
        if handle is not None:
            path.unlink(missing_ok=True)  # while still locked: nobody else can be holding it
            handle.close()
        if created:
            with contextlib.suppress(OSError):  # not empty: the command wrote something
                folder.rmdir()


__all__ = ["LOCK_NAME", "FolderBusyError", "folder_lock", "make_output_folder"]
