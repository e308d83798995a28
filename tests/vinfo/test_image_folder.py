"""Image folders (issue #20): read as CompressAI reads them (its own ``collect_images`` and
PIL's decode as references), unreadable files skipped with one line, CompressAI's metrics,
real-stream rates, and ``vinfo eval --dataset images``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from compressai.utils.eval_model.__main__ import collect_images, compute_metrics
from compressai.utils.eval_model.__main__ import psnr as compressai_psnr
from PIL import Image
from typer.testing import CliRunner

from bdrate.curves import read_curves
from cli.main import app
from vinfo.coding import compress
from vinfo.data import DATASETS, DatasetFormatError, ImageFolder, SkippedFileWarning
from vinfo.data.errors import DatasetNotFoundError
from vinfo.experiments.image_folder import compressai_metrics, compressai_results, evaluate_folder
from vinfo.models import BaseCodec, save_checkpoint
from vinfo.models.config import codec_preset

SIZES = {"a.png": (200, 176), "sub/b.jpg": (64, 96), "c.bmp": (48, 80)}


def _folder(root):
    """Mixed sizes, a JPEG in a sub-folder, a grayscale PNG, a corrupt PNG and a text file."""
    rng = np.random.default_rng(0)
    for name, (height, width) in SIZES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / name)
    Image.fromarray(rng.integers(0, 256, (72, 66), dtype=np.uint8)).save(root / "gray.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image")
    (root / "notes.txt").write_text("not an image either")
    return root


@pytest.fixture
def folder(tmp_path):
    return _folder(tmp_path / "images")


def test_files_are_compressais_in_its_order_minus_the_unreadable_one(folder):
    with pytest.warns(SkippedFileWarning, match=r"broken\.png: cannot read"):
        dataset = ImageFolder(folder)
    expected = [path for path in collect_images(str(folder)) if path.name != "broken.png"]
    assert dataset.files == expected
    assert [path.name for path, _ in dataset.skipped] == ["broken.png"]
    assert len(dataset) == 4 and "1 unreadable skipped" in dataset.describe()


def test_images_are_pils_rgb_decode_at_their_own_size(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFileWarning)
        dataset = ImageFolder(folder)
    for index, path in enumerate(dataset.files):
        sample = dataset[index]
        reference = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
        assert torch.equal(sample.image, torch.from_numpy(reference).permute(2, 0, 1))
        assert sample.meta["file_name"] == str(path.relative_to(folder))
    gray = dataset[[p.name for p in dataset.files].index("gray.png")].image
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_the_smallest_crop_is_centred_and_a_multiple(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFileWarning)
        dataset = ImageFolder(folder, crop="smallest", multiple=16)
        full = ImageFolder(folder)
    assert dataset.crop == (48, 64)  # smallest 48 x 66, the width rounded down to 64
    for index in range(len(dataset)):
        image, original = dataset[index].image, full[index].image
        top, left = (original.shape[1] - 48) // 2, (original.shape[2] - 64) // 2
        assert torch.equal(image, original[:, top:top + 48, left:left + 64])


def test_strict_and_empty_folders_fail_with_one_line(folder, tmp_path):
    with pytest.raises(DatasetFormatError, match=r"broken\.png: cannot read"):
        ImageFolder(folder, on_error="raise")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no readable image"):
        ImageFolder(tmp_path / "empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFileWarning)
        with pytest.raises(DatasetFormatError, match="smaller than the crop"):
            ImageFolder(folder, crop=(100, 100))


def test_the_registry_builds_one_size_for_probes(folder):
    entry = DATASETS.get("images")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFileWarning)
        dataset = entry.constructor(root=folder, split=entry.unseen_split, **entry.one_size)
    assert {dataset[i].size for i in range(len(dataset))} == {(48, 64)}


def test_metrics_are_compressais(folder):
    rng = np.random.default_rng(1)
    for height, width in ((200, 176), (48, 80)):
        original = torch.from_numpy(rng.random((1, 3, height, width), dtype=np.float32))
        noisy = (original + 0.05 * torch.randn_like(original)).clamp(0, 1)
        ours = compressai_metrics(original, noisy)
        rounded = [(255 * image).clamp(0, 255).round() for image in (original, noisy)]
        assert ours["psnr-rgb"] == pytest.approx(float(compressai_psnr(*rounded)), abs=1e-4)
        if height > 160 and width > 160:
            assert ours["ms-ssim-rgb"] == pytest.approx(
                compute_metrics(original, noisy)["ms-ssim-rgb"], abs=1e-5)
        else:
            assert math.isnan(ours["ms-ssim-rgb"])


def _codec(task="reconstruction", seed=0):
    torch.manual_seed(seed)
    return BaseCodec(codec_preset("tiny"), task).eval()


def test_rows_are_the_real_streams_and_the_estimate_per_image(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFileWarning)
        dataset = ImageFolder(folder)
    model = _codec()
    result = evaluate_folder(model, dataset, name="m")
    assert list(result.rows["image"]) == [dataset[i].meta["file_name"] for i in range(4)]
    for index, row in result.rows.iterrows():
        x = dataset[index].image.unsqueeze(0)
        height, width = x.shape[-2:]
        assert (row.height, row.width) == (height, width)
        assert row.bpp == pytest.approx(8 * len(compress(model, x)) / (height * width))
        with torch.no_grad():
            out = model(x)
        assert row.bpp_estimated == pytest.approx(float(out.bpp[0]), rel=1e-5)
        rounded = [(255 * image).clamp(0, 255).round() for image in (x, out.task_output)]
        assert row["psnr-rgb"] == pytest.approx(float(compressai_psnr(*rounded)), abs=1e-4)
    means = result.means()
    assert means["bpp"] == pytest.approx(result.rows["bpp"].mean())
    assert means["ms-ssim-rgb"] == pytest.approx(result.rows["ms-ssim-rgb"].iloc[0])  # a.png


def test_results_json_is_one_rd_curve_bdrate_reads(folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFileWarning)
        dataset = ImageFolder(folder)
    evaluations = [evaluate_folder(_codec(seed=seed), dataset, name=f"q{seed}", bitstreams=False)
                   for seed in (0, 1)]
    document = compressai_results(evaluations, "mine")
    assert document["name"] == "mine" and "entropy estimation" in document["description"]
    assert document["results"]["bpp"] == [e.means()["bpp_estimated"] for e in evaluations]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(document))
    curves = read_curves(path)
    assert len(curves) == 1 and curves[0].label == "mine" and len(curves[0].points) == 2


def test_a_codec_of_another_task_is_refused(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedFileWarning)
        dataset = ImageFolder(folder)
    with pytest.raises(ValueError, match="a depth codec; an image folder has reconstruction"):
        evaluate_folder(_codec("depth"), dataset)


runner = CliRunner()


def test_cli_eval_writes_rows_and_the_results_json(folder, tmp_path):
    checkpoints = []
    for seed in (0, 1):
        checkpoints.append(tmp_path / f"q{seed}.safetensors")
        save_checkpoint(_codec(seed=seed), checkpoints[-1])
    out, rows = tmp_path / "mine.json", tmp_path / "mine.csv"
    # a real process: pytest would capture the warning that the command prints
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "eval", *map(str, checkpoints), "--dataset",
         "images", "--data-root", str(folder), "--out", str(out), "--per-image", str(rows)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "broken.png: cannot read" in warning[0], result.stderr
    assert "Traceback" not in result.stderr
    frame = pd.read_csv(rows)
    assert len(frame) == 8 and set(frame["model"]) == {"q0", "q1"}
    assert "broken.png" not in set(frame["image"])
    document = json.loads(out.read_text())
    assert document["name"] == "mine" and len(document["results"]["psnr-rgb"]) == 2
    assert document["results"]["bpp"][0] == pytest.approx(
        frame.loc[frame["model"] == "q0", "bpp"].mean())


@pytest.mark.parametrize(("extra", "message"), [
    (["--dataset", "images"], "needs --data-root"),
    (["--out", "x.json"], "--out: only with --dataset images"),
    (["--dataset", "images", "--data-root", "IMAGES", "--out", "x.csv"], "must end in"),
])
def test_cli_eval_bad_input_is_one_line(folder, tmp_path, extra, message):
    checkpoint = tmp_path / "q.safetensors"
    save_checkpoint(_codec(), checkpoint)
    extra = [str(folder) if item == "IMAGES" else item for item in extra]
    result = runner.invoke(app, ["eval", str(checkpoint), *extra])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_cli_eval_refuses_a_depth_codec_before_reading_images(folder, tmp_path):
    checkpoint = tmp_path / "d.safetensors"
    save_checkpoint(_codec("depth"), checkpoint)
    result = runner.invoke(app, ["eval", str(checkpoint), "--dataset", "images",
                                 "--data-root", str(folder)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {checkpoint}: a depth codec; an image folder has reconstruction targets only"]
