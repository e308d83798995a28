import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bdrate import bd_metric, bd_rate, read_curves
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


def test_rd_panels_are_saved_as_png_and_pdf(tmp_path):
    from vinfo.experiments.plots import Panel, plot_rd_panels, save_figure

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
    paths = save_figure(figure, tmp_path / "fig2")
    assert [p.name for p in paths] == ["fig2.png", "fig2.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="lacks"):
        plot_rd_panels(frame, [Panel("x", "psnr", ("nope",))])
