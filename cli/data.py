"""``vinfo data``: export the synthetic dataset in real layouts, summarise a dataset directory."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.options import SYNTHETIC_PRESET_HELP
from vinfo.data import EXPORT_FORMATS, export_synthetic, inspect_dataset

app = typer.Typer(help="Datasets: export synthetic scenes as COCO/Cityscapes trees, inspect one.",
                  no_args_is_help=True)


@app.command()
def export(
    dataset: str = typer.Argument(..., help="Dataset to export; only 'synthetic'."),
    format: str = typer.Option(..., "--format", "-f",
                               help=f"Layout: {', '.join(EXPORT_FORMATS.names())}."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset root."),
    n: int | None = typer.Option(None, "--n",
                                 help="Number of images (default: the preset's)."),
    preset: str = typer.Option("tiny", "--preset", help=SYNTHETIC_PRESET_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export of the "
                                   "same split in OUT (its files only)."),
) -> None:
    """Write the synthetic dataset to OUT in a real on-disk layout. OUT must be new, empty or
    an earlier export; one process writes it at a time."""
    if dataset != "synthetic":
        raise ValueError(f"only 'synthetic' can be exported, got {dataset!r}")
    path = export_synthetic(format, out, n=n, config=preset, overwrite=overwrite)
    typer.echo(f"wrote {format} dataset: {path}")


@app.command()
def info(
    root: Path = typer.Argument(..., help="Dataset root (COCO or Cityscapes layout)."),
) -> None:
    """Print what was found in ROOT: layout, counts, image sizes, class histogram."""
    typer.echo(str(inspect_dataset(root)))
