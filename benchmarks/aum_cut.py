"""How many rows does find-mislabeled flag? The planted cut vs the paper's, against planted noise.

Tables with 2, 3 and 10 classes (scikit-learn's breast_cancer, wine, digits; features
standardized), symmetric label noise planted at 0-40% (each flipped label moves to a
random other class), the CLI's model (an MLP 256-256, AdamW 1e-3, batch 64) trained for
5, 20 and 100 epochs, two noise seeds. For each cell: flagged / planted, precision and
recall of both rules, the estimated noise rate and the share of control samples the model
fit (memorisation), and at 20 epochs cleanlab's count on 5-fold probabilities of the same
model. Not a speed benchmark: it measures the rule the CLI uses to cut its ranking.

Run: ``python benchmarks/aum_cut.py [--quick]``. Writes benchmarks/results/aum_cut.json
and aum_cut.md. Goal (issue #19): flagged within 0.5-2x of the planted count at 2, 3 and
10 classes and 5-40% noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from takeaways import nn
from takeaways.aum import find_mislabeled
from takeaways.data import detection_scores
from takeaways.results import machine_info, now_iso, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"
TABLES = {"breast_cancer": 2, "wine": 3, "digits": 10}


def table(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    x = ((x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)).astype(np.float32)
    return x, y.astype(np.int64)


def plant(y: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    c = int(y.max()) + 1
    flip = rng.random(len(y)) < rate
    noisy = y.copy()
    noisy[flip] = (y[flip] + rng.integers(1, c, flip.sum())) % c
    return noisy, flip


def cell(name: str, rate: float, epochs: int, seed: int, cleanlab: bool) -> dict:
    x, y = table(name)
    noisy, flip = plant(y, rate, seed)
    make = lambda k: nn.MLP(x.shape[1], k, hidden=(256, 256))  # noqa: E731
    row = {"table": name, "classes": TABLES[name], "rate": rate, "epochs": epochs, "seed": seed}
    row["n_planted"] = int(flip.sum())
    for rule in ("planted", "paper"):
        found = find_mislabeled(make, x, noisy, epochs=epochs, rule=rule, seed=seed)
        p, r, _ = detection_scores(found.mask, flip)
        row[rule] = {
            "flagged": int(found.mask.sum()),
            "ratio": found.mask.sum() / max(1, flip.sum()),
            "precision": p,
            "recall": r,
            "noise_rate": found.noise_rate,
            "fitted_control": found.fitted_control,
        }
    if cleanlab:
        from cleanlab.filter import find_label_issues

        from takeaways.train import cross_val_probs

        probs = cross_val_probs(
            make, x, noisy, folds=5, epochs=epochs, batch_size=64, lr=1e-3, seed=seed
        )
        issues = find_label_issues(noisy, probs, n_jobs=1)
        p, r, _ = detection_scores(issues, flip)
        row["cleanlab"] = {"flagged": int(issues.sum()), "ratio": issues.sum() / max(1, flip.sum()),
                           "precision": p, "recall": r}  # fmt: skip
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "| table (C) | noise | epochs | planted | planted cut: flagged / planted, precision | "
        "paper cut: flagged / planted | cleanlab: flagged / planted | control fit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        pl, pa, cl = r["planted"], r["paper"], r.get("cleanlab")
        clean = "" if cl is None else f"{cl['ratio']:.2f}x"
        lines.append(
            f"| {r['table']} ({r['classes']}) | {r['rate']:.0%} | {r['epochs']} | {r['n_planted']} | "
            f"{pl['ratio']:.2f}x, {pl['precision']:.2f} | {pa['ratio']:.2f}x | "
            f"{clean} | {pl['fitted_control']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one table, one seed, 20 epochs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tables = ["wine"] if args.quick else list(TABLES)
    epochs_grid = [20] if args.quick else [5, 20, 100]
    seeds = [1] if args.quick else [1, 2]
    rates = [0.05, 0.2] if args.quick else [0.0, 0.05, 0.1, 0.2, 0.4]
    t0, rows = time.perf_counter(), []
    for name in tables:
        for epochs in epochs_grid:
            for rate in rates:
                for seed in seeds:
                    rows.append(cell(name, rate, epochs, seed, cleanlab=epochs == 20))
                    r = rows[-1]
                    print(f"{name} {rate:.2f} ep{epochs} s{seed}: planted {r['n_planted']}, "
                          f"planted cut {r['planted']['ratio']:.2f}x, paper {r['paper']['ratio']:.2f}x",
                          file=sys.stderr, flush=True)  # fmt: skip
    noisy = [r for r in rows if r["rate"] >= 0.05]

    def within(rule: str, epochs: int) -> str:
        cells = [r for r in noisy if r["epochs"] == epochs]
        ok = sum(0.5 <= r[rule]["ratio"] <= 2.0 for r in cells)
        med = statistics.median(r[rule]["ratio"] for r in cells)
        return f"{ok}/{len(cells)} within 0.5-2x (median {med:.2f}x)"

    summary = {
        f"{rule}_at_{e}_epochs": within(rule, e)
        for rule in ("planted", "paper")
        for e in epochs_grid
    }
    out = RESULTS / ("aum_cut-quick.json" if args.quick else "aum_cut.json")
    write_json_atomic(out, {"when": now_iso(), "machine": machine_info(), "seconds": time.perf_counter() - t0,
                            "summary": summary, "rows": rows})  # fmt: skip
    md = markdown(rows) + "\n" + "\n".join(f"- {k}: {v}" for k, v in summary.items()) + "\n"
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
