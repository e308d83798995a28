"""``summary.md`` of a ``vinfo reproduce`` run, the page it prints and writes last (its presence
marks a finished run): verdicts, the similar-rate pair across seeds, the loss terms, the BD
table, the trivial-predictor check and the probes of the pair, as blocks of
:mod:`vinfo.experiments.document` (the report's renderer)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from vinfo.experiments.document import Block, Bullets, Heading, Paragraph, frame_table
from vinfo.experiments.presets import ReproducePreset
from vinfo.experiments.report import bd_table_blocks
from vinfo.experiments.results import PAIRED_FILE, PROBES_FILE


def summary_blocks(
    preset: ReproducePreset,
    pair: dict[str, Any],
    table: pd.DataFrame,
    trivial: pd.DataFrame,
    wall_time: str,
    probe_pair: pd.DataFrame | None = None,
    verdicts: pd.DataFrame | None = None,
    seeds: pd.DataFrame | None = None,
    terms: pd.DataFrame | None = None,
) -> list[Block]:
    """The summary of one reproduce call.

    Args:
        preset: what ran.
        pair: the similar-rate base pair, curve → ``{"lmbda", "bpp"}``.
        table: the BD table.
        trivial: the trivial-predictor check.
        wall_time: the call's wall time, as printed (``mm:ss``).
        probe_pair: the paired ΔI_V of the pair (``None``: no probes).
        verdicts: :func:`vinfo.experiments.verdict.paper_verdicts`.
        seeds: the pair across training seeds.
        terms: the loss terms of one base model.
    """
    blocks: list[Block] = [
        Heading("vinfo reproduce", 1),
        Paragraph(f"Preset: {preset.description}."),
        Paragraph(f"Wall time of the last call: {wall_time} (mm:ss; a rerun skips finished "
                  "models)."),
    ]
    if verdicts is not None:
        blocks += [
            Heading("Verdicts on the paper's claims"),
            Paragraph("Reproduced: every seed (or the CI) has the paper's sign; not reproduced: "
                      "the opposite sign; inconclusive: mixed signs, a CI containing 0, or "
                      "undefined."),
            frame_table(verdicts),
        ]
    if seeds is not None and len(seeds):
        blocks += [Heading("The similar-rate pair across training seeds (test split)"),
                   frame_table(seeds)]
    if terms is not None:
        blocks += [Heading("Loss terms of one base model (eq. 3: λ·d + λ·β·D_recon + R, train "
                           "means)"), frame_table(terms)]
    blocks += [
        Heading("Similar-rate base pair"),
        Bullets(tuple(f"{curve}: lambda_b = {point['lmbda']:g}, {point['bpp']:.4f} bpp"
                      for curve, point in pair.items())),
        Heading("BD table (anchor = baseline, test = proposed)"),
        *bd_table_blocks(table.drop(columns="task")),
        Heading("Trivial predictor check (test split)"),
        frame_table(trivial),
    ]
    if probe_pair is not None and not probe_pair.empty:
        first = probe_pair.iloc[0]
        cells = probe_pair.assign(
            ci=[f"[{low:+.4f}, {high:+.4f}]" for low, high in
                zip(probe_pair["delta_iv_ci_low"], probe_pair["delta_iv_ci_high"], strict=True)],
            **{name: probe_pair[name].map(lambda value: f"{value:+.4f}")
               for name in ("delta_iv", "repr_iv", "anchor_iv")},
        )[["target", "family", "delta_iv", "ci", "repr_iv", "anchor_iv"]]
        cells.columns = ["target", "family", "ΔI_V", "CI", f"I_V {first['repr']}",
                         f"I_V {first['anchor']}"]
        blocks += [
            Heading("V-information probes of the similar-rate pair"),
            Paragraph(f"ΔI_V = I_V({first['repr']}) − I_V({first['anchor']}), bits per target "
                      f"pixel, paired bootstrap CI over {int(first['n_test_images'])} test "
                      f"images and {int(first['n_seeds'])} seed(s); every base model in "
                      f"{PROBES_FILE}, β against β at the same λ in {PAIRED_FILE}."),
            frame_table(cells),
        ]
    return blocks


__all__ = ["summary_blocks"]
