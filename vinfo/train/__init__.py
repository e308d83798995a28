"""Training: one model-agnostic trainer (early stopping, atomic checkpoints, resume, NaN guard)."""

from vinfo.train.trainer import (
    NonFiniteLossError,
    ResumeError,
    StepOutput,
    TrainConfig,
    Trainer,
    TrainResult,
    move_to_device,
    seed_everything,
    select_device,
)

__all__ = [
    "NonFiniteLossError",
    "ResumeError",
    "StepOutput",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "move_to_device",
    "seed_everything",
    "select_device",
]
