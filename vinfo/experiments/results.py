"""The results directory of ``vinfo reproduce``: its layout, run keys, and the readers.

This module is the one home of every file name in a results directory, so writers
(:mod:`~vinfo.experiments.sweep`, :mod:`~vinfo.experiments.reproduce`,
:mod:`~vinfo.experiments.report`) and readers (the report, notebooks, the CLI) cannot drift
apart. It reads results and never imports the pipeline that writes them::

    out/
        reproduce.json          the preset (CONFIG_FILE)
        pair.json               the similar-rate base pair, keyed "beta=<β>" (PAIR_FILE)
        rd_<task>.csv           tidy RD table per task (rd_file)
        bd_table.csv / .md      the BD table (BD_FILE, BD_MARKDOWN_FILE)
        fig2.png/.pdf, fig3.png/.pdf, fig_iv_capacity.png   figures
        trivial.csv, pair_seeds.csv, loss_terms.csv, verdicts.csv, timings.json
        probes.csv, probes_paired.csv   the probe tables
        probe_cache/            representations, probes.json (resume record), bits.npz
        summary.md              written last: marks a finished run (FINISHED_MARKER)
        report/                 report.md, report.html and their tables and figures
        runs/                   one directory per model, at RunKey.path:
            base/beta=<β>[/seed=<s>]/lmbda=<λ>
            <task>/direct/beta=<β>[/seed=<s>]/base_lmbda=<λ_b>
            <task>/scalable/beta=<β>/lmbda=<λ>
            <task>/standalone/lmbda=<λ>

A run directory holds ``experiment.json`` (EXPERIMENT_FILE: its RunSpec and configs),
``model.safetensors`` (CHECKPOINT_FILE, with its ``model.json``), ``eval_<split>.json``
(:func:`eval_file`) and the files of the Trainer (:data:`vinfo.train.trainer.METRICS_FILE`, …).

Readers: :func:`load_results` (everything at once, as :class:`Results`), :func:`probe_tables`,
:func:`base_checkpoints`, :func:`pair_checkpoints`, :func:`data_options`.

Above 500 lines for one reason: it is the one home of the results layout (every file name,
the run key and every reader), which the issue that created it asked not to scatter again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, NamedTuple

import pandas as pd

from vinfo.data.synthetic import SyntheticConfig, synthetic_preset_name
from vinfo.io import read_json

# the results directory ----------------------------------------------------------------------

CONFIG_FILE = "reproduce.json"
PAIR_FILE = "pair.json"
BD_FILE = "bd_table.csv"
BD_MARKDOWN_FILE = "bd_table.md"
PROBES_FILE = "probes.csv"
PAIRED_FILE = "probes_paired.csv"
TRIVIAL_FILE = "trivial.csv"
VERDICTS_FILE = "verdicts.csv"
PAIR_SEEDS_FILE = "pair_seeds.csv"
LOSS_TERMS_FILE = "loss_terms.csv"
TIMINGS_FILE = "timings.json"
FINISHED_MARKER = "summary.md"
"""``vinfo reproduce`` writes ``summary.md`` last: its presence marks a finished run."""
FIG2_STEM = "fig2"
FIG3_STEM = "fig3"
"""The RD figures in the layouts of the paper's Fig. 2 and Fig. 3 (``.png`` and ``.pdf``)."""
FIGURE_FORMATS = (".png", ".pdf")
"""The files of each paper figure: ``fig2.png`` and ``fig2.pdf``…"""
IV_CAPACITY_FIGURE = "fig_iv_capacity.png"
FIGURE_FILES = (f"{FIG2_STEM}.png", f"{FIG3_STEM}.png", IV_CAPACITY_FIGURE)
"""The figures :class:`Results` lists (those a report shows)."""
PROBE_CACHE_DIR = "probe_cache"
"""Directory of the probe step's representation cache and resume record."""
PROBE_RECORD_FILE = "probes.json"
"""In :data:`PROBE_CACHE_DIR`: what the finished probe fits were (study, data, checkpoints)."""
PROBE_BITS_FILE = "bits.npz"
"""In :data:`PROBE_CACHE_DIR`: the per-image bits of the fits (for the paired CIs)."""
RUNS_DIR = "runs"
SLURM_DIR = "slurm"
"""Default folder of the SLURM jobs' logs and pickles (``slurm/<job id>/``)."""
REPORT_DIR = "report"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
CONDITIONAL_GAIN_FILE = "conditional_coding_gain.csv"
IV_ACROSS_BETA_STEM = "iv_across_beta"
"""In :data:`REPORT_DIR`: the I_V-across-β table (``.csv``) and figure (``.png``)."""
PAIRED_DELTA_STEM = "paired_delta"
CO_ADAPTATION_STEM = "co_adaptation"
"""In :data:`REPORT_DIR`: the co-adaptation table (``.csv``) and figure (``.png``)."""

_RD_PREFIX = "rd_"


def rd_file(task: str) -> str:
    """The RD table of ``task``: ``rd_<task>.csv``."""
    return f"{_RD_PREFIX}{task}.csv"


def rd_files(root: Path) -> dict[str, Path]:
    """task → RD table of the results directory ``root``, sorted by file name."""
    return {path.stem.removeprefix(_RD_PREFIX): path
            for path in sorted(root.glob(rd_file("*")))}


# a run directory ------------------------------------------------------------------------------

CHECKPOINT_FILE = "model.safetensors"
EXPERIMENT_FILE = "experiment.json"
"""The run record: the frozen RunSpec, codec config and TrainConfig."""
SLURM_JOB_FILE = "slurm.json"
"""The SLURM job that trains the run (``job_id``, ``stdout``, ``stderr``), where there is one."""


def eval_file(split: str) -> str:
    """The cached evaluation of a run on ``split``: ``eval_<split>.json``."""
    return f"eval_{split}.json"


# run keys -------------------------------------------------------------------------------------

BASE_STRATEGY = "base"
"""The ``strategy`` of base models, in specs, RD tables and run keys (``runs/base/…``)."""


def _field(name: str, value: float) -> str:
    return f"{name}={value:g}"


def _fields(path: str | PurePath) -> dict[str, str]:
    """``name → value`` of the ``name=value`` components of a path, e.g. ``{"beta": "0.1",
    "lmbda": "0.01"}`` for ``runs/base/beta=0.1/lmbda=0.01/model.safetensors``."""
    pairs = (part.partition("=") for part in PurePath(path).parts)
    return {name: value for name, sep, value in pairs if sep and name}


def lmbda_dir(lmbda: float) -> str:
    """The directory of the model at ``λ`` in a curve's directory: ``lmbda=<λ>``."""
    return _field("lmbda", lmbda)


def curve_dir(strategy: str, *, task: str | None = None, beta: float | None = None,
              seed: int | None = None) -> PurePath:
    """The directory of one curve's runs, relative to ``runs/`` (see :attr:`RunKey.path`):
    ``base/beta=<β>``, ``<task>/scalable/beta=<β>``, … (``seed=<s>`` below for a replica)."""
    head = [BASE_STRATEGY] if task is None else [task, strategy]
    beta_part = [] if beta is None else [_field("beta", beta)]
    seed_part = [] if seed is None else [_field("seed", seed)]
    return PurePath(*head, *beta_part, *seed_part)


def pair_key(beta: float) -> str:
    """The key of a pair member in ``pair.json``: ``beta=<β>``."""
    return _field("beta", beta)


def _number(fields: Mapping[str, str], name: str, where: object) -> float:
    try:
        return float(fields[name])
    except (KeyError, ValueError):
        raise ValueError(f"{where}: no '{name}=<number>' in it") from None


@dataclass(frozen=True)
class RunKey:
    """Which model of a study a run directory holds; :attr:`path` is where, under ``runs/``.

    Attributes:
        strategy: :data:`BASE_STRATEGY` or an enhancement strategy (``direct``, ``scalable``,
            ``standalone``).
        lmbda: the model's λ; for ``direct`` the λ of its base (a direct model's own λ only
            scales its loss).
        beta: β of the model (or of its base); ``None`` for ``standalone`` (base zeroed out).
        task: the enhancement task; ``None`` for base models (``runs/base`` holds the study's
            one base task).
        seed: the training seed of a replica; ``None`` for the study's first seed.
    """

    strategy: str
    lmbda: float
    beta: float | None = None
    task: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if (self.task is None) != (self.strategy == BASE_STRATEGY):
            raise ValueError(f"a {self.strategy} run key needs a task exactly when it is not a "
                             "base model")
        if (self.beta is None) != (self.strategy == "standalone"):
            raise ValueError(f"a {self.strategy} run key needs a beta unless it is standalone")

    @property
    def curve_path(self) -> PurePath:
        """The directory of the key's curve, relative to ``runs/`` (:attr:`path` without λ)."""
        return curve_dir(self.strategy, task=self.task, beta=self.beta, seed=self.seed)

    @property
    def path(self) -> PurePath:
        """The run directory relative to ``runs/``, e.g. ``base/beta=0.1/lmbda=0.01``."""
        last = _field("base_lmbda", self.lmbda) if self.strategy == "direct" else \
            lmbda_dir(self.lmbda)
        return self.curve_path / last

    @property
    def name(self) -> str:
        """The run's path below its strategy directory, e.g. ``beta=0.1/lmbda=0.01``: a base
        model's name in the probe tables."""
        head = 1 if self.task is None else 2
        return PurePath(*self.path.parts[head:]).as_posix()

    @classmethod
    def from_path(cls, path: str | PurePath) -> RunKey:
        """The key of a run directory (or of a file in it), relative to ``runs/`` or not.

        Raises:
            ValueError: ``path`` does not end in a run directory of the layout.
        """
        parts = list(PurePath(path).parts)
        while parts and "=" not in parts[-1]:  # a file in the run directory
            parts.pop()
        named = 0
        while named < len(parts) and "=" in parts[len(parts) - 1 - named]:
            named += 1
        fields = _fields(PurePath(*parts[len(parts) - named:])) if named else {}
        head = parts[:len(parts) - named]
        if not head:
            raise ValueError(f"{path}: not a run directory of a results directory")
        strategy = head[-1]
        task = None if strategy == BASE_STRATEGY else (head[-2] if len(head) > 1 else None)
        if task is None and strategy != BASE_STRATEGY:
            raise ValueError(f"{path}: not a run directory of a results directory")
        lmbda = _number(fields, "base_lmbda" if strategy == "direct" else "lmbda", path)
        beta = _number(fields, "beta", path) if "beta" in fields else None
        seed = int(_number(fields, "seed", path)) if "seed" in fields else None
        try:
            return cls(strategy, lmbda, beta, task, seed)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


# readers --------------------------------------------------------------------------------------

PROBE_COLUMNS = ("repr", "target", "family", "capacity_rank", "iv", "iv_ci_low", "iv_ci_high")
PAIRED_COLUMNS = ("target", "family", "capacity_rank", "repr", "anchor", "delta_iv",
                  "delta_iv_ci_low", "delta_iv_ci_high", "n_seeds", "n_resamples", "lmbda")
RD_REQUIRED = ("label", "beta", "lmbda", "task", "strategy", "bpp")
BD_REQUIRED = ("figure", "anchor", "test", "metric", "bd_rate_percent", "bd_metric", "note")


@dataclass(frozen=True, eq=False)
class Results:
    """What a ``vinfo reproduce`` results directory holds (see :func:`load_results`).

    Attributes:
        root: the directory.
        config: the preset configuration (``reproduce.json``).
        pair: the similar-rate base pair (``pair.json``): ``{"beta=0": {"lmbda", "bpp",
            "checkpoint"}, "beta=0.1": {…}}``; empty if the run stopped before step 2.
        rd: task → tidy RD table (``rd_<task>.csv``).
        bd: the BD table (``bd_table.csv``), or ``None``.
        probes: the V-information table (``probes.csv``) with ``beta`` and ``lmbda`` columns,
            or ``None``.
        paired: the paired ``ΔI_V`` table (``probes_paired.csv``), or ``None``.
        trivial: the trivial-predictor check (``trivial.csv``), or ``None``.
        figures: file name → path of the figures present (``fig2.png``, ``fig3.png``,
            ``fig_iv_capacity.png``).
        verdicts: the verdicts on the paper's claims (``verdicts.csv``), or ``None``.
        pair_seeds: the similar-rate pair across training seeds (``pair_seeds.csv``), or
            ``None``.
        loss_terms: eq. 3's terms at the first and last epoch of one base model
            (``loss_terms.csv``), or ``None``.
        timings: ``{"workers": n, "seconds": {phase: s}}`` (``timings.json``), or empty.
    """

    root: Path
    config: Mapping[str, Any]
    pair: Mapping[str, Mapping[str, Any]]
    rd: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    bd: pd.DataFrame | None = None
    probes: pd.DataFrame | None = None
    paired: pd.DataFrame | None = None
    trivial: pd.DataFrame | None = None
    figures: Mapping[str, Path] = field(default_factory=dict)
    verdicts: pd.DataFrame | None = None
    pair_seeds: pd.DataFrame | None = None
    loss_terms: pd.DataFrame | None = None
    timings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """The preset's one-line description."""
        return str(self.config.get("description", "(no description)"))

    @property
    def betas(self) -> tuple[float, ...]:
        """``(baseline, proposed)`` β of the study."""
        return tuple(float(b) for b in self.config.get("betas", ()))

    @property
    def pair_lmbdas(self) -> dict[float, float]:
        """β → λ of the similar-rate base pair (empty without ``pair.json``)."""
        return pair_lmbdas(self.pair)

    @property
    def finished(self) -> bool:
        """Whether ``vinfo reproduce`` finished writing this directory."""
        return (self.root / FINISHED_MARKER).is_file()


def pair_lmbdas(pair: Mapping[str, Mapping[str, Any]]) -> dict[float, float]:
    """β → λ of a ``pair.json`` mapping (keys :func:`pair_key`, ``"beta=<β>"``).

    Raises:
        ValueError: a key that is not ``beta=<number>`` or an entry without ``lmbda``.
    """
    lmbdas = {}
    for key, entry in pair.items():
        name, _, value = key.partition("=")
        try:
            beta = float(value) if name == "beta" else None
        except ValueError:
            beta = None
        if beta is None or "lmbda" not in entry:
            raise ValueError(f"{PAIR_FILE}: expected entries 'beta=<number>' with a lmbda, got "
                             f"{key!r}")
        lmbdas[beta] = float(entry["lmbda"])
    return lmbdas


# pandas reads "null" as NaN by default, but it is the name of a probe family
_NA_VALUES = ["", "nan", "NaN", "-nan", "NA", "<NA>", "N/A", "#N/A"]


def _read_csv(path: Path, required: Iterable[str] = ()) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=_NA_VALUES)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV ({_one_line(error)})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def csv_flag(value: Any) -> bool:
    """A flag read back from CSV: ``True``/``False`` (bool or text); NaN is not set."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def with_beta_lmbda(probes: pd.DataFrame) -> pd.DataFrame:
    """``probes`` with float ``beta`` and ``lmbda`` columns, read from the ``name=value`` parts
    of ``repr`` / ``repr_path`` (``…/beta=0.1/lmbda=0.01/…``) where the table does not carry
    them.

    Raises:
        ValueError: a row whose β or λ can be neither read nor parsed.
    """
    frame = probes.copy()
    for name in ("beta", "lmbda"):
        if name in frame.columns and frame[name].notna().all():
            frame[name] = frame[name].astype(float)
            continue
        values = []
        for _, row in frame.iterrows():
            texts = [str(row.get(column, "")) for column in ("repr", "repr_path")]
            found = next((value for value in (_field_value(text, name) for text in texts)
                          if value is not None), None)
            if found is None:
                raise ValueError(f"probe row {row.get('repr')!r}: no {name} column and no "
                                 f"'{name}=<number>' in its name or path")
            values.append(found)
        frame[name] = values
    return frame


def _field_value(path: str, name: str) -> float | None:
    """The number of the ``name=<number>`` part of ``path`` (``None``: none)."""
    try:
        return float(_fields(path)[name])
    except (KeyError, ValueError):
        return None


def load_results(directory: str | Path) -> Results:
    """Read a ``vinfo reproduce`` results directory; files not (yet) written are ``None``.

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ValueError: it holds no ``reproduce.json`` (not a results directory), or a file in it
            is not what ``vinfo reproduce`` writes.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results directory")
    config_path = root / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"{root}: not a vinfo reproduce results directory (no {CONFIG_FILE})")
    config = read_json(config_path)
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: expected a JSON object")
    pair = read_json(root / PAIR_FILE) if (root / PAIR_FILE).is_file() else {}
    if not isinstance(pair, dict):
        raise ValueError(f"{root / PAIR_FILE}: expected a JSON object")
    pair_lmbdas(pair)  # validates the keys
    rd = {task: _read_csv(path, RD_REQUIRED) for task, path in rd_files(root).items()}

    def optional(name: str, required: Iterable[str] = ()) -> pd.DataFrame | None:
        path = root / name
        return _read_csv(path, required) if path.is_file() else None

    probes = optional(PROBES_FILE, PROBE_COLUMNS)
    return Results(
        root=root,
        config=config,
        pair=pair,
        rd=rd,
        bd=optional(BD_FILE, BD_REQUIRED),
        probes=None if probes is None else with_beta_lmbda(probes),
        paired=optional(PAIRED_FILE, PAIRED_COLUMNS),
        trivial=optional(TRIVIAL_FILE),
        figures={name: root / name for name in FIGURE_FILES if (root / name).is_file()},
        verdicts=optional(VERDICTS_FILE, ("claim", "measured", "spread", "verdict")),
        pair_seeds=optional(PAIR_SEEDS_FILE, ("seed", "beta", "bpp")),
        loss_terms=optional(LOSS_TERMS_FILE, ("which", "task_term", "recon_term", "rate_term")),
        timings=read_json(root / TIMINGS_FILE) if (root / TIMINGS_FILE).is_file() else {},
    )


def join_key(value: float) -> float:
    """A float rounded for joins: β and λ read from different files may differ in the last
    bits."""
    return float(f"{float(value):.9g}")


class ProbeTables(NamedTuple):
    """The probe tables of a results directory, as the reproduce pipeline writes them.

    Attributes:
        probes: ``probes.csv`` rows, with ``beta`` and ``lmbda``.
        paired: ``probes_paired.csv`` rows (``ΔI_V`` of β = 0.1 vs β = 0 at each λ).
    """

    probes: pd.DataFrame
    paired: pd.DataFrame


def probe_tables(results: Results) -> ProbeTables:
    """The probe tables ``vinfo reproduce`` wrote into ``results``.

    Raises:
        ValueError: the directory has no ``probes.csv`` or no ``probes_paired.csv`` (a run from
            before the probe step).
    """
    if results.probes is None or results.paired is None:
        raise ValueError(f"{results.root}: no probe tables ({PROBES_FILE}, {PAIRED_FILE}); "
                         "rerun `vinfo reproduce` with the same preset and --out (it skips the "
                         "finished models and adds the probe step)")
    return ProbeTables(results.probes, results.paired)


def base_checkpoints(results: Results) -> pd.DataFrame:
    """The base-codec checkpoints of a results directory (the first seed's), one row per
    (β, λ): ``beta``, ``lmbda``, ``repr`` (:attr:`RunKey.name`, ``"beta=0.1/lmbda=0.01"``),
    ``checkpoint``; sorted by β, then λ.

    Raises:
        FileNotFoundError: no finished base model under ``runs/base``.
    """
    rows = []
    base_dir = results.root / RUNS_DIR / BASE_STRATEGY
    for model in sorted(base_dir.glob(f"*/*/{CHECKPOINT_FILE}")):
        key = RunKey.from_path(model)
        rows.append({"beta": key.beta, "lmbda": key.lmbda, "repr": key.name,
                     "checkpoint": str(model)})
    if not rows:
        raise FileNotFoundError(f"{results.root}: no finished base model under "
                                f"{RUNS_DIR}/{BASE_STRATEGY}")
    return pd.DataFrame(rows).sort_values(["beta", "lmbda"], kind="stable").reset_index(
        drop=True)


def pair_checkpoints(results: Results) -> dict[float, Path]:
    """β → base checkpoint of the similar-rate pair, found under ``runs/base`` (so a moved or
    copied results directory still works).

    Raises:
        ValueError: no ``pair.json``.
        FileNotFoundError: a pair member's checkpoint is missing.
    """
    if not results.pair:
        raise ValueError(f"{results.root}: no similar-rate pair ({PAIR_FILE}) yet")
    models = base_checkpoints(results)
    found = {}
    for beta, lmbda in results.pair_lmbdas.items():
        match = models[(models["beta"].map(join_key) == join_key(beta))
                       & (models["lmbda"].map(join_key) == join_key(lmbda))]
        if match.empty:
            raise FileNotFoundError(f"{results.root}: no checkpoint of the pair member "
                                    f"beta={beta:g} lambda={lmbda:g} under "
                                    f"{RUNS_DIR}/{BASE_STRATEGY}")
        found[beta] = Path(match["checkpoint"].iloc[0])
    return found


def _synthetic_preset(config: Mapping[str, Any]) -> str | None:
    """The synthetic preset name of a ``reproduce.json`` (``None``: absent or custom)."""
    wanted = config.get("synthetic")
    try:
        return synthetic_preset_name(SyntheticConfig(**wanted)) if wanted else None
    except TypeError:  # fields of another vinfo version
        return None


def data_options(results: Results) -> dict[str, str]:
    """The data-source arguments of :func:`probes.probe_files` (``dataset``, and ``preset`` for
    synthetic data) that probe the images of the run's dataset."""
    dataset = str(results.config.get("dataset", "synthetic"))
    preset = _synthetic_preset(results.config) if dataset == "synthetic" else None
    return {"dataset": dataset, **({"preset": preset} if preset else {})}


__all__ = [
    "BASE_STRATEGY",
    "PAIRED_COLUMNS",
    "PROBE_COLUMNS",
    "ProbeTables",
    "Results",
    "RunKey",
    "base_checkpoints",
    "csv_flag",
    "curve_dir",
    "data_options",
    "eval_file",
    "join_key",
    "lmbda_dir",
    "load_results",
    "pair_checkpoints",
    "pair_key",
    "pair_lmbdas",
    "probe_tables",
    "rd_file",
    "rd_files",
    "with_beta_lmbda",
]
