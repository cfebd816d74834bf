"""Measuring: thread pinning, clocks and memory, shared by recipes, benchmarks and the CLI.

Everything a cost or speed claim rests on is measured here, in one way, so that a ratio
reported by a recipe and one reported by a benchmark mean the same thing.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["torch_threads", "clock_for", "time_to_loss", "TrainClock", "StepTimer"]


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
