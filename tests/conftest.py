"""Fixtures shared by the whole suite.

``error_line`` is the one check of the CLI's bad-input convention (issue 16): exit code 2,
exactly one ``error: …`` line on stderr, nothing on stdout and no traceback anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

USAGE_EXIT_CODE = 2


def check_error_line(result: Any, *fragments: str) -> str:
    """Assert that ``result`` is one plain error line and return that line.

    Args:
        result: what ran the command: a ``CliRunner`` result, or anything with the same
            ``exit_code``, ``stdout``, ``stderr`` and ``output`` (stdout and stderr together).
        fragments: texts the line must contain.
    """
    assert result.exit_code == USAGE_EXIT_CODE, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "", result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def error_line() -> Callable[..., str]:
    """:func:`check_error_line`: ``error_line(result, *fragments) -> str``."""
    return check_error_line
