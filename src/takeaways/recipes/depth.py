"""depth: validation loss vs depth at fixed parameter budgets, beside log3(width) and the fit.

Levine et al. (arXiv 2006.12467) predict a depth threshold ``L_th = log3(width)``: below it,
deepening a self-attention network at a fixed size pays off strongly; past it, depth and width
help about equally. Per budget of layer parameters (blocks and final norm), this sweeps depth
from 1 up past the threshold, the width solved by ``takeaways.depth.shape_for_budget``; every
shape trains the same steps on the same data and seeds (``takeaways.depth.sweep``). At the
largest budget, depth 1 and the best deeper depth are retrained at other learning rates
(``lr_check``) to see whether their order is a rate artifact.

The task is language modelling on ``wiki`` with a WordPiece vocabulary trained on it:
``objective="clm"`` (default) predicts the next token with the causal kernel; ``"mlm"`` is BERT's
masked LM, not the default because it stays at the unigram loss for the few hundred steps this
machine affords (6.45 vs a 6.47-nat unigram after 400 steps at 400K layer params, vocab 2048).

``judge`` checks: every run left the unigram loss by ``UNIGRAM_MARGIN``; depth 1 and the best
deeper depth differ beyond the seed spread (paired t-interval); the rate check keeps their order.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from takeaways import data, train
from takeaways.depth import depth_threshold, shape_for_budget
from takeaways.depth.sweep import best_deeper, lm_task, shape_lm, summarise_sweep
from takeaways.nn.mlm import unigram_loss
from takeaways.recipes import register_recipe, seed_range
from takeaways.results import (
    RERUN,
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

# Nats a run's validation loss must lie below the unigram loss (training token frequencies).
UNIGRAM_MARGIN = 0.1


@dataclass(frozen=True)
class DepthConfig:
    budgets: tuple[int, ...] = (50_000,)  # layer parameters held fixed per sweep
    depths: tuple[int, ...] = (1, 2, 4)  # depths swept at every budget (width solved)
    steps: int = 80  # optimizer steps per shape, equal for all
    objective: Literal["clm", "mlm"] = "clm"  # next-token LM (causal) or BERT's masked LM
    batch_size: int = 32  # sequences per step
    seq_len: int = 64  # tokens per sequence (consecutive wiki text, documents joined by [SEP])
    vocab: int = 1024  # WordPiece vocabulary trained on the wiki training split
    lr: float = 3e-3  # AdamW peak rate at width lr_width; warm-up then cosine decay to 0
    lr_width: int | None = 46  # shapes get lr * lr_width / width (muP-style); None: lr for all
    lr_check: tuple[float, ...] = ()  # largest budget: depth 1 and best deeper depth at lr x these
    warmup: float = 0.1  # fraction of the steps spent warming up
    mask_rate: float = 0.15  # mlm only: fraction of each sequence predicted (80/10/10)
    eval_rows: int = 256  # validation sequences from the wiki test split, the same for all
    seeds: int = 1  # independent runs per shape (init, data order); spread is reported
    seed: int = 0  # first seed; mlm masks are drawn from it too
    threads: int = 1  # torch threads during the sweep (tiny matmuls: 1 avoids sync overhead)

    def validate(self) -> None:
        if not self.budgets or not self.depths:
            raise ValueError("budgets and depths must be non-empty, e.g. --set depths=1,2,4")
        if min(self.budgets) < 1000:
            raise ValueError("each budget must be >= 1000 layer parameters")
        if min(self.depths) < 1:
            raise ValueError("depths must be >= 1")
        if min(self.steps, self.batch_size, self.seeds, self.eval_rows, self.threads) < 1:
            raise ValueError("steps, batch_size, seeds, eval_rows and threads must be >= 1")
        if self.seq_len < 8 or self.vocab < 64:
            raise ValueError("seq_len must be >= 8 and vocab >= 64")
        if not 0.0 < self.mask_rate <= 1.0:
            raise ValueError("mask_rate must be in (0, 1]")
        if self.lr <= 0 or any(m <= 0 for m in self.lr_check):
            raise ValueError("lr and lr_check factors must be > 0")
        if self.lr_width is not None and self.lr_width < 1:
            raise ValueError("lr_width must be >= 1, or None for one rate for every shape")


def _train_one(cfg, vocab, train_set, val_set, width, depth, heads, lr, seed):
    """Train one shape for ``cfg.steps``; return (validation loss, train seconds, total params)."""
    train.seed_everything(seed)
    model = shape_lm(vocab, width, depth, heads, max_len=cfg.seq_len, objective=cfg.objective)
    t0 = time.perf_counter()
    epochs = math.ceil(cfg.steps * cfg.batch_size / len(train_set[1]))  # enough for the steps
    steps = {"epochs": epochs, "max_steps": cfg.steps, "batch_size": cfg.batch_size}
    desc = f"width {width} depth {depth} lr {lr:.2g} seed {seed}"
    train.fit(model, train_set, lr=lr, warmup=cfg.warmup, seed=seed, desc=desc, **steps)
    seconds = time.perf_counter() - t0
    loss = train.evaluate(model, val_set, batch_size=128)["loss"]
    return loss, seconds, sum(p.numel() for p in model.parameters())


def _shape_row(cfg: DepthConfig, train_one, budget: int, depth: int) -> dict[str, Any]:
    """One (budget, depth) shape trained over the seeds: its size, rate and losses per seed."""
    width, heads, layer = shape_for_budget(budget, depth)
    lr = cfg.lr * cfg.lr_width / width if cfg.lr_width else cfg.lr  # muP: Adam's rate ~ 1/width
    runs = [train_one(width, depth, heads, lr, s) for s in seed_range(cfg)]
    losses = [r[0] for r in runs]
    mean, std = mean_std(losses)
    return {
        "width": width,
        "heads": heads,
        "lr": lr,
        "layer_params": layer,
        "total_params": runs[0][2],
        "threshold": depth_threshold(width),
        "val_loss": mean,
        "val_loss_std": std,
        "val_loss_range": max(losses) - min(losses),
        "val_loss_per_seed": losses,
        "train_seconds": mean_std([r[1] for r in runs])[0],
    }


def _rate_check(cfg: DepthConfig, train_one, rows: dict, depths: list[int]) -> dict:
    """Depth 1 and the best deeper depth retrained at lr x ``cfg.lr_check`` (first seed)."""
    out: dict[int, dict[float, float]] = {}
    for L in sorted({depths[0], best_deeper(rows) or depths[0]}):
        w, h, lr = rows[L]["width"], rows[L]["heads"], rows[L]["lr"]
        out[L] = {1.0: rows[L]["val_loss_per_seed"][0]}
        out[L].update({m: train_one(w, L, h, m * lr, cfg.seed)[0] for m in cfg.lr_check})
    return out


# ----------------------------------------------------------------------------- judge


def judge(m: dict, cfg: DepthConfig) -> Judgement:
    """The largest budget decides. Depth 1 (the shallowest) vs the deeper depth of lowest mean
    loss, paired over seeds: the best depth is past 1; depth 1 loses beyond the seed spread; the
    best depth reaches 0.75x log3(width); depth 1 still loses at each one's best checked rate.
    """
    top = max(m["sweep"], key=int)
    rows = {int(L): r for L, r in m["sweep"][top].items()}
    depths, s = sorted(rows), m["summary"][top]
    shallow, rival = depths[0], best_deeper(rows)
    nan = lambda x: math.nan if x is None else x  # noqa: E731  JSON stores nan as null
    seeds = {L: [nan(x) for x in r["val_loss_per_seed"]] for L, r in rows.items()}
    diff = paired_diff(seeds[shallow], seeds[rival or shallow])  # one depth: no comparison
    lr_gap, lr_check = _rate_gap(m, shallow, rival, diff)
    resolved = (
        f"at {int(top):,}: depth-{shallow} minus depth-{rival} loss {diff}; the paired 95% "
        "t-interval must exclude 0, else the order (and the best depth) is seed noise"
    )
    spread = "depth 1 vs the best deeper depth differ beyond the seed spread"
    checks = [_unigram_check(m), Check(spread, diff.excludes(0.0), resolved), lr_check]
    vs = f"depth-{shallow} loss minus the best deeper depth's (depth {rival})"
    at_rates = f"largest budget, each at its best of the checked rates: {vs}"
    over_threshold = "largest budget: best depth over the depth where depth"
    best, to_threshold = s["best_depth"], s["best_depth"] / (s["threshold_depth"] or math.nan)
    targets = [
        Target.check(f"best depth at the largest budget ({int(top):,} layer params)", best, ">", 1),
        Target.beats(f"largest budget: {vs}, paired over seeds (nats)", diff, goal=0.0, op=">"),
        Target.check(f"{over_threshold} = log3(width)", to_threshold, ">=", 0.75),
        Target.check(f"{at_rates} (seed {cfg.seed}, nats)", lr_gap, ">", 0.0),
    ]
    return Judgement(checks, targets, *_finding_advice(m, cfg, int(top), diff, rival, checks))


def _unigram_check(m: dict) -> Check:
    unigram = m["unigram_val_loss"]
    runs = [
        (math.inf if loss is None else loss, b, L)
        for b, rows in m["sweep"].items()
        for L, r in rows.items()
        for loss in r["val_loss_per_seed"]
    ]
    worst, b, L = max(runs)
    detail = (
        f"unigram loss {unigram:.3f} minus the worst of {len(runs)} runs' validation losses "
        f"({worst:.3f}, depth {L} at {int(b):,}); the margin is {UNIGRAM_MARGIN} nats"
    )
    name = "every run left the unigram solution"
    return Check.that(name, unigram - worst, ">=", UNIGRAM_MARGIN, detail)


def _rate_gap(m: dict, shallow: int, rival: int | None, diff: Paired):
    """(depth-1 minus best-deeper loss with each at its best checked rate, the check on it)."""
    name, lr = "the order is not a learning-rate artifact", m.get("lr_check", {})
    missing = [str(L) for L in (shallow, rival) if L is None or str(L) not in lr]
    if missing:
        return None, Check(name, False, f"rate check for depth {', '.join(missing)} {RERUN}")
    if max(len(lr[str(shallow)]), len(lr[str(rival)])) < 2:
        return None, Check(name, False, "no other learning rate was tried (lr_check is empty)")
    best = {L: min(lr[str(L)].items(), key=lambda kv: kv[1]) for L in (shallow, rival)}
    gap = best[shallow][1] - best[rival][1]
    detail = ", ".join(f"depth {L} best {v:.3f} at lr x{f}" for L, (f, v) in best.items())
    detail += f": gap {gap:+.3f} at the best rates vs {diff.mean:+.3f} (mean) at 1/width rates"
    return gap, Check(name, gap * diff.mean > 0, detail + "; the sign must be the same")


def _finding_advice(m: dict, cfg, top: int, diff: Paired, rival, checks) -> tuple[str, str]:
    s = m["summary"][str(top)]
    best, th = s["best_depth"], s["threshold_depth"] or math.nan
    loss = m["sweep"][str(top)][str(best)]["val_loss"]
    finding = (
        f"At {top:,} layer parameters and {cfg.steps} steps, depth {best} had the lowest "
        f"validation loss ({loss:.3f} nats, unigram {m['unigram_val_loss']:.3f}); depth 1 minus "
        f"depth {rival}: {diff}; depth = log3(width) at {th:.1f} layers."
    )
    why = [
        "the runs stayed near the unigram loss",
        "one seed: no spread to compare with" if diff.n < 2 else "within the seed spread",
        "the order may be a learning-rate artifact",
    ]
    failed = [w for w, c in zip(why, checks) if not c.passed]
    if failed:
        return finding, (
            f"Do not expect this sweep to rank depths at {top:,} layer parameters ({failed[0]}); "
            "use `takeaways depth` to place a shape against log3(width) and the paper's fit, "
            "which the paper measured at depths 6-48."
        )
    if diff.lo > 0:
        return finding, (
            f"Use depth past 1 (up to about log3(width) = {th:.1f} layers here) when a "
            f"self-attention model of about {top:,} layer parameters trains this briefly."
        )
    return finding, (
        f"Do not expect extra depth to pay at {top:,} layer parameters and {cfg.steps} steps; "
        "use log3(width) from `takeaways depth` as the depth past which depth and width trade "
        "evenly in larger, longer-trained models, where the paper measured it."
    )


# ----------------------------------------------------------------------------- run


@register_recipe(
    "depth",
    config=DepthConfig,
    presets={
        "smoke": {"budgets": (20_000,), "depths": (1, 2), "steps": 3, "eval_rows": 32},
        "demo": {},
        "full": {
            "budgets": (50_000, 200_000),
            "depths": (1, 2, 3, 4, 6, 8),
            "steps": 250,
            "lr_check": (1 / 3, 3.0),
            "seeds": 3,
        },
    },
    takeaway=10,
    summary="LM loss vs depth at fixed parameter budgets, beside log3(width) and the paper's fit",
    judge=judge,
)
def run(cfg: DepthConfig) -> Result:
    wiki = data.load("wiki")
    tok = data.train_wordpiece(wiki.train.x, vocab_size=cfg.vocab)
    task = partial(
        lm_task, tok, seq_len=cfg.seq_len, objective=cfg.objective, mask_rate=cfg.mask_rate
    )
    train_set = task(wiki.train.x, min_rows=cfg.steps * cfg.batch_size, seed=cfg.seed)
    val_set = task(wiki.test.x, max_rows=cfg.eval_rows, seed=cfg.seed + 10_000)
    train_one = partial(_train_one, cfg, tok.vocab_size, train_set, val_set)
    budgets, depths = sorted(cfg.budgets), sorted(set(cfg.depths))

    # the sweep: every depth at every budget, the width solved to keep the layer parameters
    sweep = {b: {L: _shape_row(cfg, train_one, b, L) for L in depths} for b in budgets}
    summary = {b: summarise_sweep(sweep[b], b) for b in budgets}
    # is the order of depth 1 and the best deeper depth at the largest budget a rate artifact?
    lr_check = _rate_check(cfg, train_one, sweep[budgets[-1]], depths)

    unigram = unigram_loss(train_set[1], val_set[1], tok.vocab_size)
    seconds = [sweep[b][L]["train_seconds"] for b in budgets for L in depths]
    metrics = {
        "sweep": {str(b): {str(L): sweep[b][L] for L in depths} for b in budgets},
        "summary": {str(b): summary[b] for b in budgets},
        "lr_check": {str(L): {f"{k:.4g}": v for k, v in r.items()} for L, r in lr_check.items()},
        "vocab": tok.vocab_size,
        "train_sequences": len(train_set[1]),
        "val_sequences": len(val_set[1]),
        "unigram_val_loss": unigram,
        "train_tokens_per_run": cfg.steps * cfg.batch_size * cfg.seq_len,
        "samples_per_s": statistics.median(cfg.steps * cfg.batch_size / s for s in seconds),
    }
    plots = _plots(cfg, sweep, summary)
    return Result("depth", CLAIM, metrics, plots=plots, notes=_notes(cfg, tok.vocab_size))


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


def _plots(cfg: DepthConfig, sweep: dict, summary: dict) -> list[dict]:
    """Loss vs depth per budget (band: std over seeds); best depth vs threshold per budget."""
    budgets, task = list(sweep), "next-token LM" if cfg.objective == "clm" else "masked LM"
    by_depth = [
        series(f"{b:,} params", list(rows), *([r[k] for r in rows.values()] for k in _LOSS))
        for b, rows in sweep.items()
    ]
    pick = lambda key, bs: [summary[b][key] for b in bs]  # noqa: E731
    by_budget = [series(label, budgets, pick(key, budgets)) for label, key in _WHERE]
    if fitted := [b for b in budgets if summary[b]["fit_depth"]]:
        by_budget.append(series("paper's fit (extrapolated)", fitted, pick("fit_depth", fitted)))
    loss_title = f"Validation {task} loss vs depth at fixed layer parameters"
    loss_y = f"validation cross-entropy (nats; band: std over {cfg.seeds} seed(s))"
    where_title = "Best depth per budget vs the threshold depth"
    depth_x = "depth (width solved to keep the budget)"
    return [
        line_plot(loss_title, depth_x, loss_y, by_depth, log_x=True, integer_x=True),
        line_plot(where_title, "layer parameters", "depth", by_budget, log_x=True),
    ]


_LOSS = ("val_loss", "val_loss_std")
_WHERE = [
    ("best depth", "best_depth"),
    ("deeper stops helping after", "stop_depth"),
    ("depth = log3(width)", "threshold_depth"),
]


def _notes(cfg: DepthConfig, vocab: int) -> str:
    task = "next-token LM" if cfg.objective == "clm" else "masked LM"
    rates = (
        f"Learning rates scale as 1/width ({cfg.lr:g} at width {cfg.lr_width}; muP's rule for "
        "Adam, arXiv 2203.03466): with one shared rate per budget, the rate decided the order in "
        "an earlier run (at 200K, 1e-3 made depth 1 best, 3e-3 depth 6)."
    )
    return (
        f"Validation loss of a {task} on wiki (vocab {vocab}, {cfg.steps} steps x "
        f"{cfg.batch_size} x {cfg.seq_len} tokens per shape, {cfg.seeds} seed(s)). It shows "
        "whether, at these sizes and this training length, the loss at a fixed parameter count "
        "improves from depth 1 up to about log3(width). It cannot show the double-exponential "
        "separation (the theory is about expressivity, not trained loss), the paper's fitted "
        "optimum (fit on depths 6-48 at far larger sizes, it asks for under one layer here), or "
        "converged training (under one pass; deep, narrow shapes start slower, so equal steps "
        f"favour shallow ones). {rates if cfg.lr_width else 'One rate for every shape.'}"
    )
