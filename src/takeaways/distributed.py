"""torch.distributed helpers: the same code runs alone or under ``torchrun``.

Nothing here is home-made scale-out: ranks, backends and collectives are
torch.distributed's. The helpers only make "not distributed" a world of one so
callers never branch.
"""

from __future__ import annotations

import atexit
import contextlib
import os

import torch
import torch.distributed as dist

__all__ = [
    "init_distributed",
    "is_distributed",
    "rank",
    "world_size",
    "is_main",
    "barrier",
    "all_reduce_sum",
    "reduce_per_sample",
    "shard_indices",
]


def init_distributed() -> bool:
    """Join the process group that ``torchrun`` describes in the environment.

    Returns True when running with more than one process. Uses nccl when CUDA
    is available and gloo otherwise. Safe to call more than once.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    # Leave the group before the interpreter tears down: a gloo group left to the finalizers
    # can abort a rank (SIGABRT) when its peer has already exited.
    atexit.register(_leave_group)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_world_size() > 1


def _leave_group() -> None:
    if dist.is_initialized():
        with contextlib.suppress(Exception):  # at exit a peer may be gone already
            dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (a no-op alone); returns it."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def reduce_per_sample(
    values: torch.Tensor, indices: torch.Tensor, num_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather per-sample values from every rank into dataset order.

    Each rank holds values for the dataset indices it saw; the result is the
    sum per dataset index over all ranks and updates, with how many updates
    each index received, so callers can average (AUM margins, losses) or check
    coverage.

    Args:
        values: (M, ...) values for the samples this rank saw.
        indices: (M,) their dataset indices in [0, num_samples).
        num_samples: size of the dataset.

    Returns:
        sums (num_samples, ...) float64 and counts (num_samples,) int64, equal on every rank.
    """
    if values.shape[0] != indices.shape[0]:
        raise ValueError(
            f"values has {values.shape[0]} rows but indices has {indices.shape[0]}; pass one index per row"
        )
    idx = indices.detach().long().cpu()
    if idx.numel() and (idx.min() < 0 or idx.max() >= num_samples):
        raise ValueError(f"indices must lie in [0, {num_samples}); got {idx.min()}..{idx.max()}")
    vals = values.detach().double().cpu()
    sums = torch.zeros((num_samples, *vals.shape[1:]), dtype=torch.float64)
    counts = torch.zeros(num_samples, dtype=torch.int64)
    sums.index_add_(0, idx, vals)
    counts.index_add_(0, idx, torch.ones_like(idx))
    if is_distributed() and dist.get_backend() == "nccl":
        dev = torch.device("cuda", torch.cuda.current_device())
        sums, counts = sums.to(dev), counts.to(dev)
        all_reduce_sum(sums)
        all_reduce_sum(counts)
        return sums.cpu(), counts.cpu()
    return all_reduce_sum(sums), all_reduce_sum(counts)


def shard_indices(
    num_samples: int, *, epoch: int, seed: int, shuffle: bool = True, pad: bool = True
) -> torch.Tensor:
    """This rank's dataset indices for one epoch.

    One permutation from ``seed + epoch`` is shared by all ranks; rank r takes
    every world-th index starting at r (padded by wrapping so ranks get equal
    counts, as DistributedSampler does). With a global batch of B and B / world
    per rank, the union of the ranks' i-th batches is exactly the i-th batch of
    a single-process run, which is what makes 1-process and N-process training
    agree.
    """
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(num_samples, generator=g)
    else:
        order = torch.arange(num_samples)
    world, r = world_size(), rank()
    if world == 1:
        return order
    if pad:
        total = -(-num_samples // world) * world
        if total > num_samples:
            order = torch.cat([order, order[: total - num_samples]])
    return order[r::world]
