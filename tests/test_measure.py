"""takeaways.measure: thread pinning, the training clocks and time-to-loss."""

from __future__ import annotations

import math
import time

import pytest
import torch

from takeaways.measure import (
    StepTimer,
    TrainClock,
    bf16_vs_fp32,
    classification_step,
    clock_for,
    memory_per_token,
    time_to_loss,
    torch_threads,
)
from takeaways.train import BatchInfo


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"):
        with torch_threads(0):
            pass


def test_time_to_loss_interpolates_between_evaluations():
    # 6.0 at 10 s, 5.0 at 20 s: 5.5 is halfway, 5.2 is 80% of the way
    assert time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.0], 5.5) == pytest.approx(15.0)
    assert time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.0], 5.2) == pytest.approx(18.0)
    # exactly at an evaluation
    assert time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.0], 6.0) == pytest.approx(10.0)


def test_time_to_loss_takes_the_first_crossing():
    # dips below 5.5 at 10-20 s, comes back up, dips again later: the first one counts
    secs, losses = [0.0, 10.0, 20.0, 30.0, 40.0], [6.0, 6.0, 5.0, 6.0, 4.0]
    assert time_to_loss(secs, losses, 5.5) == pytest.approx(15.0)


def test_time_to_loss_never_reached_is_nan():
    assert math.isnan(time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.1], 5.0))


def test_time_to_loss_reached_at_the_first_point():
    assert time_to_loss([3.0, 10.0], [4.0, 3.0], 5.0) == 3.0


def test_time_to_loss_rejects_mismatched_curves():
    with pytest.raises(ValueError, match="equal, non-empty"):
        time_to_loss([0.0, 1.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="equal, non-empty"):
        time_to_loss([], [], 0.5)


def test_clock_for_is_cpu_time_with_one_thread_else_wall_time():
    assert clock_for(1) is time.process_time
    assert clock_for(4) is time.perf_counter
    with pytest.raises(ValueError, match="threads must be >= 1"):
        clock_for(0)


class FakeClock:
    """A clock that reads ``now``; tests move it by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _info(step: int) -> BatchInfo:
    z = torch.zeros(1)
    return BatchInfo(logits=z, targets=z, indices=z, loss=0.0, epoch=0, step=step)


def test_train_clock_keeps_evaluation_time_off_the_clock():
    clock = FakeClock()
    losses = iter([5.0, 4.0, 3.0, 2.5])

    def evaluate() -> float:
        clock.now += 100.0  # evaluation is slow; none of it may count
        return next(losses)

    tc = TrainClock(evaluate, every=2, last=5, clock=clock)
    for step in range(1, 6):
        clock.now += 1.0  # one second of training per step
        tc.on_batch(_info(step))
    assert tc.curve == [(0.0, 0, 5.0), (2.0, 2, 4.0), (4.0, 4, 3.0), (5.0, 5, 2.5)]
    assert tc.seconds == 5.0
    with pytest.raises(ValueError, match="every must be >= 1"):
        TrainClock(evaluate, every=0, last=5)


def test_step_timer_times_every_step_and_drops_the_first_from_steady():
    clock = FakeClock()
    timer = StepTimer(clock)
    for step, seconds in enumerate([9.0, 1.0, 3.0, 2.0], start=1):
        clock.now += seconds
        timer.on_batch(_info(step))
    assert timer.times == [9.0, 1.0, 3.0, 2.0]
    assert timer.steady() == 2.0  # median of 1, 3, 2
    one = StepTimer(clock)
    clock.now += 4.0
    one.on_batch(_info(1))
    assert one.steady() == 4.0
    with pytest.raises(ValueError, match="no step was timed"):
        StepTimer(clock).steady()


def test_bf16_vs_fp32_trains_the_same_model_both_ways():
    x, y = torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 2

    def model():
        torch.manual_seed(0)
        return torch.nn.Linear(8, 2)

    out = bf16_vs_fp32(model, (x, y), (x, y), steps=3, epochs=1, batch_size=16, seed=0)
    assert out["fp32 seconds per step"] > 0 and out["bf16 seconds per step"] > 0
    assert out["speed-up (fp32 / bf16 seconds per step)"] == pytest.approx(
        out["fp32 seconds per step"] / out["bf16 seconds per step"]
    )
    assert abs(out["val loss difference (bf16 - fp32)"]) < 0.1  # same steps, rounding apart


def test_train_clock_columns_are_the_curve_transposed():
    clock = TrainClock(lambda: 2.0, every=1, last=2, clock=FakeClock())
    clock.on_batch(_info(1))
    assert clock.columns() == {"seconds": [0.0, 0.0], "steps": [0, 1], "val_loss": [2.0, 2.0]}


def test_classification_step_leaves_fresh_gradients_and_no_update():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    before = model.weight.detach().clone()
    step = classification_step(model, {"input": x}, y)
    step()
    first = model.weight.grad.clone()
    step()  # grads are zeroed, not accumulated
    assert torch.equal(model.weight, before)
    assert torch.allclose(model.weight.grad, first)
    torch.nn.functional.cross_entropy(model(x), y).backward()  # the same loss, by hand
    assert torch.allclose(model.weight.grad, 2 * first)


def test_memory_per_token_is_the_least_squares_line():
    assert memory_per_token([1.0, 2.0, 3.0], [5.0, 7.0, 9.0]) == (2.0, 3.0)
    slope, icpt = memory_per_token([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    assert abs(slope - 0.8) < 1e-12 and abs(icpt - 0.5) < 1e-12
    assert memory_per_token([2.0, 2.0], [1.0, 3.0]) == (0.0, 2.0)
