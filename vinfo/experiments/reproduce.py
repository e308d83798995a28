"""``vinfo reproduce``: the paper's experiments (§4) end to end, from data to BD tables.

The pipeline, for one preset (:data:`REPRODUCE_PRESETS`):

1. base codecs for the base task (depth, as in the paper's Cityscapes experiments) at every
   ``λ_b``, for the baseline ``β = 0`` and the proposed ``β = 0.1`` (eq. 3); each curve is
   trained from its highest λ down, warm-starting the rest (§4.1);
2. evaluation of the base curves on the test split; the pair of base models with the most
   similar rates (one per β) is picked as the side information of the scalable codecs (§4);
3. secondary tasks (eq. 4), each a set of strategies:
   ``direct`` — a synthesis and head on every frozen base model (one point per ``λ_b``);
   ``scalable`` — a dedicated latent coded conditionally on the chosen base, at every ``λ_e``;
   ``standalone`` — the proposed scalable model with the base zeroed out and only its entropy
   model fine-tuned (§4);
4. RD tables (``rd_<task>.csv``, read by ``vinfo bdrate``), a BD table laid out like the
   paper's comparisons (``bd_table.csv`` / ``.md``), figures mirroring Fig. 2 and Fig. 3
   (``fig2.png/pdf``, ``fig3.png/pdf``), the trivial-predictor check (``trivial.csv``) and a
   ``summary.md`` with the wall time;
5. if the preset has a :class:`ProbeStudy`: V-information probes of every base model (both β,
   every λ) on the same images (``probes.csv``), ``ΔI_V`` of β = proposed minus β = baseline
   at the same λ with paired CIs (``probes_paired.csv``) and ``I_V`` against the probe
   families' parameter counts for the similar-rate pair (``fig_iv_capacity.png``);
6. the report of :mod:`vinfo.experiments.report` (``report/report.md`` and ``report.html``).

Everything lands under ``out``; rerunning skips finished models and resumes interrupted ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bdrate.core import DEFAULT_METHOD
from bdrate.directions import metric_direction
from probes import (
    BitsRecord,
    FitEvent,
    checkpoint_sha256,
    get_family,
    get_target,
    load_bits,
    paired_differences,
    probe_files,
    save_bits,
)
from probes.report import plot_iv_by_capacity
from probes.report import save_figure as save_probe_figure
from vinfo.data.registry import DATASETS
from vinfo.data.synthetic import SyntheticConfig, synthetic_preset_name
from vinfo.experiments.evaluate import TASK_EVALUATORS, trivial_metrics
from vinfo.experiments.plan import DataSource, Executor, Plan, executor_for
from vinfo.experiments.plots import Panel, plot_rd_panels, save_figure
from vinfo.experiments.rd import (
    Comparison,
    bd_table,
    bd_table_markdown,
    pick_similar_rate_pair,
    write_rd_csv,
)
from vinfo.experiments.report import write_report
from vinfo.experiments.results import (
    BASE_STRATEGY,
    BD_FILE,
    BD_MARKDOWN_FILE,
    CONFIG_FILE,
    FIG2_STEM,
    FIG3_STEM,
    FINISHED_MARKER,
    IV_CAPACITY_FIGURE,
    LOSS_TERMS_FILE,
    PAIR_FILE,
    PAIR_SEEDS_FILE,
    PAIRED_FILE,
    PROBE_BITS_FILE,
    PROBE_CACHE_DIR,
    PROBE_RECORD_FILE,
    PROBES_FILE,
    REPORT_DIR,
    RUNS_DIR,
    TIMINGS_FILE,
    TRIVIAL_FILE,
    VERDICTS_FILE,
    RunKey,
    curve_dir,
    pair_key,
    rd_file,
)
from vinfo.experiments.splits import Splits, dataset_splits, experiment_transforms
from vinfo.experiments.sweep import (
    FinishedRun,
    PlannedRun,
    Progress,
    RunSpec,
    _dependencies,
    check_warm_start,
    collect_rd,
    curve_label,
    data_record,
    plan_lambda_sweep,
    train_split_name,
)
from vinfo.experiments.verdict import paper_verdicts
from vinfo.io import read_json, write_json_atomic, write_text_atomic
from vinfo.lock import folder_lock
from vinfo.models.base import check_beta, check_lmbda
from vinfo.models.config import CodecConfig, codec_preset
from vinfo.models.enhancement import STRATEGIES
from vinfo.registry import Registry
from vinfo.train import METRICS_FILE, TrainConfig


@dataclass(frozen=True)
class Secondary:
    """A secondary (enhancement) task of the study.

    Attributes:
        task: the enhancement task.
        strategies: which of ``direct``, ``scalable``, ``standalone`` to run.
        lmbdas: the ``λ_e`` of the scalable and standalone curves.
        direct_lmbda: ``λ_e`` of the direct models (no rate term: it only scales the loss).
    """

    task: str
    strategies: tuple[str, ...]
    lmbdas: tuple[float, ...]
    direct_lmbda: float = 1.0

    def __post_init__(self) -> None:
        for strategy in self.strategies:
            STRATEGIES.get(strategy)
        for lmbda in self.lmbdas:
            check_lmbda(lmbda, f"{self.task} lmbdas")
        check_lmbda(self.direct_lmbda, "direct_lmbda")
        if "standalone" in self.strategies and "scalable" not in self.strategies:
            raise ValueError("standalone starts from the proposed scalable models: add scalable")


@dataclass(frozen=True)
class ProbeStudy:
    """V-information probes of the base models (issue #8): does β > 0 make ``ŷ`` more
    informative about the tasks, for probes of growing capacity?

    Every base model is probed on the same images, which no codec saw, at the codecs' input
    resolution (the preset's ``downscale``): for synthetic data fresh images of the preset's
    scenes (split ``val``), for real data the official validation split (Cityscapes ``val``,
    COCO ``val2017``; see :mod:`vinfo.data.splits`).

    Attributes:
        families: probe families (:data:`probes.families.FAMILIES`).
        targets: probe targets (:data:`probes.heads.TARGETS`).
        seeds: probe training seeds.
        n_resamples: bootstrap replicates of every CI.
        max_epochs: epoch budget of every gradient fit (early stopping on validation NLL;
            ``None``: the library default of :class:`probes.estimator.VInfoProbe`).
        width: hidden width of the families (``None``: each family's default).
        n_images: probe only the first ``n_images`` images (``None``: all).
        controls: also fit every family on shuffled representations (the leakage check of
            :func:`probes.estimator.shuffled_control`) and on the control task
            (:func:`probes.estimator.control_task`, for the selectivity); about 2x the fitting
            time. The report shows them in its "Controls" table, or says they were not run.
    """

    families: tuple[str, ...] = ("linear", "conv")
    targets: tuple[str, ...] = ("reconstruction", "depth", "segmentation")
    seeds: tuple[int, ...] = (0,)
    n_resamples: int = 1000
    max_epochs: int | None = None
    width: int | None = None
    n_images: int | None = None
    controls: bool = True

    def __post_init__(self) -> None:
        if not self.families or not self.targets or not self.seeds:
            raise ValueError("a probe study needs at least one family, target and seed")
        for family in self.families:
            get_family(family)
        for target in self.targets:
            get_target(target)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"probe seeds must be distinct, got {self.seeds}")
        if self.n_resamples < 0:
            raise ValueError(f"n_resamples must be >= 0, got {self.n_resamples}")
        for name in ("width", "n_images", "max_epochs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive or None, got {value}")

    def probe_kwargs(self) -> dict[str, Any]:
        """The :class:`probes.estimator.VInfoProbe` arguments of the study."""
        kwargs: dict[str, Any] = {}
        if self.max_epochs is not None:
            kwargs["max_epochs"] = self.max_epochs
        if self.width is not None:
            kwargs["width"] = self.width
        return kwargs

    def num_fits(self, n_representations: int) -> int:
        """Probe fits of a study of ``n_representations`` (shuffled controls not counted)."""
        return n_representations * len(self.targets) * len(self.families) * len(self.seeds)


@dataclass(frozen=True)
class ReproducePreset:
    """Everything one reproduction run needs; saved as ``reproduce.json`` beside the results.

    Attributes:
        description: one line for ``--help`` and the summary.
        codec: codec sizes of every model.
        base_task: the task of the base representation.
        betas: ``(baseline, proposed)`` reconstruction rewards (eq. 3).
        base_lmbdas: ``λ_b`` of the base curves.
        secondary: the secondary tasks.
        first: training of the first model of a curve.
        warm: training of the warm-started models.
        direct: training of each direct decoder on a frozen base (``None``: :attr:`first`).
        warm_start: how a curve's models are warm-started, one of
            :data:`~vinfo.experiments.sweep.WARM_STARTS` (the base and the scalable curves).
        dataset: a name in :data:`vinfo.data.DATASETS`.
        synthetic: the synthetic dataset's config (when ``dataset`` is ``synthetic``).
        needs_data_root: whether ``--data-root`` is required.
        downscale: the codec sees inputs shrunk by this factor (paper, Cityscapes: 2).
        augment: random horizontal flips and colour jitter on training images (§4.1).
        val_fraction: share of images for validation (early stopping).
        test_fraction: share of images for testing (synthetic data only).
        eval_batch_size: images per forward pass in evaluation.
        bitstream_images: test images coded into real bitstreams per model (``None``: all).
        bd_method: BD interpolation (on the Pareto fronts where a curve is not monotone).
        threads: torch intra-op threads while the preset runs (``None``: leave as is). The
            CPU presets use 1: their tiny convolutions gain nothing from a second thread, and
            on a shared machine two spinning threads per process slow training down up to
            tenfold.
        probes: the V-information probes of the base models (``None``: no probe step).
        pair_seeds: training seeds of the similar-rate pair: for each seed but the first, both
            base models of the pair and the direct reconstruction from each are trained again
            with that :attr:`TrainConfig.seed` (data order, augmentation, noise), from the same
            warm start as the first seed's (a cold start where the pair's model is the first
            of its curve); ``pair_seeds.csv`` and the verdicts report the spread.
    """

    description: str
    codec: CodecConfig
    base_task: str
    betas: tuple[float, float]
    base_lmbdas: tuple[float, ...]
    secondary: tuple[Secondary, ...]
    first: TrainConfig
    warm: TrainConfig
    dataset: str = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    needs_data_root: bool = False
    downscale: int = 1
    augment: bool = True
    val_fraction: float = 0.125
    test_fraction: float = 0.125
    eval_batch_size: int = 16
    bitstream_images: int | None = None
    bd_method: str = DEFAULT_METHOD
    threads: int | None = None
    probes: ProbeStudy | None = None
    pair_seeds: tuple[int, ...] = (0,)
    warm_start: str = "highest"
    direct: TrainConfig | None = None

    def __post_init__(self) -> None:
        check_warm_start(self.warm_start)
        if len(self.betas) != 2 or self.betas[0] == self.betas[1]:
            raise ValueError(f"betas must be (baseline, proposed), got {self.betas}")
        for beta in self.betas:
            check_beta(beta, "betas")
        if len(self.base_lmbdas) < 2:
            raise ValueError("a base curve needs at least 2 lambda values")
        for lmbda in self.base_lmbdas:
            check_lmbda(lmbda, "base_lmbdas")
        if not self.pair_seeds or len(set(self.pair_seeds)) != len(self.pair_seeds):
            raise ValueError(f"pair_seeds must be distinct and not empty, got {self.pair_seeds}")
        if self.pair_seeds[0] != self.first.seed or {self.warm.seed, self.direct_train.seed} != {
            self.first.seed
        }:
            raise ValueError("the first pair seed is the seed every model trains with "
                             f"({self.first.seed}); got {self.pair_seeds}")

    @property
    def direct_train(self) -> TrainConfig:
        """Training of each direct decoder (:attr:`direct`, or :attr:`first` if unset)."""
        return self.first if self.direct is None else self.direct

    @property
    def baseline_beta(self) -> float:
        return self.betas[0]

    @property
    def proposed_beta(self) -> float:
        return self.betas[1]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def num_models(self) -> int:
        """Models the preset trains."""
        count = len(self.betas) * len(self.base_lmbdas)
        for secondary in self.secondary:
            for strategy in secondary.strategies:
                per_beta = len(self.base_lmbdas) if strategy == "direct" else len(secondary.lmbdas)
                count += per_beta * (1 if strategy == "standalone" else len(self.betas))
        replicas = 1 + int(self.direct_reconstruction)
        return count + len(self.betas) * replicas * (len(self.pair_seeds) - 1)

    @property
    def direct_reconstruction(self) -> bool:
        """Whether the study trains direct reconstruction from the base models."""
        return any(s.task == "reconstruction" and "direct" in s.strategies
                   for s in self.secondary)


def _train(lr: float, epochs: int, patience: int, batch_size: int, **extra: Any) -> TrainConfig:
    return TrainConfig(
        lr=lr, max_epochs=epochs, patience=patience, batch_size=batch_size, quiet=True, **extra
    )


_SECONDARY_TINY = (
    # the lowest λ_e of each ladder still clears its bar (+6 dB over the mean image, 1.5x the
    # prior's mIoU) with the cosine schedule's lower rates; the reconstruction ladder starts at
    # 16 so that the direct curves span a wider rate range (0.5 still gave >= 23.5 dB scalable)
    # (issue #13)
    Secondary("reconstruction", ("direct", "scalable", "standalone"), (16.0, 5.0, 1.6, 0.5)),
    Secondary("segmentation", ("scalable", "standalone"), (10.0, 4.0, 1.6, 0.64)),
)

REPRODUCE_PRESETS: Registry[ReproducePreset] = Registry("reproduce preset")
REPRODUCE_PRESETS.add(
    "tiny",
    ReproducePreset(
        description=(
            "synthetic 64x64 scenes with haze, tiny codec (M=32), depth base, 4 lambdas per "
            "curve, 2 seeds of the similar-rate pair, probes (about 12 min on 2 idle CPU cores)"
        ),
        codec=codec_preset("tiny").replace(segmentation_classes=7, M=32),
        base_task="depth",
        betas=(0.0, 0.1),
        # λ in the authors' units (eq. 3 with d = disparity RMSE in full-resolution px: λ =
        # 1/α); with a 4x4x32 latent depth needs few bits: 0.8-6.4 puts the bases at
        # 0.15-0.23 bpp. The ladder (1.6, 0.8, 0.4, 0.2) gave a base BD-rate of +30 % (β = 0.1
        # paying for its term, against the paper's Fig. 2f); this one gave -16.4 %, a direct
        # PSNR gap of +0.75/+0.64 dB (seeds 0/1) and ΔI_V(recon, linear) +1.17 [+0.97, +1.36].
        # (12.8, 6.4, 3.2, 1.6) paired β = 0 at λ 1.6 with β = 0.1 at λ 12.8 (similar rate,
        # different λ) and left the base curves without overlap, BD undefined (issue #13)
        base_lmbdas=(6.4, 3.2, 1.6, 0.8),
        secondary=_SECONDARY_TINY,
        # lr 2e-3 instead of the paper's constant 1e-4: the CPU budget allows about 1000 steps
        # for the first model of a curve (10 epochs of 96 steps) and ~300 for a warm start, at
        # half the rate, each annealed to 0 (cosine) so that a model ends converged: at a
        # constant lr the next model of a chain beat its source on both rate and distortion
        # (dominated points, issue #13); each curve is a chain upward from its lowest λ
        first=_train(2e-3, 10, 4, 8, lr_schedule="cosine"),
        warm=_train(1e-3, 3, 3, 8, lr_schedule="cosine"),
        # a direct decoder learns from a frozen latent: 20 epochs at 4e-3 (about 2000 steps)
        # instead of the first model's 10 at 2e-3 took direct β = 0.1 from 19.7-20.9 dB to
        # 20.0-21.7 dB and made its curve monotone (issue #13, +95 s)
        direct=_train(4e-3, 20, 4, 8, lr_schedule="cosine"),
        warm_start="chain",
        synthetic=SyntheticConfig.preset("demo"),
        bitstream_images=16,
        threads=1,
        pair_seeds=(0, 1),
        probes=ProbeStudy(
            families=("linear", "conv"), max_epochs=20, width=32, controls=False, n_images=512
        ),
    ),
)
REPRODUCE_PRESETS.add(
    "micro",
    ReproducePreset(
        description="smoke test: 32x32 scenes, a few steps per model (about 1-2 min; tests, CI)",
        codec=codec_preset("tiny").replace(segmentation_classes=7),
        base_task="depth",
        betas=(0.0, 0.1),
        base_lmbdas=(30.0, 1.0, 0.3, 0.1),  # the tiny preset's ladders
        secondary=(
            Secondary("reconstruction", ("direct", "scalable", "standalone"), (0.3, 0.03, 0.01)),
            Secondary("segmentation", ("scalable", "standalone"), (1.0, 0.1, 0.03)),
        ),
        first=_train(3e-3, 4, 4, 8),
        warm=_train(3e-3, 2, 2, 8),
        warm_start="chain",
        synthetic=SyntheticConfig.preset("micro"),
        threads=1,
        pair_seeds=(0, 1),
        # 8 base models x 3 targets x 2 families on the 64 fresh micro val images (probe
        # train/val/test 38/13/13, latent 16x2x2): measured 9 s (16 s with the controls).
        # 13 test images are fewer than a CI accepts (probes.uncertainty.MIN_BOOTSTRAP_IMAGES):
        # point estimates only
        probes=ProbeStudy(
            families=("linear", "conv"), n_resamples=0, max_epochs=10, width=16, controls=False
        ),
    ),
)
REPRODUCE_PRESETS.add(
    "small",
    ReproducePreset(
        description=(
            "the paper's COCO experiment (Fig. 2a, c, e) on synthetic 128x128 scenes: detection "
            "base (Faster R-CNN), reconstruction secondary, small codec (hours on 2 CPU cores; "
            "meant for a GPU)"
        ),
        codec=codec_preset("small").replace(segmentation_classes=7),
        base_task="detection",
        betas=(0.0, 0.1),
        base_lmbdas=(1.0, 0.3, 0.1, 0.03),
        secondary=(
            Secondary(
                "reconstruction", ("direct", "scalable", "standalone"), (100.0, 30.0, 10.0, 3.0)
            ),
        ),
        first=_train(1e-4, 300, 20, 8, device="auto"),
        warm=_train(1e-4, 100, 10, 8, device="auto"),
        synthetic=SyntheticConfig.preset("small"),
        bitstream_images=64,
        probes=ProbeStudy(
            families=("linear", "mlp", "conv", "resnet"), seeds=(0, 1), n_images=1024
        ),
    ),
)
REPRODUCE_PRESETS.add(
    "paper",
    ReproducePreset(
        description=(
            "the paper's Cityscapes study: M=192, depth base, x2 downscale, patience 10-50, "
            "up to 1000 epochs (needs --data-root and a GPU)"
        ),
        codec=codec_preset("paper"),
        base_task="depth",
        betas=(0.0, 0.1),
        base_lmbdas=(1.0, 0.3, 0.1, 0.03, 0.01),
        secondary=(
            Secondary(
                "reconstruction", ("direct", "scalable", "standalone"), (300.0, 100.0, 30.0, 10.0)
            ),
            Secondary("segmentation", ("scalable", "standalone"), (10.0, 3.0, 1.0, 0.3)),
        ),
        first=_train(1e-4, 1000, 50, 8, device="auto"),
        warm=_train(1e-4, 1000, 10, 8, device="auto"),
        dataset="cityscapes",
        needs_data_root=True,
        downscale=2,
        eval_batch_size=4,
        bitstream_images=50,
        # the full capacity ladder; targets are held in memory at the codec's input
        # resolution (x2 downscaled, probes.sources), hence a few hundred images
        probes=ProbeStudy(
            families=("linear", "mlp", "conv", "resnet", "synthesis"),
            seeds=(0, 1, 2),
            n_resamples=1000,
            n_images=300,
        ),
    ),
)


def get_preset(name: str) -> ReproducePreset:
    """The preset registered under ``name`` (``tiny``, ``micro``, ``paper``)."""
    return REPRODUCE_PRESETS.get(name)


def describe_plan(preset: ReproducePreset, out: str | Path) -> str:
    """The steps :func:`reproduce` will take, one line each (no training)."""
    b0, b1 = preset.betas
    lmbdas = ", ".join(f"{v:g}" for v in preset.base_lmbdas)
    lines = [
        f"reproduce: {preset.description}",
        f"output: {out}",
        f"data: {preset.dataset}"
        + (f" {preset.synthetic.height}x{preset.synthetic.width}, "
           f"{preset.synthetic.num_images} images" if preset.dataset == "synthetic" else "")
        + (f", x{preset.downscale} downscale" if preset.downscale > 1 else ""),
        f"codec: N={preset.codec.N}, M={preset.codec.M}, heads {preset.codec.head_variant}",
        f"1. base {preset.base_task}: beta in ({b0:g}, {b1:g}), lambda_b in ({lmbdas}); "
        f"first model up to {preset.first.max_epochs} epochs, warm starts up to "
        f"{preset.warm.max_epochs}",
        "2. pick the similar-rate base pair (beta=0 vs beta=0.1)",
    ]
    for secondary in preset.secondary:
        values = ", ".join(f"{v:g}" for v in secondary.lmbdas)
        direct = (f"; direct decoders up to {preset.direct_train.max_epochs} epochs"
                  if "direct" in secondary.strategies else "")
        lines.append(
            f"3. {secondary.task}: {', '.join(secondary.strategies)}; lambda_e in ({values})"
            + direct
        )
    lines.append(
        f"4. RD CSVs, BD table, Fig. 2/3 plots; {preset.num_models()} models in total"
    )
    if preset.probes is not None:
        study = preset.probes
        count = len(preset.betas) * len(preset.base_lmbdas)
        lines.append(
            f"5. probes of the {count} base models: {', '.join(study.targets)} x "
            f"{', '.join(study.families)}, {len(study.seeds)} seed(s); "
            f"{study.num_fits(count)} fits"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class ReproduceResult:
    """What :func:`reproduce` wrote.

    Attributes:
        out: the output directory.
        files: every result file (CSV, Markdown, JSON, figures).
        bd_table: the BD table.
        trivial: the trivial-predictor check, one row per task.
        seconds: wall time of this call (up to the summary; the report follows it).
        report: the Markdown report (``report/report.md``; ``report.html`` beside it).
    """

    out: Path
    files: tuple[Path, ...]
    bd_table: pd.DataFrame
    trivial: pd.DataFrame
    seconds: float
    report: Path


def _splits(preset: ReproducePreset, data_root: str | Path | None) -> Splits:
    if preset.needs_data_root and data_root is None:
        raise ValueError(f"this preset reads {preset.dataset} from disk: pass --data-root")
    return dataset_splits(
        preset.dataset,
        root=data_root,
        synthetic=preset.synthetic,
        val_fraction=preset.val_fraction,
        test_fraction=preset.test_fraction,
        **experiment_transforms(augment=preset.augment, downscale=preset.downscale),
    )


def _figure(task: str, strategy: str, base_task: str) -> str:
    """Where the paper shows a comparison: Fig. 2 (left COCO/detection: a, c, e; right
    Cityscapes/depth: b, d, f) for the base task and reconstruction, Fig. 3 otherwise."""
    column = {"detection": 0, "depth": 1}.get(base_task)
    row = {"direct": 0, "scalable": 1, BASE_STRATEGY: 2}.get(strategy)
    if task == "reconstruction" or task == base_task:
        letter = "" if column is None or row is None else "abcdef"[2 * row + column]
        return f"Fig. 2{letter}"
    return "Fig. 3"


def _comparisons(preset: ReproducePreset) -> list[tuple[str, Comparison]]:
    """``(task, comparison)``: proposed vs baseline for every curve pair, as in the paper;
    plus standalone vs each scalable curve (the paper's Fig. 3 remark)."""
    b0, b1 = preset.betas
    metric = TASK_EVALUATORS.get(preset.base_task).primary_metric
    rows = [
        (
            preset.base_task,
            Comparison(
                _figure(preset.base_task, BASE_STRATEGY, preset.base_task),
                curve_label(BASE_STRATEGY, b0),
                curve_label(BASE_STRATEGY, b1),
                metric,
            ),
        )
    ]
    for secondary in preset.secondary:
        metric = TASK_EVALUATORS.get(secondary.task).primary_metric
        for strategy in ("direct", "scalable"):
            if strategy in secondary.strategies:
                figure = _figure(secondary.task, strategy, preset.base_task)
                labels = curve_label(strategy, b0), curve_label(strategy, b1)
                comparison = Comparison(figure, *labels, metric)
                rows.append((secondary.task, comparison))
        if "standalone" in secondary.strategies:
            figure = _figure(secondary.task, "scalable", preset.base_task)
            for beta in (b0, b1):
                comparison = Comparison(figure, "standalone", curve_label("scalable", beta), metric)
                rows.append((secondary.task, comparison))
    return rows


def bd_rows(
    frames: dict[str, pd.DataFrame],
    comparisons: Sequence[tuple[str, Comparison]],
    method: str = DEFAULT_METHOD,
) -> pd.DataFrame:
    """The BD table of ``(task, comparison)`` rows, each computed on ``frames[task]``.

    Where ``method`` needs monotone curves and one is not (noisy short training), the row is
    computed on the curves' Pareto fronts and says so in ``note``; undefined values (no
    overlap, too few points, an interpolant the data cannot support) are NaN with the reason in
    ``note``. Each row carries the overlaps of its curves (:func:`vinfo.experiments.rd.bd_table`).
    """
    tables = []
    for task in dict.fromkeys(task for task, _ in comparisons):
        rows = [c for t, c in comparisons if t == task]
        table = bd_table(frames[task], rows, method=method, prune_dominated=True)
        tables.append(table.assign(task=task))
    return pd.concat(tables, ignore_index=True)


def _check_out(out: Path, preset: ReproducePreset) -> None:
    record = out / CONFIG_FILE
    wanted = preset.to_dict()
    for config in ("first", "warm", "direct"):
        if wanted[config] is not None:
            wanted[config].pop("quiet")
    if record.is_file():
        stored = read_json(record)
        if stored != wanted:
            raise ValueError(
                f"{out}: holds results of another preset or settings; choose another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record, wanted)


def _with_quiet(preset: ReproducePreset, quiet: bool) -> ReproducePreset:
    return dataclasses.replace(
        preset,
        first=dataclasses.replace(preset.first, quiet=quiet),
        warm=dataclasses.replace(preset.warm, quiet=quiet),
        direct=None if preset.direct is None else dataclasses.replace(preset.direct, quiet=quiet),
    )


class _Steps:
    """Numbered progress lines with the elapsed time and, once a model is done, a rough ETA
    (elapsed time per started model × models left; skipped models make it pessimistic)."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        if message.startswith("train "):
            eta = ""
            if self.done:
                eta = f" (eta {_clock(elapsed / self.done * (self.total - self.done))})"
            self.done += 1
            message = f"[{self.done}/{self.total}] {message}{eta}"
        self.progress(f"{_clock(elapsed)} {message}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def reproduce(
    preset: str | ReproducePreset,
    out: str | Path,
    *,
    data_root: str | Path | None = None,
    quiet: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
) -> ReproduceResult:
    """Run the study of ``preset`` into ``out`` (resumable; see the module docstring).

    Args:
        preset: a name in :data:`REPRODUCE_PRESETS` or a :class:`ReproducePreset`.
        out: output directory (created).
        data_root: dataset root for presets that read real data.
        quiet: no per-model progress bars.
        progress: called with one line per step (``None``: silent).
        workers: processes that train independent models at once
            (:class:`~vinfo.experiments.plan.ProcessExecutor`; 1: all in this process).
            ``None``: :func:`default_workers`. The checkpoints do not depend on it.
        executor: carries out the training plans instead (e.g.
            :class:`~vinfo.experiments.slurm.SlurmExecutor`); ``workers`` is then unused.

    Raises:
        ValueError: an unknown preset, a missing data root, or ``out`` holding another
            preset's results.
    """
    started = time.perf_counter()
    preset = get_preset(preset) if isinstance(preset, str) else preset
    preset = _with_quiet(preset, quiet)
    threads = torch.get_num_threads()
    if preset.threads is not None:
        torch.set_num_threads(preset.threads)
    if executor is None:
        executor = executor_for(default_workers(preset) if workers is None else workers)
    try:
        # taken once here, on the top folder: the worker processes write under it unlocked
        with folder_lock(out):
            return _reproduce(preset, Path(out), data_root, progress, started, executor)
    finally:
        torch.set_num_threads(threads)


def default_workers(preset: ReproducePreset) -> int:
    """Worker processes for ``preset`` when none are asked for: one per available core for the
    one-thread CPU presets (at most 2, the two β curves being the widest independent set
    early on), otherwise 1 (GPU presets share one device)."""
    if preset.threads != 1:
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0))))


def _reproduce(
    preset: ReproducePreset,
    out: Path,
    data_root: str | Path | None,
    progress: Progress | None,
    started: float,
    executor: Executor,
) -> ReproduceResult:
    phases = _Phases()
    splits = _splits(preset, data_root)
    source = PresetData(preset, None if data_root is None else str(data_root))
    for split in (splits.val, splits.test):  # drawn once here; the workers draw their own
        for index in range(len(split)):
            split[index]
    phases("data")
    _check_out(out, preset)
    step = _Steps(preset.num_models(), progress or (lambda message: None))
    runs_dir = out / RUNS_DIR
    baseline, proposed = preset.betas
    evaluation = {
        "batch_size": preset.eval_batch_size,
        "downscale_factor": preset.downscale,
        "bitstream_images": preset.bitstream_images,
    }

    # 1. base curves: one plan, both β (independent curves), run by the executor
    # what the base checkpoints record in model.json, so `vinfo probe` finds their data
    data = data_record(
        preset.dataset,
        synthetic=preset.synthetic,
        root=data_root,
        split=train_split_name(splits),
        downscale=preset.downscale,
    )
    base_plan = {
        beta: plan_lambda_sweep(
            runs_dir / curve_dir(BASE_STRATEGY, beta=beta),
            RunSpec(preset.base_task, 1.0, beta),
            preset.base_lmbdas,
            preset.codec,
            preset.first,
            preset.warm,
            data=data,
            warm_start=preset.warm_start,
        )
        for beta in preset.betas
    }
    _execute([run for beta in preset.betas for run in base_plan[beta]], executor, source, step)
    phases("training")
    base_runs = {beta: [_finished(run) for run in runs] for beta, runs in base_plan.items()}
    frames = {
        preset.base_task: collect_rd(
            [run for beta in preset.betas for run in base_runs[beta]],
            splits.test,
            "test",
            progress=step,
            **evaluation,
        )
    }

    phases("evaluation")

    # 2. the similar-rate pair
    base_frame = frames[preset.base_task]
    chosen_rows = pick_similar_rate_pair(
        base_frame[base_frame["beta"] == baseline], base_frame[base_frame["beta"] == proposed]
    )
    chosen: dict[float, FinishedRun] = {}
    for beta, row in zip(preset.betas, chosen_rows, strict=True):
        chosen[beta] = next(r for r in base_runs[beta] if r.spec.lmbda == row["lmbda"])
    pair = {
        pair_key(beta): {
            "lmbda": chosen[beta].spec.lmbda,
            "bpp": float(row["bpp"]),
            "checkpoint": str(chosen[beta].checkpoint),
        }
        for beta, row in zip(preset.betas, chosen_rows, strict=True)
    }
    write_json_atomic(out / PAIR_FILE, pair)
    step(
        "similar-rate pair: "
        + ", ".join(f"{k} lambda={v['lmbda']:g} ({v['bpp']:.4f} bpp)" for k, v in pair.items())
    )

    # 3. secondary tasks: one plan for all of them and the pair's seed replicas
    secondary_plans = {
        secondary.task: _secondary_plan(preset, secondary, base_runs, chosen, runs_dir)
        for secondary in preset.secondary
    }
    replicas = _pair_seed_plan(preset, base_plan, chosen, secondary_plans, runs_dir)
    _execute(
        [run for runs in secondary_plans.values() for run in runs]
        + [run for seeds in replicas.values() for runs in seeds.values() for run in runs],
        executor, source, step,
    )
    phases("training")
    for secondary in preset.secondary:
        runs = [_finished(run) for run in secondary_plans[secondary.task]]
        frames[secondary.task] = collect_rd(runs, splits.test, "test", progress=step, **evaluation)
    seeds = _pair_seed_table(preset, chosen, secondary_plans, replicas, splits, evaluation, step)
    write_text_atomic(out / PAIR_SEEDS_FILE, seeds.to_csv(index=False))
    phases("evaluation")

    # 4. tables, figures, checks
    files: list[Path] = []
    for task, frame in frames.items():
        files.append(write_rd_csv(frame, out / rd_file(task)))
    table = bd_rows(frames, _comparisons(preset), preset.bd_method)
    write_text_atomic(out / BD_FILE, table.to_csv(index=False))
    write_text_atomic(out / BD_MARKDOWN_FILE, bd_table_markdown(table))
    files += [out / BD_FILE, out / BD_MARKDOWN_FILE]
    files += _figures(preset, frames, out)
    trivial = _trivial_check(preset, frames, splits)
    write_text_atomic(out / TRIVIAL_FILE, trivial.to_csv(index=False))
    terms = loss_terms(base_plan[proposed][0])
    write_text_atomic(out / LOSS_TERMS_FILE, terms.to_csv(index=False))
    files += [out / TRIVIAL_FILE, out / PAIR_SEEDS_FILE, out / LOSS_TERMS_FILE]
    phases("tables and figures")

    # 5. V-information probes of the base models
    probe_pair: pd.DataFrame | None = None
    if preset.probes is not None:
        probe_files_written, probe_pair = _probe_base_models(
            preset, preset.probes, base_runs, chosen, out, data_root, step
        )
        files += probe_files_written
    phases("probes")
    probe_table = out / PROBES_FILE
    verdicts = paper_verdicts(
        base_task=preset.base_task, betas=preset.betas, bd=table, pair_seeds=seeds,
        pair_probes=probe_pair,
        probes=pd.read_csv(probe_table) if preset.probes is not None else None,
    )
    write_text_atomic(out / VERDICTS_FILE, verdicts.to_csv(index=False))
    seconds = time.perf_counter() - started
    summary = _summary(preset, pair, table, trivial, seconds, probe_pair, verdicts, seeds, terms)
    write_text_atomic(out / FINISHED_MARKER, summary)
    files += [out / VERDICTS_FILE, out / FINISHED_MARKER, out / PAIR_FILE, out / CONFIG_FILE]
    report = write_report(out, out / REPORT_DIR)
    files += [report, report.with_suffix(".html")]
    phases("report")
    write_json_atomic(out / TIMINGS_FILE, {"workers": getattr(executor, "workers", 1),
                                             "seconds": phases.seconds})
    files.append(out / TIMINGS_FILE)
    step(f"done in {_clock(seconds)}: {out}; report: {report}")
    return ReproduceResult(out, tuple(files), table, trivial, seconds, report)


def _secondary_plan(
    preset: ReproducePreset,
    secondary: Secondary,
    base_runs: dict[float, list[FinishedRun]],
    chosen: dict[float, FinishedRun],
    runs_dir: Path,
) -> list[PlannedRun]:
    """The runs of one secondary task: ``direct`` on every base model (each decoder trained
    from scratch with the same budget, so a point of the curve differs from its neighbours by
    its base alone; a decoder warm-started from another one got more training and beat it,
    issue #13), ``scalable`` curves on the chosen pair, ``standalone`` from the proposed
    scalable models."""
    runs: list[PlannedRun] = []
    if "direct" in secondary.strategies:
        for beta in preset.betas:
            for base in base_runs[beta]:
                spec = RunSpec(
                    secondary.task, secondary.direct_lmbda, beta, "direct",
                    base=str(base.checkpoint),
                )
                runs.append(PlannedRun(
                    spec,
                    preset.codec,
                    preset.direct_train,
                    runs_dir / RunKey("direct", base.spec.lmbda, beta, secondary.task).path,
                    _dependencies(spec),
                    message=f"train {secondary.task} {spec.curve} on base "
                    f"lambda={base.spec.lmbda:g}",
                ))
    scalable: dict[float, list[PlannedRun]] = {}
    if "scalable" in secondary.strategies:
        for beta in preset.betas:
            scalable[beta] = plan_lambda_sweep(
                runs_dir / curve_dir("scalable", task=secondary.task, beta=beta),
                RunSpec(secondary.task, 1.0, beta, "scalable", base=str(chosen[beta].checkpoint)),
                secondary.lmbdas,
                preset.codec,
                preset.first,
                preset.warm,
                warm_start=preset.warm_start,
            )
            runs += scalable[beta]
    if "standalone" in secondary.strategies:
        for source in scalable[preset.proposed_beta]:
            spec = dataclasses.replace(
                source.spec, strategy="standalone", init=str(source.checkpoint),
                train_only="entropy_model",
            )
            runs.append(PlannedRun(
                spec, preset.codec, preset.warm,
                runs_dir / RunKey("standalone", spec.lmbda, task=secondary.task).path,
                _dependencies(spec),
                message=f"train {secondary.task} {spec.curve} lambda={spec.lmbda:g}",
            ))
    return runs


def _pair_seed_plan(
    preset: ReproducePreset,
    base_plan: dict[float, list[PlannedRun]],
    chosen: dict[float, FinishedRun],
    secondary_plans: dict[str, list[PlannedRun]],
    runs_dir: Path,
) -> dict[int, dict[float, list[PlannedRun]]]:
    """``seed → β → [base replica, direct replica]`` for every pair seed but the first (see
    :attr:`ReproducePreset.pair_seeds`)."""
    replicas: dict[int, dict[float, list[PlannedRun]]] = {}
    direct = {run.run_dir: run for run in secondary_plans.get("reconstruction", [])
              if run.spec.strategy == "direct"}
    for seed in preset.pair_seeds[1:]:
        replicas[seed] = {}
        for beta in preset.betas:
            source = next(r for r in base_plan[beta] if r.run_dir == chosen[beta].run_dir)
            base = _replica(source, seed, preset.first, runs_dir)
            runs = [base]
            if preset.direct_reconstruction:
                source = next(r for r in direct.values() if r.spec.base == str(source.checkpoint))
                spec = dataclasses.replace(source.spec, base=str(base.checkpoint))
                runs.append(_replica(
                    dataclasses.replace(source, spec=spec), seed, preset.direct_train, runs_dir
                ))
            replicas[seed][beta] = runs  # replicas carry their sources' data records
    return replicas


def _replica(run: PlannedRun, seed: int, first: TrainConfig, runs_dir: Path) -> PlannedRun:
    """``run`` trained again with training seed ``seed``, into its run key with that seed
    (``…/beta=<β>/seed=<seed>/…`` under ``runs_dir``): from the same warm start, or from
    scratch (with ``first``'s budget) if it had none."""
    train = dataclasses.replace(run.train if run.spec.init else first, seed=seed)
    return dataclasses.replace(
        run,
        train=train,
        run_dir=runs_dir / dataclasses.replace(RunKey.from_path(run.run_dir), seed=seed).path,
        after=_dependencies(run.spec),
        message=f"{run.message} (seed {seed})",
    )


def _pair_seed_table(
    preset: ReproducePreset,
    chosen: dict[float, FinishedRun],
    secondary_plans: dict[str, list[PlannedRun]],
    replicas: dict[int, dict[float, list[PlannedRun]]],
    splits: Splits,
    evaluation: dict[str, Any],
    step: Progress,
) -> pd.DataFrame:
    """One row per pair seed and β: the base model's rate and task metric, and the PSNR of
    the direct reconstruction from it (when the study has one), on the test split."""
    base_metric = TASK_EVALUATORS.get(preset.base_task).primary_metric
    direct = {run.spec.base: run for run in secondary_plans.get("reconstruction", [])
              if run.spec.strategy == "direct"}
    rows = []
    for seed in preset.pair_seeds:
        for beta in preset.betas:
            if seed == preset.pair_seeds[0]:
                base = chosen[beta]
                models = [base] + ([_finished(direct[str(base.checkpoint)])]
                                   if str(base.checkpoint) in direct else [])
            else:
                models = [_finished(run) for run in replicas[seed][beta]]
            frame = collect_rd(models, splits.test, "test", progress=step, **evaluation)
            base_row = frame[frame["strategy"] == BASE_STRATEGY].iloc[0]
            row = {"seed": seed, "beta": beta, "lmbda": float(base_row["lmbda"]),
                   "bpp": float(base_row["bpp"]),
                   f"base_{base_metric}": float(base_row[base_metric])}
            if len(models) > 1:
                row["direct_psnr"] = float(frame[frame["strategy"] == "direct"].iloc[0]["psnr"])
            rows.append(row)
    return pd.DataFrame(rows)


class _Phases:
    """Wall time per phase of the pipeline: each call charges the time since the last call to
    the phase named (written to ``timings.json``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self._last
        self._last = now


def loss_terms(run: PlannedRun) -> pd.DataFrame:
    """How much each term of eq. 3 weighs in one base model's training loss, at its first and
    its last epoch: ``λ·d``, ``λ·β·D_recon`` and ``R`` (train means, the loss's own units).

    Args:
        run: a finished base run (its ``metrics.csv`` is read).
    """
    history = pd.read_csv(run.run_dir / METRICS_FILE)
    lmbda, beta = run.spec.lmbda, run.spec.beta
    rows = []
    for which, index in (("first", 0), ("last", len(history) - 1)):
        epoch = history.iloc[index]
        rows.append({
            "epoch": int(epoch["epoch"]),
            "which": which,
            "lmbda": lmbda,
            "beta": beta,
            "task_term": lmbda * float(epoch["train_distortion"]),
            "recon_term": lmbda * beta * float(epoch["train_aux_rmse"]),
            "rate_term": float(epoch["train_bpp"]),
            "distortion": float(epoch["train_distortion"]),
            "recon_rmse_levels": float(epoch["train_aux_rmse"]),
            "bpp": float(epoch["train_bpp"]),
        })
    return pd.DataFrame(rows)


def _finished(run: PlannedRun) -> FinishedRun:
    return FinishedRun(run.spec, run.run_dir)


def _execute(
    runs: Sequence[PlannedRun], executor: Executor, source: DataSource, step: Progress
) -> None:
    plan = Plan()
    plan.extend(runs)
    executor.run(plan, source, step)


@dataclass(frozen=True)
class PresetData:
    """The splits of a preset (a picklable :class:`~vinfo.experiments.plan.DataSource`, so
    worker processes build their own, scene cache included)."""

    preset: ReproducePreset
    data_root: str | None = None

    def __call__(self) -> Splits:
        return _splits(self.preset, self.data_root)


def _repr_name(beta: float, lmbda: float) -> str:
    """The name of a base model in the probe tables (:attr:`RunKey.name`)."""
    return RunKey(BASE_STRATEGY, lmbda, beta).name


def _probe_source(
    preset: ReproducePreset, study: ProbeStudy, data_root: str | Path | None
) -> dict[str, Any]:
    """Data source arguments of :func:`probes.probe_files`: the split of the preset's dataset
    that no codec saw (:attr:`vinfo.data.DatasetEntry.unseen_split`: fresh
    synthetic images, or a real dataset's official validation split), shrunk like the codec's
    inputs (``downscale``, given when it is not 1)."""
    split = DATASETS.get(preset.dataset).unseen_split
    if preset.dataset == "synthetic":
        name = synthetic_preset_name(preset.synthetic)
        if name is None:
            raise ValueError(
                "the probe step reads synthetic images by preset name; this preset's synthetic "
                "config matches none of vinfo.data.synthetic.PRESETS"
            )
        where: dict[str, Any] = {"preset": name}
    else:
        where = {"root": None if data_root is None else str(Path(data_root).resolve())}
    # downscale 1 stays implicit: the probe records of earlier runs stay valid
    scale = {"downscale": preset.downscale} if preset.downscale > 1 else {}
    return {"dataset": preset.dataset, **where, "split": split, "n_images": study.n_images,
            **scale}


def _probe_base_models(
    preset: ReproducePreset,
    study: ProbeStudy,
    base_runs: dict[float, list[FinishedRun]],
    chosen: dict[float, FinishedRun],
    out: Path,
    data_root: str | Path | None,
    step: Progress,
) -> tuple[list[Path], pd.DataFrame]:
    """Probe every base model on the same images; write ``probes.csv``,
    ``probes_paired.csv`` and ``fig_iv_capacity.png``.

    The fits are skipped on a rerun when ``probe_cache/probes.json`` records the same study,
    data and checkpoint hashes: the table and the per-image bits (``probe_cache/bits.npz``)
    are read back, and only the bootstraps and the figure are redone.

    Returns:
        The files written and the paired ``ΔI_V`` of the similar-rate pair (proposed minus
        baseline, each at its own λ), one row per target × family.
    """
    baseline, proposed = preset.betas
    runs = [(beta, run) for beta in preset.betas for run in base_runs[beta]]
    names = [_repr_name(beta, run.spec.lmbda) for beta, run in runs]
    source = _probe_source(preset, study, data_root)
    cache = out / PROBE_CACHE_DIR
    record_file, bits_file = cache / PROBE_RECORD_FILE, cache / PROBE_BITS_FILE
    table_file = out / PROBES_FILE
    wanted = json.loads(json.dumps({
        "study": dataclasses.asdict(study),
        "source": source,
        "checkpoints": {name: checkpoint_sha256(run.checkpoint) for name, (_, run)
                        in zip(names, runs, strict=True)},
    }))
    stored = read_json(record_file) if record_file.is_file() else None
    if stored == wanted and bits_file.is_file() and table_file.is_file():
        step(f"probes: {table_file.name} is up to date (the fits are skipped)")
        # "null" is a family name, not a missing value
        frame = pd.read_csv(table_file, keep_default_na=False, na_values=[""])
        bits = load_bits(bits_file)
    else:
        total, done = study.num_fits(len(runs)), 0

        def fitted(event: FitEvent) -> None:
            nonlocal done
            done += 1
            step(f"probe [{done}/{total}] {event.repr} {event.target} {event.family} "
                 f"seed {event.seed}")

        run = probe_files(
            [r.checkpoint for _, r in runs], study.targets, study.families, study.seeds,
            names=names, cache_dir=cache, n_resamples=study.n_resamples,
            controls=study.controls, probe_kwargs=study.probe_kwargs(), callback=fitted,
            **source,
        )
        frame, bits = run.frame, run.bits
        where = {name: (beta, r.spec.lmbda) for name, (beta, r) in zip(names, runs, strict=True)}
        frame.insert(2, "beta", frame["repr"].map(lambda name: float(where[name][0])))
        frame.insert(3, "lmbda", frame["repr"].map(lambda name: float(where[name][1])))
        write_text_atomic(table_file, frame.to_csv(index=False))
        save_bits(bits, bits_file)
        write_json_atomic(record_file, wanted)  # last: marks the fits as complete
    paired = _paired_same_lambda(preset, bits, study)
    write_text_atomic(out / PAIRED_FILE, paired.to_csv(index=False))
    pair_names = [_repr_name(beta, chosen[beta].spec.lmbda) for beta in (baseline, proposed)]
    pair_delta = paired_differences(
        bits, pairs=[(pair_names[1], pair_names[0])], n_resamples=study.n_resamples
    )
    # all 2 x len(λ) models in one panel are unreadable: the similar-rate pair only
    figure = plot_iv_by_capacity(frame[frame["repr"].isin(pair_names)])
    figure_file = save_probe_figure(figure, out / IV_CAPACITY_FIGURE)
    return [table_file, out / PAIRED_FILE, figure_file], pair_delta


def _paired_same_lambda(
    preset: ReproducePreset, bits: BitsRecord, study: ProbeStudy
) -> pd.DataFrame:
    """``ΔI_V`` of β = proposed minus β = baseline at every λ, with a ``lmbda`` column."""
    baseline, proposed = preset.betas
    lmbdas = sorted(preset.base_lmbdas, reverse=True)
    pairs = [(_repr_name(proposed, lmbda), _repr_name(baseline, lmbda)) for lmbda in lmbdas]
    paired = paired_differences(bits, pairs=pairs, n_resamples=study.n_resamples)
    lmbda_of = {name: lmbda for (name, _), lmbda in zip(pairs, lmbdas, strict=True)}
    paired.insert(5, "lmbda", paired["repr"].map(lmbda_of).astype(float))
    return paired


def _figures(preset: ReproducePreset, frames: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    b0, b1 = preset.betas
    base_metric = TASK_EVALUATORS.get(preset.base_task).primary_metric
    files: list[Path] = []
    fig2_frames = [frames[preset.base_task]]
    panels: list[Panel] = []
    secondary_panels: list[tuple[pd.DataFrame, Panel]] = []
    for secondary in preset.secondary:
        metric = TASK_EVALUATORS.get(secondary.task).primary_metric
        for strategy in ("direct", "scalable"):
            if strategy not in secondary.strategies:
                continue
            labels = (curve_label(strategy, b0), curve_label(strategy, b1))
            if strategy == "scalable" and "standalone" in secondary.strategies:
                labels += ("standalone",)
            figure = _figure(secondary.task, strategy, preset.base_task)
            panel = Panel(f"{figure}: {secondary.task}, {strategy}", metric, labels)
            if figure.startswith("Fig. 2"):
                panels.append(panel)
            else:
                secondary_panels.append((frames[secondary.task], panel))
        if secondary.task == "reconstruction":
            fig2_frames.append(frames[secondary.task])
    base_figure = _figure(preset.base_task, BASE_STRATEGY, preset.base_task)
    panels.append(
        Panel(
            f"{base_figure}: {preset.base_task} (base task)",
            base_metric,
            (curve_label(BASE_STRATEGY, b0), curve_label(BASE_STRATEGY, b1)),
        )
    )
    files += save_figure(plot_rd_panels(pd.concat(fig2_frames), panels), out / FIG2_STEM)
    if secondary_panels:
        frame = pd.concat([f for f, _ in secondary_panels]).drop_duplicates()
        figure = plot_rd_panels(frame, [p for _, p in secondary_panels], columns=1)
        files += save_figure(figure, out / FIG3_STEM)
    return files


def _trivial_check(
    preset: ReproducePreset, frames: dict[str, pd.DataFrame], splits: Splits
) -> pd.DataFrame:
    """Per task: the trivial predictor's primary metric on the test split (fitted on the
    validation images) against the best and worst trained model."""
    rows = []
    for task, frame in frames.items():
        evaluator = TASK_EVALUATORS.get(task)
        metric = evaluator.primary_metric
        trivial = trivial_metrics(task, splits.val, splits.test, preset.codec)[metric]
        higher = metric_direction(metric).higher_is_better
        values = frame[metric]
        worst = values.min() if higher else values.max()
        best = values.max() if higher else values.min()
        beats = (worst > trivial) if higher else (worst < trivial)
        rows.append(
            {
                "task": task,
                "metric": metric,
                "trivial": trivial,
                "best_model": best,
                "worst_model": worst,
                "all_models_beat_trivial": bool(beats),
            }
        )
    return pd.DataFrame(rows)


def _summary(
    preset: ReproducePreset,
    pair: dict[str, Any],
    table: pd.DataFrame,
    trivial: pd.DataFrame,
    seconds: float,
    probe_pair: pd.DataFrame | None = None,
    verdicts: pd.DataFrame | None = None,
    seeds: pd.DataFrame | None = None,
    terms: pd.DataFrame | None = None,
) -> str:
    lines = [
        "# vinfo reproduce",
        "",
        f"Preset: {preset.description}.",
        f"Wall time of the last call: {_clock(seconds)} (mm:ss; a rerun skips finished models).",
        "",
    ]
    if verdicts is not None:
        lines += [
            "## Verdicts on the paper's claims",
            "",
            "Reproduced: every seed (or the CI) has the paper's sign; not reproduced: the "
            "opposite sign; inconclusive: mixed signs, a CI containing 0, or undefined.",
            "",
            _markdown(verdicts),
        ]
    if seeds is not None and len(seeds):
        lines += ["## The similar-rate pair across training seeds (test split)", "",
                  _markdown(seeds), ""]
    if terms is not None:
        lines += [
            "## Loss terms of one base model (eq. 3: λ·d + λ·β·D_recon + R, train means)",
            "",
            _markdown(terms),
        ]
    lines += [
        "## Similar-rate base pair",
        "",
        *(f"- {k}: lambda_b = {v['lmbda']:g}, {v['bpp']:.4f} bpp" for k, v in pair.items()),
        "",
        "## BD table (anchor = baseline, test = proposed)",
        "",
        bd_table_markdown(table.drop(columns="task")),
        "## Trivial predictor check (test split)",
        "",
        _markdown(trivial),
        "",
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
        lines += [
            "## V-information probes of the similar-rate pair",
            "",
            f"ΔI_V = I_V({first['repr']}) − I_V({first['anchor']}), bits per target pixel, "
            f"paired bootstrap CI over {int(first['n_test_images'])} test images and "
            f"{int(first['n_seeds'])} seed(s); every base model in probes.csv, β against β at "
            "the same λ in probes_paired.csv.",
            "",
            _markdown(cells),
            "",
        ]
    return "\n".join(lines)


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "---|" * len(frame.columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)),
    ]
    return "\n".join(lines) + "\n"


__all__ = [
    "REPRODUCE_PRESETS",
    "ReproducePreset",
    "ReproduceResult",
    "Secondary",
    "bd_rows",
    "describe_plan",
    "get_preset",
    "reproduce",
]
