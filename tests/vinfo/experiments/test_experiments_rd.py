import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bdrate import UnknownMethodError, bd_metric, bd_rate, read_curves
from cli.main import app
from vinfo.experiments.rd import (
    Comparison,
    RDPoint,
    bd_table,
    bd_table_markdown,
    pick_similar_rate_pair,
    rd_frame,
    write_compressai_json,
    write_rd_csv,
)

BASE_BPP = {0.0: [0.05, 0.09, 0.16, 0.30], 0.1: [0.06, 0.10, 0.17, 0.28]}


def curve_points(beta: float, strategy: str = "scalable") -> list[RDPoint]:
    label = f"{strategy} beta={beta}"
    points = []
    for lmbda, base in zip([0.01, 0.02, 0.04, 0.08], BASE_BPP[beta], strict=True):
        enhancement = 2 * base
        psnr = 22 + 4 * math.log2(base + enhancement) + 3 * beta
        points.append(
            RDPoint(
                label,
                beta,
                lmbda,
                "reconstruction",
                strategy,
                base,
                enhancement,
                {"psnr": psnr, "rmse": 10 ** (-psnr / 20)},
            )
        )
    return points


def test_rd_csv_round_trips_through_bdrate_reader_and_cli(tmp_path):
    frame = rd_frame(curve_points(0.0) + curve_points(0.1))
    assert list(frame.columns[:8]) == [
        "label",
        "beta",
        "lmbda",
        "task",
        "strategy",
        "bpp_base",
        "bpp_enhancement",
        "bpp",
    ]
    np.testing.assert_allclose(frame["bpp"], frame["bpp_base"] + frame["bpp_enhancement"])
    path = write_rd_csv(frame, tmp_path / "rd.csv")
    anchor, test = read_curves(path)
    assert (anchor.label, test.label) == ("scalable beta=0.0", "scalable beta=0.1")
    a, t = frame[frame["beta"] == 0.0], frame[frame["beta"] == 0.1]
    expected = bd_rate(a["bpp"], a["psnr"], t["bpp"], t["psnr"])
    result = CliRunner().invoke(app, ["bdrate", str(path), "-m", "psnr", "--json"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert record["bd_rate_percent"] == pytest.approx(expected, abs=1e-9)
    # PSNR is the same function of total rate plus 3·β dB: BD-PSNR is exactly 0.3 dB
    assert record["bd_metric"] == pytest.approx(0.3, abs=1e-9)
    assert bd_metric(a["bpp"], a["psnr"], t["bpp"], t["psnr"]) == pytest.approx(0.3, abs=1e-9)


def test_compressai_json_export_is_read_back(tmp_path):
    frame = rd_frame(curve_points(0.1))
    path = write_compressai_json(frame, "scalable beta=0.1", tmp_path / "c.json")
    (curve,) = read_curves(path)
    assert curve.label == "scalable beta=0.1"
    np.testing.assert_allclose(curve.points["bpp"], frame["bpp"])
    with pytest.raises(ValueError, match="no curve labelled 'x'"):
        write_compressai_json(frame, "x", tmp_path / "x.json")


def test_similar_rate_picker_uses_log_rate():
    first = pd.DataFrame({"bpp": [0.05, 0.10, 0.40], "lmbda": [1, 2, 3]})
    second = pd.DataFrame({"bpp": [0.011, 0.21, 0.90], "lmbda": [4, 5, 6]})
    a, b = pick_similar_rate_pair(first, second)
    # ratios: 0.10/0.21 = 2.1x, 0.40/0.21 = 1.9x (closest in log), 0.40/0.90 = 2.25x
    assert (a["lmbda"], b["lmbda"]) == (3, 5)
    a, b = pick_similar_rate_pair(first, pd.DataFrame({"bpp": [0.1], "lmbda": [7]}))
    assert (a["lmbda"], b["lmbda"]) == (2, 7)
    with pytest.raises(ValueError, match="non-positive"):
        pick_similar_rate_pair(first, pd.DataFrame({"bpp": [0.0]}))


def test_bd_table_reports_undefined_comparisons_without_failing(tmp_path):
    frame = rd_frame(
        curve_points(0.0)
        + curve_points(0.1)
        + [
            RDPoint(
                "far away", 0.0, lmbda, "reconstruction", "direct", bpp, 0.0, {"psnr": 60 + bpp}
            )
            for lmbda, bpp in [(1, 0.1), (2, 0.2), (3, 0.4)]
        ]
    )
    table = bd_table(
        frame,
        [
            Comparison("Fig. 2b", "scalable beta=0.0", "scalable beta=0.1", "psnr"),
            Comparison("Fig. 2a", "scalable beta=0.0", "far away", "psnr"),
        ],
    )
    assert table.loc[0, "bd_rate_percent"] < 0 and table.loc[0, "note"] == ""
    assert math.isnan(table.loc[1, "bd_rate_percent"]) and "do not overlap" in table.loc[1, "note"]
    markdown = bd_table_markdown(table)
    assert "| Fig. 2a |" in markdown and "n/a" in markdown and "BD-rate < 0" in markdown


def closed_form_overlap(a, b) -> float:
    """Shared length of two ranges over the length of their union (bjontegaard's overlap)."""
    return max(min(a.max(), b.max()) - max(a.min(), b.min()), 0) / (
        max(a.max(), b.max()) - min(a.min(), b.min())
    )


@pytest.mark.parametrize("min_overlap", [0.75, 0.95])
def test_bd_table_reports_the_overlap_of_each_value_and_flags_low_overlap(min_overlap):
    frame = rd_frame(curve_points(0.0) + curve_points(0.1))
    labels = ("scalable beta=0.0", "scalable beta=0.1")
    table = bd_table(
        frame, [Comparison("Fig. 2b", *labels, "psnr")], method="cubic", min_overlap=min_overlap
    )
    anchor, test = (frame[frame["label"] == label] for label in labels)
    rate_overlap = closed_form_overlap(anchor["psnr"], test["psnr"])
    metric_overlap = closed_form_overlap(np.log10(anchor["bpp"]), np.log10(test["bpp"]))
    assert table.loc[0, "bd_rate_overlap"] == pytest.approx(rate_overlap, abs=1e-12)
    assert table.loc[0, "bd_metric_overlap"] == pytest.approx(metric_overlap, abs=1e-12)
    assert table.loc[0, "min_overlap"] == min_overlap
    row = next(line for line in bd_table_markdown(table).splitlines() if "Fig. 2b" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    flag = {True: " (low)", False: ""}
    assert cells[5] == f"{rate_overlap * 100:.1f}" + flag[rate_overlap < min_overlap]
    assert cells[7] == f"{metric_overlap * 100:.1f}" + flag[metric_overlap < min_overlap]
    assert rate_overlap < 0.95 and min(rate_overlap, metric_overlap) > 0.75  # both cases occur
    assert "in log10(rate) for BD-metric" in bd_table_markdown(table)


def test_bd_table_takes_one_method():
    frame = rd_frame(curve_points(0.0) + curve_points(0.1))
    comparison = Comparison("Fig. 2b", "scalable beta=0.0", "scalable beta=0.1", "psnr")
    with pytest.raises(UnknownMethodError, match="unknown BD method 'all'"):
        bd_table(frame, [comparison], method="all")


def test_rd_panels_are_saved_as_png_and_pdf(tmp_path):
    from vinfo.experiments.plots import Panel, plot_rd_panels
    from vinfo.figures import save_figure

    frame = rd_frame(curve_points(0.0) + curve_points(0.1))
    labels = ("scalable beta=0.0", "scalable beta=0.1")
    figure = plot_rd_panels(
        frame,
        [
            Panel("(a) PSNR", "psnr", labels),
            Panel("(b) RMSE", "rmse", labels),
            Panel("(c) one curve", "psnr", labels[:1]),
        ],
    )
    assert [axis.get_title() for axis in figure.axes if axis.get_visible()] == [
        "(a) PSNR",
        "(b) RMSE",
        "(c) one curve",
    ]
    first = figure.axes[0]
    assert len(first.get_legend().get_texts()) == 2
    paths = save_figure(figure, tmp_path / "fig2.png", tmp_path / "fig2.pdf")
    assert [p.name for p in paths] == ["fig2.png", "fig2.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="lacks"):
        plot_rd_panels(frame, [Panel("x", "psnr", ("nope",))])


def test_bd_table_markdown_and_report_show_the_bootstrap_interval_beside_the_value():
    from vinfo.experiments.report import bd_table_blocks

    frame = rd_frame(curve_points(0.0) + curve_points(0.1))
    labels = ("scalable beta=0.0", "scalable beta=0.1")
    table = bd_table(frame, [Comparison("Fig. 2b", *labels, "psnr")], method="cubic").assign(
        bd_rate_ci_low=-6.0, bd_rate_ci_high=-2.5, ci_resamples=1000, ci_undefined=0,
        ci_images=128, ci_confidence=0.95)
    markdown = bd_table_markdown(table)
    value = table.loc[0, "bd_rate_percent"]
    assert f"| {value:+.2f} [-6.00, -2.50] |" in markdown
    assert "95% bootstrap interval of the BD-rate over the 128 test images (1000 draws" in markdown
    report_table = bd_table_blocks(table)[0]
    column = report_table.header.index("95 % CI, test images [%]")
    assert report_table.rows[0][column] == "[-6.00, -2.50]"
