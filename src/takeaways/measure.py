"""Measuring: thread pinning, clocks and memory, shared by recipes, benchmarks and the CLI.

Everything a cost or speed claim rests on is measured here, in one way, so that a ratio
reported by a recipe and one reported by a benchmark mean the same thing.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

__all__ = ["gemm_rate", "peak_bytes", "step_cost", "torch_threads"]


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


def peak_bytes(fn: Callable[[], object]) -> tuple[float, float]:
    """Run ``fn`` once under the profiler: (seconds, peak tensor bytes allocated above start).

    Peak = the highest running total of the profiler's memory events (the CPU allocator's
    tensor bytes, not RSS) during the call, counted from zero at its start. The seconds
    include the profiler's overhead: time a call with ``step_cost`` or a plain clock.
    """
    from torch.profiler import ProfilerActivity, profile

    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    seconds = time.perf_counter() - t0
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        events = json.loads(Path(path).read_text())["traceEvents"]
    finally:
        os.unlink(path)
    mem = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    live = peak = 0
    for e in mem:
        live += e["args"].get("Bytes", 0)
        peak = max(peak, live)
    return seconds, float(peak)


def gemm_rate(dtype: torch.dtype, size: int, runs: int = 5) -> float:
    """Median GFLOP/s of a ``(size x size) @ (size x size)`` matmul in ``dtype`` (one warm-up).

    The arithmetic floor of a kernel is its FLOPs over this rate, measured in the same run.
    """
    if size < 1 or runs < 1:
        raise ValueError(f"size and runs must be >= 1; got size={size}, runs={runs}")
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def step_cost(step: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median seconds over ``runs`` calls, peak tensor MB) of a training step ``step()``.

    The first call is profiled for memory (``peak_bytes``) and doubles as the warm-up; it
    is not timed. ``runs=0`` measures memory only and returns nan seconds.
    """
    if runs < 0:
        raise ValueError(f"runs must be >= 0; got {runs}")
    _, peak = peak_bytes(step)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return (statistics.median(times) if times else float("nan")), peak / 2**20
