"""One model-agnostic trainer for every vinfo model (base codecs, enhancement codecs, probes).

The trainer knows nothing about tasks: the caller passes an *objective*, a function
``objective(model, batch) -> StepOutput`` that returns the scalar loss to minimise and any
float metrics to log. What the trainer adds is what every experiment of the paper needs
(§4.1): Adam at a fixed learning rate (1e-4), early stopping on the validation loss with a
patience, a maximum number of epochs or steps, seeded and deterministic on CPU, optional
gradient clipping, AMP and device selection for GPUs, and a run directory that survives
crashes:

``run_dir/``
    ``train_config.json``  the frozen :class:`TrainConfig`
    ``metrics.csv``        one row per epoch: epoch, step, train_* and val_* columns, lr, seconds
    ``best.safetensors``   weights of the epoch with the lowest validation loss
    ``last_state.pt``      model, optimizer, RNG and history at the end of the last epoch, for
                           ``fit(resume=True)``; loaded with ``torch.load(weights_only=True)``

Every file is written atomically (temporary file + rename). A resumed run reaches the same
weights as an uninterrupted one with the same seed: the data order of epoch ``e`` comes from a
generator seeded with ``(seed, e)``, and the RNG states are restored. A NaN or infinite loss
stops the run with :class:`NonFiniteLossError`; the files of the last good epoch stay.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_model, save_model
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from vinfo.io import atomic_path, write_json_atomic, write_text_atomic
from vinfo.train.distributed import (
    all_reduce_sum,
    is_distributed,
    is_main_process,
    rank,
    world_size,
)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class ResumeError(ValueError):
    """``fit(resume=True)`` found no usable state, or one written with another config."""


class StepOutput(NamedTuple):
    """What an objective returns for one batch.

    Attributes:
        loss: scalar tensor to minimise.
        metrics: floats to log (averaged over the batches of an epoch, weighted by size).
        batch_size: number of samples in the batch, for weighting the averages.
    """

    loss: Tensor
    metrics: dict[str, float]
    batch_size: int


Objective = Callable[[nn.Module, Any], StepOutput]


LR_SCHEDULES = ("constant", "cosine")

TRAIN_CONFIG_FILE = "train_config.json"
METRICS_FILE = "metrics.csv"
BEST_FILE = "best.safetensors"
STATE_FILE = "last_state.pt"
"""The files the Trainer writes into its run directory (see the module docstring)."""
"""The learning-rate schedules of :class:`TrainConfig` (the lr is a function of the optimizer
step alone, so a resumed run follows the same schedule)."""


def scheduled_lr(lr: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total_steps``.

    ``cosine`` is :class:`torch.optim.lr_scheduler.CosineAnnealingLR` with ``eta_min=0`` and
    ``T_max=total_steps``, stepped once per optimizer step."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return 0.5 * lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise ValueError(f"unknown lr schedule {schedule!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the defaults follow the paper (§4.1).

    Attributes:
        lr: Adam learning rate (the peak of the schedule).
        lr_schedule: one of :data:`LR_SCHEDULES`: ``"constant"`` (the paper's) or ``"cosine"``
            (annealed per step from ``lr`` to 0 over the run's ``max_epochs`` epochs, or its
            ``max_steps`` if fewer: a short run ends converged rather than mid-descent).
        max_epochs: upper bound on epochs.
        max_steps: optional upper bound on optimizer steps (stops mid-epoch).
        patience: epochs without a validation improvement before stopping.
        min_delta: smallest decrease of the validation loss that counts as improvement.
        batch_size: samples per optimizer step.
        grad_clip: max gradient norm, or ``None`` for no clipping.
        seed: seeds weights the caller creates after :func:`seed_everything`, data order and
            any randomness inside the objective.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``…
        amp: mixed precision (bfloat16 autocast on CPU, float16 + GradScaler on CUDA).
        num_workers: ``DataLoader`` workers.
        quiet: no progress bar (CI, logs).
    """

    lr: float = 1e-4
    lr_schedule: str = "constant"
    max_epochs: int = 1000
    max_steps: int | None = None
    patience: int = 10
    min_delta: float = 0.0
    batch_size: int = 8
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    num_workers: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                             f"got {self.lr_schedule!r}")
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive, got {self.grad_clip}")
        if self.device != "auto":
            try:  # the name only: whether this machine has the device is select_device's check
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got "
                                 f"{self.device!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**data)


class TrainResult(NamedTuple):
    """Outcome of :meth:`Trainer.fit`.

    Attributes:
        best_epoch: epoch (1-based) with the lowest validation loss.
        best_val_loss: that loss.
        epochs: epochs run in total (including those of a resumed run).
        steps: optimizer steps in total.
        stopped_early: whether patience ran out before ``max_epochs``/``max_steps``.
        history: the rows of ``metrics.csv``.
    """

    best_epoch: int
    best_val_loss: float
    epochs: int
    steps: int
    stopped_early: bool
    history: pd.DataFrame


def select_device(name: str = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU; check an explicit CUDA request."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (call before building a model)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global generator is the point
    torch.manual_seed(seed)


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside ``batch`` (tensors, lists, tuples, dicts, dataclasses)."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # NamedTuple
        return type(batch)(*(move_to_device(value, device) for value in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(value, device) for value in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            f.name: move_to_device(getattr(batch, f.name), device)
            for f in dataclasses.fields(batch)
            if f.init and isinstance(getattr(batch, f.name), Tensor)
        }
        return dataclasses.replace(batch, **changes) if changes else batch
    return batch


class Trainer:
    """Fit ``model`` by minimising ``objective`` on ``train_data``, early-stopping on ``val_data``.

    Args:
        model: any module; its ``state_dict`` must hold only tensors (safetensors).
        objective: ``objective(model, batch) -> StepOutput``; called in train mode for training
            and under ``torch.no_grad()`` in eval mode for validation.
        train_data: a map-style dataset (shuffled each epoch with a seeded generator).
        val_data: the validation dataset (never the test split).
        config: optimisation settings.
        run_dir: where the run's files go (created if missing).
        collate_fn: ``DataLoader`` collate function.
        parameters: what the optimizer updates; default every parameter with
            ``requires_grad`` (a frozen base codec is left out automatically).
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        train_data: Dataset,
        val_data: Dataset,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        collate_fn: Callable[[list], Any] | None = None,
        parameters: Iterable[nn.Parameter] | None = None,
    ) -> None:
        self.model = model
        self.objective = objective
        self.train_data = train_data
        self.val_data = val_data
        self.config = config
        self.run_dir = Path(run_dir)
        self.collate_fn = collate_fn
        self.device = select_device(config.device)
        params = [p for p in (parameters or model.parameters()) if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        if config.batch_size % world_size():
            raise ValueError(
                f"batch_size {config.batch_size} is the global batch and must be divisible by "
                f"the {world_size()} processes"
            )
        # The objective gets the DDP wrapper while training, so gradients are averaged.
        self.train_model: nn.Module = model
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        use_cuda_amp = config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_cuda_amp)
        self.history: list[dict[str, float]] = []
        self.step = 0

    # -- files -------------------------------------------------------------------------------
    @property
    def best_path(self) -> Path:
        return self.run_dir / BEST_FILE

    @property
    def state_path(self) -> Path:
        return self.run_dir / STATE_FILE

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_FILE

    @property
    def config_path(self) -> Path:
        return self.run_dir / TRAIN_CONFIG_FILE

    # -- public ------------------------------------------------------------------------------
    def fit(self, *, resume: bool = False) -> TrainResult:
        """Train until patience runs out or ``max_epochs``/``max_steps`` is reached.

        Args:
            resume: continue from ``last_state.pt`` of a previous (killed) run with the same
                config; the result equals that of an uninterrupted run.

        Raises:
            NonFiniteLossError: the training loss became NaN or infinite.
            ResumeError: ``resume`` without a usable state in ``run_dir``.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model.to(self.device)
        if is_distributed() and self.train_model is self.model:
            if self.device.type == "cuda":  # one set of batch statistics, as on one process
                nn.SyncBatchNorm.convert_sync_batchnorm(self.model)  # in place, same parameters
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=device_ids)
        if resume:
            self._load_state()
        else:
            seed_everything(self.config.seed)
            if is_main_process():
                write_json_atomic(self.config_path, self.config.to_dict())
        best_epoch, best_loss = self._best_so_far()
        epoch = len(self.history)
        stopped_early = False
        with _progress(self.config.quiet) as progress:
            task = progress.add_task("training", total=self.config.max_epochs, completed=epoch)
            while epoch < self.config.max_epochs and not self._out_of_steps():
                if epoch - best_epoch >= self.config.patience and best_epoch > 0:
                    stopped_early = True
                    break
                epoch += 1
                started = time.perf_counter()
                train_metrics = self._train_epoch(epoch)
                val_metrics = self._evaluate()
                row = {
                    "epoch": epoch,
                    "step": self.step,
                    **_prefixed("train", train_metrics),
                    **_prefixed("val", val_metrics),
                    "lr": self.lr,
                    "seconds": time.perf_counter() - started,
                }
                self.history.append(row)
                if val_metrics["loss"] < best_loss - self.config.min_delta:
                    best_epoch, best_loss = epoch, val_metrics["loss"]
                    if is_main_process():
                        with atomic_path(self.best_path) as temporary:
                            save_model(self.model, str(temporary))
                if is_main_process():
                    self._save_state()
                progress.update(
                    task,
                    completed=epoch,
                    description=f"epoch {epoch} val loss {val_metrics['loss']:.4g}",
                )
        if is_distributed():  # every rank may read what rank 0 wrote (load_best, resume)
            torch.distributed.barrier()
        if best_epoch == 0:
            raise RuntimeError("no epoch was completed")
        return TrainResult(
            best_epoch, best_loss, epoch, self.step, stopped_early, pd.DataFrame(self.history)
        )

    def load_best(self) -> nn.Module:
        """Load the best epoch's weights into ``self.model`` and return it."""
        load_model(self.model, str(self.best_path), device=str(self.device))
        return self.model

    # -- epochs ------------------------------------------------------------------------------
    def _loader(self, data: Dataset, *, epoch: int | None) -> DataLoader:
        """Training: a permutation that depends only on (seed, epoch), split across processes
        (rank r takes every world_size-th index, so the union of the ranks' k-th batches is
        the single-process k-th batch). Validation: every process sees the whole set."""
        sampler = None
        batch_size = self.config.batch_size
        if epoch is not None:
            sampler = DistributedSampler(
                data, num_replicas=world_size(), rank=rank(), shuffle=True, seed=self.config.seed
            )
            sampler.set_epoch(epoch)
            batch_size //= world_size()
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.train_model.train()  # the DDP wrapper passes the mode on to the model
        totals = _Averages()
        loader = self._loader(self.train_data, epoch=epoch)
        steps_per_epoch = len(loader)
        for batch in loader:
            if self._out_of_steps():
                break
            with self._autocast():
                output = self.objective(self.train_model, move_to_device(batch, self.device))
            loss = output.loss
            if not torch.isfinite(loss.detach()).all():
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at epoch {epoch}, step {self.step + 1}; "
                    f"the last good checkpoint is {self.best_path}"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self._set_lr(steps_per_epoch)
            self.scaler.scale(loss).backward()
            if self.config.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(
                    [p for group in self.optimizer.param_groups for p in group["params"]],
                    self.config.grad_clip,
                )
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            totals.add(loss.item(), output.metrics, output.batch_size)
        return totals.mean(reduce_on=self.device)

    @torch.no_grad()
    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        totals = _Averages()
        for batch in self._loader(self.val_data, epoch=None):
            with self._autocast():
                output = self.objective(self.model, move_to_device(batch, self.device))
            totals.add(output.loss.item(), output.metrics, output.batch_size)
        metrics = totals.mean()
        if not math.isfinite(metrics["loss"]):
            raise NonFiniteLossError(f"validation loss is {metrics['loss']}")
        return metrics

    def _autocast(self) -> torch.autocast:
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.config.amp)

    @property
    def lr(self) -> float:
        """The learning rate of the last optimizer step (the peak before the first)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _set_lr(self, steps_per_epoch: int) -> None:
        total = self.config.max_epochs * steps_per_epoch
        if self.config.max_steps is not None:
            total = min(total, self.config.max_steps)
        lr = scheduled_lr(self.config.lr, self.config.lr_schedule, self.step, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _out_of_steps(self) -> bool:
        return self.config.max_steps is not None and self.step >= self.config.max_steps

    def _best_so_far(self) -> tuple[int, float]:
        if not self.history:
            return 0, math.inf
        best = min(self.history, key=lambda row: row["val_loss"])
        return int(best["epoch"]), float(best["val_loss"])

    # -- state -------------------------------------------------------------------------------
    def _save_state(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "history_json": json.dumps(self.history),
            "config_json": json.dumps(self.config.to_dict(), sort_keys=True),
            "torch_rng": torch.get_rng_state(),
        }
        with atomic_path(self.state_path) as temporary:
            torch.save(state, temporary)
        table = pd.DataFrame(self.history).to_csv(index=False)
        write_text_atomic(self.metrics_path, table)

    def _load_state(self) -> None:
        if not self.state_path.exists():
            raise ResumeError(f"{self.state_path}: no state to resume from")
        state = torch.load(self.state_path, map_location=self.device, weights_only=True)
        if _resume_key(state["config_json"]) != _resume_key(json.dumps(self.config.to_dict())):
            raise ResumeError(f"{self.state_path}: written with a different TrainConfig")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.history = json.loads(state["history_json"])
        torch.set_rng_state(state["torch_rng"].cpu())


class _Averages:
    """Sample-weighted running means of the loss and metrics over an epoch."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, loss: float, metrics: dict[str, float], batch_size: int) -> None:
        for key, value in {"loss": loss, **metrics}.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * batch_size
        self.count += batch_size

    def mean(self, reduce_on: torch.device | None = None) -> dict[str, float]:
        """Means over this process's batches, or over all processes' (a collective on the
        device ``reduce_on``, which NCCL needs to be a GPU)."""
        keys = list(self.sums)
        values = [self.sums[key] for key in keys] + [float(self.count)]
        if reduce_on is not None:
            values = all_reduce_sum(values, reduce_on)
        count = values.pop()
        if count == 0:
            raise ValueError("no batch was processed (is the dataset empty?)")
        return {key: total / count for key, total in zip(keys, values, strict=True)}


_NOT_RESUME_RELEVANT = ("quiet",)
"""TrainConfig fields that do not change the result, so a run may resume with other values."""


def _resume_key(config_json: str) -> str:
    data = json.loads(config_json)
    for name in _NOT_RESUME_RELEVANT:
        data.pop(name, None)
    return json.dumps(data, sort_keys=True)


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{key}": value for key, value in metrics.items()}


class _NoProgress:
    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress(quiet: bool) -> Any:
    if quiet:
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
