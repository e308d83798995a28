"""Overhead of vinfo's Trainer against a bare PyTorch loop over the same model and batches.

Both run the same epochs (train + validation) of a small convolutional autoencoder on random
64×64 images with Adam; the trainer also writes its checkpoint, state and metrics files every
epoch. Timed with :mod:`timing` (this folder): the two sides interleaved, ``--rounds`` rounds
after a warm-up round, CPU time of the process (wall time beside it), one torch thread by
default. Prints both times and the per-round ratio trainer / bare (goal ≤ 1.05).

    .venv/bin/python benchmarks/bench_trainer.py [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from timing import goal_line, interleaved, session
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


GOAL = 1.05
"""Trainer / bare loop time, at most."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(1)
    train = TensorDataset(torch.rand(256, 3, 64, 64, generator=generator))
    val = TensorDataset(torch.rand(64, 3, 64, 64, generator=generator))
    with session(f"Trainer overhead: {EPOCHS} epochs of 256 + 64 images, {args.rounds} "
                 "interleaved rounds after 1 warm-up"):
        rounds = interleaved({"bare loop": lambda: bare_loop(train, val),
                              "vinfo Trainer": lambda: with_trainer(train, val)}, args.rounds)
        print(rounds.table())
        print(goal_line("Trainer / bare loop time, CPU",
                        rounds.ratios("vinfo Trainer", "bare loop"), GOAL,
                        higher_is_better=False, spec=".3f"))
        print(goal_line("Trainer / bare loop time, wall clock",
                        rounds.ratios("vinfo Trainer", "bare loop", "wall"), None, spec=".3f"))


if __name__ == "__main__":
    main()
