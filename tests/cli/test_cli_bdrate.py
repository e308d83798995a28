"""`vinfo bdrate` in-process: the happy paths and one-line errors for bad input."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import bjontegaard
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bdrate import METHODS, bd_metric, bd_rate, method_names
from cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ANCHOR, TEST = EXAMPLES / "anchor.csv", EXAMPLES / "test.csv"
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def expected(metric: str, method: str = "akima", higher_is_better: bool = True):
    a, t = pd.read_csv(ANCHOR), pd.read_csv(TEST)
    curves = (a["bpp"], a[metric], t["bpp"], t[metric])
    kwargs = dict(method=method, higher_is_better=higher_is_better)
    return bd_rate(*curves, **kwargs), bd_metric(*curves, **kwargs)


def closed_form_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Shared length of two ranges over the length of their union (bjontegaard's overlap)."""
    shared = min(a.max(), b.max()) - max(a.min(), b.min())
    return max(shared, 0.0) / (max(a.max(), b.max()) - min(a.min(), b.min()))


def expected_overlaps(metric: str) -> tuple[float, float]:
    """(BD-rate overlap in the metric, BD-metric overlap in log10(rate)) of the examples."""
    a, t = pd.read_csv(ANCHOR), pd.read_csv(TEST)
    return (
        closed_form_overlap(a[metric].to_numpy(), t[metric].to_numpy()),
        closed_form_overlap(np.log10(a["bpp"].to_numpy()), np.log10(t["bpp"].to_numpy())),
    )


def test_table_lists_every_shared_metric_with_library_values_and_overlaps():
    result = run("bdrate", ANCHOR, TEST)
    assert result.exit_code == 0, result.output
    header, *_ = (row for row in result.stdout.splitlines() if row.split()[:1] == ["metric"])
    assert header.split() == "metric method BD-rate [%] overlap [%] BD-metric overlap [%]".split()
    for metric, higher in (("psnr", True), ("ms-ssim", True), ("rmse", False)):
        rate, gain = expected(metric, higher_is_better=higher)
        rate_overlap, metric_overlap = expected_overlaps(metric)
        line = next(row for row in result.stdout.splitlines() if row.split()[:1] == [metric])
        assert line.split() == [
            metric, "akima", f"{rate:+.3f}", f"{rate_overlap * 100:.1f}", f"{gain:+.4f}",
            f"{metric_overlap * 100:.1f}",
        ]
    assert "in the metric for BD-rate, in log10(rate) for BD-metric" in result.stdout


def test_low_overlap_is_flagged_below_min_overlap():
    # psnr and rmse overlap on ~81.8 % and ~81.4 % of their metric range, ms-ssim on ~82.3 %.
    result = run("bdrate", ANCHOR, TEST, "--min-overlap", "0.82")
    assert result.exit_code == 0, result.output
    for metric in ("psnr", "ms-ssim", "rmse"):
        rate_overlap, _ = expected_overlaps(metric)
        line = next(row for row in result.stdout.splitlines() if row.split()[:1] == [metric])
        assert ("(low)" in line) == (rate_overlap < 0.82), line
    assert "(low): below min_overlap 82%" in result.stdout
    records = json.loads(run("bdrate", ANCHOR, TEST, "--min-overlap", "0.82", "--json").stdout)
    assert [r["low_overlap"] for r in records] == [
        min(expected_overlaps(r["metric"])) < 0.82 for r in records
    ]
    assert {r["min_overlap"] for r in records} == {0.82}


def test_json_output_is_machine_readable_and_matches_library():
    result = run("bdrate", ANCHOR, TEST, "--metric", "psnr", "--method", "pchip", "--json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    rate, gain = expected("psnr", "pchip")
    assert record["bd_rate_percent"] == pytest.approx(rate, abs=1e-12)
    assert record["bd_metric"] == pytest.approx(gain, abs=1e-12)
    rate_overlap, metric_overlap = expected_overlaps("psnr")
    assert record["bd_rate_overlap"] == pytest.approx(rate_overlap, abs=1e-12)
    assert record["bd_metric_overlap"] == pytest.approx(metric_overlap, abs=1e-12)
    assert record["min_overlap"] == 0.75 and record["low_overlap"] is False
    assert record["note"] == ""
    assert record["anchor"] == "baseline (beta=0)" and record["test"] == "proposed (beta=0.1)"


def test_compressai_json_matches_csv_under_canonical_metric_names():
    from_json = json.loads(
        run("bdrate", ANCHOR, EXAMPLES / "compressai-results.json", "--json", "-m", "psnr").stdout
    )
    assert from_json[0]["bd_rate_percent"] == pytest.approx(expected("psnr")[0], abs=1e-12)


def test_more_than_two_files_compare_each_with_the_first(tmp_path):
    shifted = pd.read_csv(TEST).assign(bpp=lambda f: f["bpp"] * 2, label="doubled")
    shifted.to_csv(tmp_path / "doubled.csv", index=False)
    result = run("bdrate", TEST, ANCHOR, tmp_path / "doubled.csv", "-m", "psnr", "--json")
    records = json.loads(result.stdout)
    assert [r["test"] for r in records] == ["baseline (beta=0)", "doubled"]
    assert records[1]["bd_rate_percent"] == pytest.approx(100.0, abs=1e-9)


def test_grouped_csv_and_anchor_option(tmp_path):
    both = pd.concat([pd.read_csv(ANCHOR), pd.read_csv(TEST)])
    both.to_csv(tmp_path / "both.csv", index=False)
    forward = json.loads(run("bdrate", tmp_path / "both.csv", "-m", "psnr", "--json").stdout)
    reverse = json.loads(
        run(
            "bdrate",
            tmp_path / "both.csv",
            "-m",
            "psnr",
            "--json",
            "--anchor",
            "proposed (beta=0.1)",
        ).stdout
    )
    assert forward[0]["bd_rate_percent"] == pytest.approx(expected("psnr")[0], abs=1e-12)
    # Swapping anchor and test negates the mean log-rate gap: (1 + a)(1 + b) = 1 exactly.
    product = (1 + forward[0]["bd_rate_percent"] / 100) * (1 + reverse[0]["bd_rate_percent"] / 100)
    assert product == pytest.approx(1.0, abs=1e-12)
    assert reverse[0]["bd_metric"] == pytest.approx(-forward[0]["bd_metric"], abs=1e-12)
    assert reverse[0]["anchor"] == "proposed (beta=0.1)"


def test_plot_is_written(tmp_path):
    destination = tmp_path / "rd.png"
    result = run("bdrate", ANCHOR, TEST, "--plot", destination)
    assert result.exit_code == 0, result.output
    assert destination.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rd.png"]  # no temp file left


def test_custom_metric_with_direction(tmp_path):
    for source in (ANCHOR, TEST):
        frame = pd.read_csv(source).assign(bits_error=lambda f: f["rmse"])
        frame.to_csv(tmp_path / source.name, index=False)
    args = ("bdrate", tmp_path / "anchor.csv", tmp_path / "test.csv", "-m", "bits_error")
    records = json.loads(run(*args, "--direction", "lower", "--json").stdout)
    assert records[0]["bd_rate_percent"] == pytest.approx(
        expected("rmse", higher_is_better=False)[0]
    )


# Two noisy 8-point curves on which the spline and Akima interpolants of log-rate swing far
# beyond the data (tests/bdrate/test_bd_core.py checks the maths against bjontegaard).
def _curve_csv(rates: list[float], psnrs: list[float]) -> str:
    return "bpp,psnr\n" + "".join(f"{r},{p}\n" for r, p in zip(rates, psnrs, strict=True))


OSCILLATING_ANCHOR = _curve_csv([0.06, 0.256, 0.278, 0.391, 0.431, 0.492, 0.542, 0.821],
                                [24.24, 29.94, 30.2, 31.23, 31.4, 31.81, 32.52, 33.35])
OSCILLATING_TEST = _curve_csv([0.057, 0.243, 0.264, 0.371, 0.409, 0.467, 0.515, 0.78],
                              [24.59, 30.29, 30.33, 31.47, 31.86, 32.26, 32.58, 33.4])


def test_method_all_puts_every_method_side_by_side():
    result = run("bdrate", ANCHOR, TEST, "--method", "all")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    top, names = lines[1].split(), lines[2].split()
    assert top == ["BD-rate", "[%]", "BD-metric"]
    assert names == ["metric", "overlap", *METHODS, "overlap", *METHODS]
    for metric, higher in (("psnr", True), ("ms-ssim", True), ("rmse", False)):
        rate_overlap, metric_overlap = expected_overlaps(metric)
        cells = next(row.split() for row in lines if row.split()[:1] == [metric])
        rates = [f"{expected(metric, m, higher)[0]:+.3f}" for m in METHODS]
        gains = [f"{expected(metric, m, higher)[1]:+.4f}" for m in METHODS]
        assert cells == [
            metric, f"{rate_overlap * 100:.1f}", *rates, f"{metric_overlap * 100:.1f}", *gains
        ]
    records = json.loads(run("bdrate", ANCHOR, TEST, "--method", "all", "--json").stdout)
    assert [(r["metric"], r["method"]) for r in records] == [
        (metric, m) for metric in ("psnr", "ms-ssim", "rmse") for m in METHODS
    ]


def test_method_all_shows_a_refused_value_as_na_with_the_reason(tmp_path):
    anchor = write(tmp_path, "a8.csv", OSCILLATING_ANCHOR)
    test = write(tmp_path, "t8.csv", OSCILLATING_TEST)
    result = run("bdrate", anchor, test, "--method", "all")
    assert result.exit_code == 0, result.output
    assert "n/a: psnr, spline, 't8': BD-rate: test curve: the spline interpolant" in result.stdout
    cells = next(row.split() for row in result.stdout.splitlines() if row.startswith("  psnr"))
    rates = dict(zip(METHODS, cells[2 : 2 + len(METHODS)], strict=True))
    assert rates["spline"] == "n/a"
    curves = (pd.read_csv(anchor), pd.read_csv(test))
    arrays = (curves[0]["bpp"], curves[0]["psnr"], curves[1]["bpp"], curves[1]["psnr"])
    assert rates["pchip"] == f"{bd_rate(*arrays, method='pchip'):+.3f}"
    records = json.loads(run("bdrate", anchor, test, "--method", "all", "--json").stdout)
    spline = next(r for r in records if r["method"] == "spline")
    assert spline["bd_rate_percent"] is None and "spline interpolant" in spline["note"]


def test_curves_apart_in_the_metric_give_the_bd_metric_and_say_why_bd_rate_is_undefined(
    tmp_path,
):
    # the test curve is the anchor 10 dB lower at every rate: BD-PSNR is -10 in closed form,
    # while BD-rate has no shared PSNR range to average over
    anchor = write(tmp_path, "o.csv", "bpp,psnr\n0.1,40\n0.2,42\n0.4,44\n0.8,45\n")
    test = write(tmp_path, "t.csv", "bpp,psnr\n0.1,30\n0.2,32\n0.4,34\n0.8,35\n")
    result = run("bdrate", anchor, test, "-m", "psnr")
    assert result.exit_code == 0, result.output
    assert "n/a: psnr, akima, 't': BD-rate: the curves do not overlap in metric" in result.stdout
    (record,) = json.loads(run("bdrate", anchor, test, "-m", "psnr", "--json").stdout)
    assert record["bd_rate_percent"] is None
    assert record["bd_metric"] == pytest.approx(-10.0, abs=1e-9)


def test_a_non_monotone_anchor_gives_the_bd_metric_and_says_why_bd_rate_is_undefined(tmp_path):
    # BD-PSNR needs distinct rates only; BD-rate inverts the curve, which a dip forbids
    anchor = write(tmp_path, "m.csv", "bpp,psnr\n0.1,30\n0.2,33\n0.4,32\n0.8,35\n")
    result = run("bdrate", anchor, TEST, "-m", "psnr")
    assert result.exit_code == 0, result.output
    assert "BD-rate: anchor curve: metric must strictly increase" in result.stdout
    (record,) = json.loads(run("bdrate", anchor, TEST, "-m", "psnr", "--json").stdout)
    test = pd.read_csv(TEST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = bjontegaard.bd_psnr([0.1, 0.2, 0.4, 0.8], [30, 33, 32, 35],
                                       test["bpp"], test["psnr"], method="akima",
                                       require_matching_points=False)
    assert record["bd_rate_percent"] is None
    assert record["bd_metric"] == pytest.approx(expected)


@pytest.mark.parametrize("args", [("--help",), ("bdrate", "--help")])
def test_help_explains_sign_convention_and_methods(args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # undo rich's line wrapping
    for word in ("BD-rate", "negative", "positive", "VCEG-M33", "default"):
        assert word in text, word
    # Every registered method and alias is named, so a new one cannot be left out of either help.
    for name in method_names():
        assert name in text, name
    assert "bjontegaard" in text


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD_ROWS = "bpp,psnr\n0.1,30\n0.2,32\n0.4,34\n0.8,35.5\n"
BAD_INPUTS = {
    "missing file": (lambda d: [d / "nope.csv", TEST], "no such file"),
    "empty file": (lambda d: [write(d, "e.csv", ""), TEST], "empty"),
    "header only": (lambda d: [write(d, "h.csv", "bpp,psnr\n"), TEST], "no data rows"),
    "directory": (lambda d: [d, TEST], "is a directory"),
    "missing rate column": (
        lambda d: [write(d, "r.csv", "rate,psnr\n0.1,30\n0.2,31\n"), TEST],
        "no rate column 'bpp'; columns are rate, psnr",
    ),
    "missing metric column": (
        lambda d: [write(d, "m.csv", GOOD_ROWS), TEST, "-m", "rmse"],
        "has no column 'rmse'; columns are bpp, psnr",
    ),
    "non-numeric rate": (
        lambda d: [write(d, "n.csv", "bpp,psnr\n0.1,30\nabc,31\n"), TEST],
        "non-numeric value 'abc'",
    ),
    "non-numeric metric": (
        lambda d: [write(d, "n.csv", "bpp,psnr\n0.1,30\n0.2,x\n0.3,32\n0.4,33\n"), TEST],
        "non-numeric value 'x'",
    ),
    "unknown metric": (lambda d: [ANCHOR, TEST, "-m", "sharpness"], "known metrics: psnr"),
    "min overlap not a fraction": (
        lambda d: [ANCHOR, TEST, "--min-overlap", "1.5"],
        "min_overlap must be a fraction in [0, 1], got 1.5",
    ),
    "interpolant leaves the data": (
        lambda d: [
            write(d, "a8.csv", OSCILLATING_ANCHOR),
            write(d, "t8.csv", OSCILLATING_TEST),
            "--method",
            "spline",
        ],
        "psnr, 't8' vs anchor 'a8': BD-rate: test curve: "
        "the spline interpolant of log10(rate) reaches",
    ),
    "unknown method": (
        lambda d: [ANCHOR, TEST, "--method", "linear"],
        "valid methods: akima, pchip, cubic, spline (polyfit = cubic)",
    ),
    "too few points": (
        lambda d: [
            write(d, "f.csv", "bpp,psnr\n0.1,30\n0.2,32\n0.4,34\n"),
            TEST,
            "--method",
            "polyfit",
        ],
        "needs at least 4",
    ),
    "no overlap for any method": (
        lambda d: [
            write(d, "o.csv", "bpp,psnr\n10,40\n20,42\n40,44\n80,45\n"),
            TEST,
            "-m",
            "psnr",
            "--method",
            "all",
        ],
        "do not overlap",
    ),
    "one curve only": (lambda d: [ANCHOR], "need at least two curves"),
    "no shared metric": (
        lambda d: [write(d, "s.csv", "bpp,miou\n0.1,0.3\n0.2,0.4\n"), TEST],
        "no known metric column shared",
    ),
    "bad JSON": (
        lambda d: [write(d, "b.json", "{not json"), TEST],
        "b.json: not valid JSON (line 1, column 2: ",
    ),
    "JSON without results": (
        lambda d: [write(d, "r.json", '{"name": "x"}'), TEST],
        "CompressAI results JSON",
    ),
    "bad direction": (lambda d: [ANCHOR, TEST, "--direction", "up"], "'higher' or 'lower'"),
    "unknown anchor": (lambda d: [ANCHOR, TEST, "--anchor", "zzz"], "no curve labelled 'zzz'"),
    "plot to missing dir": (
        lambda d: [ANCHOR, TEST, "--plot", d / "missing" / "rd.png"],
        "does not exist",
    ),
    "plot format": (lambda d: [ANCHOR, TEST, "--plot", d / "rd.xyz"], "xyz"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_exit_code_2(case, tmp_path, error_line):
    make_args, message = BAD_INPUTS[case]
    args = make_args(tmp_path)
    before = set(tmp_path.rglob("*"))
    error_line(run("bdrate", *args), message)
    created = set(tmp_path.rglob("*")) - before
    assert not created, f"left files behind: {created}"


def test_debug_flag_shows_the_exception():
    result = runner.invoke(app, ["--debug", "bdrate", str(ANCHOR), "--method", "x", str(TEST)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ValueError)


def readme_console_examples() -> list[tuple[str, str]]:
    """``(command, printed output)`` of each ``$ vinfo bdrate …`` in the README's console
    blocks."""
    text = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    step = re.compile(r"^\$ (vinfo bdrate .*)\n((?:(?!\$ ).*\n)*)", re.M)
    return [
        example
        for block in re.findall(r"^```console\n(.*?)^```$", text, re.M | re.S)
        for example in step.findall(block)
    ]


def test_readme_console_examples_are_what_the_cli_prints(monkeypatch):
    examples = readme_console_examples()
    assert len(examples) >= 2
    monkeypatch.chdir(EXAMPLES.parent)
    for command, output in examples:
        result = runner.invoke(app, shlex.split(command)[1:])
        assert result.exit_code == 0, result.output
        assert result.stdout == output, command
