import typer
from typer.testing import CliRunner

from cli.data import app

runner = CliRunner()


def test_export_then_info(tmp_path):
    out = tmp_path / "cs"
    r = runner.invoke(app, ["export", "synthetic", "--format", "cityscapes", "--out", str(out),
                            "--n", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["info", str(out)])
    assert r.exit_code == 0 and "cityscapes dataset" in r.output and "train: 2 images" in r.output


def test_export_rejects_other_datasets(tmp_path):
    r = runner.invoke(app, ["export", "coco", "--format", "coco", "--out", str(tmp_path)])
    assert r.exit_code != 0


def test_app_is_typer():
    assert isinstance(app, typer.Typer)
