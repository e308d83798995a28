"""``vinfo reproduce``: the paper's experiments (§4) end to end, from data to BD tables.

The pipeline, for one preset (:data:`vinfo.experiments.presets.REPRODUCE_PRESETS`):

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

Above 500 lines for one reason: the pipeline's steps share one state (the plan, the chosen
pair, the seeds' replicas, the phase clock); the presets, the probe step, the paper's layout
and the summary each live in their own module (presets, probe_step, paper_layout, summary).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bdrate.directions import metric_direction
from vinfo.experiments.bd_bootstrap import with_intervals
from vinfo.experiments.datasets import Splits, dataset_splits, experiment_transforms
from vinfo.experiments.document import render_markdown
from vinfo.experiments.evaluate import trivial_metrics
from vinfo.experiments.paper_layout import bd_rows, paper_comparisons, write_paper_figures
from vinfo.experiments.plan import DataSource, Executor, Plan, ProcessExecutor, executor_for
from vinfo.experiments.presets import ReproducePreset, Secondary, get_preset
from vinfo.experiments.probe_step import probe_base_models
from vinfo.experiments.rd import (
    bd_table_markdown,
    pick_similar_rate_pair,
    write_rd_csv,
)
from vinfo.experiments.rd_collect import collect_rd, collect_rd_evaluations
from vinfo.experiments.report import write_report
from vinfo.experiments.results import (
    BASE_STRATEGY,
    BD_FILE,
    BD_MARKDOWN_FILE,
    CONFIG_FILE,
    FINISHED_MARKER,
    LOSS_TERMS_FILE,
    PAIR_FILE,
    PAIR_SEEDS_FILE,
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
from vinfo.experiments.summary import summary_blocks
from vinfo.experiments.sweep import (
    FinishedRun,
    PlannedRun,
    RunSpec,
    _dependencies,
    curve_label,
    data_record,
    plan_lambda_sweep,
    train_split_name,
)
from vinfo.experiments.verdict import paper_verdicts
from vinfo.io import read_json, write_json_atomic, write_text_atomic
from vinfo.lock import folder_lock
from vinfo.models.tasks import get_task
from vinfo.progress import Progress, ProgressEvent, note, silent
from vinfo.train import METRICS_FILE, TrainConfig


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
    """Progress events with the elapsed time; ``train`` events numbered and, once a model is
    done, with a rough ETA (elapsed time per started model × models left; skipped models make
    it pessimistic)."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.started = time.perf_counter()

    def __call__(self, event: ProgressEvent) -> None:
        elapsed = time.perf_counter() - self.started
        text = str(event)
        if event.kind == "train":
            eta = ""
            if self.done:
                eta = f" (eta {_clock(elapsed / self.done * (self.total - self.done))})"
            self.done += 1
            text = f"[{self.done}/{self.total}] {text}{eta}"
        self.progress(event.retext(f"{_clock(elapsed)} {text}"))


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
    step = _Steps(preset.num_models(), progress or silent)
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
    base_frame, base_evaluations = collect_rd_evaluations(
        [run for beta in preset.betas for run in base_runs[beta]],
        splits.test,
        "test",
        progress=step,
        **evaluation,
    )
    frames = {preset.base_task: base_frame}
    evaluated = {preset.base_task: base_evaluations}  # per row, for the BD intervals

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
    step(note(
        "similar-rate pair: "
        + ", ".join(f"{k} lambda={v['lmbda']:g} ({v['bpp']:.4f} bpp)" for k, v in pair.items())
    ))

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
        frames[secondary.task], evaluated[secondary.task] = collect_rd_evaluations(
            runs, splits.test, "test", progress=step, **evaluation)
    seeds = _pair_seed_table(preset, chosen, secondary_plans, replicas, splits, evaluation, step)
    write_text_atomic(out / PAIR_SEEDS_FILE, seeds.to_csv(index=False))
    phases("evaluation")

    # 4. tables, figures, checks
    files: list[Path] = []
    for task, frame in frames.items():
        files.append(write_rd_csv(frame, out / rd_file(task)))
    comparisons = paper_comparisons(preset)
    # bootstrap intervals for the β comparisons, the paper's claims (≈ 9 ms per comparison
    # and draw: the standalone rows would double the 1000 draws' ≈ 36 s)
    standalone = curve_label("standalone", 0.0)
    claims = [(task, c) for task, c in comparisons if standalone not in (c.anchor, c.test)]
    table = with_intervals(bd_rows(frames, comparisons, preset.bd_method), frames, evaluated,
                           claims, preset.bd_method, preset.codec)
    write_text_atomic(out / BD_FILE, table.to_csv(index=False))
    write_text_atomic(out / BD_MARKDOWN_FILE, bd_table_markdown(table))
    files += [out / BD_FILE, out / BD_MARKDOWN_FILE]
    files += write_paper_figures(preset, frames, out)
    trivial = _trivial_check(preset, frames, splits)
    write_text_atomic(out / TRIVIAL_FILE, trivial.to_csv(index=False))
    terms = loss_terms(base_plan[proposed][0])
    write_text_atomic(out / LOSS_TERMS_FILE, terms.to_csv(index=False))
    files += [out / TRIVIAL_FILE, out / PAIR_SEEDS_FILE, out / LOSS_TERMS_FILE]
    phases("tables and figures")

    # 5. V-information probes of the base models
    probe_pair: pd.DataFrame | None = None
    if preset.probes is not None:
        probe_files_written, probe_pair = probe_base_models(
            preset, preset.probes, base_runs, chosen, out, data_root, step,
            grid=_probe_grid(executor),
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
    summary = summary_blocks(preset, pair, table, trivial, _clock(seconds), probe_pair, verdicts,
                             seeds, terms)
    write_text_atomic(out / FINISHED_MARKER, render_markdown(summary))
    files += [out / VERDICTS_FILE, out / FINISHED_MARKER, out / PAIR_FILE, out / CONFIG_FILE]
    report = write_report(out, out / REPORT_DIR)
    files += [report, report.with_suffix(".html")]
    phases("report")
    write_json_atomic(out / TIMINGS_FILE, {"workers": getattr(executor, "workers", 1),
                                             "seconds": phases.seconds})
    files.append(out / TIMINGS_FILE)
    step(note(f"done in {_clock(seconds)}: {out}; report: {report}"))
    return ReproduceResult(out, tuple(files), table, trivial, seconds, report)


def _probe_grid(executor: Executor) -> ProcessExecutor | None:
    """The executor that fits the probes as a grid of cells: the training's worker processes
    when there are several (the fits are independent, the table is the same), else ``None``
    (every fit in this process, sharing one null per target). With a cluster executor the
    probes stay in this process too; ``vinfo probe --executor slurm`` fits them as a job
    array."""
    if isinstance(executor, ProcessExecutor) and executor.workers > 1:
        return executor
    return None


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
    base_metric = get_task(preset.base_task).metric
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


def _trivial_check(
    preset: ReproducePreset, frames: dict[str, pd.DataFrame], splits: Splits
) -> pd.DataFrame:
    """Per task: the trivial predictor's primary metric on the test split (fitted on the
    validation images) against the best and worst trained model."""
    rows = []
    for task, frame in frames.items():
        metric = get_task(task).metric
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


__all__ = ["ReproduceResult", "reproduce"]
