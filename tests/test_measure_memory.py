"""Tests for takeaways.measure's memory and rate probes: peak_bytes, step_cost, gemm_rate."""

from __future__ import annotations

import math

import pytest
import torch

from takeaways import measure


def test_peak_bytes_sees_a_planted_allocation():
    def alloc() -> None:
        a = torch.ones(1024, 1024)  # 4 MiB
        b = a + 1  # another 4 MiB while a is alive
        del a, b

    seconds, peak = measure.peak_bytes(alloc)
    assert seconds > 0
    assert 8 * 2**20 <= peak < 12 * 2**20


def test_step_cost_times_runs_and_reports_megabytes():
    calls = []

    def step() -> None:
        calls.append(torch.zeros(256, 1024).sum())  # 1 MiB

    seconds, mb = measure.step_cost(step, runs=3)
    assert len(calls) == 4 and seconds >= 0 and 1.0 <= mb < 2.0  # 1 profiled + 3 timed
    seconds, _ = measure.step_cost(step, runs=0)
    assert math.isnan(seconds) and len(calls) == 5
    with pytest.raises(ValueError, match="runs must be >= 0"):
        measure.step_cost(step, runs=-1)


def test_gemm_rate_is_positive():
    assert measure.gemm_rate(torch.float32, 64, runs=2) > 0
    with pytest.raises(ValueError, match="size and runs"):
        measure.gemm_rate(torch.float32, 0)
