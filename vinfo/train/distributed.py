"""Multi-process training through PyTorch's own engine (``torchrun`` + DDP).

Launch any vinfo training command with ``torchrun --nproc-per-node N``; :func:`init_from_env`
reads the variables torchrun sets and joins the process group (NCCL on GPU, gloo on CPU). The
:class:`~vinfo.train.Trainer` then wraps the model in ``DistributedDataParallel``, splits each
global batch across the ranks with a ``DistributedSampler`` and lets rank 0 alone write files.
With ``batch_size`` read as the *global* batch, N processes reach the same weights as one
process (up to float summation order), which tests check with 2 gloo processes (the trainer
alone, and ``vinfo train`` under ``torchrun``). BatchNorm layers (the task heads) become
``SyncBatchNorm`` on GPUs; PyTorch has no CPU ``SyncBatchNorm``, so on the CPU each process
normalises with the statistics of its share of the batch, and only models without BatchNorm
match one process exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank: the group's, else torchrun's ``RANK`` variable, else 0."""
    return dist.get_rank() if is_distributed() else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes files and prints progress."""
    return rank() == 0


def init_from_env(backend: str | None = None, timeout_s: float = 600.0) -> bool:
    """Join the process group described by torchrun's environment variables, if any.

    Args:
        backend: ``"nccl"`` or ``"gloo"``; default NCCL when CUDA is available, else gloo.
        timeout_s: collective timeout.

    Returns:
        ``True`` if a process group with more than one process is now active.
    """
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return False
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return is_distributed()


@contextmanager
def process_group_from_env(backend: str | None = None) -> Iterator[bool]:
    """Join torchrun's process group for the duration of a block, then leave it cleanly.

    All ranks meet at a barrier before ``destroy_process_group``: a rank that tears down its
    gloo connections while a peer still uses them makes the peer abort ("terminate called
    without an active exception"). A group that was already active is left untouched.

    Yields:
        Whether a process group with more than one process is active inside the block.
    """
    owned = not (dist.is_available() and dist.is_initialized())
    active = init_from_env(backend)
    try:
        yield active
    finally:
        if owned and active:
            leave_process_group()


def leave_process_group() -> None:
    """Barrier, then destroy the default process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a list of floats over all processes (identity without a process group)."""
    if not is_distributed():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()
