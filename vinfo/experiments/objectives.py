"""Training objectives of the paper's two stages, for :class:`vinfo.train.Trainer`.

An objective maps ``(model, batch) → StepOutput``; the trainer minimises its ``loss`` and logs
its ``metrics``. Batches are what :func:`vinfo.data.collate` makes of samples:
``(images (B, 3, H, W), [Sample, …])``; the task target is taken from the samples by the
task's registry entry (:attr:`vinfo.models.tasks.Task.target`), so one objective serves every
task.

- :class:`BaseObjective`: eq. 3 of the paper, ``L_b = λ_b · d_b(Z_b, Ẑ_b) + R_b + β · E‖X − X̂‖``,
  weighted as the authors' code does, ``λ_b · (d_b + β · D_recon) + R_b`` (see
  :mod:`vinfo.models.base`; β is the codec's own attribute, so β = 0 and β = 0.1 share the
  objective).
- :class:`EnhancementObjective`: eq. 4, ``L_e = λ_e · d_e(Z_e, Ẑ_e) + R(Ŷ_e | Ŷ_b)`` on top
  of a frozen base (direct, scalable or standalone).

Logged metrics (batch means): ``distortion`` (the task loss ``d``, in the task's unit),
``bpp`` (the rate term, bits per pixel of the model's input), ``aux_rmse`` (base only:
``D_recon = ‖X − X̂‖`` as RMSE in 8-bit levels, 0 when β = 0), ``bpp_base`` and
``bpp_total`` (enhancement only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

from vinfo.data.sample import Sample
from vinfo.models.base import BaseCodec, check_lmbda
from vinfo.models.enhancement import EnhancementCodec
from vinfo.models.tasks import DetectionHead, get_task
from vinfo.train import StepOutput


def task_target(task: str, images: Tensor, samples: Sequence[Sample]) -> Any:
    """The target of ``task`` for a collated batch (:attr:`vinfo.models.tasks.Task.target`)."""
    return get_task(task).target(images, samples)


def task_targets(
    task: str, dataset: Dataset, batch_size: int = 64
) -> Iterator[Any]:
    """The targets of ``task`` over ``dataset``, one collated batch at a time."""
    from vinfo.data import collate

    for start in range(0, len(dataset), batch_size):
        images, samples = collate([dataset[i] for i in range(start, min(start + batch_size,
                                                                         len(dataset)))])
        yield task_target(task, images, samples)


def initialise_head_at_prior(model: nn.Module, dataset: Dataset) -> bool:
    """Start the task head of a base or enhancement codec at the prior of its task on
    ``dataset`` (the training images): mean depth, log class frequencies
    (:meth:`vinfo.models.tasks.Task.initialise_head`). Returns whether the task has one."""
    codec = unwrap(model)
    task = codec.task
    return task.initialise_head(codec.head, task_targets(task.name, dataset), codec.config)


def unwrap(model: nn.Module) -> nn.Module:
    """The codec inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return getattr(model, "module", model)


@contextlib.contextmanager
def _loss_mode(codec: nn.Module) -> Iterator[None]:
    """Let a detection head return its losses in eval mode (validation needs a loss).

    torchvision detectors return losses only in train mode; their batch norms stay in eval
    mode here so that validation does not change running statistics.
    """
    head = getattr(codec, "head", None)
    if codec.training or not isinstance(head, DetectionHead):
        yield
        return
    head.train()
    for module in head.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    try:
        yield
    finally:
        head.eval()


def _forward(
    objective: object, model: nn.Module, batch: tuple[Tensor, Sequence[Sample]], kind: type
) -> tuple[Any, Tensor, Any, Any]:
    """``(codec, images, target, output)`` of one batch, checking the codec's type."""
    images, samples = batch
    codec = unwrap(model)
    if not isinstance(codec, kind):
        raise TypeError(
            f"{type(objective).__name__} trains a {kind.__name__}, got {type(codec).__name__}"
        )
    target = task_target(codec.task.name, images, samples)
    with _loss_mode(codec):
        out = model(images, target)  # through the DDP wrapper, so gradients are synced
    return codec, images, target, out


@dataclass(frozen=True)
class BaseObjective:
    """Eq. 3 for a :class:`~vinfo.models.BaseCodec`: ``λ_b · (d_b + β · D_recon) + R_b``.

    Args:
        lmbda: rate-distortion trade-off ``λ_b`` (> 0).
    """

    lmbda: float

    def __post_init__(self) -> None:
        check_lmbda(self.lmbda)

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Sequence[Sample]]) -> StepOutput:
        codec, images, target, out = _forward(self, model, batch, BaseCodec)
        terms = codec.loss(out, images, target, self.lmbda)
        metrics = {
            "distortion": terms.distortion.item(),
            "bpp": terms.bpp.item(),
            "aux_rmse": terms.aux_distortion.item(),
        }
        return StepOutput(terms.loss, metrics, len(images))


@dataclass(frozen=True)
class EnhancementObjective:
    """Eq. 4 for an :class:`~vinfo.models.EnhancementCodec`: ``λ_e · d_e + R(Ŷ_e | Ŷ_b)``.

    Args:
        lmbda: rate-distortion trade-off ``λ_e`` (> 0).
    """

    lmbda: float

    def __post_init__(self) -> None:
        check_lmbda(self.lmbda)

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Sequence[Sample]]) -> StepOutput:
        codec, images, target, out = _forward(self, model, batch, EnhancementCodec)
        terms = codec.loss(out, target, self.lmbda)
        base_bpp = out.base_bpp.mean().item()
        metrics = {
            "distortion": terms.distortion.item(),
            "bpp": terms.bpp.item(),
            "bpp_base": base_bpp,
            "bpp_total": terms.bpp.item() + base_bpp,
        }
        return StepOutput(terms.loss, metrics, len(images))


def objective_for(model: nn.Module, lmbda: float) -> BaseObjective | EnhancementObjective:
    """The objective that trains ``model`` (a base or an enhancement codec) at ``λ``."""
    codec = unwrap(model)
    if isinstance(codec, EnhancementCodec):
        return EnhancementObjective(lmbda)
    if isinstance(codec, BaseCodec):
        return BaseObjective(lmbda)
    raise TypeError(f"no objective for {type(codec).__name__}")


__all__ = [
    "BaseObjective",
    "EnhancementObjective",
    "initialise_head_at_prior",
    "objective_for",
    "task_target",
    "task_targets",
    "unwrap",
]
