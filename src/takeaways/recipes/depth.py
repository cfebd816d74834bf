"""depth: character-level LM loss vs depth at fixed TOTAL parameter budgets, rate tuned per shape.

Levine et al. (arXiv 2006.12467) predict a depth threshold ``L_th = log3(width)``: below it,
deepening a self-attention network at a fixed size pays off strongly; past it, depth and width
help about equally. So at a fixed size the best depth should sit near the threshold, and rise
(slowly) with the size.

Per budget of total parameters (embeddings, blocks and LM head, ``takeaways.depth.
shape_for_total``), this sweeps depth from 1 past the threshold, solving the width. The task is
next-token prediction on ``wiki`` at character level: the 128-piece WordPiece is wiki's alphabet
(451 symbols, a word-initial and a ``##`` form of each), and only the ``vocab`` most frequent
symbols are kept (``sweep.frequent_ids``; 96 cover 99.93% of training symbols), so the embedding
is a small part of even the smallest budget. Every shape trains ``steps`` steps of the same data;
its learning rate is chosen among ``lr_grid`` multiples of a muP-style ``lr * lr_width / width``
on a validation split (the first ``val_rows`` test windows, seed 0, runs of ``sweep_steps``),
the grid extended by one factor when the best rate is at its edge; then ``seeds`` seeds at that
rate are scored on the following ``eval_rows`` test windows, disjoint from the validation split.
At the largest budget depth 1 and the best deeper depth, the comparison the verdict rests on,
get ``top_seeds`` seeds.

``judge`` checks (each can fail): every scored run left the unigram loss by ``UNIGRAM_MARGIN``;
every scored run's validation curve flattened (the last ``FLAT_TAIL`` of the steps improved the
loss by under ``FLAT_FRACTION`` of the improvement since the first curve point); every shape's
chosen rate has a tried rate on both sides; at the largest budget, depth 1 vs the best deeper
depth is resolved beyond the seed spread, as an order (the paired t-interval excludes 0) or as
a tie (the interval lies inside +-``tie_margin``: the loss ``TIE_SIZE`` x the parameters buys
depth 1, from the slope of its loss on log(budget)); and that outcome is not a training-length
artifact: retrained ``long_check`` times as long (seed 0, chosen rates), an order keeps its
sign and at least ``LONG_KEEP`` of its size, a tie stays inside the margin. Why a tie margin:
the paper's depth efficiency below log3(width) would make a deeper shape there worth many
times depth 1's parameters, so an interval inside what 25% more parameters buy answers the
claim, where the order of two shapes that close would take ever more seeds to settle (an
11-seed 45K pilot at 12,000 steps put depth 2 ahead by +0.008 [-0.001, +0.017] nats). A curve
under cosine decay flattens by itself, so the flattened check alone cannot tell a converged
order from one that longer training closes.
Pilots (seed 0, depths 1 and 2 at the base rate; scored loss) show how long is long enough: at
225K total parameters, 800 -> 2,400 steps cut depth 1's lead over depth 2 from 0.073 to 0.008
nats; at 90K, 2,000 -> 6,000 steps turned a 0.034 lead into a 0.009 deficit. Bigger models
need more steps before their order settles, and the narrowest shapes (width 15 or less) never
flatten, so within one CPU hour the full preset sweeps 20K-45K parameters for 5,000 steps
(the preset's comment gives the pilots behind each number).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch

from takeaways import data, train
from takeaways.depth import depth_threshold, parameter_count, shape_for_total
from takeaways.depth.sweep import (
    best_deeper,
    frequent_ids,
    lm_task,
    shape_lm,
    summarise_sweep,
    tail_improvement,
)
from takeaways.nn.mlm import pack_rows, unigram_loss
from takeaways.recipes import register_recipe, seed_range
from takeaways.results import (
    Check,
    Claim,
    Judgement,
    Paired,
    Result,
    Target,
    line_plot,
    mean_std,
    paired_diff,
    series,
)

UNIGRAM_MARGIN = 0.25  # nats a scored run's loss must lie below the unigram loss
FLAT_TAIL = 0.2  # the last fraction of the steps whose improvement decides "flattened"
FLAT_FRACTION = 0.1  # ... must be under this fraction of the drop since the first point (step/10)
LONG_KEEP = 0.5  # share of the seed-0 gap the longer retraining must keep (same sign)
TIE_SIZE = 1.25  # a tie: two shapes differ by less than what this x the parameters buys depth 1
CURVE_POINTS = 10  # validation evaluations along each run (at 1/10, 2/10, ... of the steps)


@dataclass(frozen=True)
class DepthConfig:
    budgets: tuple[int, ...] = (20_000,)  # total parameters (embeddings + blocks + head) per sweep
    depths: tuple[int, ...] = (1, 2, 4)  # depths swept at every budget (width solved)
    steps: int = 200  # optimizer steps per run, equal for all
    objective: Literal["clm", "mlm"] = "clm"  # next-token LM (causal) or BERT's masked LM
    batch_size: int = 32  # sequences per step
    seq_len: int = 64  # symbols per sequence (consecutive wiki text, documents joined by [SEP])
    pieces: int = 128  # WordPiece size asked for; 128 leaves wiki's 451-symbol alphabet
    vocab: int = 96  # most frequent training symbols kept; the rest become [UNK]
    lr: float = 1e-2  # AdamW peak rate at width lr_width; warm-up then cosine decay to 0
    lr_width: int | None = 46  # shapes' base rate is lr * lr_width / width (muP); None: lr
    lr_grid: tuple[float, ...] = (1.0,)  # multiples of the base rate tried (seed 0, validation)
    lr_extend: int = 1  # times the grid is extended by its spacing when the best is at an edge
    sweep_steps: int | None = None  # steps of the seed-0 rate-sweep runs (None: ``steps``)
    long_check: int = 0  # largest budget: depth 1 and best deeper retrained x this many steps
    warmup: float = 0.1  # fraction of the steps spent warming up
    mask_rate: float = 0.15  # mlm only: fraction of each sequence predicted (80/10/10)
    val_rows: int = 256  # test windows that choose the rate and draw the curves
    eval_rows: int = 1024  # the following test windows, which score the chosen rate's seeds
    seeds: int = 1  # independent runs per shape at its chosen rate (init, data order)
    top_seeds: int = 0  # largest budget: depth 1 and the best deeper depth get this many seeds
    seed: int = 0  # first seed; the rate sweep uses it; mlm masks are drawn from it too
    threads: int = 1  # torch threads (tiny matmuls: 1 avoids sync overhead)

    def validate(self) -> None:
        if not self.budgets or not self.depths:
            raise ValueError("budgets and depths must be non-empty, e.g. --set depths=1,2,4")
        if min(self.budgets) < 5000:
            raise ValueError("each budget must be >= 5000 total parameters")
        if min(self.depths) < 1:
            raise ValueError("depths must be >= 1")
        if min(self.steps, self.batch_size, self.seeds, self.eval_rows, self.threads) < 1:
            raise ValueError("steps, batch_size, seeds, eval_rows and threads must be >= 1")
        if self.val_rows < 1 or self.lr_extend < 0 or self.long_check < 0 or self.top_seeds < 0:
            raise ValueError("val_rows must be >= 1, lr_extend, long_check and top_seeds >= 0")
        if self.sweep_steps is not None and self.sweep_steps < 1:
            raise ValueError("sweep_steps must be >= 1, or None to sweep at the scored steps")
        if self.seq_len < 8 or self.vocab < 16 or self.pieces < 10:
            raise ValueError("seq_len must be >= 8, vocab >= 16 and pieces >= 10")
        if not 0.0 < self.mask_rate <= 1.0:
            raise ValueError("mask_rate must be in (0, 1]")
        if self.lr <= 0 or not self.lr_grid or any(m <= 0 for m in self.lr_grid):
            raise ValueError("lr and every lr_grid factor must be > 0")
        if self.lr_width is not None and self.lr_width < 1:
            raise ValueError("lr_width must be >= 1, or None for one rate for every shape")


# ----------------------------------------------------------------------------- training


def _train_one(cfg, vocab, sets, width, depth, heads, lr, seed, steps=None) -> dict[str, Any]:
    """Train one shape for ``steps`` (default ``cfg.steps``): validation curve, final
    validation and scoring loss."""
    train_set, val_set, score_set = sets
    n_steps = steps or cfg.steps
    train.seed_everything(seed)
    model = shape_lm(vocab, width, depth, heads, max_len=cfg.seq_len, objective=cfg.objective)
    every = max(1, n_steps // CURVE_POINTS)
    curve: list[tuple[int, float]] = []

    def record(info: train.BatchInfo) -> None:  # the curve, off nothing but wall time
        if info.step % every == 0 or info.step == n_steps:
            curve.append((info.step, train.evaluate(model, val_set, batch_size=256)["loss"]))

    epochs = math.ceil(n_steps * cfg.batch_size / len(train_set[1]))  # enough for the steps
    loop = {"epochs": epochs, "max_steps": n_steps, "batch_size": cfg.batch_size}
    desc = f"width {width} depth {depth} lr {lr:.2g} seed {seed}"
    t0 = time.process_time()
    train.fit(model, train_set, lr=lr, warmup=cfg.warmup, seed=seed, desc=desc, hooks=[record],
              **loop)  # fmt: skip
    cpu = time.process_time() - t0
    return {
        "val": curve[-1][1],
        "score": train.evaluate(model, score_set, batch_size=256)["loss"],
        "curve": curve,
        "cpu_s": cpu,
        "total_params": sum(p.numel() for p in model.parameters()),
    }


def _lr_sweep(cfg: DepthConfig, train_one, width: int, depth: int, heads: int, base: float):
    """Seed-0 runs of ``sweep_steps`` at ``lr_grid`` x ``base``, extended past an edge that
    holds the best."""
    factors = sorted(set(cfg.lr_grid))
    spacing = factors[1] / factors[0] if len(factors) > 1 else 3.0
    train_one = partial(train_one, steps=cfg.sweep_steps or cfg.steps)
    runs = {f: train_one(width, depth, heads, f * base, cfg.seed) for f in factors}
    for _ in range(cfg.lr_extend if len(factors) > 1 else 0):
        best = min(runs, key=lambda f: runs[f]["val"])
        if best not in (min(runs), max(runs)):
            break
        f = best / spacing if best == min(runs) else best * spacing
        runs[f] = train_one(width, depth, heads, f * base, cfg.seed)
    return runs


def _shape_row(cfg: DepthConfig, train_one, budget: int, depth: int) -> dict[str, Any]:
    """One (budget, depth) shape: its size, the rate sweep, and its seeds at the chosen rate."""
    width, heads, total = shape_for_total(budget, depth, vocab=cfg.vocab, max_len=cfg.seq_len)
    base = cfg.lr * cfg.lr_width / width if cfg.lr_width else cfg.lr  # muP: Adam's rate ~ 1/width
    sweep = _lr_sweep(cfg, train_one, width, depth, heads, base)
    factor = min(sweep, key=lambda f: sweep[f]["val"])
    resweep = cfg.sweep_steps not in (None, cfg.steps)  # seed 0 is scored at ``steps`` too
    seeds = seed_range(cfg) if resweep else seed_range(cfg)[1:]
    runs = [train_one(width, depth, heads, factor * base, s) for s in seeds]
    runs = runs if resweep else [sweep[factor], *runs]
    assert runs[0]["total_params"] == total  # the solver's count is the model's
    sweep_cpu = sum(r["cpu_s"] for r in sweep.values()) - (0 if resweep else runs[0]["cpu_s"])
    row = {
        "width": width,
        "heads": heads,
        "total_params": total,
        "layer_params": parameter_count(depth, width, vocab=0, max_len=0),
        "threshold": depth_threshold(width),
        "base_lr": base,
        "lr_sweep": {f"{f:.4g}": sweep[f]["val"] for f in sorted(sweep)},
        "lr_factor": factor,
        "lr": factor * base,
        "lr_at_edge": len(sweep) < 3 or factor in (min(sweep), max(sweep)),
        "lr_sweep_steps": cfg.sweep_steps or cfg.steps,
        "val_loss_per_seed": [],
        "curves": [],
        "flat_per_seed": [],
        "cpu_s": sweep_cpu,
    }
    return _add_seeds(row, runs)


def _add_seeds(row: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Append scored runs (the next seeds, in order) to a shape's row and redo its statistics."""
    row["val_loss_per_seed"] += [r["score"] for r in runs]
    row["curves"] += [r["curve"] for r in runs]
    row["flat_per_seed"] += [tail_improvement(r["curve"], FLAT_TAIL) for r in runs]
    row["cpu_s"] += sum(r["cpu_s"] for r in runs)
    losses = row["val_loss_per_seed"]
    row["val_loss"], row["val_loss_std"] = mean_std(losses)
    row["val_loss_range"] = max(losses) - min(losses)
    return row


# ----------------------------------------------------------------------------- judge


def _rows(m: dict, budget: str) -> dict[int, dict]:
    return {int(L): r for L, r in m["sweep"][budget].items()}


def _seeds(r: dict) -> list[float]:
    return [math.nan if x is None else x for x in r["val_loss_per_seed"]]


def _paired(a: list[float], b: list[float]) -> Paired:
    """``a - b`` paired over the seeds both have (shapes may have been given more seeds)."""
    n = min(len(a), len(b))
    return paired_diff(a[:n], b[:n])


def depth_vs_best_deeper(m: dict, budget: str) -> tuple[int, int | None, Paired]:
    """(shallowest depth, best deeper depth, shallowest-minus-best-deeper paired over seeds)."""
    rows = _rows(m, budget)
    shallow, rival = min(rows), best_deeper(rows)
    return shallow, rival, _paired(_seeds(rows[shallow]), _seeds(rows[rival or shallow]))


def tie_margin(m: dict) -> tuple[float, str]:
    """(margin in nats, how it was read): the loss ``TIE_SIZE`` x more parameters buys the
    shallowest shape, from the least-squares slope of its mean loss on log(budget) over every
    budget (nan with one budget, or when the shallowest shape did not improve with size)."""
    budgets = sorted(m["sweep"], key=int)
    if len(budgets) < 2:
        return math.nan, "one budget: no size effect to measure a tie against"
    shallow = min(_rows(m, budgets[-1]))
    x = [math.log(int(b)) for b in budgets]
    y = [_rows(m, b)[shallow]["val_loss"] for b in budgets]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    slope = sum((u - mx) * (v - my) for u, v in zip(x, y)) / sum((u - mx) ** 2 for u in x)
    margin = -slope * math.log(TIE_SIZE)
    how = (
        f"what {TIE_SIZE:g}x the parameters buys depth {shallow}, whose loss fell "
        f"{-slope * math.log(2):.3f} nats per doubling of the budget from {int(budgets[0]):,} "
        f"to {int(budgets[-1]):,}"
    )
    return (margin if margin > 0 else math.nan), how


def _tied(diff: Paired, margin: float) -> bool:
    """The interval lies inside (-margin, margin): the two shapes are equivalent at this size."""
    return diff.n >= 2 and -margin < diff.lo and diff.hi < margin  # False for a nan margin


def judge(m: dict, cfg: DepthConfig) -> Judgement:
    """Checks on every run and shape; targets: a deeper depth beats depth 1 at every budget
    (paired), the best depth rises with the budget, and reaches 0.75x log3(width) at the largest.

    The comparison at the largest budget is resolved either way: an order (the paired interval
    excludes 0) or a tie (the interval lies inside +-``tie_margin``, the loss ``TIE_SIZE`` x the
    parameters buys depth 1). The paper's claim, depth efficiency below log3(width), predicts a
    deeper shape worth many times depth 1's size there, so a tie bounded that tightly is a
    negative answer, where an interval that is neither is seed noise.
    """
    budgets = sorted(m["sweep"], key=int)
    top = budgets[-1]
    shallow, rival, diff = depth_vs_best_deeper(m, top)
    margin, how = tie_margin(m)
    resolved = (
        f"at {int(top):,}: depth-{shallow} minus depth-{rival} loss {diff}; resolved when the "
        f"paired 95% t-interval excludes 0 (an order) or lies inside ±{margin:.4f} nats (a tie; "
        f"{how}), else the order (and the best depth) is seed noise"
    )
    spread = "depth 1 vs the best deeper depth resolved beyond the seed spread (order or tie)"
    checks = [
        _unigram_check(m),
        _flat_check(m),
        _bracket_check(m),
        Check(spread, diff.excludes(0.0) or _tied(diff, margin), resolved),
        _long_check(m, top, shallow, rival, margin if _tied(diff, margin) else None),
    ]
    targets = []
    for b in budgets:
        s, r, d = depth_vs_best_deeper(m, b)
        name = f"{int(b):,} params: depth-{s} loss minus depth-{r} (best deeper), paired (nats)"
        targets.append(Target.beats(name, d, goal=0.0, op=">"))
    best = [m["summary"][b]["best_depth"] for b in budgets]
    rise = "best depth at the largest budget minus at the smallest"
    targets.append(
        Target.check(f"{rise} ({' -> '.join(map(str, best))})", best[-1] - best[0], ">", 0)
    )
    s = m["summary"][top]
    to_threshold = s["best_depth"] / (s["threshold_depth"] or math.nan)
    over = "largest budget: best depth over the depth where depth = log3(width)"
    targets.append(Target.check(over, to_threshold, ">=", 0.75))
    return Judgement(
        checks, targets, *_finding_advice(m, cfg, budgets, diff, rival, checks, margin)
    )


def _scored_runs(m: dict, key: str):
    for b, rows in m["sweep"].items():
        for L, r in rows.items():
            for i, v in enumerate(r.get(key) or [None]):
                yield (math.nan if v is None else v), int(b), int(L), i


def _unigram_check(m: dict) -> Check:
    unigram = m["unigram_val_loss"]
    runs = list(_scored_runs(m, "val_loss_per_seed"))
    worst, b, L, _ = max(runs, key=lambda r: math.inf if math.isnan(r[0]) else r[0])
    detail = (
        f"unigram loss {unigram:.3f} minus the worst of {len(runs)} scored runs' losses "
        f"({worst:.3f}, depth {L} at {b:,}); the margin is {UNIGRAM_MARGIN} nats"
    )
    return Check.that("every run left the unigram solution", unigram - worst, ">=",
                      UNIGRAM_MARGIN, detail)  # fmt: skip


def _flat_check(m: dict) -> Check:
    name = "every run's validation curve flattened"
    runs = list(_scored_runs(m, "flat_per_seed"))
    if any(r[3] is None for r in runs) or not runs:
        return Check.missing(name, "the curves")
    worst, b, L, i = max(runs, key=lambda r: math.inf if math.isnan(r[0]) else r[0])
    detail = (
        f"the largest share of a run's improvement (since its first curve point) made in its "
        f"last {FLAT_TAIL:.0%} of steps, over {len(runs)} scored runs (depth {L} at {b:,}, "
        f"seed index {i}); cosine decay slows the tail by itself, so this is necessary, not "
        "sufficient, for convergence"
    )
    return Check.that(name, worst, "<", FLAT_FRACTION, detail)


def _long_check(m: dict, top: str, shallow: int, rival: int | None, tie: float | None) -> Check:
    """Depth 1 minus the best deeper depth (seed 0) when trained longer keeps its sign and size;
    for a tie (``tie``: its margin), the longer runs' gap stays inside the margin."""
    name = "the order, or the tie, survives longer training"
    long = m.get("long_check") or {}
    if rival is None or any(str(L) not in long for L in (shallow, rival)):
        return Check.missing(name, f"the longer retraining of depths {shallow} and {rival}")
    rows = _rows(m, top)
    short = _seeds(rows[shallow])[0] - _seeds(rows[rival])[0]
    gap = long[str(shallow)] - long[str(rival)]
    detail = (
        f"depth {shallow} minus depth {rival} at seed 0: {short:+.3f} after the scored steps, "
        f"{gap:+.3f} after {long.get('steps', '?')} steps (losses {long[str(shallow)]:.3f}, "
        f"{long[str(rival)]:.3f}); "
    )
    if tie is not None:
        detail += f"the seeds tie, so the longer gap must stay inside the tie margin ±{tie:.4f}"
        return Check(name, abs(gap) < tie, detail)
    detail += f"same sign and at least {LONG_KEEP:.0%} of the size required"
    return Check(name, gap * short > 0 and abs(gap) >= LONG_KEEP * abs(short), detail)


def _bracket_check(m: dict) -> Check:
    edge = [f"depth {L} at {int(b):,}" for b, rows in m["sweep"].items() for L, r in rows.items()
            if r.get("lr_at_edge", True)]  # fmt: skip
    shapes = sum(len(rows) for rows in m["sweep"].values())
    detail = (
        f"{shapes - len(edge)} of {shapes} shapes' chosen rate has a tried rate on both sides"
        + (f"; at the edge: {', '.join(edge)}" if edge else "")
    )
    return Check("the rate grid brackets every shape's best rate", not edge, detail)


def _finding_advice(m: dict, cfg, budgets, diff: Paired, rival, checks, margin) -> tuple[str, str]:
    per = []
    for b in budgets:
        s, rows = m["summary"][b], _rows(m, b)
        best = s["best_depth"]
        per.append(
            f"{int(b):,}: depth {best} (width {rows[best]['width']}, "
            f"{rows[best]['val_loss']:.3f} ± {rows[best]['val_loss_std']:.3f}), "
            f"log3(width) = {s['threshold_depth']:.1f}"
        )
    top, shallow = int(budgets[-1]), min(_rows(m, budgets[-1]))
    finding = (
        f"Best depth per total-parameter budget after {cfg.steps} steps at each shape's tuned "
        f"rate: {'; '.join(per)} (unigram {m['unigram_val_loss']:.3f}). At {top:,}, depth "
        f"{shallow} minus depth {rival}: {diff}"
        + (f", inside the tie margin ±{margin:.4f}." if _tied(diff, margin) else ".")
    )
    long = m.get("long_check") or {}
    if rival is not None and all(str(L) in long for L in (shallow, rival)):
        finding += (
            f" Retrained {long['steps']:,} steps (seed 0), depth {shallow} minus depth {rival}: "
            f"{long[str(shallow)] - long[str(rival)]:+.3f}."
        )
    why = [
        "the runs stayed near the unigram loss",
        "the curves had not flattened",
        "a shape's best rate lies at the edge of the grid",
        "one seed: no spread to compare with"
        if diff.n < 2
        else "within the seed spread, and not bounded tightly enough to call a tie",
        "the order was not shown to survive longer training",
    ]
    failed = [w for w, c in zip(why, checks) if not c.passed]
    if failed:
        return finding, (
            f"Do not read a best depth off this sweep ({failed[0]}); use `takeaways depth` to "
            "place a shape against log3(width) and the paper's fit (measured at depths 6-48)."
        )
    # an order this small is a tie too, as the longer-training check reads it
    if _tied(diff, margin):
        return finding, (
            f"Do not expect extra depth to pay at {top:,} parameters: depth 1 and depth {rival} "
            f"differ by less than what {TIE_SIZE:g}x the parameters buys depth 1 (at tuned rates, "
            "and at seed 0 trained longer), though log3(width) puts both below the threshold; "
            "widen first at this size. log3(width) from `takeaways depth` marks where depth and "
            "width trade evenly in larger models, where the paper measured it."
        )
    if diff.lo > 0:
        return finding, (
            f"Use depth past 1 (about log3(width) layers) for a self-attention LM of about "
            f"{top:,} parameters, even at this size; past log3(width), widen instead."
        )
    return finding, (
        f"Do not expect extra depth to pay at {top:,} parameters and {cfg.steps} steps: depth 1 "
        "won at a tuned rate; log3(width) from `takeaways depth` marks where depth and width "
        "trade evenly in larger models, where the paper measured it."
    )


# ----------------------------------------------------------------------------- run


@register_recipe(
    "depth",
    config=DepthConfig,
    presets={
        "smoke": {
            "budgets": (20_000,),
            "depths": (1, 2),
            "steps": 3,
            "eval_rows": 32,
            "val_rows": 32,
        },  # fmt: skip
        "demo": {},
        # Budget: at most 60 CPU-minutes on one thread. Pilots (6,000 steps unless said) set it:
        # 5K shapes (widths 8-14) never flattened (depth 1: 0.14 of the drop in the last 20%
        # at 4,000 steps, 0.15 at 6,000) and 15K at depth 4 (width 15) gave 0.11, while 20K
        # and 30K at depth 4 (widths 18, 23) gave at most 0.074 over 3 seeds, so the budgets
        # start at 20K. At 45K the depth 1 - depth 2 gap is a few thousandths of a nat whose
        # sign moves with length (6 seeds at 6,000 steps: -0.009 [-0.027, +0.009], sd 0.017;
        # 11 seeds at 12,000: +0.008 [-0.001, +0.017]), so that comparison gets 12 seeds,
        # enough for a tie or an order (module docstring), and 2x-length retraining. Rates
        # are swept at 1,500 steps (measured cost of a 45K depth-1 / depth-2 / depth-4 step:
        # 10 / 12 / 16 ms, so sweeping at full length would not fit the hour with the seeds)
        "full": {
            "budgets": (20_000, 30_000, 45_000),
            "depths": (1, 2, 4),
            "steps": 5000,
            "sweep_steps": 1500,
            "lr_grid": (1 / 3, 1.0, 3.0),
            "seeds": 3,
            "top_seeds": 12,
            "long_check": 2,
        },
    },
    takeaway=10,
    summary="char-level LM loss vs depth at fixed total parameters, rate tuned per shape",
    judge=judge,
)
def run(cfg: DepthConfig) -> Result:
    torch.set_num_threads(cfg.threads)
    wiki = data.load("wiki")
    tok = data.train_wordpiece(wiki.train.x, vocab_size=cfg.pieces)
    rows_of = partial(pack_rows, tok, seq_len=cfg.seq_len + 1)  # one extra: the last target
    train_rows, test_rows = rows_of(wiki.train.x), rows_of(wiki.test.x)
    lookup = frequent_ids(train_rows, cfg.vocab, unk_id=tok.unk_id)
    vocab = int(lookup.max()) + 1
    if cfg.objective == "clm":
        split = lambda r: (r[:, :-1].contiguous(), r[:, 1:].contiguous())  # noqa: E731
        train_set = split(lookup[train_rows])
        val_set = split(lookup[test_rows[: cfg.val_rows]])
        score_set = split(lookup[test_rows[cfg.val_rows : cfg.val_rows + cfg.eval_rows]])
    else:  # masked LM over the WordPiece ids (no symbol cap: [MASK] must stay)
        vocab = tok.vocab_size
        task = partial(lm_task, tok, seq_len=cfg.seq_len, objective="mlm", mask_rate=cfg.mask_rate)
        train_set = task(wiki.train.x, min_rows=cfg.steps * cfg.batch_size, seed=cfg.seed)
        val_rows = cfg.val_rows + cfg.eval_rows
        held = task(wiki.test.x, max_rows=val_rows, seed=cfg.seed + 10_000)
        cut = lambda a, b: ({k: v[a:b] for k, v in held[0].items()}, held[1][a:b])  # noqa: E731
        val_set, score_set = cut(0, cfg.val_rows), cut(cfg.val_rows, val_rows)
    sets = (train_set, val_set, score_set)
    train_one = partial(_train_one, cfg, vocab, sets)
    budgets, depths = sorted(cfg.budgets), sorted(set(cfg.depths))

    # every depth at every budget: width solved for the total, rate tuned, seeds scored
    sweep = {b: {L: _shape_row(cfg, train_one, b, L) for L in depths} for b in budgets}
    # the comparison the verdict rests on gets more seeds: depth 1 and the best deeper depth
    # (by the ``seeds``-seed means) at the largest budget, at their chosen rates
    top_rows = sweep[budgets[-1]]
    for L in sorted({depths[0], best_deeper(top_rows) or depths[0]}):
        r, have = top_rows[L], len(top_rows[L]["val_loss_per_seed"])
        more = range(cfg.seed + have, cfg.seed + max(have, cfg.top_seeds))
        _add_seeds(r, [train_one(r["width"], L, r["heads"], r["lr"], s) for s in more])
    summary = {b: summarise_sweep(sweep[b], b) for b in budgets}
    for b in budgets:  # the threshold of the best shape itself (summarise_sweep's is the advisor's)
        summary[b]["threshold_depth"] = sweep[b][summary[b]["best_depth"]]["threshold"]
        summary[b]["tied_with_best"] = _tied_with_best(sweep[b], summary[b]["best_depth"])

    # is the order of depth 1 and the best deeper depth at the largest budget a length artifact?
    long_check: dict[str, Any] = {}
    if cfg.long_check:
        rows = sweep[budgets[-1]]
        long_check["steps"] = longer = cfg.steps * cfg.long_check
        for L in sorted({depths[0], best_deeper(rows) or depths[0]}):
            r = rows[L]
            run = train_one(r["width"], L, r["heads"], r["lr"], cfg.seed, steps=longer)
            long_check[str(L)], long_check[f"curve_{L}"] = run["score"], run["curve"]
            rows[L]["cpu_s"] += run["cpu_s"]

    unigram = unigram_loss(train_set[1], score_set[1], vocab)
    totals = [sweep[b][L]["total_params"] / b - 1 for b in budgets for L in depths]
    cpu = sum(sweep[b][L]["cpu_s"] for b in budgets for L in depths)
    metrics = {
        "sweep": {str(b): {str(L): sweep[b][L] for L in depths} for b in budgets},
        "summary": {str(b): summary[b] for b in budgets},
        "long_check": long_check,
        "vocab": vocab,
        "unk_rate": float((train_set[1] == lookup[tok.unk_id]).float().mean()),
        "train_sequences": len(train_set[1]),
        "val_sequences": len(val_set[1]),
        "score_sequences": len(score_set[1]),
        "unigram_val_loss": unigram,
        "train_tokens_per_run": cfg.steps * cfg.batch_size * cfg.seq_len,
        "epochs_per_run": cfg.steps * cfg.batch_size / len(train_set[1]),
        "max_total_params_error": max(totals, key=abs),
        "train_cpu_minutes": cpu / 60,
    }
    plots = _plots(cfg, sweep, summary, long_check)
    notes = _notes(cfg, vocab, cpu, metrics["epochs_per_run"])
    return Result("depth", CLAIM, metrics, plots=plots, notes=notes)


def _tied_with_best(rows: dict[int, dict], best: int) -> list[int]:
    """Depths whose paired interval against the best depth includes 0 (the best among them)."""
    out = []
    for L, r in rows.items():
        d = _paired(r["val_loss_per_seed"], rows[best]["val_loss_per_seed"])
        if L == best or not d.excludes(0.0):
            out.append(L)
    return sorted(out)


CLAIM = Claim(
    text=(
        "Self-attention is depth-efficient only below the threshold depth log3(width); past it "
        "depth and width help about equally. The paper's fitted optimum is much deeper than the "
        "threshold, e.g. width 30K (about 92 layers) at 1 trillion parameters"
    ),
    value=None,
    source=(
        "Levine et al., arXiv 2006.12467 (NeurIPS 2020; v3 'The Depth-to-Width Interplay in "
        "Self-Attention'): abstract; threshold log3(d_x) per the authors' summary post; 92 "
        "layers per the authors' blog"
    ),
)


def _plots(cfg: DepthConfig, sweep: dict, summary: dict, long_check: dict) -> list[dict]:
    """Loss vs depth per budget; best depth vs threshold per budget; curves at the largest
    (the sweep's, and the longer retraining's where there is one)."""
    budgets, task = list(sweep), "next-token LM" if cfg.objective == "clm" else "masked LM"
    by_depth = [
        series(f"{b:,} params", list(rows), *([r[k] for r in rows.values()] for k in _LOSS))
        for b, rows in sweep.items()
    ]
    pick = lambda key, bs: [summary[b][key] for b in bs]  # noqa: E731
    by_budget = [series(label, budgets, pick(key, budgets)) for label, key in _WHERE]
    if fitted := [b for b in budgets if summary[b]["fit_depth"]]:
        by_budget.append(series("paper's fit (extrapolated)", fitted, pick("fit_depth", fitted)))
    top = budgets[-1]
    curves = [
        series(f"depth {L} (width {r['width']})", *zip(*r["curves"][0]))
        for L, r in sweep[top].items()
    ]
    curves += [
        series(f"depth {L}, {long_check['steps']:,} steps", *zip(*long_check[f"curve_{L}"]))
        for L in sweep[top]
        if f"curve_{L}" in long_check
    ]
    loss_title = f"Validation {task} loss vs depth at fixed total parameters (tuned rates)"
    loss_y = "scoring-split cross-entropy (nats; band: std over the shape's seeds)"
    depth_x = "depth (width solved to keep the total)"
    return [
        line_plot(loss_title, depth_x, loss_y, by_depth, log_x=True, integer_x=True),
        line_plot(
            "Best depth per budget vs the threshold depth",
            "total parameters",
            "depth",
            by_budget,
            log_x=True,
        ),  # fmt: skip
        line_plot(
            f"Validation loss during training at {top:,} parameters (seed {cfg.seed}, chosen rate)",
            "step",
            "validation cross-entropy (nats)",
            curves,
        ),  # fmt: skip
    ]


_LOSS = ("val_loss", "val_loss_std")
_WHERE = [
    ("best depth", "best_depth"),
    ("deeper stops helping after", "stop_depth"),
    ("log3(width) of the best shape", "threshold_depth"),
]


def _notes(cfg: DepthConfig, vocab: int, cpu: float, epochs: float) -> str:
    task = "next-token LM" if cfg.objective == "clm" else "masked LM"
    grid = ", ".join(f"{f:.3g}" for f in sorted(cfg.lr_grid))
    return (
        f"Loss of a character-level {task} on wiki ({vocab} symbols; {cfg.steps} steps x "
        f"{cfg.batch_size} x {cfg.seq_len} symbols per run, {epochs:.2f} passes over the "
        f"training split). Total parameters (embeddings, blocks, LM head) are held within "
        f"half a width step of each budget. Each shape's rate is the best of {grid} x "
        f"{cfg.lr:g} x {cfg.lr_width}/width (muP's 1/width rule for Adam, arXiv 2203.03466), "
        f"extended by one step past an edge, chosen on {cfg.val_rows} test windows at seed "
        f"{cfg.seed} after {cfg.sweep_steps or cfg.steps} steps; {cfg.seeds} seed(s) at that "
        f"rate are scored on the next {cfg.eval_rows} windows"
        + (
            f" ({cfg.top_seeds} for depth 1 and the best deeper depth at the largest budget)"
            if cfg.top_seeds > cfg.seeds
            else ""
        )
        + f". Training took {cpu / 60:.1f} CPU-minutes on {cfg.threads} thread(s). It "
        "shows where, at these sizes and this training length, the loss at a fixed total size "
        "is lowest between depth 1 and past log3(width). It cannot show the double-exponential "
        "separation (the theory is about expressivity, not trained loss) or the paper's fitted "
        "optimum (fit on depths 6-48 at far larger sizes). The curves flatten partly because "
        "the cosine schedule decays the rate to 0."
    )
