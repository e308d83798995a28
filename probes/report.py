"""Figures and files of a probe run: ``I_V`` against complexity, pointwise V-information maps.

No matplotlib backend is selected here (the CLI selects ``Agg``; notebooks keep their inline
backend). Every file is written atomically (:mod:`vinfo.io`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from torch import Tensor

from probes.pvi import PVIMaps, pvi_maps
from probes.study import FitEvent
from vinfo.figures import save_figure
from vinfo.io import atomic_path, write_text_atomic

PLOT_VALUES = {
    "iv": "I_V [bits / target pixel]",
    "mdl_iv": "online I_V (MDL) [bits / target pixel]",
    "online_bits_per_pixel": "online code length [bits / target pixel]",
}
"""Columns :func:`plot_iv_by_capacity` can plot, with their axis labels."""


def plot_iv_by_capacity(frame: pd.DataFrame, value: str | None = None
                        ) -> matplotlib.figure.Figure:
    """The complexity–information plot (Pimentel et al. 2020; Voita & Titov 2020): ``I_V``
    (or the MDL estimate) against the family's parameter count (log scale), one line per
    representation with its CI band, each point labelled with its family, one panel per
    target; the caller saves the figure.

    The null family (0 parameters, ``I_V = 0`` by definition) is the line at 0.

    Args:
        frame: rows of :func:`probes.study.run_probes` or :func:`probes.mdl.mdl_probes`
            (``repr``, ``target``, ``family``, ``params``, ``value`` and its ``_ci_low`` /
            ``_ci_high``).
        value: a column of :data:`PLOT_VALUES`; default ``iv``, or ``mdl_iv`` for an MDL table.

    Raises:
        ValueError: an empty table, missing columns, an unknown ``value``, or no family
            above the null.
    """
    if value is None:
        value = "mdl_iv" if "mdl_iv" in frame.columns and "iv" not in frame.columns else "iv"
    if value not in PLOT_VALUES:
        raise ValueError(f"value must be one of {', '.join(PLOT_VALUES)}, got {value!r}")
    needed = {"repr", "target", "family", "params", value, f"{value}_ci_low",
              f"{value}_ci_high"}
    if frame.empty or not needed <= set(frame.columns):
        raise ValueError(f"need a non-empty probe table with columns {sorted(needed)}")
    shown = frame[frame["params"] > 0]
    if shown.empty:
        raise ValueError("no family above the null to plot (only the null has 0 parameters)")
    targets = list(dict.fromkeys(shown["target"]))
    sns.set_theme(style="whitegrid", context="paper")
    figure, axes = plt.subplots(1, len(targets), figsize=(4.4 * len(targets), 3.4),
                                squeeze=False, layout="constrained")
    palette = dict(zip(dict.fromkeys(shown["repr"]),
                       sns.color_palette(n_colors=shown["repr"].nunique()), strict=True))
    for axis, target in zip(axes.flat, targets, strict=True):
        rows = shown[shown["target"] == target].sort_values("params")
        for index, (name, group) in enumerate(rows.groupby("repr", sort=False)):
            color = palette[name]
            axis.plot(group["params"], group[value], marker="o", color=color, label=name)
            axis.fill_between(group["params"], group[f"{value}_ci_low"],
                              group[f"{value}_ci_high"], color=color, alpha=0.2, linewidth=0)
            if index == 0:
                for _, row in group.iterrows():
                    axis.annotate(row["family"], (row["params"], row[value]),
                                  textcoords="offset points", xytext=(3, 4), fontsize="x-small")
        axis.set_xscale("log")
        axis.axhline(0.0, color="0.5", linewidth=0.8)
        null = ", ".join(sorted(set(rows["null"]))) if "null" in rows else ""
        axis.set(title=f"{target} ({null} null)" if null else target,
                 xlabel="probe parameters (log scale)", ylabel=PLOT_VALUES[value])
        axis.legend(fontsize="small", title=None)
    return figure


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
        written += [npy, *save_figure(figure, directory / f"sample_{sample}.png")]
    return written


class PVIWriter:
    """A :func:`probes.study.run_probes` callback that writes PVI maps of the test split.

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
    "PLOT_VALUES",
    "PVIWriter",
    "plot_iv_by_capacity",
    "safe_name",
    "write_pvi_maps",
]
