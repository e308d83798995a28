"""File output that never leaves a half-written file behind.

Every result file vinfo writes (CSV, JSON, plots, checkpoints) goes through
:func:`atomic_path`: the content is written to a temporary file in the destination's
directory and moved over the destination with :func:`os.replace`, which is atomic on POSIX and
Windows. A crash mid-write leaves the old file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``destination``.

    The temporary file keeps the destination's suffix so that writers which pick a format from
    the suffix (matplotlib, pandas) behave as with the real name. On an exception the
    temporary file is removed and the destination is left untouched.

    Raises:
        FileNotFoundError: the destination's directory does not exist.
    """
    destination = Path(destination)
    directory = destination.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: output directory does not exist")
    handle, name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=f".tmp{destination.suffix}", dir=directory
    )
    os.close(handle)
    temporary = Path(name)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    os.chmod(temporary, 0o666 & ~_UMASK)
    try:
        yield temporary
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(destination: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``destination`` atomically."""
    with atomic_path(destination) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(destination: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``destination`` atomically."""
    write_text_atomic(destination, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_table_atomic(destination: str | Path, frame: Any) -> None:
    """Write a pandas ``frame`` atomically as CSV, or as JSON records where ``destination``
    ends in ``.json`` (both read back by ``pandas.read_csv`` / ``read_json``)."""
    text = (frame.to_json(orient="records", indent=2) if Path(destination).suffix.lower()
            == ".json" else frame.to_csv(index=False))
    write_text_atomic(destination, text)


def json_digest(value: Any) -> str:
    """Hex SHA-256 of ``value`` as JSON with sorted keys: a name for cache entries and result
    files that changes with any of its values."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def read_json(path: str | Path) -> Any:
    """The JSON document in ``path`` (UTF-8), with an error that names the file.

    Every JSON file vinfo reads from a user or a run folder (checkpoint specs, run records,
    caches) goes through here, so a damaged one is reported as
    ``runs/a/model.json: not valid JSON (line 3, column 5: Expecting ',' delimiter)``
    instead of the decoder's bare message.

    Raises:
        FileNotFoundError: no such file (``OSError`` in general: unreadable).
        ValueError: not UTF-8 text or not valid JSON; the message names ``path``.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: "
                         f"{error.msg})") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (not UTF-8 text: byte {error.start} is "
                         f"0x{error.object[error.start]:02x})") from None


FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
"""File extensions vinfo writes figures as (the format follows the extension)."""


def check_output_file(path: str | Path | None, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output file before any work: an extension not in ``suffixes`` (the format is
    chosen by it, so ``rd.xlsx`` would hold CSV bytes) or a missing directory.

    Args:
        path: the output file (``None``: nothing to check).
        suffixes: the accepted extensions, lower case with the dot.
        what: what is written, for the message (``"the RD table"``, ``"a plot"``).

    Raises:
        ValueError: a wrong or missing extension (e.g. a directory given for a file).
        FileNotFoundError: the output directory does not exist.
    """
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        found = f"not {path.suffix!r}" if path.suffix else "it has no extension"
        names = ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else \
            suffixes[0]
        raise ValueError(f"{path}: {what} must end in {names} ({found})")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; give the path of the file to write")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: output directory does not exist")
