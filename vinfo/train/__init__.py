"""Training: one model-agnostic trainer (early stopping, atomic checkpoints, resume, NaN guard)."""

from vinfo.train.trainer import (
    BEST_FILE,
    LR_SCHEDULES,
    METRICS_FILE,
    STATE_FILE,
    TRAIN_CONFIG_FILE,
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
    "BEST_FILE",
    "LR_SCHEDULES",
    "METRICS_FILE",
    "STATE_FILE",
    "TRAIN_CONFIG_FILE",
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
