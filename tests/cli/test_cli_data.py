import pytest
import typer
from typer.testing import CliRunner

from cli.data import app
from cli.main import app as vinfo

runner = CliRunner()


def test_export_then_info(tmp_path):
    out = tmp_path / "cs"
    r = runner.invoke(app, ["export", "synthetic", "--format", "cityscapes", "--out", str(out),
                            "--n", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["info", str(out)])
    assert r.exit_code == 0 and "cityscapes dataset" in r.output and "train: 2 images" in r.output
    assert "targets: segmentation, depth" in r.output


def test_export_rejects_other_datasets(tmp_path):
    r = runner.invoke(app, ["export", "coco", "--format", "coco", "--out", str(tmp_path)])
    assert r.exit_code != 0


def test_app_is_typer():
    assert isinstance(app, typer.Typer)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_info_on_coco_with_a_corrupt_image_fails(tmp_path, error_line):
    assert runner.invoke(vinfo, ["data", "export", "synthetic", "-f", "coco", "-o",
                                 str(tmp_path), "--n", "2"]).exit_code == 0
    image = tmp_path / "train2017" / f"{1:012d}.png"
    _truncate(image)
    error_line(runner.invoke(vinfo, ["data", "info", str(tmp_path)]), str(image), "cannot read")


@pytest.mark.parametrize(
    ("kind", "suffix", "corrupt", "expected"),
    [
        ("disparity", "disparity.png", _truncate, "16-bit disparity PNG"),
        ("camera", "camera.json", lambda p: p.write_text("[]"), "bad camera JSON"),
    ],
)
def test_info_on_cityscapes_with_a_corrupt_depth_file_fails(tmp_path, kind, suffix, corrupt,
                                                           expected, error_line):
    assert runner.invoke(vinfo, ["data", "export", "synthetic", "-f", "cityscapes", "-o",
                                 str(tmp_path), "--n", "2"]).exit_code == 0
    path = tmp_path / kind / "train" / "synthetic" / f"synthetic_000001_000019_{suffix}"
    corrupt(path)
    error_line(runner.invoke(vinfo, ["data", "info", str(tmp_path)]), str(path), expected)


@pytest.mark.parametrize("n", ["0", "-3"])
def test_export_of_no_images_fails_and_writes_nothing(tmp_path, n, error_line):
    out = tmp_path / "out"
    result = runner.invoke(vinfo, ["data", "export", "synthetic", "--format", "coco", "--out",
                                   str(out), "--n", n])
    error_line(result, f"n must be >= 1 to export a dataset, got {n}")
    assert list(tmp_path.iterdir()) == []
