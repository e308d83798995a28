"""`vinfo report`: prints the report's path; bad directories are one `error:` line, exit 2, and
leave no output behind."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["report", *(str(a) for a in args)])


def minimal_results(root):
    """The smallest results directory: the preset config and one base RD curve."""
    root.mkdir()
    (root / "reproduce.json").write_text(json.dumps({"description": "cli test", "betas": [0, 0.1],
                                                     "base_task": "depth"}))
    pd.DataFrame({"label": ["base beta=0"] * 2, "beta": [0.0] * 2, "lmbda": [1.0, 0.1],
                  "task": ["depth"] * 2, "strategy": ["base"] * 2, "bpp": [0.2, 0.05],
                  "rmse": [9.0, 11.0]}).to_csv(root / "rd_depth.csv", index=False)


def test_report_writes_into_results_report_by_default_and_prints_the_markdown_path(tmp_path):
    minimal_results(tmp_path / "run")
    result = run(tmp_path / "run")
    assert result.exit_code == 0, result.output
    path = tmp_path / "run" / "report" / "report.md"
    assert result.stdout.strip().splitlines()[-1] == str(path)
    text = path.read_text(encoding="utf-8")
    assert "# vinfo report: run" in text and "No bd\\_table.csv" in text
    assert "No probes.csv" in text and (path.parent / "report.html").is_file()


def test_bad_directories_are_one_error_line_and_write_nothing(tmp_path, error_line):
    (tmp_path / "empty").mkdir()
    for directory in (tmp_path / "absent", tmp_path / "empty"):
        error_line(run(directory, "--out", tmp_path / "out"), str(directory))
        assert not (tmp_path / "out").exists()
    assert "no reproduce.json" in run(tmp_path / "empty").stderr
    assert list((tmp_path / "empty").iterdir()) == []
