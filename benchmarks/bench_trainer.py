"""Overhead of vinfo's Trainer against a bare PyTorch loop over the same model and batches.

Both run the same epochs (train + validation) of a small convolutional autoencoder on random
64×64 images with Adam; the trainer also writes its checkpoint, state and metrics files every
epoch. Prints both times and the ratio trainer / bare (goal ≤ 1.05).

    .venv/bin/python benchmarks/bench_trainer.py
"""

from __future__ import annotations

import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from vinfo.train import StepOutput, TrainConfig, Trainer, seed_everything

EPOCHS, BATCH = 3, 8


def make_model() -> nn.Module:
    seed_everything(0)
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, stride=2, padding=2),
        nn.ELU(),
        nn.Conv2d(32, 32, 5, stride=2, padding=2),
        nn.ELU(),
        nn.ConvTranspose2d(32, 32, 5, stride=2, padding=2, output_padding=1),
        nn.ELU(),
        nn.ConvTranspose2d(32, 3, 5, stride=2, padding=2, output_padding=1),
    )


def objective(model: nn.Module, batch) -> StepOutput:
    (x,) = batch
    return StepOutput(((model(x) - x) ** 2).mean(), {}, len(x))


def bare_loop(train: TensorDataset, val: TensorDataset) -> None:
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(EPOCHS):
        model.train()
        for batch in DataLoader(train, batch_size=BATCH, shuffle=True, generator=generator):
            loss = objective(model, batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for batch in DataLoader(val, batch_size=BATCH):
                objective(model, batch).loss.item()


def with_trainer(train: TensorDataset, val: TensorDataset) -> None:
    config = TrainConfig(max_epochs=EPOCHS, batch_size=BATCH, quiet=True, patience=EPOCHS)
    with tempfile.TemporaryDirectory() as run_dir:
        Trainer(make_model(), objective, train, val, config, run_dir).fit()


def best_of(function, *args, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    generator = torch.Generator().manual_seed(1)
    train = TensorDataset(torch.rand(256, 3, 64, 64, generator=generator))
    val = TensorDataset(torch.rand(64, 3, 64, 64, generator=generator))
    bare = best_of(bare_loop, train, val)
    trainer = best_of(with_trainer, train, val)
    print(
        f"{EPOCHS} epochs of 256 + 64 images: bare loop {bare:.3f} s, "
        f"vinfo Trainer {trainer:.3f} s, ratio {trainer / bare:.3f} (goal <= 1.05)"
    )


if __name__ == "__main__":
    main()
