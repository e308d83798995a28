"""``vinfo eval CKPT``: task metric, estimated and actual bpp and rate overhead of a codec."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.options import SYNTHETIC_PRESET_HELP
from vinfo.data import DATASETS
from vinfo.experiments.evaluate import evaluate_checkpoint

_DATASETS = ", ".join(DATASETS.names())


def eval_command(
    checkpoint: Path = typer.Argument(..., help="A model.safetensors checkpoint (with its .json)."),
    dataset: str = typer.Option("synthetic", "--dataset", help=f"One of {_DATASETS}."),
    split: str = typer.Option("test", "--split", help="val or test."),
    data_root: Path = typer.Option(None, "--data-root", help="Root of a real dataset."),
    synthetic: str = typer.Option("tiny", "--synthetic", help=SYNTHETIC_PRESET_HELP),
    downscale: int = typer.Option(1, "--downscale", min=1,
                                  help="The codec sees inputs shrunk by this "
                                  "factor; predictions are upsampled back before scoring."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per forward pass."),
    bitstream_images: int = typer.Option(None, "--bitstream-images", min=0,
                                         help="Images coded into real "
                                         "bitstreams \\[default: all].", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON record."),
) -> None:
    """Evaluate CHECKPOINT: its task metric at the original resolution, the estimated bpp
    (entropy model), the actual bpp of real bitstreams (headers included) and the overhead."""
    result = evaluate_checkpoint(checkpoint, dataset=dataset, split=split, data_root=data_root,
                                 synthetic=synthetic, batch_size=batch_size,
                                 downscale_factor=downscale, bitstream_images=bitstream_images)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
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
