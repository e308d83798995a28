"""The finished results directory the notebooks read, computed by ``vinfo reproduce`` once.

It sits above the pipeline (it runs :func:`~vinfo.experiments.reproduce.reproduce`), so that
the readers of :mod:`vinfo.experiments.results` never import the pipeline that writes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from vinfo.experiments.reproduce import reproduce
from vinfo.experiments.results import FINISHED_MARKER, PROBES_FILE

NOTEBOOK_RESULTS_ENV = "VINFO_NOTEBOOK_RESULTS"


def demo_results(
    preferred: str | Path | None = Path("results/tiny"),
    fallback_dir: str | Path = Path("results/micro"),
    *,
    preset: str = "micro",
    progress: Callable[[str], None] | None = None,
) -> Path:
    """A finished results directory for notebooks: ``preferred`` if it holds a finished run,
    else ``fallback_dir`` after running (resumably) ``vinfo reproduce`` with ``preset`` into it.

    Finished means ``summary.md`` and ``probes.csv`` are both there: a run from before the probe
    step is not, so an old ``preferred`` is passed over and an old fallback is run again
    (``reproduce`` skips its finished models and adds the probe step). A finished fallback run
    is reused as it is, so several notebooks share one run. ``$VINFO_NOTEBOOK_RESULTS``, when
    set, replaces ``fallback_dir``. Delete the fallback directory to recompute it.

    Args:
        preferred: a results directory to use if finished (``None``: always the fallback).
        fallback_dir: where the ``preset`` run is cached.
        preset: the reproduce preset of the fallback run.
        progress: called with reproduce's progress lines.

    Returns:
        The directory (finished: it has ``summary.md`` and ``probes.csv``).
    """
    if preferred is not None and _finished_with_probes(Path(preferred)):
        return Path(preferred)
    fallback = Path(os.environ.get(NOTEBOOK_RESULTS_ENV) or fallback_dir)
    if not _finished_with_probes(fallback):
        reproduce(preset, fallback, progress=progress)
    return fallback


def _finished_with_probes(directory: Path) -> bool:
    return (directory / FINISHED_MARKER).is_file() and (directory / PROBES_FILE).is_file()


__all__ = ["NOTEBOOK_RESULTS_ENV", "demo_results"]
