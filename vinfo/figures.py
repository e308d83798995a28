"""Writing figures: the one :func:`save_figure` of every plot vinfo makes, and
:func:`figure_png` for notebooks.

No backend is selected here: the CLI selects ``Agg`` (``cli/main.py``), notebooks keep their
inline backend, and without a display pyplot falls back to ``Agg`` by itself.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.figure
import matplotlib.pyplot as plt

from vinfo.io import FIGURE_SUFFIXES, atomic_path

DPI = 150
"""Resolution of every saved figure."""


def save_figure(figure: matplotlib.figure.Figure, *paths: str | Path) -> list[Path]:
    """Save ``figure`` to each of ``paths`` atomically (the format follows the suffix: png,
    pdf, svg), then close it.

    Returns:
        The paths written, in order.

    Raises:
        ValueError: no path, or a suffix not in :data:`vinfo.io.FIGURE_SUFFIXES` (nothing is
            written).
    """
    written = [Path(path) for path in paths]
    try:
        if not written:
            raise ValueError("save_figure needs a path")
        for path in written:
            if path.suffix.lower() not in FIGURE_SUFFIXES:
                raise ValueError(f"{path}: figures are written as {', '.join(FIGURE_SUFFIXES)}")
        for path in written:
            with atomic_path(path) as temporary:
                figure.savefig(temporary, dpi=DPI, format=path.suffix[1:].lower())
    finally:
        plt.close(figure)
    return written


def figure_png(figure: matplotlib.figure.Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (``display(Image(figure_png(fig)))``, the same under any
    matplotlib backend, ``Agg`` included); closes it."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return buffer.getvalue()


__all__ = ["DPI", "figure_png", "save_figure"]
