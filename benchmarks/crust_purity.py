"""How clean are CRUST's coresets? Proxy x weights, after warm-up, 50% symmetric noise on digits.

Not a speed test: it picks the defaults of ``takeaways.crust``. For each seed, 50% of the
digits training labels are flipped symmetrically, the noisy-labels recipe's digits model
(an MLP 64-256-256-10, AdamW lr 2e-3, batch 128) trains on all of them for the recipe's
warm-up (4 of 20 epochs), and then one coreset of half of each class is selected from that
model for each combination of

  * proxy: ``"weight"`` (dL/dW, dL/db: the paper) or ``"input"`` (dL/dh: the official code),
  * weights: ``"cluster"`` (cluster sizes: the paper) or ``"radius"`` (neighbours within
    ``RADIUS_SHARE`` of the class's largest distance: the official code's rule),

and, as the control, a random half of each class weighted by the same rule. Reported: the
share of selected samples whose label is correct (unweighted) and the same share of the
coreset's weight (what training sees). The data hold 50% clean labels. A sweep of
``RADIUS_SHARE`` shows how much the radius rule depends on its one parameter.

Run: ``python benchmarks/crust_purity.py [--seeds 3]``. Writes
benchmarks/results/crust_purity.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from takeaways import crust, data, nn, train
from takeaways.crust import last_layer_gradients, select_coreset
from takeaways.data import Noise
from takeaways.results import machine_info, now_iso, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"
EPOCHS, WARMUP, BATCH, LR, FRACTION = 20, 4, 128, 2e-3, 0.5  # the recipe's digits run
SHARES = (0.05, 0.1, 0.2, 0.3)  # RADIUS_SHARE sweep


def shares(idx: np.ndarray, w: np.ndarray, flipped: np.ndarray) -> tuple[float, float]:
    """(clean share of the selected samples, clean share of their weight)."""
    ok = ~flipped[idx]
    return float(ok.mean()), float((w * ok).sum() / w.sum())


def one_seed(seed: int) -> list[dict]:
    bundle = data.load("digits")
    x, y = bundle.train.x, bundle.train.y
    noisy, flipped = Noise("symmetric", 0.5).apply(y, num_classes=10, seed=seed)
    train.seed_everything(seed)
    model = nn.MLP(int(np.prod(x.shape[1:])), 10, hidden=(256, 256))
    train.fit(model, (x, noisy), epochs=WARMUP, batch_size=BATCH, lr=LR, seed=seed, progress=False)
    rows = []
    default_share = crust.RADIUS_SHARE
    for proxy in ("weight", "input"):
        g = last_layer_gradients(model, x, noisy, proxy=proxy)
        for weights in ("cluster", "radius"):
            for random in (False, True):
                idx, w = select_coreset(
                    g, noisy, fraction=FRACTION, weights=weights, random=random, seed=seed
                )
                clean, clean_w = shares(idx, w, flipped)
                rows.append(
                    {"seed": seed, "proxy": proxy, "weights": weights, "radius_share": default_share if weights == "radius" else None,
                     "selection": "random" if random else "facility location", "clean": clean, "clean_weighted": clean_w}
                )  # fmt: skip
        for share in SHARES:  # sensitivity of the radius rule
            if share == default_share:
                continue
            crust.RADIUS_SHARE = share
            try:
                idx, w = select_coreset(g, noisy, fraction=FRACTION, weights="radius", seed=seed)
            finally:
                crust.RADIUS_SHARE = default_share
            clean, clean_w = shares(idx, w, flipped)
            rows.append(
                {"seed": seed, "proxy": proxy, "weights": "radius", "radius_share": share,
                 "selection": "facility location", "clean": clean, "clean_weighted": clean_w}
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="independent noise draws and inits")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # the recipe's setting for these small models
    t0 = time.perf_counter()
    rows = [r for s in range(args.seeds) for r in one_seed(s)]
    keys = sorted(
        {(r["proxy"], r["weights"], r["radius_share"] or 0.0, r["selection"]) for r in rows},
        key=lambda k: (k[3] != "facility location", k[0], k[1], k[2]),
    )
    table = []
    for proxy, weights, share, selection in keys:
        mine = [
            r
            for r in rows
            if (r["proxy"], r["weights"], r["radius_share"] or 0.0, r["selection"])
            == (proxy, weights, share, selection)
        ]
        table.append(
            {
                "proxy": proxy,
                "weights": weights,
                "radius_share": share if weights == "radius" else None,
                "selection": selection,
                "clean_mean": statistics.fmean(r["clean"] for r in mine),
                "clean_weighted_mean": statistics.fmean(r["clean_weighted"] for r in mine),
                "clean_weighted_seeds": [r["clean_weighted"] for r in mine],
            }
        )
    best = max(
        (t for t in table if t["selection"] == "facility location" and t["radius_share"] in (None, crust.RADIUS_SHARE)),
        key=lambda t: t["clean_weighted_mean"],
    )  # fmt: skip
    out = {
        "benchmark": "crust_purity",
        "created": now_iso(),
        "machine": machine_info(),
        "setting": {
            "data": "digits (1,438 training images)",
            "noise": "symmetric 50%",
            "model": "MLP 64-256-256-10",
            "warmup_epochs": WARMUP,
            "fraction": FRACTION,
            "seeds": args.seeds,
            "default_radius_share": crust.RADIUS_SHARE,
        },
        "table": table,
        "best_default_combination": {k: best[k] for k in ("proxy", "weights")},
        "rows": rows,
        "seconds": time.perf_counter() - t0,
    }
    path = write_json_atomic(RESULTS / "crust_purity.json", out)
    print(
        f"\nCRUST coreset purity after warm-up, digits, symmetric 50% noise, {args.seeds} seed(s)"
    )
    print(
        f"{'selection':<18} {'proxy':<7} {'weights':<8} {'radius':>6} {'clean':>7} {'weighted':>9}"
    )
    for t in table:
        r = f"{t['radius_share']:.2f}" if t["radius_share"] is not None else "-"
        print(
            f"{t['selection']:<18} {t['proxy']:<7} {t['weights']:<8} {r:>6} "
            f"{t['clean_mean']:>7.3f} {t['clean_weighted_mean']:>9.3f}"
        )
    print(f"cleanest weighted coreset at the default radius: {best['proxy']} + {best['weights']}")
    print(f"written to {path} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
