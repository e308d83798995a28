"""The generic trainer on a small regression problem with a closed-form optimum."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import TensorDataset

from vinfo.train import (
    NonFiniteLossError,
    ResumeError,
    StepOutput,
    TrainConfig,
    Trainer,
    move_to_device,
    seed_everything,
)
from vinfo.train.distributed import leave_process_group


def regression_data(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=generator)
    return TensorDataset(x, y)


def mse_objective(model: nn.Module, batch) -> StepOutput:
    x, y = batch
    # dropout-like randomness inside the objective, so resume must restore the RNG too
    noise = 1e-3 * torch.randn_like(x) if model.training else 0.0
    loss = ((model(x + noise) - y) ** 2).mean()
    return StepOutput(loss, {"mae": (model(x) - y).abs().mean().item()}, len(x))


def make(tmp_path, name="run", objective=mse_objective, **overrides):
    seed_everything(0)
    model = nn.Linear(3, 1)
    config = TrainConfig(
        **{"lr": 0.05, "max_epochs": 6, "patience": 3, "batch_size": 16, "quiet": True, **overrides}
    )
    trainer = Trainer(
        model, objective, regression_data(128, 1), regression_data(64, 2), config, tmp_path / name
    )
    return trainer


def test_fit_learns_and_writes_run_directory(tmp_path):
    trainer = make(tmp_path, max_epochs=12, lr=0.2, patience=20)
    result = trainer.fit()
    assert result.epochs == 12 and result.steps == 12 * 8
    assert result.best_val_loss < 0.05  # the noise floor is 0.01; a zero predictor gets 6.5
    history = pd.read_csv(trainer.metrics_path)
    assert list(history["epoch"]) == list(range(1, 13))
    assert {"train_loss", "val_loss", "train_mae", "val_mae", "seconds"} <= set(history.columns)
    assert history["val_loss"].min() == pytest.approx(result.best_val_loss)
    best = load_file(trainer.best_path)
    assert set(best) == {"weight", "bias"}
    assert TrainConfig.from_dict(pd.read_json(trainer.config_path, typ="series").to_dict())


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, schedule):
    uninterrupted = make(tmp_path, "a", lr_schedule=schedule)
    reference = uninterrupted.fit()

    calls = {"n": 0}

    def killed_in_epoch_four(model, batch):
        calls["n"] += 1
        if model.training and calls["n"] > 3 * 8 + 3 * 4 + 2:  # 3 epochs of train + val, then 2
            raise KeyboardInterrupt
        return mse_objective(model, batch)

    with pytest.raises(KeyboardInterrupt):
        make(tmp_path, "b", objective=killed_in_epoch_four, lr_schedule=schedule).fit()
    resumed_trainer = make(tmp_path, "b", lr_schedule=schedule)
    resumed = resumed_trainer.fit(resume=True)

    assert resumed.epochs == reference.epochs and resumed.steps == reference.steps
    for key, value in load_file(uninterrupted.best_path).items():
        assert torch.equal(value, load_file(resumed_trainer.best_path)[key])
    pd.testing.assert_frame_equal(
        reference.history.drop(columns="seconds"), resumed.history.drop(columns="seconds")
    )


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def nan_in_epoch_two(model, batch):
        output = mse_objective(model, batch)
        calls["n"] += model.training
        return output._replace(loss=output.loss * math.nan) if calls["n"] > 10 else output

    trainer = make(tmp_path, objective=nan_in_epoch_two)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 2, step 11"):
        trainer.fit()
    assert load_file(trainer.best_path)["weight"].isfinite().all()
    assert len(pd.read_csv(trainer.metrics_path)) == 1


def test_early_stopping_and_max_steps(tmp_path):
    def constant(model, batch):
        x, _ = batch
        return StepOutput((model(x) * 0).sum() + 1.0, {}, len(x))

    result = make(tmp_path, "flat", objective=constant, max_epochs=50, patience=3).fit()
    assert result.stopped_early and result.epochs == 4 and result.best_epoch == 1
    capped = make(tmp_path, "capped", max_steps=5).fit()
    assert capped.steps == 5 and capped.epochs == 1


def test_frozen_parameters_are_not_optimized(tmp_path):
    trainer = make(tmp_path)
    trainer.model.bias.requires_grad_(False)
    trainer = Trainer(
        trainer.model,
        mse_objective,
        trainer.train_data,
        trainer.val_data,
        trainer.config,
        trainer.run_dir,
    )
    before = trainer.model.bias.detach().clone()
    trainer.fit()
    assert torch.equal(trainer.model.bias.detach(), before)


def test_resume_refuses_missing_state_and_other_config(tmp_path):
    with pytest.raises(ResumeError, match="no state"):
        make(tmp_path, "empty").fit(resume=True)
    make(tmp_path, "c", max_epochs=2).fit()
    with pytest.raises(ResumeError, match="different TrainConfig"):
        make(tmp_path, "c", max_epochs=2, lr=0.01).fit(resume=True)


@pytest.mark.parametrize("max_steps", [None, 20])
def test_cosine_schedule_follows_torch_cosine_annealing_per_step(tmp_path, max_steps):
    # reference: torch's CosineAnnealingLR (eta_min 0) over the run's steps, stepped per step
    trainer = make(tmp_path, lr_schedule="cosine", max_epochs=4, patience=10, max_steps=max_steps)
    seen: list[float] = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    result = trainer.fit()
    total = max_steps or 4 * 8  # 128 samples / batch 16 = 8 steps per epoch
    reference_optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(reference_optimizer, T_max=total)
    expected = []
    for _ in range(total):
        expected.append(reference_optimizer.param_groups[0]["lr"])
        reference_optimizer.step()
        scheduler.step()
    assert result.steps == total
    assert seen == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert result.history["lr"].iloc[-1] == pytest.approx(expected[-1])
    assert expected[-1] < 0.01 * 0.05  # the run ends annealed


def test_constant_schedule_keeps_the_learning_rate(tmp_path):
    result = make(tmp_path).fit()
    assert set(result.history["lr"]) == {0.05}


@pytest.mark.parametrize(
    "bad",
    [{"lr": 0}, {"max_epochs": 0}, {"patience": 0}, {"batch_size": 0}, {"grad_clip": -1},
     {"lr_schedule": "step"}],
)
def test_config_validation(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_move_to_device_handles_nested_containers():
    from vinfo.data import Sample

    sample = Sample(image=torch.zeros(3, 4, 4))
    moved = move_to_device({"a": [torch.ones(1), (sample,)]}, torch.device("cpu"))
    assert torch.equal(moved["a"][0], torch.ones(1)) and isinstance(moved["a"][1][0], Sample)


def _ddp_worker(rank: int, world: int, init_file: str, run_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        seed_everything(0)
        seen = []

        def counting_objective(model, batch):
            seen.append(len(batch[0]) if model.training else 0)
            return deterministic_objective(model, batch)

        trainer = Trainer(
            nn.Linear(3, 1),
            counting_objective,
            regression_data(64, 1),
            regression_data(32, 2),
            DDP_CONFIG,
            run_dir,
        )
        trainer.fit()
        Path(run_dir, f"seen_by_rank{rank}").write_text(str(sum(seen)))
    finally:
        leave_process_group()


def deterministic_objective(model, batch) -> StepOutput:
    x, y = batch
    return StepOutput(((model(x) - y) ** 2).mean(), {}, len(x))


DDP_CONFIG = TrainConfig(lr=0.05, max_epochs=3, patience=5, batch_size=16, quiet=True)


@pytest.mark.slow
def test_two_gloo_processes_match_single_process_on_the_same_global_batch(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(
        _ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ddp")), nprocs=2, join=True
    )
    seed_everything(0)
    single = Trainer(
        nn.Linear(3, 1),
        deterministic_objective,
        regression_data(64, 1),
        regression_data(32, 2),
        DDP_CONFIG,
        tmp_path / "single",
    )
    single.fit()
    # each process trained on half of every global batch: 3 epochs x 64 samples / 2
    assert [(tmp_path / "ddp" / f"seen_by_rank{r}").read_text() for r in (0, 1)] == ["96", "96"]
    ddp_weights = load_file(tmp_path / "ddp" / "best.safetensors")
    for key, value in load_file(single.best_path).items():
        torch.testing.assert_close(ddp_weights[key], value, rtol=1e-5, atol=1e-6)
    ddp_history = pd.read_csv(tmp_path / "ddp" / "metrics.csv")
    single_history = pd.read_csv(single.metrics_path)
    pd.testing.assert_series_equal(ddp_history["val_loss"], single_history["val_loss"], rtol=1e-5)
    pd.testing.assert_series_equal(
        ddp_history["train_loss"], single_history["train_loss"], rtol=1e-5
    )
