"""Training: one model-agnostic trainer (early stopping, atomic checkpoints, resume, NaN guard)."""

from vinfo.train.trainer import (
    LR_SCHEDULES,
    NonFiniteLossError,
    ResumeError,
    StepOutput,
    TrainConfig,
    Trainer,
    TrainResult,
    move_to_device,
    scheduled_lr,
    seed_everything,
    select_device,
)

__all__ = [
    "LR_SCHEDULES",
    "NonFiniteLossError",
    "ResumeError",
    "StepOutput",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "move_to_device",
    "scheduled_lr",
    "seed_everything",
    "select_device",
]
