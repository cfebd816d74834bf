"""Attention benchmark: BigBird and clustered attention vs dense SDPA, HF BigBird and
fast-transformers, on CPU. Run ``python benchmarks/attention.py [--quick]`` or
``takeaways bench attention [--quick]``; the logic lives in ``takeaways.attention.bench``.

Writes benchmarks/results/attention.json (+ .png); ``--quick`` writes attention-quick.*.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a shared machine,
# spinning threads steal the core their partner needs, and every parallel op then waits a
# scheduler slice (10 ms and more per op at load 3 on 2 cores); sleeping costs microseconds.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from takeaways.attention.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(out_dir=Path(__file__).resolve().parent / "results"))
