"""One `micro` reproduction per test session, shared by the tests that read its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from vinfo.experiments.reproduce import ReproduceResult, reproduce


class MicroRun(NamedTuple):
    out: Path
    result: ReproduceResult
    lines: list[str]


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory) -> MicroRun:
    """`reproduce("micro")` (about 30 s of training, the probe step and the report). Tests may
    rerun reproduce into ``out`` (it skips finished work) but must not change its files."""
    out = tmp_path_factory.mktemp("micro") / "out"
    lines: list[str] = []
    result = reproduce("micro", out, progress=lines.append)
    return MicroRun(out, result, lines)
