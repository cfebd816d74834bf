"""CRUST coreset selection speed: 50,000 gradient proxies x 10 classes, half of each class kept.

Compares, in one process, medians of several runs:
  * ``select_coreset`` with exact lazy greedy (ours, the default; radius weights),
  * ``select_coreset`` with stochastic greedy (ours, epsilon = 0.1),
  * a port of the official CRUST selection (snap-stanford/crust: sklearn dense distances
    per class, a heap of F(S + e) *totals* instead of marginal gains): time, and the
    facility-location value it reaches relative to the exact greedy's,
  * on one class of 600 points, the plain greedy (every gain recomputed each step) that
    lazy greedy must equal.

Proxies are 64-d, the size of the official proxy (the gradient at ResNet-32's 64-d
penultimate layer). Two distributions: "clustered" (a Gaussian mixture, 20 modes per
class: gradients cluster) and "isotropic" (one Gaussian per class: the worst case for lazy
greedy, whose bounds then go stale fastest).

Run: ``python benchmarks/crust_selection.py [--runs 5] [--quick]``. Writes
benchmarks/results/crust_selection.json (``--quick``: crust_selection-quick.json).
Target (issue #4): selection for 50,000 x 10 classes in <= 10 s on 2 CPU cores.
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning (shared, busy cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import heapq  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from takeaways.crust import facility_location, facility_location_reference, select_coreset  # noqa: E402
from takeaways.results import Target, machine_info, now_iso, write_json_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def proxies(
    n: int, classes: int, dim: int, kind: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 points and (n,) labels, n / classes per class."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n // classes)
    if kind == "isotropic":
        x = rng.normal(size=(len(y), dim))
    else:  # 20 modes per class, modes 3 sd apart
        modes = rng.normal(size=(classes, 20, dim)) * 3
        x = modes[y, rng.integers(0, 20, len(y))] + rng.normal(size=(len(y), dim))
    return x.astype(np.float32), y


def official_style(x: np.ndarray, budget: int) -> np.ndarray:
    """Port of the official lazy_greedy_heap + FacilityLocationCIFAR selection for one class.

    Same logic, re-written: s = max(D) - D from dense sklearn distances; the max-heap holds
    F(S + e) totals computed at different times (stale *lower* bounds), and an element is
    taken when its fresh total beats the top's stale one.
    """
    from sklearn.metrics import pairwise_distances

    d = pairwise_distances(x)
    s = d.max() - d
    cur = np.zeros(len(x), dtype=s.dtype)
    heap = [(-float(s[e].sum()), -e) for e in range(len(x))]  # max-heap; ties: larger index
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < budget:
        _, ne = heapq.heappop(heap)
        e = -ne
        total = float(np.maximum(cur, s[e]).sum())  # F(S + e), not the marginal gain
        if total <= 0:
            continue
        if not heap or total >= -heap[0][0]:
            chosen.append(e)
            cur = np.maximum(cur, s[e])
        else:
            heapq.heappush(heap, (-total, -e))
    return np.asarray(chosen)


def fl_value(x: np.ndarray, chosen: np.ndarray, block: int = 2048) -> float:
    """F(S) = sum_i max_{j in S} (d_max - d_ij), in blocks (float64)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    d_max, best = 0.0, torch.full((len(x),), float("inf"), dtype=torch.float64)
    sel = xt[torch.as_tensor(chosen)]
    for r in range(0, len(x), block):
        d = torch.cdist(xt[r : r + block], xt)
        d_max = max(d_max, float(d.max()))
    for r in range(0, len(x), block):
        best[r : r + block] = torch.cdist(xt[r : r + block], sel).min(1).values
    return float((d_max - best).sum())


def timed(fn, runs: int) -> tuple[float, float, list[float]]:
    """Median wall and CPU seconds over runs (after one warm-up call)."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs per method (median)")
    p.add_argument("--quick", action="store_true", help="5,000 samples instead of 50,000")
    args = p.parse_args(argv)
    n, classes, dim, fraction = (5_000 if args.quick else 50_000), 10, 64, 0.5
    load_before = os.getloadavg()[0]
    rows = []
    for kind in ("clustered", "isotropic"):
        x, y = proxies(n, classes, dim, kind)
        members = [np.flatnonzero(y == c) for c in range(classes)]
        budget = int(round(fraction * len(members[0])))
        lazy = timed(lambda x=x, y=y: select_coreset(x, y, fraction=fraction), args.runs)
        stoch = timed(
            lambda x=x, y=y: select_coreset(x, y, fraction=fraction, stochastic=True), args.runs
        )
        official = timed(
            lambda x=x, ms=members, b=budget: [official_style(x[m], b) for m in ms], args.runs
        )
        # quality on class 0: facility-location value relative to exact (lazy) greedy
        x0 = x[members[0]]
        f_lazy = fl_value(x0, facility_location(x0, budget)[0])
        f_stoch = fl_value(x0, facility_location(x0, budget, stochastic=True)[0])
        f_official = fl_value(x0, official_style(x0, budget))
        for name, (wall, cpu, runs), quality in (
            ("ours: lazy greedy (exact)", lazy, 1.0),
            ("ours: stochastic greedy", stoch, f_stoch / f_lazy),
            ("official CRUST port (totals heap)", official, f_official / f_lazy),
        ):
            rows.append(
                {
                    "data": kind,
                    "method": name,
                    "samples": n,
                    "classes": classes,
                    "dim": dim,
                    "fraction": fraction,
                    "weights": "radius" if name.startswith("ours") else "none (selection only)",
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "wall_s_runs": runs,
                    "vs_lazy_wall": wall / lazy[0],
                    "objective_vs_greedy": quality,
                }
            )
        print(f"{kind}: done", file=sys.stderr, flush=True)

    # plain greedy vs lazy greedy on one class of 600 points: same answer, how much faster
    x1, _ = proxies(600, 1, dim, "clustered", seed=1)
    plain = timed(lambda: facility_location_reference(x1, 300), args.runs)
    lazy1 = timed(lambda: facility_location(x1, 300), args.runs)
    x64 = x1.astype(np.float64)  # compare the gains in float64: both exact up to rounding
    same = np.allclose(
        facility_location_reference(x64, 300)[1],
        facility_location(x64, 300, return_gains=True)[2],
        rtol=1e-9,
    )
    small = {
        "samples": 600,
        "budget": 300,
        "plain_greedy_wall_s": plain[0],
        "lazy_greedy_wall_s": lazy1[0],
        "speedup": plain[0] / lazy1[0],
        "same_gains": bool(same),
    }

    lazy_clustered = next(r for r in rows if r["data"] == "clustered" and "lazy" in r["method"])
    lazy_iso = next(r for r in rows if r["data"] == "isotropic" and "lazy" in r["method"])
    assert lazy_clustered["method"] == lazy_iso["method"] == "ours: lazy greedy (exact)"
    stoch_iso = next(r for r in rows if r["data"] == "isotropic" and "stochastic" in r["method"])
    targets = [
        Target.check(
            f"select_coreset, {n:,} x {classes} classes, lazy greedy, clustered proxies: wall s",
            lazy_clustered["wall_s"],
            "<=",
            10.0,
        ),
        Target.check(
            f"select_coreset, {n:,} x {classes} classes, lazy greedy, isotropic proxies: wall s",
            lazy_iso["wall_s"],
            "<=",
            10.0,
        ),
        Target.check(
            f"select_coreset, {n:,} x {classes} classes, stochastic greedy, isotropic: wall s",
            stoch_iso["wall_s"],
            "<=",
            10.0,
        ),
    ]
    out = {
        "benchmark": "crust_selection",
        "created": now_iso(),
        "machine": machine_info(),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "runs": args.runs,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "plain_vs_lazy_one_class": small,
        "targets": [t.__dict__ for t in targets],
    }
    name = "crust_selection-quick.json" if args.quick else "crust_selection.json"
    path = write_json_atomic(RESULTS / name, out)

    print(
        f"\nCRUST selection, {n:,} proxies x {classes} classes, d={dim}, keep {fraction:.0%} per class"
    )
    print(
        f"torch threads {torch.get_num_threads()}, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'data':<10} {'method':<40} {'wall s':>8} {'cpu s':>8} {'x lazy':>7} {'F / greedy':>10}"
    )
    for r in rows:
        print(
            f"{r['data']:<10} {r['method']:<40} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} "
            f"{r['vs_lazy_wall']:>7.2f} {r['objective_vs_greedy']:>10.4f}"
        )
    print(
        f"one class of 600, budget 300: plain greedy {small['plain_greedy_wall_s']:.2f} s, lazy "
        f"{small['lazy_greedy_wall_s']:.3f} s ({small['speedup']:.0f}x), same gains: {small['same_gains']}"
    )
    for t in targets:
        print(f"[{'met ' if t.met else 'MISS'}] {t.name}: {t.measured:.2f} (goal {t.op} {t.goal})")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
