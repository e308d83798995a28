"""``vinfo report``: one self-contained Markdown + HTML report of a ``vinfo reproduce`` run.

:func:`write_report` reads a results directory (:func:`vinfo.experiments.results.load_results`),
writes the figures it generates and copies of the files it shows into the report directory,
and renders one document twice: ``report.md`` and ``report.html`` (same content; the HTML
references only files in its own directory, relatively, and embeds no external resource).

The document is a list of blocks (:mod:`vinfo.experiments.document`) rendered by
:func:`~vinfo.experiments.document.render_markdown` and
:func:`~vinfo.experiments.document.render_html`, so the two files cannot drift.
Sections whose inputs are missing (no probe tables yet, an interrupted run) are replaced by a
one-line note. The closing "reading" paragraph is generated from the numbers and says only
what they show (e.g. which ``ΔI_V`` intervals exclude 0).

Above 500 lines for one reason: one function per section of one document (run, verdicts, RD,
probes, co-adaptation, reading, configuration); the document model and its renderers are in
:mod:`vinfo.experiments.document`.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bdrate.core import DEFAULT_MIN_OVERLAP
from bdrate.curves import format_overlap, overlap_legend
from vinfo.experiments.analysis import (
    co_adaptation_table,
    conditional_coding_gain,
    iv_across_beta,
    paired_summary,
    plot_co_adaptation,
    plot_iv_across_beta,
    plot_paired_delta,
)
from vinfo.experiments.document import (
    Block,
    Bullets,
    Code,
    Heading,
    Image,
    Links,
    Note,
    Paragraph,
    Table,
    render_html,
    render_markdown,
)
from vinfo.experiments.results import (
    BD_FILE,
    CO_ADAPTATION_STEM,
    CONDITIONAL_GAIN_FILE,
    CONFIG_FILE,
    FIG2_STEM,
    FIG3_STEM,
    FINISHED_MARKER,
    IV_ACROSS_BETA_STEM,
    IV_CAPACITY_FIGURE,
    PAIR_FILE,
    PAIRED_DELTA_STEM,
    PAIRED_FILE,
    PROBES_FILE,
    REPORT_DIR,
    REPORT_HTML,
    REPORT_MD,
    VERDICTS_FILE,
    Results,
    csv_flag,
    load_results,
)
from vinfo.figures import save_figure
from vinfo.io import atomic_path, write_text_atomic

SOFTWARE = ("torch", "torchvision", "compressai", "numpy", "vinfo-toolkit")


# formatting helpers ---------------------------------------------------------------------------


def _num(value: Any, digits: int = 4, signed: bool = False) -> str:
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value:+.{digits}g}" if signed else f"{value:.{digits}g}"


def _ci(low: float, high: float, digits: int = 3) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def _table(frame: pd.DataFrame, columns: dict[str, str], numeric: Iterable[str] = ()) -> Table:
    """A :class:`Table` of ``frame``'s ``columns`` (name → header); cells already strings or
    numbers (formatted with :func:`_num`)."""
    numeric = set(numeric)
    rows = tuple(tuple(_num(row[c]) if not isinstance(row[c], str) else row[c]
                       for c in columns) for _, row in frame.iterrows())
    return Table(tuple(columns.values()), rows, tuple(c in numeric for c in columns))


def _bd_cells(bd: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str], str]:
    """The BD values of a BD table as cells, each beside its overlap (flagged when low).

    Returns the formatted frame, its value columns (name → header, in order) and the sentence
    explaining the overlap ("" for a table written before overlaps were recorded)."""
    frame = bd.assign(bd_rate_percent=[_num(v, 5, True) for v in bd["bd_rate_percent"]],
                      bd_metric=[_num(v, 4, True) for v in bd["bd_metric"]],
                      note=bd["note"].fillna("").astype(str))
    if "bd_rate_overlap" not in bd.columns:
        return frame, {"bd_rate_percent": "BD-rate [%]", "bd_metric": "BD-metric",
                       "note": "note"}, ""
    limits = bd["min_overlap"].fillna(DEFAULT_MIN_OVERLAP).astype(float)
    for name in ("bd_rate_overlap", "bd_metric_overlap"):
        frame[name] = [format_overlap(float(v), limit)
                       for v, limit in zip(bd[name], limits, strict=True)]
    columns = {"bd_rate_percent": "BD-rate [%]", "bd_rate_overlap": "overlap [%]",
               "bd_metric": "BD-metric", "bd_metric_overlap": "overlap [%]", "note": "note"}
    if "bd_rate_ci_low" in bd.columns:  # the bootstrap interval over the test images
        frame["bd_rate_ci"] = [
            "" if pd.isna(low) or pd.isna(value) else f"[{low:+.2f}, {high:+.2f}]"
            for value, low, high in zip(bd["bd_rate_percent"], bd["bd_rate_ci_low"],
                                        bd["bd_rate_ci_high"], strict=True)]
        levels = bd["ci_confidence"].dropna()
        level = f"{100 * float(levels.iloc[0]):g} % " if len(levels) else ""
        columns = {"bd_rate_percent": columns["bd_rate_percent"],
                   "bd_rate_ci": f"{level}CI, test images [%]"} | columns
    return frame, columns, overlap_legend(float(limits.iloc[0]))


def bd_table_blocks(bd: pd.DataFrame) -> list[Block]:
    """A BD table (:func:`vinfo.experiments.rd.bd_table`) as a :class:`Table` (each value beside
    its overlap) and the paragraph that reads its signs and overlaps."""
    columns = {c: c for c in ("figure", "task") if c in bd.columns}
    columns |= {"anchor": "anchor", "test": "test", "metric": "metric"}
    frame, value_columns, legend = _bd_cells(bd)
    columns |= value_columns
    return [_table(frame, columns, tuple(c for c in value_columns if c not in ("note",
                                                                              "bd_rate_ci"))),
            Paragraph("BD-rate < 0: the test curve needs fewer bits for the same quality. "
                      "BD-metric > 0: the test curve is better at equal rate. n/a: undefined, "
                      f"the note says why. {legend}")]


def _low_overlap_count(bd: pd.DataFrame) -> int:
    """Defined BD rows whose curves overlap on less than their ``min_overlap``."""
    if "bd_rate_overlap" not in bd.columns:
        return 0
    lowest = bd[["bd_rate_overlap", "bd_metric_overlap"]].min(axis=1)
    defined = bd["bd_rate_percent"].notna()
    return int((defined & (lowest < bd["min_overlap"].fillna(DEFAULT_MIN_OVERLAP))).sum())


def software_versions() -> dict[str, str]:
    """Python and the installed versions of the packages results depend on."""
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _copy(source: Path, out: Path) -> str:
    """Copy ``source`` into ``out`` atomically; returns the relative name."""
    with atomic_path(out / source.name) as temporary:
        shutil.copyfile(source, temporary)
    return source.name


def _write_csv(frame: pd.DataFrame, out: Path, name: str) -> str:
    write_text_atomic(out / name, frame.to_csv(index=False))
    return name


def _save(figure: Any, out: Path, stem: str) -> str:
    (path,) = save_figure(figure, out / f"{stem}.png")
    return path.name


# sections -------------------------------------------------------------------------------------


def _run_section(results: Results) -> list[Block]:
    config = results.config
    blocks: list[Block] = [Heading("What was run"), Paragraph(f"Preset: {results.description}.")]
    items = []
    synthetic = config.get("synthetic") or {}
    if config.get("dataset") == "synthetic" and synthetic:
        items.append(f"data: synthetic {synthetic.get('height')}x{synthetic.get('width')} "
                     f"scenes, {synthetic.get('num_images')} images (seed "
                     f"{synthetic.get('seed')})")
    elif config.get("dataset"):
        items.append(f"data: {config['dataset']}")
    codec = config.get("codec") or {}
    if codec:
        layout = codec.get("layout", "linear")  # absent: a linear record (CodecConfig.to_dict)
        items.append(f"codec: N={codec.get('N')}, M={codec.get('M')}"
                     + ("" if layout == "linear" else f", {layout} layout"))
    betas = ", ".join(f"{b:g}" for b in results.betas)
    lmbdas = ", ".join(f"{float(v):g}" for v in config.get("base_lmbdas", ()))
    items.append(f"base task {config.get('base_task')}: beta in ({betas}), lambda_b in "
                 f"({lmbdas})")
    for secondary in config.get("secondary", ()):
        values = ", ".join(f"{float(v):g}" for v in secondary.get("lmbdas", ()))
        items.append(f"secondary task {secondary.get('task')}: "
                     f"{', '.join(secondary.get('strategies', ()))}; lambda_e in ({values})")
    for key, entry in results.pair.items():
        items.append(f"similar-rate base pair, {key}: lambda_b = {float(entry['lmbda']):g}, "
                     f"{float(entry['bpp']):.4g} bpp")
    blocks.append(Bullets(tuple(items)))
    if not results.finished:
        blocks.append(Note(f"The run had not finished (no {FINISHED_MARKER}): tables may be "
                           "partial."))
    return blocks


def _verdict_section(results: Results) -> list[Block]:
    """The paper's claims, one line each, first: what a reader wants to know."""
    blocks: list[Block] = [Heading("Verdicts on the paper's claims")]
    if results.verdicts is None:
        return [*blocks, Note(f"No {VERDICTS_FILE} (an older or unfinished run).")]
    blocks.append(Paragraph(
        "Reproduced: every training seed (or the paired CI) has the paper's sign; not "
        "reproduced: the opposite sign; inconclusive: mixed signs, a CI containing 0, or an "
        "undefined value. A BD-rate comes from one seed and has no CI."))
    blocks.append(_table(results.verdicts, {"claim": "claim", "measured": "measured",
                                            "spread": "seeds / CI", "verdict": "verdict"}))
    if results.pair_seeds is not None:
        numeric = [c for c in results.pair_seeds.columns if c not in ("seed",)]
        blocks += [Paragraph("The similar-rate pair across training seeds (test split):"),
                   _table(results.pair_seeds, {c: c for c in results.pair_seeds.columns},
                          numeric)]
    if results.loss_terms is not None:
        columns = {"which": "epoch", "epoch": "#", "task_term": "λ·d",
                   "recon_term": "λ·β·D_recon", "rate_term": "R (bpp)"}
        blocks += [Paragraph("How much each term of eq. 3 weighs in the training loss of the "
                             "proposed curve's first base model (train means; d and D_recon "
                             "in the units of vinfo.models.tasks):"),
                   _table(results.loss_terms, columns, ("task_term", "recon_term", "rate_term"))]
    seconds = results.timings.get("seconds") if results.timings else None
    if seconds:
        total = sum(seconds.values())
        items = tuple(f"{phase}: {value:.0f} s ({value / total:.0%})"
                      for phase, value in seconds.items())
        blocks += [Paragraph(f"Wall time by phase ({results.timings.get('workers', 1)} "
                             "training worker(s)):"), Bullets(items)]
    return blocks


def _rd_section(results: Results, out: Path) -> tuple[list[Block], pd.DataFrame | None]:
    blocks: list[Block] = [Heading("Rate-distortion")]
    if results.bd is None:
        blocks.append(Note(f"No {BD_FILE}: the BD table is skipped."))
    else:
        bd = results.bd
        columns = {c: c for c in ("figure", "task") if c in bd.columns}
        columns |= {"anchor": "anchor", "test": "test", "metric": "metric"}
        blocks += [
            Heading("BD table (anchor = baseline, test = proposed)", 3),
            *bd_table_blocks(bd),
            Links(((BD_FILE, _copy(results.root / BD_FILE, out)),)),
        ]
    captions = {f"{FIG2_STEM}.png": "Fig. 2 layout: base task and reconstruction (direct, "
                                    "scalable).",
                f"{FIG3_STEM}.png": "Fig. 3 layout: segmentation on the base (scalable, "
                                    "standalone)."}
    figures = [name for name in captions if name in results.figures]
    if figures:
        blocks.append(Heading("RD curves", 3))
        for name in figures:
            blocks.append(Image(_copy(results.figures[name], out), name, captions[name]))
    else:
        blocks.append(Note(f"No RD figures ({', '.join(captions)}) in the results directory."))
    gain = conditional_coding_gain(results.rd) if results.rd else None
    blocks.append(Heading("Conditional-coding gain (scalable vs standalone)", 3))
    if gain is None or gain.empty:
        blocks.append(Note("No task has both a scalable and a standalone curve: skipped."))
    else:
        frame, value_columns, legend = _bd_cells(gain)
        blocks += [
            Paragraph("BD-rate of each scalable curve against the standalone curve (same "
                      "transforms, enhancement latent coded with the base zeroed out): the rate "
                      "saved by conditioning on the base at equal quality. Negative = "
                      f"conditioning saves bits. Rate axis: {gain['rate_column'].iloc[0]}. "
                      f"{legend}"),
            _table(frame, {"task": "task", "beta": "beta", "lmbda_base": "base lambda",
                           "metric": "metric", **value_columns},
                   ("beta", "lmbda_base", *(c for c in value_columns if c != "note"))),
            Links(((CONDITIONAL_GAIN_FILE, _write_csv(gain, out, CONDITIONAL_GAIN_FILE)),)),
        ]
    if results.trivial is not None:
        blocks += [Heading("Trivial predictor check (test split)", 3),
                   _table(results.trivial, {c: c for c in results.trivial.columns},
                          ("trivial", "best_model", "worst_model"))]
    return blocks, gain


def _probe_section(results: Results, out: Path) -> tuple[list[Block], pd.DataFrame | None]:
    blocks: list[Block] = [Heading("V-information probes")]
    probes = results.probes
    if probes is None:
        blocks.append(Note(f"No {PROBES_FILE} in the results directory: the probe sections are "
                           "skipped (run the probe step of vinfo reproduce, or vinfo probe)."))
        return blocks, None
    first = probes.iloc[0]
    facts = [f"{int(first[c])} {label}" for c, label in
             (("n_test_images", "test images"), ("n_seeds", "seed(s)"),
              ("n_resamples", "bootstrap resamples")) if c in probes.columns]
    source = f" Data: {first['source']}." if "source" in probes.columns else ""
    blocks.append(Paragraph(
        "I_V = H_V(Z|∅) − H_V(Z|Y) in bits per target pixel (Xu et al., ICLR 2020): how much "
        "a probe family can read about the target Z from the base latent Y. CIs bootstrap the "
        f"test images and seeds ({', '.join(facts) or 'settings not recorded'}).{source}"))
    pair = results.pair_lmbdas
    try:
        table = iv_across_beta(probes, pair or None)
        where = "each beta at the lambda of the similar-rate pair" if pair else "every lambda"
    except ValueError:
        table = iv_across_beta(probes)
        where = "every lambda (the probe table has no row at the pair's lambdas)"
    frame = table.assign(
        ci=[_ci(lo, hi) for lo, hi in zip(table["iv_ci_low"], table["iv_ci_high"], strict=True)],
        iv=[f"{v:+.4f}" for v in table["iv"]],
        flags=_flags(table))
    columns = {"target": "target", "family": "family", "beta": "beta", "lmbda": "lambda",
               "iv": "I_V [bits/px]", "ci": "CI"}
    if "h_null" in frame.columns:
        columns["h_null"] = "H_V(Z|∅) [bits/px]"
    columns["flags"] = "flags"
    blocks += [
        Heading("I_V across beta", 3),
        Paragraph(f"Rows: {where}. Flags: N = no fit beat the null on validation (I_V is "
                  "the raw test difference), B = a fit stopped on its budget (it may not have "
                  "converged), S = the shuffled-representation control is above 0.01 bits with "
                  "its CI above 0 (a leak), C = below a lower-capacity family (the fit is "
                  "suspect)."),
        _table(frame, columns, ("beta", "lmbda", "iv", "h_null")),
        Links(((f"{IV_ACROSS_BETA_STEM}.csv",
                _write_csv(table, out, f"{IV_ACROSS_BETA_STEM}.csv")),
               (PROBES_FILE, _copy(results.root / PROBES_FILE, out)))),
        Image(_save(plot_iv_across_beta(table), out, IV_ACROSS_BETA_STEM), "I_V across beta",
              f"I_V against probe capacity with CI bands, {where}."),
    ]
    blocks += _controls_blocks(table)
    if IV_CAPACITY_FIGURE in results.figures:
        blocks.append(Image(_copy(results.figures[IV_CAPACITY_FIGURE], out),
                            "I_V against probe parameters",
                            "I_V against the parameter count of each probe family, with CI "
                            "bands, for the similar-rate pair (the complexity-information plot, "
                            "from the probe step)."))
    paired = None
    blocks.append(Heading("Paired difference ΔI_V = I_V(β=0.1) − I_V(β=0) at the same λ", 3))
    if results.paired is None:
        blocks.append(Note(f"No {PAIRED_FILE}: the paired differences are skipped."))
    else:
        paired = paired_summary(results.paired)
        shown = paired[paired["family"] != "null"]
        frame = shown.assign(
            delta_iv=[f"{v:+.4f}" for v in shown["delta_iv"]],
            ci=[_ci(lo, hi, 4) for lo, hi in zip(shown["delta_iv_ci_low"],
                                                  shown["delta_iv_ci_high"], strict=True)])
        blocks += [
            Paragraph("The same test images and seeds for both representations, so the CI is "
                      "paired (the difficulty of an image cancels). Only a CI that excludes 0 "
                      "is read as a difference. The null family is left out: its ΔI_V is 0 by "
                      "definition."),
            _table(frame, {"target": "target", "family": "family", "lmbda": "lambda",
                           "delta_iv": "ΔI_V [bits/px]", "ci": "CI", "verdict": "CI vs 0"},
                   ("lmbda", "delta_iv")),
            Links(((PAIRED_FILE, _copy(results.root / PAIRED_FILE, out)),)),
        ]
        try:
            blocks.append(Image(_save(plot_paired_delta(results.paired), out, PAIRED_DELTA_STEM),
                                "paired delta I_V", "ΔI_V with its paired CI per probe family "
                                "and lambda; the line marks no difference."))
        except ValueError as error:
            blocks.append(Note(f"No paired figure: {error}."))
    return blocks, paired


FLAGS = (("no_gain_flag", "N"), ("budget_flag", "B"), ("shuffled_flag", "S"),
         ("capacity_flag", "C"))
"""Letter of each flag column of ``probes.csv`` (the letters of ``vinfo probe``)."""


def _flags(table: pd.DataFrame) -> list[str]:
    return ["".join(letter for column, letter in FLAGS if csv_flag(row.get(column, False))) or "-"
            for _, row in table.iterrows()]


def _controls_blocks(table: pd.DataFrame) -> list[Block]:
    """The controls of the I_V table's rows: the shuffled control and the control task with
    their CIs and the selectivity, or a note that they were not run."""
    blocks: list[Block] = [Heading("Controls", 3)]
    shown = table[table["family"] != "null"]
    ran = ("selectivity" in shown.columns
           and bool(pd.to_numeric(shown["selectivity"], errors="coerce").notna().any()))
    if not ran:
        blocks.append(Note("The controls were not run for this study (its probe settings have "
                           "controls off, as the tiny and micro presets do to save time): the "
                           "shuffled control and the control task are not shown. `vinfo probe` "
                           "runs them by default."))
        return blocks
    shown = shown[pd.to_numeric(shown["selectivity"], errors="coerce").notna()]
    frame = shown.assign(
        iv=[f"{v:+.4f}" for v in shown["iv"]],
        shuffled=[f"{v:+.4f} {_ci(lo, hi)}" for v, lo, hi in zip(
            shown["shuffled_iv"], shown["shuffled_iv_ci_low"], shown["shuffled_iv_ci_high"],
            strict=True)],
        control=[f"{v:+.4f} {_ci(lo, hi)}" for v, lo, hi in zip(
            shown["control_iv"], shown["control_iv_ci_low"], shown["control_iv_ci_high"],
            strict=True)],
        selectivity=[f"{v:+.4f}" for v in shown["selectivity"]],
        flags=_flags(shown))
    leaks = int(sum(csv_flag(v) for v in shown.get("shuffled_flag", [])))
    iv, selectivity = pd.to_numeric(shown["iv"]), pd.to_numeric(shown["selectivity"])
    low = int(((iv > 0) & (selectivity < 0.5 * iv)).sum())
    blocks += [
        Paragraph("Shuffled control: the first seed's fit repeated with every target paired "
                  "to another image's representation; a family that does not leak scores at or "
                  "below 0 (flag S above 0.01 bits with its CI above 0). Control task (Hewitt & "
                  "Liang 2019): every distinct representation vector gets one random training "
                  "target patch, so I_V on it measures what the family can memorise; "
                  "selectivity = I_V − I_V(control task). "
                  f"{leaks} of {len(shown)} rows flag a leak; {low} with I_V > 0 have a "
                  "selectivity below half their I_V (much of that I_V could be memorisation)."),
        _table(frame, {"target": "target", "family": "family", "beta": "beta",
                       "lmbda": "lambda", "iv": "I_V [bits/px]",
                       "shuffled": "shuffled I_V [CI]", "control": "control-task I_V [CI]",
                       "selectivity": "selectivity", "flags": "flags"},
               ("beta", "lmbda", "iv", "selectivity")),
    ]
    return blocks


def _co_adaptation_section(results: Results, out: Path,
                           gain: pd.DataFrame | None) -> tuple[list[Block], pd.DataFrame | None]:
    blocks: list[Block] = [Heading("Co-adaptation")]
    if results.probes is None:
        blocks.append(Note(f"No {PROBES_FILE}: the co-adaptation figure is skipped."))
        return blocks, None
    try:
        table = co_adaptation_table(results.probes, results.rd, gain, pair=results.pair_lmbdas)
        image = _save(plot_co_adaptation(table, gain), out, CO_ADAPTATION_STEM)
    except ValueError as error:
        blocks.append(Note(f"The co-adaptation figure is skipped: {error}."))
        return blocks, None
    family = ", ".join(dict.fromkeys(table["family"]))
    blocks += [
        Paragraph(f"One point per base representation (beta, lambda): I_V under the simplest "
                  f"probe family ({family}) on the x axis, with its CI, against the quality of "
                  "the direct model trained on that base on the y axis; colour = beta, marker "
                  "= lambda, circled = the similar-rate pair. The last panel is the "
                  "conditional-coding gain of the pair. A trend across points would say that "
                  "what a simple probe reads from the base goes with what the secondary task "
                  "gets from it; overlapping CIs on x mean the points are not ordered."),
        Image(image, "co-adaptation", "I_V (simplest family) against direct-model quality, "
              "per base representation."),
        Links(((f"{CO_ADAPTATION_STEM}.csv",
                _write_csv(table, out, f"{CO_ADAPTATION_STEM}.csv")),)),
    ]
    return blocks, table


def _reading(results: Results, gain: pd.DataFrame | None,
             paired: pd.DataFrame | None) -> list[Block]:
    """Sentences generated from the numbers; nothing the tables do not show."""
    items = []
    if results.bd is not None:
        defined = results.bd[results.bd["bd_rate_percent"].notna()]
        for row in defined.itertuples():
            direction = "more" if row.bd_rate_percent > 0 else "fewer"
            items.append(f"{row.figure}: '{row.test}' needs {abs(row.bd_rate_percent):.1f} % "
                         f"{direction} bits than '{row.anchor}' at equal {row.metric} "
                         f"(BD-rate {row.bd_rate_percent:+.1f} %).")
        low = _low_overlap_count(results.bd)
        if low:
            items.append(f"{low} of {len(defined)} BD values rest on curves that overlap on less "
                         "than min_overlap of their range (flagged (low) in the table): they "
                         "average over a small part of the curves.")
        undefined = len(results.bd) - len(defined)
        if undefined:
            items.append(f"{undefined} of {len(results.bd)} BD values are undefined (too few "
                         "points or curves that do not overlap; see the notes).")
    if gain is not None and not gain.empty:
        defined = gain[gain["bd_rate_percent"].notna()]
        for row in defined.itertuples():
            verb = "saves" if row.bd_rate_percent < 0 else "costs"
            items.append(f"Conditioning on the beta={row.beta:g} base {verb} "
                         f"{abs(row.bd_rate_percent):.1f} % of the {row.task} rate against "
                         "standalone coding.")
        if len(defined) < len(gain):
            items.append(f"The conditional-coding gain is undefined for {len(gain) - len(defined)}"
                         f" of {len(gain)} task x beta combinations.")
    if results.trivial is not None and "all_models_beat_trivial" in results.trivial:
        weak = results.trivial[~results.trivial["all_models_beat_trivial"].astype(bool)]
        for row in weak.itertuples():
            items.append(f"On {row.task}, not every model beats the trivial predictor "
                         f"({row.metric} {row.trivial:.4g}): differences between models there "
                         "can be training noise.")
    if paired is not None:
        informative = paired[paired["family"] != "null"]
        counts = informative["verdict"].value_counts()
        n = len(informative)
        if n:
            zero = counts.get("exactly 0", 0)
            items.append(f"ΔI_V (beta=0.1 minus beta=0, same lambda): of {n} comparisons "
                         f"(null family excluded), {counts.get('above 0', 0)} have a CI above "
                         f"0, {counts.get('below 0', 0)} below 0 and "
                         f"{counts.get('contains 0', 0)} contain 0"
                         + (f"; {zero} are exactly 0 (both representations at the same I_V, "
                            "e.g. neither probe beat its null)." if zero else "."))
            resolved = informative[informative["verdict"].isin(["above 0", "below 0"])]
            for row in resolved.itertuples():
                interval = _ci(row.delta_iv_ci_low, row.delta_iv_ci_high, 4)
                negative = [f"I_V({name}) = {value:+.4f}" for name, value in
                            ((row.repr, getattr(row, "repr_iv", math.nan)),
                             (row.anchor, getattr(row, "anchor_iv", math.nan)))
                            if value < 0]
                caveat = (f" Note {' and '.join(negative)} < 0: that probe scored below its null "
                          "on the test images, so the difference reflects a probe that did not "
                          "generalise rather than information in the representation."
                          if negative else "")
                items.append(f"{row.target}/{row.family} at lambda={row.lmbda:g}: ΔI_V "
                             f"{row.delta_iv:+.4f} {interval} bits/px (CI {row.verdict})."
                             + caveat)
            m = n - zero
            if "confidence" in informative.columns:
                level, assumed = float(informative["confidence"].iloc[0]), ""
            else:
                level, assumed = 0.95, " (assumed: the table does not record it)"
            if m:
                items.append(f"Caveat: at {level:.0%} coverage{assumed}, about "
                             f"{(1 - level) * m:.1f} of {m} intervals would exclude 0 by chance "
                             "alone if there were no difference.")
    elif results.probes is None:
        items.append("No probe tables: nothing can be said about V-information here.")
    blocks: list[Block] = [Heading("Reading")]
    if items:
        blocks.append(Bullets(tuple(items)))
    else:
        blocks.append(Note("Nothing to read: the results directory has no tables yet."))
    blocks.append(Paragraph(f"These statements hold for this run only ({results.description})."))
    return blocks


def _config_section(results: Results) -> list[Block]:
    blocks: list[Block] = [Heading("Configuration"), Paragraph(f"{CONFIG_FILE} (the preset):"),
                           Code(json.dumps(results.config, indent=2), "json")]
    if results.pair:
        blocks += [Paragraph(f"{PAIR_FILE} (the similar-rate base pair):"),
                   Code(json.dumps(results.pair, indent=2), "json")]
    versions = software_versions()
    blocks += [Heading("Software"),
               Table(("package", "version"), tuple(versions.items()), (False, False))]
    return blocks


# entry point ----------------------------------------------------------------------------------


def build_report(results: Results, out: Path) -> list[Block]:
    """Write the report's figures and file copies into ``out`` (which must exist) and return
    its blocks."""
    blocks: list[Block] = [
        Heading(f"vinfo report: {results.root.resolve().name}", 1),
        Paragraph(f"Results directory: {results.root.resolve()}. Generated by vinfo report."),
    ]
    blocks += _run_section(results)
    blocks += _verdict_section(results)
    rd_blocks, gain = _rd_section(results, out)
    probe_blocks, paired = _probe_section(results, out)
    co_blocks, _ = _co_adaptation_section(results, out, gain)
    return [*blocks, *rd_blocks, *probe_blocks, *co_blocks, *_reading(results, gain, paired),
            *_config_section(results)]


def write_report(results: str | Path | Results, out: str | Path | None = None) -> Path:
    """Write ``report.md`` and ``report.html`` (and their figures and tables) for a results
    directory of ``vinfo reproduce``.

    Args:
        results: the results directory (or its :func:`load_results`).
        out: the report directory (created); default ``<results>/report``.

    Returns:
        The path of ``report.md``. Both documents are written last, each atomically, so they
        exist only for a complete report.

    Raises:
        FileNotFoundError: ``results`` does not exist.
        ValueError: ``results`` is not a reproduce results directory (no ``reproduce.json``),
            holds malformed files, or ``out`` is a file or the results directory itself.
    """
    loaded = results if isinstance(results, Results) else load_results(results)
    out = Path(out) if out is not None else loaded.root / REPORT_DIR
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory")
    if out.resolve() == loaded.root.resolve():
        raise ValueError(f"{out}: the report directory must differ from the results directory")
    out.mkdir(parents=True, exist_ok=True)
    blocks = build_report(loaded, out)
    title = f"vinfo report: {loaded.root.resolve().name}"
    write_text_atomic(out / REPORT_HTML, render_html(blocks, title))
    write_text_atomic(out / REPORT_MD, render_markdown(blocks))
    return out / REPORT_MD


__all__ = ["bd_table_blocks", "build_report", "software_versions", "write_report"]
