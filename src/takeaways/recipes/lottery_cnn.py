"""lottery-cnn: lottery tickets in a small CNN on MNIST, against random pruning and one-shot pruning.

Takeaway 3 (Chen et al., arXiv:2007.12223) shows its machinery on BERT; this recipe
runs the same machinery on images, fast. For each seed:

1. IMP (``find_ticket``): train the dense SmallCNN, prune the smallest conv weights
   globally, rewind the survivors to the starting weights, train again, for every
   sparsity of the schedule. The run after each prune is the ticket's accuracy.
2. Random control: the starting weights under a mask with the same per-layer
   sparsity at random places (``ticket.random_like``), trained the same way.
3. One-shot magnitude pruning without rewinding: prune the trained dense model once
   to each sparsity and keep training it from the trained weights, same budget.

Every run has the same epochs, batch and learning-rate schedule; test accuracy is the
final epoch's. The images are average-pooled to 14x14 at the demo preset (4x fewer
conv FLOPs); the full preset keeps 28x28. Per-seed accuracies of every arm go into the
metrics, so ``judge`` compares the ticket with its random control paired over seeds, after
checking that the dense model is well above the majority class (computed from the data
alone by ``facts``, on the same training subset, so ``rejudge`` can add it to an older result).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from takeaways import data, nn, train
from takeaways.lottery import find_ticket
from takeaways.lottery.imp import SCHEDULES, sparsity_schedule, train_controls
from takeaways.lottery.metrics import by_sparsity
from takeaways.recipes import register_recipe, seed_range
from takeaways.results import (
    Check,
    Claim,
    Judgement,
    Result,
    Target,
    line_plot,
    mean_std,
    paired_diff,
    series,
)


@dataclass(frozen=True)
class LotteryCNNConfig:
    width: int = 16  # SmallCNN channels of the first block (2x in the later two)
    image_size: int = 14  # MNIST average-pooled to this side (28, 14 or 7)
    epochs: int = 4  # epochs of every training run: each IMP round, control and one-shot
    batch_size: int = 64  # global batch
    lr: float = 1e-2  # AdamW peak learning rate, cosine decay within each run
    schedule: str = "geometric"  # IMP schedule: geometric (rate of the remaining) or linear
    rate: float = 0.5  # pruned per round (geometric 0.5: 50%, 75%, 87.5%, ...)
    rounds: int = 3  # pruning rounds; the sparsities checked
    scope: str = "global"  # global (one threshold, as the paper) or layer
    seeds: int = 1  # independent runs (init, data order, control masks); means reported
    seed: int = 0  # first seed
    max_train: int | None = None  # use at most this many training images (None = all 4,000)
    time_budget_s: float = (
        60.0  # budget of the preset in CPU seconds (one thread: its idle wall time)
    )

    def validate(self) -> None:
        if self.image_size not in (7, 14, 28):
            raise ValueError(
                f"image_size must be 28, 14 or 7 (pooled MNIST), got {self.image_size}"
            )
        if min(self.width, self.epochs, self.batch_size, self.seeds) < 1:
            raise ValueError("width, epochs, batch_size and seeds must be >= 1")
        if self.max_train is not None and self.max_train < 1:
            raise ValueError(f"max_train must be >= 1, or none for all; got {self.max_train}")
        if self.schedule not in SCHEDULES or self.scope not in ("global", "layer"):
            raise ValueError(f"schedule must be one of {SCHEDULES} and scope global or layer")
        sparsity_schedule(self.schedule, self.rate, self.rounds)  # raises on a bad rate / rounds


def _images(split: data.Split, size: int) -> torch.Tensor:
    x = torch.as_tensor(split.x)  # (N, 1, 28, 28)
    return x if size == 28 else F.avg_pool2d(x, 28 // size)  # (N, 1, size, size)


def _data(cfg: LotteryCNNConfig) -> tuple[tuple, tuple]:
    """The (pooled) MNIST training subset and test split of this config: (x, y) pairs."""
    mnist = data.load("mnist")
    x, y = _images(mnist.train, cfg.image_size), torch.as_tensor(mnist.train.y)
    if cfg.max_train is not None and len(x) > cfg.max_train:
        keep = torch.as_tensor(np.random.default_rng(0).permutation(len(x))[: cfg.max_train])
        x, y = x[keep], y[keep]
    return (x, y), (_images(mnist.test, cfg.image_size), torch.as_tensor(mnist.test.y))


def facts(cfg: LotteryCNNConfig) -> dict[str, Any]:
    """Data-only metrics: the test accuracy of always predicting the training majority class."""
    (_, y), (_, test_y) = _data(cfg)
    return {"majority-class test accuracy": train.majority_accuracy(y, test_y)}


def _one_seed(cfg: LotteryCNNConfig, train_xy: tuple, test_xy: tuple, seed: int) -> dict[str, Any]:
    def fit(model: torch.nn.Module) -> None:
        train.fit(
            model, train_xy, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
            seed=seed, progress=False,
        )  # fmt: skip

    def acc(model: torch.nn.Module) -> float:
        return train.evaluate(model, test_xy)["accuracy"]

    train.seed_everything(seed)
    model = nn.SmallCNN(width=cfg.width, image_size=cfg.image_size)
    start = copy.deepcopy(model.state_dict())
    dense: dict[str, Any] = {}

    def score(m: torch.nn.Module) -> float:
        if not dense:  # round 0 is the dense run: keep it for one-shot pruning
            dense["state"] = copy.deepcopy(m.state_dict())
        return acc(m)

    ticket = find_ticket(
        model, fit, score, schedule=cfg.schedule, rate=cfg.rate, rounds=cfg.rounds, scope=cfg.scope
    )
    # the controls: starting weights under random masks of the same per-layer sparsity, and
    # the trained dense model pruned once to each sparsity, trained on (no rewind)
    ctl = train_controls(
        model, ticket, range(1, cfg.rounds + 1), fit, acc, start=start, trained=dense["state"],
        seed=lambda r: seed + 1000 * r, scope=cfg.scope,
    )  # fmt: skip
    out: dict[str, Any] = {
        "sparsity": [h["sparsity"] for h in ticket.history[1:]],
        "dense": ticket.history[0]["score"],
        "imp": [h["score"] for h in ticket.history[1:]],
        "random": list(ctl["random"].values()),
        "oneshot": list(ctl["one-shot"].values()),
    }
    return out


CLAIM = Claim(
    text=(
        "Iterative magnitude pruning with rewinding finds subnetworks of pre-trained BERT "
        "at 40% to 90% sparsity that train to the full model's accuracy, where random "
        "pruning at the same sparsity does not"
    ),
    value=0.9,
    source="Chen et al., NeurIPS 2020, arXiv:2007.12223 (abstract; Table 2)",
)
ARMS = {
    "IMP": ("IMP ticket accuracy", "IMP ticket (rewound)"),
    "random": ("random control accuracy", "random pruning, same layer sparsity"),
    "one-shot": ("one-shot (no rewind) accuracy", "one-shot magnitude, no rewind"),
}


def _plot(cfg: LotteryCNNConfig, m: dict[str, Any]) -> dict[str, Any]:
    per_seed = m.get("per seed", {})
    lines = []
    for arm, (prefix, label) in ARMS.items():
        acc = by_sparsity(m, prefix)
        err = [mean_std(per_seed.get(f"{arm} at {p:.1f}%", [0.0]))[1] for p in acc]
        lines.append(series(label, list(acc), list(acc.values()), err if cfg.seeds > 1 else None))
    dense, top = m["dense test accuracy"], max(by_sparsity(m, ARMS["IMP"][0]))
    lines.append(series("dense", [0.0, top], [dense, dense]))
    return line_plot(
        f"MNIST SmallCNN (width {cfg.width}, {cfg.image_size}x{cfg.image_size}): test accuracy vs sparsity",
        "sparsity of the conv weights (%)",
        f"test accuracy (mean ± std of {cfg.seeds} seed(s))",
        lines,
    )


def _notes(cfg: LotteryCNNConfig, m: dict[str, Any]) -> str:
    imp, rnd, one = (by_sparsity(m, ARMS[a][0]) for a in ARMS)
    rows = "; ".join(
        f"{p:.1f}%: IMP {imp[p]:.3f}, random {rnd[p]:.3f}, one-shot {one[p]:.3f}" for p in imp
    )
    return (
        f"Dense SmallCNN: {m['dense test accuracy']:.3f} test accuracy. {rows}. Every run trains {cfg.epochs} "
        f"epoch(s) with the same schedule; one-shot pruning keeps training from the trained dense "
        f"weights, so it has seen {cfg.epochs} more epoch(s) than a ticket. The conv weights are "
        "pruned; biases and the linear head stay dense. Means over "
        f"{cfg.seeds} seed(s); a single seed at demo scale moves by about a point."
    )


def judge(m: dict[str, Any], cfg: LotteryCNNConfig) -> Judgement:
    """Checks: the dense model learned (above the majority class) and every arm has per-seed
    values; IMP vs random is a paired comparison over seeds at the highest matching sparsity."""
    dense, majority = m["dense test accuracy"], m.get("majority-class test accuracy")
    imp, rnd = by_sparsity(m, ARMS["IMP"][0]), by_sparsity(m, ARMS["random"][0])
    s_best = m["highest sparsity within 1 point of dense"]
    at = min(imp, key=lambda p: abs(p - 100 * s_best)) if s_best > 0 else min(imp)
    per_seed = m.get("per seed", {})
    a, b = per_seed.get(f"IMP at {at:.1f}%"), per_seed.get(f"random at {at:.1f}%")
    name = "dense CNN beats the majority class by >= 20 points"
    checks = [Check.above(name, dense, majority, 0.2, "majority-class accuracy")]
    name = f"per-seed accuracies of the IMP ticket and the random control at {at:.1f}%"
    if a is None or b is None:
        checks.append(Check.missing(name, "per-seed values"))
    else:
        checks.append(
            Check(
                name, len(a) == len(b) == cfg.seeds, f"{len(a)} and {len(b)} of {cfg.seeds} seeds"
            )
        )
    gap = f"IMP ticket minus random control at {at:.1f}% (points)"
    if a is not None and b is not None:
        t_gap = Target.beats(gap, paired_diff([100 * v for v in a], [100 * v for v in b]), goal=2.0)
    else:
        t_gap = Target.check(gap, 100 * (imp[at] - rnd[at]), ">=", 2.0)
    cpu = m["seconds"]["CPU (one thread)"]
    targets = [
        Target.check("highest IMP sparsity within 1 point of dense accuracy", s_best, ">=", 0.5),
        t_gap,
        # CPU time of the one-threaded run: what it takes on idle cores, whatever else shares them
        Target.check(
            "CPU seconds of this preset (one thread: its wall time on idle cores)", cpu, "<=",
            cfg.time_budget_s,
        ),
    ]  # fmt: skip
    finding = (
        f"IMP tickets of a small MNIST CNN stayed within 1 point of the dense accuracy ({dense:.3f}) "
        f"up to {s_best:.1%} sparsity, and at {at:.1f}% the ticket minus its random control was "
        f"{t_gap.measured:+.1f} points over {cfg.seeds} seed(s)."
    )
    if t_gap.met and s_best >= 0.5:
        advice = (
            f"Use IMP with rewinding when you want a {s_best:.0%}-sparse CNN at dense accuracy and can "
            f"afford {cfg.rounds + 1} trainings; random masks at that sparsity do worse."
        )
    else:
        advice = (
            "Do not expect a ticket to beat random pruning by 2 points at this scale; use IMP when "
            "the pruned model must match the dense one at high sparsity and seeds confirm the gap."
        )
    return Judgement(checks, targets, finding, advice)


@register_recipe(
    "lottery-cnn",
    config=LotteryCNNConfig,
    presets={
        "smoke": {"max_train": 256, "epochs": 1, "rounds": 1, "width": 8, "time_budget_s": 30.0},
        "demo": {},
        "full": {
            "image_size": 28,
            "width": 32,
            "epochs": 8,
            "rate": 0.36,
            "rounds": 6,
            "seeds": 3,
            "time_budget_s": 1800.0,
        },
    },  # fmt: skip
    takeaway=3,
    summary="IMP tickets in a small MNIST CNN vs random pruning and one-shot pruning, by sparsity",
    judge=judge,
    facts=facts,
    threads=1,  # small models: intra-op threads cost more than they give on shared cores
)
def run(cfg: LotteryCNNConfig) -> Result:
    t0, cpu0 = time.perf_counter(), time.process_time()
    (x, y), test_xy = _data(cfg)
    runs = [_one_seed(cfg, (x, y), test_xy, s) for s in seed_range(cfg)]

    sparsity = runs[0]["sparsity"]
    mean = {
        k: [mean_std([r[k][i] for r in runs])[0] for i in range(len(sparsity))]
        for k in ("imp", "random", "oneshot")
    }
    dense = mean_std([r["dense"] for r in runs])[0]
    # the highest sparsity whose ticket is within 1 point of dense (else 0)
    matching = [i for i, a in enumerate(mean["imp"]) if a >= dense - 0.01]
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0

    metrics: dict[str, Any] = {"dense test accuracy": dense}
    for i, s in enumerate(sparsity):
        tag = f"{100 * s:.1f}%"
        metrics[f"IMP ticket accuracy at {tag}"] = mean["imp"][i]
        metrics[f"random control accuracy at {tag}"] = mean["random"][i]
        metrics[f"one-shot (no rewind) accuracy at {tag}"] = mean["oneshot"][i]
    metrics["highest sparsity within 1 point of dense"] = (
        sparsity[max(matching)] if matching else 0.0
    )
    metrics["seconds"] = {"wall": wall, "CPU (one thread)": cpu}
    metrics["per seed"] = {"dense": [r["dense"] for r in runs]}
    for i, s in enumerate(sparsity):
        for arm, key in (("IMP", "imp"), ("random", "random"), ("one-shot", "oneshot")):
            metrics["per seed"][f"{arm} at {100 * s:.1f}%"] = [r[key][i] for r in runs]
    return Result(
        recipe="lottery-cnn", claim=CLAIM, metrics=metrics, plots=[_plot(cfg, metrics)],
        notes=_notes(cfg, metrics),
    )  # fmt: skip
