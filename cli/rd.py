"""``vinfo rd``: collect finished λ sweeps into a tidy RD CSV (and CompressAI JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.options import SYNTHETIC_PRESET_HELP
from vinfo.data import experiment_datasets
from vinfo.experiments.rd_collect import write_rd
from vinfo.progress import silent

_DATASETS = ", ".join(experiment_datasets())


def rd(
    runs: list[Path] = typer.Argument(..., help="Run directories, or directories holding them "
                                      "(e.g. a 'vinfo train' --out or results/tiny/runs)."),
    out: Path = typer.Option(..., "--out", "-o", help="RD CSV to write (read by vinfo bdrate)."),
    compressai_json: Path = typer.Option(None, "--compressai-json", help="Also write one "
                                         "CompressAI results JSON per curve into this directory."),
    dataset: str = typer.Option("synthetic", "--dataset", help=f"One of {_DATASETS}."),
    split: str = typer.Option("test", "--split", help="val or test."),
    data_root: Path = typer.Option(None, "--data-root", help="Root of a real dataset."),
    synthetic: str = typer.Option("tiny", "--synthetic", help=SYNTHETIC_PRESET_HELP),
    downscale: int = typer.Option(1, "--downscale", min=1,
                                  help="The codecs see inputs shrunk by this "
                                  "factor."),
    bitstream_images: int = typer.Option(None, "--bitstream-images", min=0,
                                         help="Images coded into real "
                                         "bitstreams per model \\[default: all].",
                                         show_default=False),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Evaluate every finished run under RUNS and write one row per model: label, beta, lambda,
    strategy, task, bpp (base, enhancement, total), every metric, actual bpp and overhead."""
    frame = write_rd(runs, out, compressai_dir=compressai_json, dataset=dataset, split=split,
                     data_root=data_root, synthetic=synthetic, downscale=downscale,
                     bitstream_images=bitstream_images,
                     progress=silent if quiet else typer.echo)
    typer.echo(f"wrote {len(frame)} models, curves {', '.join(frame['label'].unique())}: {out}")
