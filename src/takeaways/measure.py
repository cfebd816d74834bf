"""Measuring: thread pinning, clocks and memory, shared by recipes, benchmarks and the CLI.

Everything a cost or speed claim rests on is measured here, in one way, so that a ratio
reported by a recipe and one reported by a benchmark mean the same thing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count after.

    ``None`` leaves the thread count alone. One-threaded runs make CPU-time measurements
    independent of what else the machine is doing, and reductions bit-reproducible.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"threads must be >= 1; got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
