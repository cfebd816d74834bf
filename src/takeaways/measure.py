"""Measuring: thread pinning, clocks and memory, shared by recipes, benchmarks and the CLI.

Everything a cost or speed claim rests on is measured here, in one way, so that a ratio
reported by a recipe and one reported by a benchmark mean the same thing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "torch_threads",
    "clock_for",
    "time_to_loss",
    "TrainClock",
    "StepTimer",
    "bf16_vs_fp32",
    "peak_bytes",
    "gemm_rate",
    "step_cost",
    "classification_step",
    "memory_per_token",
]


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


# ----------------------------------------------------------------------------- training clocks


def clock_for(threads: int) -> Callable[[], float]:
    """The training clock: this process's CPU seconds when it runs one thread, else wall time.

    A one-threaded run's CPU time is its wall time on idle cores, and other jobs on shared
    cores do not inflate it, so two runs timed one after the other compare fairly even when
    the machine's load changes between them. With more threads CPU time adds up over them,
    so wall time is used (fair only on otherwise idle cores).

    Example:
        >>> clock = clock_for(torch.get_num_threads())
        >>> t0 = clock(); ...; seconds = clock() - t0
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1; got {threads}")
    return time.process_time if threads == 1 else time.perf_counter


def time_to_loss(seconds: list[float], losses: list[float], target: float) -> float:
    """First time a loss curve reaches ``target``, interpolated linearly between evaluations.

    Args:
        seconds: training seconds at each evaluation, ascending.
        losses: the validation loss at each of them.
        target: the loss to reach.

    Returns:
        The time the curve first gets to ``<= target`` (``seconds[0]`` if it starts there);
        NaN if it never does.

    Raises:
        ValueError: if the curves differ in length or are empty.

    Example:
        >>> time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.0], 5.5)
        15.0
    """
    if len(seconds) != len(losses) or not seconds:
        raise ValueError(f"need equal, non-empty curves; got {len(seconds)} and {len(losses)}")
    if losses[0] <= target:
        return float(seconds[0])
    for i in range(1, len(losses)):
        if losses[i] <= target:
            t0, t1, l0, l1 = seconds[i - 1], seconds[i], losses[i - 1], losses[i]
            return float(t0 + (l0 - target) / (l0 - l1) * (t1 - t0))
    return float("nan")


class TrainClock:
    """``fit()`` hook: evaluates every ``every`` steps and keeps its own time off the clock.

    ``evaluate()`` returns the validation loss; it runs once at construction (step 0),
    after every ``every``-th optimizer step and after step ``last``. ``curve`` holds
    ``(training seconds, step, validation loss)`` rows; ``seconds`` is the training time so
    far (setup in ``fit`` included, evaluation excluded), read from ``clock``
    (``clock_for(threads)``).

    Example:
        >>> clock = TrainClock(lambda: evaluate(model, val)["loss"], every=50, last=steps,
        ...                    clock=clock_for(1))
        >>> fit(model, data, max_steps=steps, hooks=[clock])
        >>> seconds, steps, losses = zip(*clock.curve)
    """

    def __init__(
        self,
        evaluate: Callable[[], float],
        *,
        every: int,
        last: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1; got {every}")
        self.evaluate, self.every, self.last, self.clock = evaluate, every, last, clock
        self.seconds = 0.0
        self.curve: list[tuple[float, int, float]] = [(0.0, 0, evaluate())]
        self.mark = clock()

    def on_batch(self, info: Any) -> None:
        """Add the step's time; evaluate (off the clock) on every ``every``-th and the last step."""
        self.seconds += self.clock() - self.mark
        if info.step % self.every == 0 or info.step == self.last:
            self.curve.append((self.seconds, info.step, self.evaluate()))
        self.mark = self.clock()

    def columns(self) -> dict[str, list]:
        """``curve`` as columns: ``{"seconds": [...], "steps": [...], "val_loss": [...]}``."""
        seconds, steps, losses = (list(c) for c in zip(*self.curve))
        return {"seconds": seconds, "steps": steps, "val_loss": losses}


class StepTimer:
    """``fit()`` hook: the seconds of every optimizer step, read from ``clock``.

    The first step's time counts from construction, so build the timer just before ``fit``.
    ``steady()`` is the median step time without the first step, which pays one-off costs
    (kernel selection, allocator growth).

    Example:
        >>> timer = StepTimer(clock_for(1))
        >>> fit(model, data, max_steps=5, hooks=[timer])
        >>> timer.steady()  # seconds per step
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.mark = clock()

    def on_batch(self, info: Any) -> None:
        t = self.clock()
        self.times.append(t - self.mark)
        self.mark = t

    def steady(self) -> float:
        """Median seconds per step after the first (the only one if there is one)."""
        if not self.times:
            raise ValueError("no step was timed; pass the timer to fit(..., hooks=[timer])")
        return statistics.median(self.times[1:] or self.times)


# ----------------------------------------------------------------------------- memory and kernels


def bf16_vs_fp32(
    make_model: Callable[[], torch.nn.Module],
    train_set: Any,
    val_set: Any,
    *,
    steps: int,
    clock: Callable[[], float] = time.perf_counter,
    **fit_kwargs: Any,
) -> dict[str, float]:
    """The same training steps in fp32 and under bf16 autocast: seconds per step and losses.

    ``make_model()`` must return the same initial model each call (seed inside it); both
    runs then take ``steps`` optimizer steps of ``fit(..., **fit_kwargs)``, timed by a
    ``StepTimer`` (median after the first step), and are scored by ``evaluate`` on
    ``val_set``. On CPUs without bf16 matmul units the bf16 step is often slower.

    Returns:
        ``"{fp32,bf16} seconds per step"``, ``"... train loss"``, ``"... val loss"``, the
        speed-up (fp32 / bf16 seconds per step) and the val loss difference (bf16 - fp32).
    """
    from takeaways import train  # train imports nothing from here; keep it that way

    out: dict[str, float] = {}
    for key in ("fp32", "bf16"):
        model = make_model()
        timer = StepTimer(clock)
        bf16 = key == "bf16"
        fitted = train.fit(
            model,
            train_set,
            max_steps=steps,
            bf16=bf16,
            hooks=[timer],
            progress=False,
            **fit_kwargs,
        )
        out[f"{key} seconds per step"] = timer.steady()
        out[f"{key} train loss"] = fitted.final["loss"]
        out[f"{key} val loss"] = train.evaluate(model, val_set, batch_size=256)["loss"]
    out["speed-up (fp32 / bf16 seconds per step)"] = (
        out["fp32 seconds per step"] / out["bf16 seconds per step"]
    )
    out["val loss difference (bf16 - fp32)"] = out["bf16 val loss"] - out["fp32 val loss"]
    return out


# What torch's C++ profiler prints straight to file descriptor 2 on every start and stop
# ("USDT: ... profiler_start") and when a tensor from before the start is freed
# ("CPUAllocator.cpp ... Memory block of unknown size"): nothing a reader can act on.
_PROFILER_CHATTER = re.compile(
    r"USDT:|profiler_(start|stop)|CPUAllocator|Memory block of unknown size"
)


@contextlib.contextmanager
def _without_profiler_chatter() -> Iterator[None]:
    """Send fd 2 to a temp file for the block, then pass on every line but the profiler's.

    The chatter comes from C++, below ``sys.stderr``, so only the file descriptor can be
    caught. Nothing else written in the block is lost: it is written out after the block.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as buf:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(buf.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            text = buf.read().decode("utf-8", errors="replace")
            kept = [ln for ln in text.splitlines(True) if not _PROFILER_CHATTER.search(ln)]
            if kept and sys.stderr is not None:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def peak_bytes(fn: Callable[[], object]) -> tuple[float, float]:
    """Run ``fn`` once under the profiler: (seconds, peak tensor bytes allocated above start).

    Peak = the highest running total of the profiler's memory events (the CPU allocator's
    tensor bytes, not RSS) during the call, counted from zero at its start. The seconds
    include the profiler's overhead: time a call with ``step_cost`` or a plain clock.
    """
    from torch.profiler import ProfilerActivity, profile

    t0 = time.perf_counter()
    with (
        _without_profiler_chatter(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
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


def classification_step(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], labels: torch.Tensor
) -> Callable[[], None]:
    """A training step for ``step_cost``: zero the grads, cross-entropy of ``model(**inputs)``
    on ``labels``, backward (no optimizer update, so repeated calls cost the same)."""

    def step() -> None:
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(**inputs), labels).backward()

    return step


def memory_per_token(lengths: list[float], peak_mb: list[float]) -> tuple[float, float]:
    """(slope in MB per token, intercept in MB) of the least-squares line through peak memory
    vs sequence length; the slope is 0 when every length is the same."""
    mx, my = statistics.fmean(lengths), statistics.fmean(peak_mb)
    sxx = sum((x - mx) ** 2 for x in lengths)
    slope = sum((x - mx) * (y - my) for x, y in zip(lengths, peak_mb)) / sxx if sxx else 0.0
    return slope, my - slope * mx
