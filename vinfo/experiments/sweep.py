"""λ sweeps: train the models of a rate-distortion curve (:mod:`vinfo.experiments.rd_collect`
evaluates them into an RD table).

Following §4.1 of the paper, a curve is trained from its highest λ (lowest compression)
down: that model trains from scratch, every other one starts from its weights and trains for
a shorter fine-tuning budget. Each model has its own run directory (the file names are
those of :mod:`vinfo.experiments.results` and :mod:`vinfo.train.trainer`)::

    run_dir/
        experiment.json     the frozen RunSpec, codec config and TrainConfig(s)
        train_config.json   written by the Trainer
        metrics.csv         one row per epoch (train_* and val_* losses and rates)
        best.safetensors    the Trainer's best epoch (weights only), while it trains
        last_state.pt       the Trainer's resumable state, while it trains
        model.safetensors   the finished checkpoint (save_checkpoint: weights + model.json)
        model.json          its spec, plus the "data" it was trained on (data_record)
        eval_<split>.json   cached evaluation (rd_collect.evaluate_run)

Reruns are cheap and safe: a run with ``model.safetensors`` is skipped, a run with only
``last_state.pt`` resumes where it was killed, and a directory written for another spec is
refused rather than overwritten. Once ``model.safetensors`` is written, the Trainer's two
scratch files are removed: the checkpoint holds the best epoch's weights, and a finished run
is never resumed (with a detection head, they were 3/4 of a run folder's bytes).

Above 500 lines for one reason: a run's spec, its record on disk, its training and the plans
of a curve are one life cycle (spec → plan → train → record → read back); evaluating finished
runs into RD rows is :mod:`vinfo.experiments.rd_collect`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.distributed
from torch import nn

from vinfo.data.sample import collate
from vinfo.data.synthetic import SyntheticConfig, synthetic_preset_name
from vinfo.experiments.datasets import (
    Splits,
    dataset_splits,
    experiment_dataset,
    experiment_transforms,
)
from vinfo.experiments.objectives import initialise_head_at_prior, objective_for
from vinfo.experiments.results import (
    BASE_STRATEGY,
    CHECKPOINT_FILE,
    EXPERIMENT_FILE,
    lmbda_dir,
)
from vinfo.io import read_json, write_json_atomic
from vinfo.lock import folder_lock
from vinfo.models.base import BaseCodec, check_beta, check_lmbda
from vinfo.models.checkpoint import load_checkpoint, read_tensors, save_checkpoint
from vinfo.models.config import CodecConfig, codec_preset
from vinfo.models.enhancement import STRATEGIES, EnhancementCodec
from vinfo.models.tasks import get_task
from vinfo.progress import Progress, ProgressEvent, silent
from vinfo.train import STATE_FILE, TrainConfig, Trainer, seed_everything, select_device
from vinfo.train.distributed import is_distributed, is_main_process, process_group_from_env


def curve_label(strategy: str, beta: float) -> str:
    """Curve label of RD tables: ``"base beta=0.1"``, ``"scalable beta=0"``…, and
    ``"standalone"`` (whose base latent is zeroed out, so β does not matter)."""
    if strategy == "standalone":
        return "standalone"
    return f"{strategy} beta={beta:g}"


@dataclass(frozen=True)
class RunSpec:
    """What one model of an experiment is.

    Attributes:
        task: the task this model is trained for (the enhancement task for enhancement models).
        lmbda: its rate-distortion trade-off λ (eq. 3 or 4).
        beta: reconstruction reward β of a base model (eq. 3); for an enhancement model, the β
            of its base (informative: the base checkpoint defines it).
        strategy: ``"base"`` or an enhancement strategy (``direct``, ``scalable``,
            ``standalone``).
        base: checkpoint of the frozen base (enhancement models only).
        init: checkpoint whose weights initialise this model (warm start), or ``None``.
        train_only: name of the one submodule to optimise (e.g. ``"entropy_model"``: the
            paper's standalone method fine-tunes only the entropy model), ``None`` for all.
        label: curve label in RD tables; default :meth:`default_label`.
    """

    task: str
    lmbda: float
    beta: float = 0.0
    strategy: str = BASE_STRATEGY
    base: str | None = None
    init: str | None = None
    train_only: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        get_task(self.task)  # unknown tasks raise, listing the valid ones
        check_lmbda(self.lmbda)
        check_beta(self.beta)
        if self.strategy == BASE_STRATEGY:
            if self.base is not None:
                raise ValueError("a base model takes no base checkpoint")
        else:
            STRATEGIES.get(self.strategy)
            if self.base is None:
                raise ValueError(f"a {self.strategy} enhancement model needs a base checkpoint")

    @property
    def is_base(self) -> bool:
        return self.strategy == BASE_STRATEGY

    def default_label(self) -> str:
        """The curve this model belongs to, :func:`curve_label` of its strategy and β."""
        return curve_label(self.strategy, self.beta)

    @property
    def curve(self) -> str:
        return self.label or self.default_label()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**data)


@dataclass(frozen=True)
class FinishedRun:
    """A trained model: its spec, run directory and checkpoint."""

    spec: RunSpec
    run_dir: Path

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT_FILE

    @property
    def event(self) -> ProgressEvent:
        """The ``train`` progress event reported when the run starts (its :attr:`message`)."""
        return ProgressEvent("train", self.message)


@dataclass(frozen=True)
class PlannedRun:
    """One :func:`train_run` call, planned (see :class:`vinfo.experiments.plan.Plan`).

    Attributes:
        spec: what to train.
        config: codec sizes.
        train: optimisation settings.
        run_dir: the run's directory; also its key in a plan.
        after: run directories that must have finished first (warm start, base).
        data: the data record of the checkpoint (see :func:`train_run`).
        message: the progress line printed when the run starts.
    """

    spec: RunSpec
    config: CodecConfig
    train: TrainConfig
    run_dir: Path
    after: tuple[Path, ...] = ()
    data: Mapping[str, Any] | None = None
    message: str = ""

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT_FILE

    @property
    def event(self) -> ProgressEvent:
        """The ``train`` progress event reported when the run starts (its :attr:`message`)."""
        return ProgressEvent("train", self.message)


def build_model(spec: RunSpec, config: CodecConfig) -> nn.Module:
    """A freshly initialised codec for ``spec`` (the base of an enhancement model is loaded)."""
    if spec.is_base:
        return BaseCodec(config, spec.task, spec.beta)
    base = load_checkpoint(spec.base)
    if not isinstance(base, BaseCodec):
        raise ValueError(f"{spec.base}: not a base codec checkpoint")
    if base.beta != spec.beta:
        raise ValueError(
            f"{spec.base}: the base has beta={base.beta:g}, the spec says {spec.beta:g}"
        )
    return EnhancementCodec(base, spec.strategy, spec.task, config)


def warm_start(model: nn.Module, checkpoint: str | Path) -> None:
    """Copy the weights of ``checkpoint`` into ``model`` (the paper's warm start, §4.1).

    An enhancement model keeps its own frozen base: only its enhancement weights are copied,
    so a curve's models can be warm-started from a model on another base.

    Raises:
        ValueError: the checkpoint's tensors do not fit ``model``.
    """
    tensors = read_tensors(checkpoint)  # checked against its digest
    if isinstance(model, EnhancementCodec):
        tensors = {k: v for k, v in tensors.items() if not k.startswith("base.")}
        own = {k for k in model.state_dict() if not k.startswith("base.")}
    else:
        own = set(model.state_dict())
    try:
        result = model.load_state_dict(tensors, strict=False)
    except RuntimeError as error:
        raise ValueError(f"{checkpoint}: cannot warm-start from it ({error})") from None
    missing = sorted(own & set(result.missing_keys) - _derived(model))
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{checkpoint}: cannot warm-start from it (missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]})"
        )


def _derived(model: nn.Module) -> set[str]:
    from vinfo.models.checkpoint import DERIVED_BUFFERS

    return {k for k in model.state_dict() if k.rsplit(".", 1)[-1] in DERIVED_BUFFERS}


def _parameters(model: nn.Module, train_only: str | None) -> Iterable[nn.Parameter]:
    if train_only is None:
        return model.parameters()
    module = getattr(model, train_only, None)
    if not isinstance(module, nn.Module):
        raise ValueError(f"{type(model).__name__} has no submodule {train_only!r} to train")
    return module.parameters()


def data_record(
    dataset: str,
    *,
    synthetic: SyntheticConfig | str = "tiny",
    root: str | Path | None = None,
    split: str = "train",
    downscale: int = 1,
) -> dict[str, Any]:
    """The ``"data"`` entry a checkpoint spec records: what its model was trained on.

    ``probes.sources.recorded_data`` reads it, so ``vinfo probe --repr run/model.safetensors``
    probes images of the same dataset (for synthetic data: the same preset, fresh images) at
    the resolution the codec saw.

    Args:
        dataset: a dataset experiments can train on (:func:`vinfo.data.experiment_datasets`).
        synthetic: the synthetic preset name or config (synthetic data only).
        root: root of a real dataset (stored resolved).
        split: the dataset split the training images come from.
        downscale: the factor the codec's inputs were shrunk by.

    Returns:
        ``{"dataset", "preset", "split", "root", "downscale"}``; ``preset`` is ``None`` for
        real data and custom synthetic configs, ``root`` is ``None`` for synthetic data, and
        synthetic data records ``downscale`` only when it is not 1 (the records of earlier
        synthetic runs stay as they were).
    """
    if downscale < 1:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    synthetic_data = dataset == "synthetic"
    record: dict[str, Any] = {
        "dataset": dataset,
        "preset": synthetic_preset_name(synthetic) if synthetic_data else None,
        "split": "train" if synthetic_data else split,
        "root": None if synthetic_data or root is None else str(Path(root).resolve()),
    }
    if not synthetic_data or downscale != 1:
        record["downscale"] = downscale
    return record


def train_split_name(splits: Splits) -> str:
    """The split name of the training images' dataset (``train``, ``train2017``…)."""
    return str(getattr(getattr(splits.train, "dataset", splits.train), "split", "train"))


_PATH_FIELDS = ("base", "init")
"""RunSpec fields holding checkpoint paths; stored relative to the run directory, so a tree of
runs (e.g. ``results/tiny``) can be moved or copied and still be resumed."""


def _experiment_record(
    spec: RunSpec, config: CodecConfig, train: TrainConfig, run_dir: Path
) -> dict[str, Any]:
    spec_dict = spec.to_dict()
    for name in _PATH_FIELDS:
        if spec_dict[name] is not None:
            spec_dict[name] = os.path.relpath(spec_dict[name], run_dir)
    train_dict = {k: v for k, v in train.to_dict().items() if k != "quiet"}
    return {"spec": spec_dict, "codec": config.to_dict(), "train": train_dict}


def read_spec(run_dir: str | Path) -> RunSpec:
    """The :class:`RunSpec` stored in ``run_dir/experiment.json`` (paths resolved against
    ``run_dir``).

    Raises:
        FileNotFoundError: not a run directory.
        ValueError: ``experiment.json`` is not valid JSON or holds no valid spec (the message
            names the file).
    """
    path = Path(run_dir) / EXPERIMENT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a vinfo run directory (no {EXPERIMENT_FILE})")
    record = read_json(path)
    spec = record.get("spec") if isinstance(record, dict) else None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: not a vinfo run record (no 'spec' object)")
    try:
        for name in _PATH_FIELDS:
            if spec.get(name) is not None:
                spec[name] = os.path.normpath(os.path.join(run_dir, spec[name]))
        return RunSpec.from_dict(spec)
    except (TypeError, ValueError, LookupError) as error:
        raise ValueError(f"{path}: invalid run spec ({error})") from None


def train_run(
    spec: RunSpec,
    config: CodecConfig,
    splits: Splits | None,
    train: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = True,
    data: Mapping[str, Any] | None = None,
) -> FinishedRun:
    """Train one model (or skip / resume it) and write its run directory.

    Args:
        spec: what to train.
        config: codec sizes (of the enhancement codec for enhancement models).
        splits: training and validation data (the test split is not touched); ``None`` only
            for a run that has finished, which is checked and skipped.
        train: optimisation settings.
        run_dir: the model's directory.
        resume: continue an interrupted run in ``run_dir`` (same result as an uninterrupted
            one); ``False`` refuses to touch it.
        data: what ``splits`` holds (:func:`data_record`), stored as ``"data"`` in the
            checkpoint spec ``model.json``; ``None`` records nothing.

    Raises:
        ValueError: ``run_dir`` holds a run of another spec or config, or an interrupted run
            and ``resume`` is false.
    """
    run_dir = Path(run_dir)
    record = _experiment_record(spec, config, train, run_dir)
    experiment = run_dir / EXPERIMENT_FILE
    if experiment.is_file():
        stored = read_json(experiment)
        if stored != json.loads(json.dumps(record)):
            raise ValueError(
                f"{run_dir}: holds a run with another spec or config; use another --out "
                "directory or remove it"
            )
    finished = FinishedRun(spec, run_dir)
    if finished.checkpoint.is_file():
        return finished
    if splits is None:
        raise ValueError(f"{run_dir}: not finished, and no data was given to train it")
    interrupted = (run_dir / STATE_FILE).is_file()
    if interrupted and not resume:
        raise ValueError(f"{run_dir}: holds an interrupted run; resume it or remove it")
    seed_everything(train.seed)  # the same initial weights on a rerun
    model = build_model(spec, config)
    parameters = _parameters(model, spec.train_only)  # a bad name fails before any file
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        write_json_atomic(experiment, record)
    if spec.init is not None:
        warm_start(model, spec.init)
    elif spec.train_only is None:
        initialise_head_at_prior(model, splits.train)
    trainer = Trainer(
        model,
        objective_for(model, spec.lmbda),
        splits.train,
        splits.val,
        train,
        run_dir,
        collate_fn=collate,
        parameters=parameters,
    )
    trainer.fit(resume=interrupted)
    trainer.load_best()
    if is_main_process():
        extra = None if data is None else {"data": dict(data)}
        save_checkpoint(model.cpu(), finished.checkpoint, extra)
        for scratch in (trainer.best_path, trainer.state_path):  # the checkpoint supersedes them
            scratch.unlink(missing_ok=True)
    if is_distributed():  # the next model of the sweep warm-starts from this checkpoint
        torch.distributed.barrier()
    return finished


WARM_STARTS = ("highest", "chain")
"""How the models of one RD curve are warm-started (:func:`plan_lambda_sweep`):

- ``highest`` — the highest-λ model is trained first and every other is fine-tuned from it
  (§4.1 of the paper);
- ``chain`` — the lowest-λ model is trained first and each next-higher λ is fine-tuned from the
  one below it, so a model never has less training than a model of lower rate. At a CPU
  budget where training is not converged, the fine-tuned models of ``highest`` end up better
  than the model they start from, so its highest-rate point is dominated (issue #13)."""


def check_warm_start(warm_start: str) -> None:
    """Raise ``ValueError`` unless ``warm_start`` is one of :data:`WARM_STARTS`."""
    if warm_start not in WARM_STARTS:
        raise ValueError(f"warm_start must be one of {', '.join(WARM_STARTS)}, "
                         f"got {warm_start!r}")


def check_lmbdas(lmbdas: Sequence[float]) -> None:
    """Refuse the λ values of a curve unless there is at least one and each is distinct, finite
    and > 0 (:func:`~vinfo.models.base.check_lmbda`).

    Raises:
        ValueError: the first problem found.
    """
    if not lmbdas:
        raise ValueError("no lambda values given")
    for lmbda in lmbdas:
        check_lmbda(lmbda)
    if len(set(lmbdas)) != len(lmbdas):
        raise ValueError(f"lambda values must be distinct, got {list(lmbdas)}")


def plan_lambda_sweep(
    root: str | Path,
    template: RunSpec,
    lmbdas: Sequence[float],
    config: CodecConfig,
    first: TrainConfig,
    warm: TrainConfig | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    warm_start: str = "highest",
) -> list[PlannedRun]:
    """The runs of one RD curve: ``template`` at every λ, the first trained from scratch (or
    from ``template.init``) and the others warm-started as ``warm_start`` says.

    Args:
        root: the curve's directory; model ``λ`` goes to ``root/lmbda=<λ>``.
        template: the spec of every model but ``lmbda`` and ``init`` (a given ``init`` is
            used for the first model only).
        lmbdas: the λ values (any order, distinct).
        config: codec sizes.
        first: training of the first model.
        warm: training of the warm-started models (default: ``first``).
        data: the data record of every checkpoint (see :func:`train_run`).
        warm_start: one of :data:`WARM_STARTS`.

    Returns:
        The planned runs, the first first (``highest``: highest λ first; ``chain``: lowest λ
        first, then upward).
    """
    check_lmbdas(lmbdas)
    check_warm_start(warm_start)
    root = Path(root)
    runs: list[PlannedRun] = []
    for lmbda in sorted(lmbdas, reverse=warm_start == "highest"):
        source = None if not runs else runs[0] if warm_start == "highest" else runs[-1]
        spec = dataclasses.replace(
            template, lmbda=float(lmbda),
            init=template.init if source is None else str(source.checkpoint),
        )
        runs.append(PlannedRun(
            spec, config, first if source is None else (warm or first),
            root / lmbda_dir(lmbda), _dependencies(spec), data,
            f"train {spec.task} {spec.curve} lambda={lmbda:g}",
        ))
    return runs


def _dependencies(spec: RunSpec) -> tuple[Path, ...]:
    """The run directories whose checkpoints ``spec`` loads (its base and its warm start)."""
    return tuple(Path(path).parent for path in (spec.base, spec.init) if path is not None)


def lambda_sweep(
    root: str | Path,
    template: RunSpec,
    lmbdas: Sequence[float],
    config: CodecConfig,
    splits: Splits,
    first: TrainConfig,
    warm: TrainConfig | None = None,
    *,
    resume: bool = True,
    progress: Progress = silent,
    data: Mapping[str, Any] | None = None,
) -> list[FinishedRun]:
    """Train one RD curve in this process (:func:`plan_lambda_sweep`, run in order).

    Args:
        root, template, lmbdas, config, first, warm, data: see :func:`plan_lambda_sweep`.
        splits: data.
        resume: continue interrupted runs (see :func:`train_run`).
        progress: called with one line per model.

    Returns:
        The finished runs, highest λ first.
    """
    runs: list[FinishedRun] = []
    for run in plan_lambda_sweep(root, template, lmbdas, config, first, warm, data=data):
        progress(run.event)
        runs.append(train_run(run.spec, run.config, splits, run.train, run.run_dir,
                              resume=resume, data=run.data))
    return runs


def train_curve(
    out: str | Path,
    *,
    task: str,
    lmbdas: Sequence[float],
    beta: float = 0.0,
    strategy: str = BASE_STRATEGY,
    base: str | Path | None = None,
    init: str | Path | None = None,
    train_only: str | None = None,
    dataset: str = "synthetic",
    data_root: str | Path | None = None,
    synthetic: str = "tiny",
    codec: str = "tiny",
    train: TrainConfig | None = None,
    warm: TrainConfig | None = None,
    downscale: int = 1,
    augment: bool = True,
    resume: bool = True,
    progress: Progress = silent,
) -> list[FinishedRun]:
    """``vinfo train``: one warm-started RD curve of base or enhancement models on a dataset.

    Args:
        out: the curve's directory (``out/lmbda=<λ>`` per model).
        task: the model's task.
        lmbdas: its λ values; trained highest first, the others warm-started (§4.1).
        beta: β of a base model (eq. 3); enhancement models take their base's β.
        strategy: ``base`` or an enhancement strategy.
        base: base checkpoint of an enhancement model.
        init: checkpoint that initialises the first model.
        train_only: the one submodule to optimise (e.g. ``entropy_model`` for standalone).
        dataset: a dataset experiments can train on (:func:`vinfo.data.experiment_datasets`).
        data_root: root of a real dataset.
        synthetic: synthetic preset (``tiny``, ``small``).
        codec: codec preset; its segmentation head gets the dataset's classes.
        train: training of the first model (default: :class:`~vinfo.train.TrainConfig`).
        warm: training of the warm-started ones (default: ``train``).
        downscale: the codec sees images shrunk by this factor (Cityscapes in the paper: 2).
        augment: random flips and colour jitter on training images.
        resume: continue interrupted runs.
        progress: called with one line per model.

    Run under ``torchrun --nproc-per-node N vinfo train …`` for DDP: ``batch_size`` is the
    global batch and rank 0 writes the files.
    """
    check_lmbdas(lmbdas)  # before the output folder is created
    if base is None:
        check_beta(beta)
    train = train or TrainConfig()
    for settings in (train, warm or train):
        select_device(settings.device)  # a device this machine lacks fails before any work
    # rank 0 alone writes (and locks) under torchrun, where every rank runs this function
    with folder_lock(out) if is_main_process() else contextlib.nullcontext():
        config = codec_preset(codec).replace(
            segmentation_classes=experiment_dataset(dataset).segmentation_classes
        )
        if base is not None:
            base_model = load_checkpoint(base)
            if not isinstance(base_model, BaseCodec):
                raise ValueError(f"{base}: not a base codec checkpoint")
            beta = base_model.beta
        template = RunSpec(
            task,
            1.0,
            beta,
            strategy,
            base=None if base is None else str(base),
            init=None if init is None else str(init),
            train_only=train_only,
        )
        splits = dataset_splits(
            dataset,
            root=data_root,
            synthetic=synthetic,
            **experiment_transforms(augment=augment, downscale=downscale),
        )
        data = data_record(
            dataset,
            synthetic=synthetic,
            root=data_root,
            split=train_split_name(splits),
            downscale=downscale,
        )
        with process_group_from_env():  # under torchrun: DDP across the ranks; otherwise nothing
            return lambda_sweep(
                out,
                template,
                lmbdas,
                config,
                splits,
                train,
                warm,
                resume=resume,
                progress=progress,
                data=data,
            )


__all__ = [
    "FinishedRun",
    "PlannedRun",
    "RunSpec",
    "build_model",
    "curve_label",
    "data_record",
    "lambda_sweep",
    "WARM_STARTS",
    "check_lmbdas",
    "check_warm_start",
    "plan_lambda_sweep",
    "read_spec",
    "train_split_name",
    "train_curve",
    "train_run",
    "warm_start",
]
