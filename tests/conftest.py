"""Shared test setup: every test runs on one intra-op thread.

Tiny models are fastest on one thread and do not spin against each other on shared,
busy cores; a test that needs more sets them itself (the thread count is restored).
"""

from __future__ import annotations

import pytest

from takeaways.measure import torch_threads


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield
