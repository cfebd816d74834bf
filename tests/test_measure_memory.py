"""Tests for takeaways.measure's memory and rate probes: peak_bytes, step_cost, gemm_rate."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

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


_PROFILE_IN_A_PROCESS = """
import os, sys, torch
from takeaways import measure
before = [torch.ones(1000) for _ in range(50)]  # freed under the profiler: CPUAllocator warns

def fn():
    while before:
        before.pop()
    print("mine, via sys.stderr", file=sys.stderr)
    os.write(2, b"mine, via fd 2\\n")
    return torch.ones(256, 256) @ torch.ones(256, 256)

for _ in range(3):
    measure.step_cost(fn, runs=0)
print("done", file=sys.stderr)
"""


def test_profiling_prints_no_profiler_chatter_and_keeps_other_stderr():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    r = subprocess.run(
        [sys.executable, "-c", _PROFILE_IN_A_PROCESS],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "USDT" not in r.stderr and "profiler_st" not in r.stderr
    assert "CPUAllocator" not in r.stderr
    assert r.stderr.splitlines() == ["mine, via sys.stderr", "mine, via fd 2"] * 3 + ["done"]
