"""Usage errors typer catches while parsing follow the vinfo convention: one line, exit 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

USAGE_ERRORS = {
    "missing required option": (
        ["data", "export", "synthetic", "--out", "x"],
        ["Missing option '--format'", "vinfo data export --help"],
    ),
    "non-integer value": (
        ["data", "export", "synthetic", "-f", "coco", "-o", "x", "--n", "abc"],
        ["Invalid value for '--n'", "integer"],
    ),
    "unknown option on a sub-command": (
        ["bdrate", "a.csv", "b.csv", "--colour", "red"],
        ["No such option: --colour", "vinfo bdrate --help"],
    ),
    "unknown option on the root": (["--verbose", "bdrate"], ["No such option: --verbose"]),
    "missing argument": (["data", "info"], ["Missing argument 'root'"]),
    "missing argument of a top-level command": (["bdrate"], ["Missing argument 'files'"]),
    "unknown command": (["bdrates", "a.csv"], ["No such command 'bdrates'", "'bdrate'"]),
    "unknown sub-command": (["data", "inspect", "x"], ["No such command 'inspect'"]),
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error_is_one_line_with_exit_code_2(case, tmp_path, error_line):
    args, fragments = USAGE_ERRORS[case]
    result = runner.invoke(app, args)
    error_line(result, *fragments)
    assert "Usage:" not in result.output


def test_debug_keeps_usage_errors_one_line():
    result = runner.invoke(app, ["--debug", "data", "export", "synthetic", "--n", "abc"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Invalid value for '--n'")


@pytest.mark.parametrize("args", [["--help"], ["data", "--help"], ["data", "export", "--help"]])
def test_help_still_works(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("args", [[], ["data"]])
def test_no_arguments_still_shows_help(args):
    result = runner.invoke(app, args)
    assert "Usage:" in result.output and "error:" not in result.output
