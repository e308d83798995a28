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
   ``summary.md`` with the wall time.

Everything lands under ``out``; rerunning skips finished models and resumes interrupted ones.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bdrate.directions import metric_direction
from vinfo.data.synthetic import SyntheticConfig
from vinfo.experiments.evaluate import TASK_EVALUATORS, trivial_metrics
from vinfo.experiments.plots import Panel, plot_rd_panels, save_figure
from vinfo.experiments.rd import (
    Comparison,
    bd_table,
    bd_table_markdown,
    pick_similar_rate_pair,
    write_rd_csv,
)
from vinfo.experiments.splits import Splits, dataset_splits, experiment_transforms
from vinfo.experiments.sweep import (
    BASE_STRATEGY,
    FinishedRun,
    Progress,
    RunSpec,
    collect_rd,
    curve_label,
    lambda_sweep,
    train_run,
)
from vinfo.io import write_json_atomic, write_text_atomic
from vinfo.models.config import CodecConfig, codec_preset
from vinfo.models.enhancement import STRATEGIES
from vinfo.registry import Registry
from vinfo.train import TrainConfig


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
        if "standalone" in self.strategies and "scalable" not in self.strategies:
            raise ValueError("standalone starts from the proposed scalable models: add scalable")


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
        first: training of the first (highest-λ) model of a curve.
        warm: training of the warm-started models.
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
    bd_method: str = "akima"
    threads: int | None = None

    def __post_init__(self) -> None:
        if len(self.betas) != 2 or self.betas[0] == self.betas[1]:
            raise ValueError(f"betas must be (baseline, proposed), got {self.betas}")
        if len(self.base_lmbdas) < 2:
            raise ValueError("a base curve needs at least 2 lambda values")

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
        return count


def _train(lr: float, epochs: int, patience: int, batch_size: int, **extra: Any) -> TrainConfig:
    return TrainConfig(
        lr=lr, max_epochs=epochs, patience=patience, batch_size=batch_size, quiet=True, **extra
    )


_SECONDARY_TINY = (
    Secondary("reconstruction", ("direct", "scalable", "standalone"), (30.0, 10.0, 3.0, 1.0)),
    Secondary("segmentation", ("scalable", "standalone"), (3.0, 1.0, 0.3, 0.1)),
)

REPRODUCE_PRESETS: Registry[ReproducePreset] = Registry("reproduce preset")
REPRODUCE_PRESETS.add(
    "tiny",
    ReproducePreset(
        description=(
            "synthetic 64x64 scenes, tiny codec, depth base, 4 lambdas per curve "
            "(about 15 min on 2 CPU cores)"
        ),
        codec=codec_preset("tiny").replace(segmentation_classes=7),
        base_task="depth",
        betas=(0.0, 0.1),
        base_lmbdas=(1.0, 0.1, 0.01, 0.002),
        secondary=_SECONDARY_TINY,
        # lr 1e-3 instead of the paper's 1e-4: the CPU budget allows a few hundred steps
        first=_train(1e-3, 40, 10, 16),
        warm=_train(1e-3, 12, 5, 16),
        synthetic=SyntheticConfig.preset("tiny"),
        threads=1,
    ),
)
REPRODUCE_PRESETS.add(
    "micro",
    ReproducePreset(
        description="smoke test: 32x32 scenes, a few steps per model (about 1-2 min; tests, CI)",
        codec=codec_preset("tiny").replace(segmentation_classes=7),
        base_task="depth",
        betas=(0.0, 0.1),
        base_lmbdas=(1.0, 0.1, 0.01, 0.002),
        secondary=(
            Secondary("reconstruction", ("direct", "scalable", "standalone"), (30.0, 3.0, 1.0)),
            Secondary("segmentation", ("scalable", "standalone"), (3.0, 0.3, 0.1)),
        ),
        first=_train(3e-3, 4, 4, 8),
        warm=_train(3e-3, 2, 2, 8),
        synthetic=SyntheticConfig.preset("micro"),
        threads=1,
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
        lines.append(
            f"3. {secondary.task}: {', '.join(secondary.strategies)}; lambda_e in ({values})"
        )
    lines.append(
        f"4. RD CSVs, BD table, Fig. 2/3 plots; {preset.num_models()} models in total"
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
        seconds: wall time of this call.
    """

    out: Path
    files: tuple[Path, ...]
    bd_table: pd.DataFrame
    trivial: pd.DataFrame
    seconds: float


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
    method: str = "akima",
) -> pd.DataFrame:
    """The BD table of ``(task, comparison)`` rows, each computed on ``frames[task]``.

    Where ``method`` needs monotone curves and one is not (noisy short training), the row is
    computed on the curves' Pareto fronts and says so in ``note``; undefined values (no
    overlap, too few points) are NaN with the reason in ``note``.
    """
    tables = []
    for task in dict.fromkeys(task for task, _ in comparisons):
        rows = [c for t, c in comparisons if t == task]
        table = bd_table(frames[task], rows, method=method, prune_dominated=True)
        tables.append(table.assign(task=task))
    return pd.concat(tables, ignore_index=True)


def _check_out(out: Path, preset: ReproducePreset) -> None:
    record = out / "reproduce.json"
    wanted = preset.to_dict()
    for config in ("first", "warm"):
        wanted[config].pop("quiet")
    if record.is_file():
        stored = json.loads(record.read_text(encoding="utf-8"))
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
) -> ReproduceResult:
    """Run the study of ``preset`` into ``out`` (resumable; see the module docstring).

    Args:
        preset: a name in :data:`REPRODUCE_PRESETS` or a :class:`ReproducePreset`.
        out: output directory (created).
        data_root: dataset root for presets that read real data.
        quiet: no per-model progress bars.
        progress: called with one line per step (``None``: silent).

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
    try:
        return _reproduce(preset, Path(out), data_root, progress, started)
    finally:
        torch.set_num_threads(threads)


def _reproduce(
    preset: ReproducePreset,
    out: Path,
    data_root: str | Path | None,
    progress: Progress | None,
    started: float,
) -> ReproduceResult:
    splits = _splits(preset, data_root)
    _check_out(out, preset)
    step = _Steps(preset.num_models(), progress or (lambda message: None))
    runs_dir = out / "runs"
    baseline, proposed = preset.betas
    evaluation = {
        "batch_size": preset.eval_batch_size,
        "downscale_factor": preset.downscale,
        "bitstream_images": preset.bitstream_images,
    }

    # 1. base curves
    base_runs: dict[float, list[FinishedRun]] = {}
    for beta in preset.betas:
        base_runs[beta] = lambda_sweep(
            runs_dir / "base" / f"beta={beta:g}",
            RunSpec(preset.base_task, 1.0, beta),
            preset.base_lmbdas,
            preset.codec,
            splits,
            preset.first,
            preset.warm,
            progress=step,
        )
    frames = {
        preset.base_task: collect_rd(
            [run for beta in preset.betas for run in base_runs[beta]],
            splits.test,
            "test",
            progress=step,
            **evaluation,
        )
    }

    # 2. the similar-rate pair
    base_frame = frames[preset.base_task]
    chosen_rows = pick_similar_rate_pair(
        base_frame[base_frame["beta"] == baseline], base_frame[base_frame["beta"] == proposed]
    )
    chosen: dict[float, FinishedRun] = {}
    for beta, row in zip(preset.betas, chosen_rows, strict=True):
        chosen[beta] = next(r for r in base_runs[beta] if r.spec.lmbda == row["lmbda"])
    pair = {
        f"beta={beta:g}": {
            "lmbda": chosen[beta].spec.lmbda,
            "bpp": float(row["bpp"]),
            "checkpoint": str(chosen[beta].checkpoint),
        }
        for beta, row in zip(preset.betas, chosen_rows, strict=True)
    }
    write_json_atomic(out / "pair.json", pair)
    step(
        "similar-rate pair: "
        + ", ".join(f"{k} lambda={v['lmbda']:g} ({v['bpp']:.4f} bpp)" for k, v in pair.items())
    )

    # 3. secondary tasks
    for secondary in preset.secondary:
        runs = _secondary_runs(preset, secondary, base_runs, chosen, splits, runs_dir, step)
        frames[secondary.task] = collect_rd(runs, splits.test, "test", progress=step, **evaluation)

    # 4. tables, figures, checks
    files: list[Path] = []
    for task, frame in frames.items():
        files.append(write_rd_csv(frame, out / f"rd_{task}.csv"))
    table = bd_rows(frames, _comparisons(preset), preset.bd_method)
    write_text_atomic(out / "bd_table.csv", table.to_csv(index=False))
    write_text_atomic(out / "bd_table.md", bd_table_markdown(table))
    files += [out / "bd_table.csv", out / "bd_table.md"]
    files += _figures(preset, frames, out)
    trivial = _trivial_check(preset, frames, splits)
    write_text_atomic(out / "trivial.csv", trivial.to_csv(index=False))
    files.append(out / "trivial.csv")
    seconds = time.perf_counter() - started
    write_text_atomic(out / "summary.md", _summary(preset, pair, table, trivial, seconds))
    files += [out / "summary.md", out / "pair.json", out / "reproduce.json"]
    step(f"done in {_clock(seconds)}: {out}")
    return ReproduceResult(out, tuple(files), table, trivial, seconds)


def _secondary_runs(
    preset: ReproducePreset,
    secondary: Secondary,
    base_runs: dict[float, list[FinishedRun]],
    chosen: dict[float, FinishedRun],
    splits: Splits,
    runs_dir: Path,
    step: Progress,
) -> list[FinishedRun]:
    root = runs_dir / secondary.task
    runs: list[FinishedRun] = []
    if "direct" in secondary.strategies:
        for beta in preset.betas:
            # one direct model per base model (highest λ_b first), warm-started from the first
            first: FinishedRun | None = None
            for base in base_runs[beta]:
                spec = RunSpec(
                    secondary.task,
                    secondary.direct_lmbda,
                    beta,
                    "direct",
                    base=str(base.checkpoint),
                    init=None if first is None else str(first.checkpoint),
                )
                step(f"train {secondary.task} {spec.curve} on base lambda={base.spec.lmbda:g}")
                run = train_run(
                    spec,
                    preset.codec,
                    splits,
                    preset.first if first is None else preset.warm,
                    root / "direct" / f"beta={beta:g}" / f"base_lmbda={base.spec.lmbda:g}",
                )
                first = first or run
                runs.append(run)
    scalable: dict[float, list[FinishedRun]] = {}
    if "scalable" in secondary.strategies:
        for beta in preset.betas:
            scalable[beta] = lambda_sweep(
                root / "scalable" / f"beta={beta:g}",
                RunSpec(secondary.task, 1.0, beta, "scalable", base=str(chosen[beta].checkpoint)),
                secondary.lmbdas,
                preset.codec,
                splits,
                preset.first,
                preset.warm,
                progress=step,
            )
            runs += scalable[beta]
    if "standalone" in secondary.strategies:
        proposed = preset.proposed_beta
        for source in scalable[proposed]:
            spec = dataclasses.replace(
                source.spec, strategy="standalone", init=str(source.checkpoint),
                train_only="entropy_model",
            )
            step(f"train {secondary.task} {spec.curve} lambda={spec.lmbda:g}")
            runs.append(
                train_run(
                    spec,
                    preset.codec,
                    splits,
                    preset.warm,
                    root / "standalone" / f"lmbda={spec.lmbda:g}",
                )
            )
    return runs


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
    files += save_figure(plot_rd_panels(pd.concat(fig2_frames), panels), out / "fig2")
    if secondary_panels:
        frame = pd.concat([f for f, _ in secondary_panels]).drop_duplicates()
        figure = plot_rd_panels(frame, [p for _, p in secondary_panels], columns=1)
        files += save_figure(figure, out / "fig3")
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
) -> str:
    lines = [
        "# vinfo reproduce",
        "",
        f"Preset: {preset.description}.",
        f"Wall time of the last call: {_clock(seconds)} (mm:ss; a rerun skips finished models).",
        "",
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
