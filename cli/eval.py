"""``vinfo eval CKPT…``: task metric, estimated and actual bpp and rate overhead of codecs; on a
folder of images (``--dataset images --data-root DIR``), per-image rows and CompressAI's
results JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer

from cli.options import SYNTHETIC_PRESET_HELP
from vinfo.data import DATASETS
from vinfo.experiments.evaluate import Evaluation, evaluate_checkpoint, task_name
from vinfo.io import check_output_file, write_json_atomic, write_table_atomic
from vinfo.lock import folder_lock

_DATASETS = ", ".join(DATASETS.names())
IMAGES = "images"


def eval_command(
    ctx: typer.Context,
    checkpoints: list[Path] = typer.Argument(
        ..., help="model.safetensors checkpoints (each with its .json); several: one RD curve."),
    dataset: str = typer.Option("synthetic", "--dataset", help=f"One of {_DATASETS}."),
    split: str = typer.Option(None, "--split", show_default=False,
                              help="val or test (default test); images: a sub-folder (default: "
                              "the whole folder)."),
    data_root: Path = typer.Option(None, "--data-root",
                                   help="Root of a real dataset, or the image folder."),
    synthetic: str = typer.Option("tiny", "--synthetic", help=SYNTHETIC_PRESET_HELP),
    downscale: int = typer.Option(1, "--downscale", min=1,
                                  help="The codec sees inputs shrunk by this "
                                  "factor; predictions are upsampled back before scoring."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per forward pass."),
    bitstream_images: int = typer.Option(None, "--bitstream-images", min=0,
                                         help="Images coded into real "
                                         "bitstreams \\[default: all]; images: 0 reports the "
                                         "estimate as bpp.", show_default=False),
    out: Path = typer.Option(None, "--out", "-o", show_default=False,
                             help="images: write CompressAI's results JSON (one point per "
                             "checkpoint; vinfo bdrate reads it)."),
    per_image: Path = typer.Option(None, "--per-image", show_default=False,
                                   help="images: write the per-image rows (.csv or .json)."),
    name: str = typer.Option(None, "--name", show_default=False,
                             help="images: the curve's name in --out (default: its file stem)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (a record per checkpoint)."),
) -> None:
    """Evaluate CHECKPOINTS: the task metric at the original resolution, the estimated bpp
    (entropy model), the actual bpp of real bitstreams (headers included) and the overhead.

    On a folder of images (--dataset images --data-root DIR: PNG/JPEG of any size, sub-folders
    included, grayscale converted to RGB, unreadable files skipped with a warning), a
    reconstruction codec is scored image by image with CompressAI's conventions: psnr-rgb and
    ms-ssim-rgb on 8-bit images, bpp of the real streams over the image's own pixels (the
    codec pads to its stride of 16 and crops), means over the images.

    Example: vinfo eval q1.safetensors q2.safetensors --dataset images --data-root kodak
    --out mine.json --per-image mine.csv
    """
    if dataset == IMAGES:
        _eval_images(ctx, checkpoints, data_root, split, bitstream_images, out, per_image, name,
                     as_json)
        return
    refused = [flag for flag, value in (("--out", out), ("--per-image", per_image),
                                        ("--name", name)) if value is not None]
    if refused:
        raise ValueError(f"{', '.join(refused)}: only with --dataset images")
    split = split or "test"
    results = [evaluate_checkpoint(checkpoint, dataset=dataset, split=split,
                                   data_root=data_root, synthetic=synthetic,
                                   batch_size=batch_size, downscale_factor=downscale,
                                   bitstream_images=bitstream_images)
               for checkpoint in checkpoints]
    if as_json:
        records = [result.to_dict(per_image=False) for result in results]  # a summary
        typer.echo(json.dumps(records[0] if len(records) == 1 else records, indent=2))
        return
    for checkpoint, result in zip(checkpoints, results, strict=True):
        if len(checkpoints) > 1:
            typer.echo(f"{checkpoint}:")
        _print_evaluation(result, dataset, split)


def _print_evaluation(result: Evaluation, dataset: str, split: str) -> None:
    typer.echo(f"{result.task} on {dataset}/{split}: {result.num_images} images")
    for name, value in result.metrics.items():
        typer.echo(f"  {name:<16}{value:.6g}")
    typer.echo(f"  {'bpp (estimated)':<16}{result.bpp:.6g}  (base {result.bpp_base:.6g}, "
               f"enhancement {result.bpp_enhancement:.6g})")
    if result.bpp_actual is not None:
        typer.echo(f"  {'bpp (actual)':<16}{result.bpp_actual:.6g}  on {result.coded_images} "
                   f"images, overhead {100 * result.rate_overhead:+.1f} %")
        if result.payload_overhead is not None:
            typer.echo(f"  {'rate audit':<16}payload {100 * result.payload_overhead:+.2f} % "
                       f"over the estimate; headers {result.bpp_header:.6g} bpp")


def _eval_images(ctx: typer.Context, checkpoints: list[Path], data_root: Path | None,
                 split: str | None, bitstream_images: int | None, out: Path | None,
                 per_image: Path | None, name: str | None, as_json: bool) -> None:
    from vinfo.data.images import ALL, ImageFolder
    from vinfo.experiments.image_folder import compressai_results, evaluate_folder
    from vinfo.models.checkpoint import load_checkpoint

    if data_root is None:
        raise ValueError("--dataset images needs --data-root DIR (the image folder)")
    if bitstream_images not in (None, 0):
        raise ValueError("--bitstream-images with --dataset images: 0 (the estimate as bpp) "
                         "or unset (every image coded)")
    check_output_file(out, (".json",), "CompressAI's results JSON")
    check_output_file(per_image, (".csv", ".json"), "the per-image rows")
    if len({checkpoint.stem for checkpoint in checkpoints}) < len(checkpoints):
        names = [str(checkpoint) for checkpoint in checkpoints]
    else:
        names = [checkpoint.stem for checkpoint in checkpoints]
    models = [load_checkpoint(checkpoint) for checkpoint in checkpoints]  # bad paths fail first
    for checkpoint, model in zip(checkpoints, models, strict=True):
        if task_name(model) != "reconstruction":
            raise ValueError(f"{checkpoint}: a {task_name(model)} codec; an image folder has "
                             "reconstruction targets only")
    for folder in sorted({path.resolve().parent for path in (out, per_image) if path}):
        ctx.with_resource(folder_lock(folder))
    images = ImageFolder(data_root, split or ALL)
    evaluations = [evaluate_folder(model, images, name=label, bitstreams=bitstream_images != 0)
                   for model, label in zip(models, names, strict=True)]
    rows = pd.concat([evaluation.rows.assign(model=evaluation.name)
                      for evaluation in evaluations], ignore_index=True)
    rows = rows[["model", *rows.columns.drop("model")]]
    if per_image is not None:
        write_table_atomic(per_image, rows)
    if out is not None:
        write_json_atomic(out, compressai_results(evaluations, name or out.stem))
    if as_json:
        typer.echo(json.dumps(compressai_results(evaluations, name or "vinfo"), indent=2))
        return
    rate = "of the real streams" if bitstream_images != 0 else "estimated"
    typer.echo(f"reconstruction on {images.describe()}; psnr-rgb, ms-ssim-rgb on 8-bit images "
               f"(CompressAI's conventions); bpp {rate}")
    means = pd.DataFrame([{"model": e.name, "images": len(e.rows), **e.means()}
                          for e in evaluations])
    typer.echo(means.to_string(index=False, float_format=lambda value: f"{value:.4f}",
                               na_rep="-"))
    if means["ms-ssim-rgb"].isna().any():
        typer.echo("ms-ssim-rgb: '-' where every image has a side of 160 pixels or fewer "
                   "(pytorch_msssim's 5 scales refuse them)")
