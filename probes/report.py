"""Figures and files of a probe run: ``I_V`` against capacity, pointwise V-information maps.

Not imported by :mod:`probes` itself, because it selects matplotlib's headless ``Agg``
backend; import it where figures are written (the CLI, notebooks that save files). Every file
is written atomically (:mod:`vinfo.io`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the library never opens windows

import matplotlib.figure  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from torch import Tensor  # noqa: E402

from probes.estimator import FitEvent  # noqa: E402
from probes.pvi import PVIMaps, pvi_maps  # noqa: E402
from vinfo.io import atomic_path, write_text_atomic  # noqa: E402

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def plot_iv_by_capacity(frame: pd.DataFrame) -> matplotlib.figure.Figure:
    """``I_V`` (bits per target pixel) against family capacity rank, one line per
    representation with its CI band, one panel per target; the caller saves the figure.

    Args:
        frame: rows of :func:`probes.estimator.run_probes` (``repr``, ``target``, ``family``,
            ``capacity_rank``, ``iv``, ``iv_ci_low``, ``iv_ci_high``, ``null``).

    Raises:
        ValueError: an empty table or missing columns.
    """
    needed = {"repr", "target", "family", "capacity_rank", "iv", "iv_ci_low", "iv_ci_high"}
    if frame.empty or not needed <= set(frame.columns):
        raise ValueError(f"need a non-empty probe table with columns {sorted(needed)}")
    targets = list(dict.fromkeys(frame["target"]))
    sns.set_theme(style="whitegrid", context="paper")
    figure, axes = plt.subplots(1, len(targets), figsize=(4.4 * len(targets), 3.4),
                                squeeze=False, layout="constrained")
    palette = dict(zip(dict.fromkeys(frame["repr"]),
                       sns.color_palette(n_colors=frame["repr"].nunique()), strict=True))
    for axis, target in zip(axes.flat, targets, strict=True):
        rows = frame[frame["target"] == target].sort_values("capacity_rank")
        for name, group in rows.groupby("repr", sort=False):
            color = palette[name]
            axis.plot(group["capacity_rank"], group["iv"], marker="o", color=color, label=name)
            axis.fill_between(group["capacity_rank"], group["iv_ci_low"], group["iv_ci_high"],
                              color=color, alpha=0.2, linewidth=0)
        ticks = rows.drop_duplicates("capacity_rank")
        axis.set_xticks(ticks["capacity_rank"], ticks["family"])
        axis.axhline(0.0, color="0.5", linewidth=0.8)
        null = ", ".join(sorted(set(rows["null"]))) if "null" in rows else ""
        axis.set(title=f"{target} ({null} null)" if null else target,
                 xlabel="probe family (capacity rank →)", ylabel="I_V [bits / target pixel]")
        axis.legend(fontsize="small", title=None)
    return figure


def save_figure(figure: matplotlib.figure.Figure, path: str | Path) -> Path:
    """Save ``figure`` atomically (format from the suffix: png, pdf, svg) and close it.

    Raises:
        ValueError: an unsupported suffix.
        FileNotFoundError: the directory does not exist.
    """
    path = Path(path)
    try:
        if path.suffix.lower() not in FIGURE_SUFFIXES:
            raise ValueError(f"{path}: figures are written as {', '.join(FIGURE_SUFFIXES)}")
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=150)
    finally:
        plt.close(figure)
    return path


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    with atomic_path(path) as temporary:
        temporary.write_bytes(buffer.getvalue())


def safe_name(name: str) -> str:
    """A file-system-safe version of a representation name (one path component)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "repr"


def write_pvi_maps(maps: PVIMaps, sample_ids: Tensor, directory: str | Path,
                   n_maps: int = 4) -> list[Path]:
    """Write per-image PVI totals and the maps of the ``n_maps`` hardest images.

    Files (``directory`` is created): ``totals.csv`` (every image: ``sample_id``, ``pvi_bits``,
    ``pixels``, ``pvi_bits_per_pixel``, ``rank`` with 1 = lowest total PVI = hardest), and for
    each of the hardest images ``sample_<id>.npy`` (``(H, W)`` float32 bits, NaN where not
    scored) and ``sample_<id>.png`` (heatmap, blue = the representation helps).

    Args:
        maps: from :func:`probes.pvi.pvi_maps`.
        sample_ids: ``(N,)`` dataset indices of the mapped images.
        directory: output directory.
        n_maps: how many maps to write.

    Returns:
        The paths written.
    """
    directory = Path(directory)
    if len(sample_ids) != maps.maps.shape[0]:
        raise ValueError(f"{len(sample_ids)} sample ids for {maps.maps.shape[0]} maps")
    directory.mkdir(parents=True, exist_ok=True)
    pixels = maps.valid.double().sum((1, 2)).numpy()
    totals = maps.totals.numpy()
    order = np.argsort(totals, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    table = pd.DataFrame({
        "sample_id": sample_ids.numpy(), "pvi_bits": totals, "pixels": pixels,
        "pvi_bits_per_pixel": totals / np.maximum(pixels, 1.0), "rank": rank,
    }).sort_values("rank")
    written = [directory / "totals.csv"]
    write_text_atomic(written[0], table.to_csv(index=False))
    cmap = sns.color_palette("vlag_r", as_cmap=True)
    for index in order[:n_maps]:
        sample = int(sample_ids[index])
        values = np.where(maps.valid[index].numpy(), maps.maps[index].numpy(), np.nan)
        values = values.astype(np.float32)
        npy = directory / f"sample_{sample}.npy"
        _save_npy(npy, values)
        limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
        figure, axis = plt.subplots(figsize=(4.0, 3.4), layout="constrained")
        image = axis.imshow(values, cmap=cmap, vmin=-limit, vmax=limit)
        figure.colorbar(image, ax=axis, label="PVI [bits]")
        axis.set(title=f"sample {sample}: {totals[index]:.0f} bits", xticks=[], yticks=[])
        written += [npy, save_figure(figure, directory / f"sample_{sample}.png")]
    return written


class PVIWriter:
    """A :func:`probes.estimator.run_probes` callback that writes PVI maps of the test split.

    For every fit with seed ``seed`` and a family other than ``null``, writes
    :func:`write_pvi_maps` into ``directory/<repr>/<target>/<family>/``.

    Args:
        directory: root output directory.
        test_ids: ``(N,)`` dataset indices of the test images, in split order.
        n_maps: maps written per (repr, target, family).
        seed: the seed whose fits are mapped.
    """

    def __init__(self, directory: str | Path, test_ids: Tensor, n_maps: int = 4,
                 seed: int = 0) -> None:
        self.directory = Path(directory)
        self.test_ids = test_ids
        self.n_maps = n_maps
        self.seed = seed
        self.written: list[Path] = []

    def __call__(self, event: FitEvent) -> None:
        if event.family == "null" or event.seed != self.seed:
            return
        maps = pvi_maps(event.probe, event.splits.test)
        where = self.directory / safe_name(event.repr) / event.target / event.family
        self.written += write_pvi_maps(maps, self.test_ids, where, self.n_maps)


__all__ = [
    "FIGURE_SUFFIXES",
    "PVIWriter",
    "plot_iv_by_capacity",
    "safe_name",
    "save_figure",
    "write_pvi_maps",
]
