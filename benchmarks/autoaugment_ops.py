"""AutoAugment op speed: batched ``apply_ops`` vs the per-image reference, and vs a training step.

For a batch of MNIST-sized images (B, 1, 28, 28) and two policies (AutoAugment's CIFAR-10
policy string and the uniform 36 x 36 AWS policy), measures in one process the median
seconds of:
  * the batched path (``apply_policy`` / ``Policy.augment``: each distinct op runs once
    per step on the images that drew it),
  * the naive per-image loop on the same draws (``apply_ops_reference``),
  * one SGD step (forward + backward) of the recipe's SmallCNN (width 16) on the batch,
and reports the speed-up and the augmentation's share of a training step.

Run: ``python benchmarks/autoaugment_ops.py [--runs 5] [--batch 256]``. Writes
benchmarks/results/autoaugment_ops.json. Targets: batched >= 5x the per-image loop;
augmentation <= 50% of a training step's time (uniform AWS policy).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from takeaways.autoaugment import AUTOAUGMENT_CIFAR10, Policy, parse_policy  # noqa: E402
from takeaways.autoaugment.policy import apply_ops, apply_ops_reference, op_tables  # noqa: E402
from takeaways.nn import SmallCNN  # noqa: E402
from takeaways.results import Target, machine_info, now_iso, write_json_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _median_s(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _time_apply(fn, x: torch.Tensor, tables: tuple, runs: int) -> float:
    """Median seconds of ``fn(x, *tables, generator)`` with the same draws each run."""
    return _median_s(lambda: fn(x, *tables, torch.Generator().manual_seed(2)), runs)


def _tables_for(name: str, b: int, g: torch.Generator):
    """(ids, mags, probs) (B, L) for one batch drawn from the named policy."""
    if name == "autoaugment-cifar10":
        subs = parse_policy(AUTOAUGMENT_CIFAR10)
        choice = torch.randint(len(subs), (b,), generator=g)
        return op_tables(subs, choice)
    p = Policy()
    pairs = p.sample(b, g)
    return p.op_ids[pairs], p.op_mags[pairs], torch.ones(b, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    b = args.batch
    x = torch.rand(b, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (b,))
    model = SmallCNN(1, 10, width=16, image_size=28)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step_s = _median_s(step, args.runs)
    rows = []
    for name in ("autoaugment-cifar10", "aws-uniform"):
        ids, mags, probs = _tables_for(name, b, torch.Generator().manual_seed(1))
        fast = _time_apply(apply_ops, x, (ids, mags, probs), args.runs)
        slow = _time_apply(apply_ops_reference, x, (ids, mags, probs), args.runs)
        rows.append({"policy": name, "batch": b, "batched_s": fast, "per_image_s": slow,
                     "speedup": slow / fast, "train_step_s": step_s, "share_of_step": fast / step_s})  # fmt: skip
        print(f"{name:22s} batched {fast * 1e3:7.1f} ms  per-image {slow * 1e3:7.1f} ms  "
              f"x{slow / fast:5.1f}  step {step_s * 1e3:6.1f} ms  aug/step {fast / step_s:.2f}")  # fmt: skip
    uni = rows[1]
    targets = [
        Target.check(
            "batched vs per-image speed-up, uniform AWS policy", uni["speedup"], ">=", 5.0
        ),
        Target.check(
            "augmentation / SGD step time, uniform AWS policy", uni["share_of_step"], "<=", 0.5
        ),
    ]
    out = {"benchmark": "autoaugment_ops", "created": now_iso(), "machine": machine_info(),
           "load_average_1min": os.getloadavg()[0], "runs": args.runs, "rows": rows,
           "targets": [t.__dict__ for t in targets]}  # fmt: skip
    path = write_json_atomic(RESULTS / "autoaugment_ops.json", out)
    for t in targets:
        print(f"[{'met ' if t.met else 'MISS'}] {t.name}: {t.measured:.3g} (goal {t.op} {t.goal})")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
