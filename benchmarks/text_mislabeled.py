"""find-mislabeled on a 10,000-row text CSV, end to end: how long until every row is ranked?

Writes a CSV of 10,000 tweets (the embedded CrowdFlower set, 3 classes, a seeded sample)
with 20% of the labels planted wrong, then times the real command in a subprocess:

  * cold: ``takeaways find-mislabeled tweets.csv --text text --label label --out ...`` with
    an empty cache, so every text is embedded with the packaged MiniLM (the target);
  * warm: the same command again (embeddings read from the cache: the training alone);
  * peer: ``--compare cleanlab`` (warm), which adds cleanlab's 5-fold cross-validated
    probabilities of the same model on the same embeddings; its extra time is the peer's.

Each is the median of ``--runs`` runs (cold runs get a fresh cache each). F1 of both
detectors against the planted errors comes from the peer run's CSV.

Run: ``python benchmarks/text_mislabeled.py [--runs 3] [--quick]``. Writes
benchmarks/results/text_mislabeled.json and .md. Target (issue #20): cold <= 180 s on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from takeaways import data
from takeaways.results import Target, machine_info, now_iso, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"
RATE = 0.2


def write_csv(path: Path, rows: int) -> np.ndarray:
    """The tweets CSV with planted noise; returns the (N,) mask of planted rows."""
    tweets = data.load("tweets")
    idx = data.sample_indices(len(tweets.train), rows, seed=0)
    y = tweets.train.y[idx]
    noisy, flipped = data.corrupt_labels(y, rate=RATE, kind="symmetric", seed=0)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "label"])
        for i, (t, lab) in enumerate(zip(tweets.train.x[idx], noisy)):
            w.writerow([i, str(t), tweets.classes[lab]])
    return flipped


def timed(args: list[str], cache: Path, cwd: Path) -> float:
    env = {**os.environ, "TAKEAWAYS_CACHE": str(cache)}
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "takeaways", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"find-mislabeled failed: {run.stderr.strip().splitlines()[-1]}")
    return seconds


def f1(flagged: np.ndarray, planted: np.ndarray) -> float:
    return data.detection_scores(flagged, planted)[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per setting (median)")
    ap.add_argument("--quick", action="store_true", help="500 rows, one run: a smoke test")
    args = ap.parse_args()
    rows, runs = (500, 1) if args.quick else (10_000, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        planted = write_csv(work / "tweets.csv", rows)
        base = ["find-mislabeled", "tweets.csv", "--text", "text", "--label", "label"]
        cold, warm, peer = [], [], []
        for i in range(runs):
            cache = work / f"cache{i}"
            cold.append(timed([*base, "--out", "cold.csv"], cache, work))
            warm.append(timed([*base, "--out", "warm.csv"], cache, work))
            peer.append(timed([*base, "--out", "peer.csv", "--compare", "cleanlab"], cache, work))
            print(f"run {i + 1}/{runs}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s, "
                  f"with cleanlab {peer[-1]:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
        with open(work / "peer.csv", newline="", encoding="utf-8") as fh:
            table = list(csv.DictReader(fh))
    order = np.array([int(r["row"]) for r in table])
    aum_flag, clean_flag = np.zeros(rows, bool), np.zeros(rows, bool)
    aum_flag[order] = [r["flagged"] == "True" for r in table]
    clean_flag[order] = [r["cleanlab_flagged"] == "True" for r in table]
    m = {
        "rows": rows,
        "cold_s": statistics.median(cold),
        "warm_s": statistics.median(warm),
        "with_cleanlab_s": statistics.median(peer),
        "cleanlab_extra_s": statistics.median(p - w for p, w in zip(peer, warm)),
        "embedding_s": statistics.median(c - w for c, w in zip(cold, warm)),
        "aum_f1": f1(aum_flag, planted),
        "cleanlab_f1": f1(clean_flag, planted),
        "aum_flagged_over_planted": aum_flag.sum() / planted.sum(),
        "runs": {"cold": cold, "warm": warm, "with_cleanlab": peer},
    }
    target = Target.check(f"{rows:,}-row text CSV ranked, cold (s)", m["cold_s"], "<=", 180.0)
    out = RESULTS / ("text_mislabeled-quick.json" if args.quick else "text_mislabeled.json")
    write_json_atomic(out, {"when": now_iso(), "machine": machine_info(), "metrics": m,
                            "targets": [target.__dict__]})  # fmt: skip
    md = (
        "| rows | cold (embed + rank) | embedding | warm (rank only) | cleanlab adds | "
        "AUM F1 | cleanlab F1 | AUM flagged / planted |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {rows:,} | {m['cold_s']:.0f} s | {m['embedding_s']:.0f} s | {m['warm_s']:.0f} s | "
        f"{m['cleanlab_extra_s']:.0f} s | {m['aum_f1']:.3f} | {m['cleanlab_f1']:.3f} | "
        f"{m['aum_flagged_over_planted']:.2f}x |\n\n"
        f"Target: cold <= 180 s: {'met' if target.met else 'missed'} ({m['cold_s']:.0f} s, median of "
        f"{runs}).\n"
    )
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
