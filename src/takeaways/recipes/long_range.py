"""long-range: BigBird on a task whose answer sits far from where it is read (arXiv 2007.14062).

The task is passkey retrieval (``takeaways.data.needle_task``): one needle (a marker, then
one of ``values`` value tokens) in ``seq_len`` filler tokens, its value read at ``[CLS]``. A
model that sees only the first ``truncate`` tokens finds it with probability
``p ~ truncate / seq_len`` and guesses otherwise: its ceiling is ``p + (1 - p) / values``. As
BigBird was warm-started from RoBERTa (512 tokens), one dense model is first trained on
``warm_len`` tokens (``takeaways.nn.passkey_warm_start``); every arm starts from its weights.

Three arms from that start, with the same long-phase training steps: dense attention on the
sequence cut to ``truncate`` tokens (BERT's situation: the matched short-context baseline),
BigBird on the full length, dense (torch SDPA) on the full length. Then a sweep of single
training steps (forward + backward) over lengths for BigBird, dense SDPA and dense with
materialized scores (BERT-style, O(N^2) memory): time per step and peak tensor memory
(``takeaways.measure.step_cost``). The paper's "8x longer sequences on the same hardware" is a
memory claim against materialized attention; torch's SDPA never materializes the scores, so
against it the gain is time, not memory.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import torch

from takeaways import data, measure, nn, train
from takeaways.attention import bigbird_attention
from takeaways.recipes import register_recipe
from takeaways.results import Check, Claim, Judgement, Result, Target, line_plot, series


@dataclass(frozen=True)
class LongRangeConfig:
    seq_len: int = 1024  # tokens per sequence, [CLS] included (the issue asks >= 2048: full)
    truncate: int = 256  # the dense baseline sees only the first `truncate` tokens
    warm_len: int = 256  # warm-start phase: every model starts from one dense model trained here
    warm_size: int = 2000  # warm-start training sequences
    warm_epochs: int = 4  # warm-start epochs
    train_size: int = 512  # long training sequences (each model at its own length)
    test_size: int = 256  # test sequences, all seq_len long
    epochs: int = 2  # passes over the long training set, the same for every model
    batch_size: int = 8  # sequences per step
    lr: float = 1e-3  # AdamW peak learning rate of the long phase (3e-3 when warm-starting)
    dim: int = 64  # encoder width
    heads: int = 1  # attention heads (head size 64, as in the benchmark and BERT)
    depth: int = 2  # encoder blocks
    values: int = 8  # classes: possible needle values
    filler: int = 1  # distinct filler symbols (1: a uniform haystack, as in passkey tests)
    block_size: int = 64  # BigBird block (the paper's ITC setting)
    random_blocks: int = 3  # BigBird random blocks per query block
    sweep: tuple[int, ...] = (256, 512, 1024, 2048)  # lengths for the step time/memory sweep
    sweep_batch: int = 2  # sequences per step in the sweep
    sweep_dim: int = 128  # the sweep's one-layer model: width (full: 768, BERT-base's layer)
    sweep_heads: int = 2  # ... its heads (full: 12)
    seed: int = 0  # data and initialisation

    def validate(self) -> None:
        if self.seq_len < 8 or not 2 <= self.truncate < self.seq_len:
            raise ValueError("need seq_len >= 8 and 2 <= truncate < seq_len")
        if not 4 <= self.warm_len <= self.seq_len:
            raise ValueError("need 4 <= warm_len <= seq_len")
        sizes = (self.train_size, self.test_size, self.warm_size, self.batch_size, self.dim)
        if min(sizes) < 1 or self.epochs < 1 or self.warm_epochs < 0:
            raise ValueError("sizes and epochs must be >= 1, warm_epochs >= 0")
        if self.values < 2 or self.filler < 1 or not self.sweep:
            raise ValueError("need values >= 2, filler >= 1 and a non-empty sweep")
        if self.truncate not in self.sweep:
            raise ValueError(f"sweep must contain truncate={self.truncate} (the memory budget)")


# fmt: off
PRESETS = {
    "smoke": {"seq_len": 256, "truncate": 64, "warm_len": 64, "warm_size": 64, "warm_epochs": 1,
              "train_size": 32, "test_size": 32, "epochs": 1, "block_size": 16,
              "sweep": (64, 256), "sweep_batch": 1, "sweep_dim": 32},
    "demo": {"seq_len": 512, "truncate": 128, "warm_len": 128, "warm_size": 1000,
             "warm_epochs": 2, "train_size": 64, "test_size": 128, "epochs": 1,
             "sweep": (128, 256, 512, 1024)},
    "full": {"seq_len": 2048, "truncate": 512, "train_size": 256, "test_size": 512, "epochs": 2,
             "sweep": (512, 1024, 2048, 4096), "sweep_dim": 768, "sweep_heads": 12},
}
# fmt: on


def _model(cfg: LongRangeConfig, max_len: int, attention: Any, *, sweep: bool = False):
    """The passkey classifier; ``sweep=True``: one BERT-shaped layer of ``sweep_dim``."""
    options = {}
    if attention is bigbird_attention:
        options = {"block_size": cfg.block_size, "random_blocks": cfg.random_blocks}
    return nn.passkey_classifier(
        max_len=max_len,
        values=cfg.values,
        filler=cfg.filler,
        dim=cfg.sweep_dim if sweep else cfg.dim,
        depth=1 if sweep else cfg.depth,
        heads=cfg.sweep_heads if sweep else cfg.heads,
        ffn_ratio=4 if sweep else 2,
        attention=attention,
        attention_options=options,
    )


def _cut(inputs: dict[str, torch.Tensor], rows: int | None, length: int) -> dict[str, torch.Tensor]:
    return {k: v[:rows, :length] for k, v in inputs.items()}


def _train_arms(cfg: LongRangeConfig, warm, train_set, test_set) -> dict[str, dict]:
    """Each arm from the warm start: test accuracy, seconds and peak MB per step, curve."""
    (xtr, ytr), (xte, yte) = train_set, test_set
    arms = {
        f"dense cut to {cfg.truncate}": (cfg.truncate, "dense"),
        "BigBird full length": (cfg.seq_len, bigbird_attention),
        "dense full length": (cfg.seq_len, "dense"),
    }
    out = {"test_accuracy": {}, "seconds_per_step": {}, "peak_mb_per_step": {}, "curves": {}}
    steps = math.ceil(cfg.train_size / cfg.batch_size)
    for name, (length, attention) in arms.items():
        model = _model(cfg, cfg.seq_len, attention)
        model.load_state_dict(warm.state_dict())  # same parameters whatever the attention
        fit = train.fit(
            model,
            (_cut(xtr, None, length), ytr),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            warmup=0.1,
            eval_data=(_cut(xte, None, length), yte),
            seed=cfg.seed,
            desc=name,
        )
        out["test_accuracy"][name] = fit.final["eval_accuracy"]
        out["seconds_per_step"][name] = statistics.median(r["seconds"] / steps for r in fit.history)
        model.train()
        batch = measure.classification_step(
            model, _cut(xtr, cfg.batch_size, length), ytr[: cfg.batch_size]
        )
        out["peak_mb_per_step"][name] = measure.step_cost(batch, runs=0)[1]
        start = train.evaluate(warm, (_cut(xte, None, length), yte))["accuracy"]  # as it sees it
        out["curves"][name] = [start] + [r["eval_accuracy"] for r in fit.history]
    return out


def _sweep(cfg: LongRangeConfig) -> dict[str, dict[str, list[float]]]:
    """One training step per length and attention, fresh untrained one-layer models."""
    kinds = {
        "BigBird": bigbird_attention,
        "dense SDPA": "dense",
        "dense, materialized scores": "reference",
    }
    sweep = {k: {"seconds": [], "peak_mb": []} for k in kinds}
    for n in cfg.sweep:
        inputs, labels = data.needle_task(cfg.sweep_batch, n, values=cfg.values, seed=n)
        ids = {"input_ids": inputs["input_ids"]}  # full length: no padding mask
        for kind, attention in kinds.items():
            torch.manual_seed(cfg.seed)
            model = _model(cfg, n, attention, sweep=True)
            s, mb = measure.step_cost(measure.classification_step(model, ids, labels), runs=3)
            sweep[kind]["seconds"].append(s)
            sweep[kind]["peak_mb"].append(mb)
    return sweep


def _same_memory_length(cfg: LongRangeConfig, sweep: dict) -> tuple[float, float, float]:
    """(MB materialized attention needs at ``truncate``, BigBird's length in it from a line
    fitted to its peak memory over the sweep, the line's MB per token): "8x longer"."""
    budget = sweep["dense, materialized scores"]["peak_mb"][cfg.sweep.index(cfg.truncate)]
    xs, ys = list(cfg.sweep), sweep["BigBird"]["peak_mb"]
    if len(xs) >= 3:  # the shortest length runs BigBird's dense path: fit the sparse regime
        xs, ys = xs[1:], ys[1:]
    slope, icpt = measure.memory_per_token(xs, ys)
    return budget, ((budget - icpt) / slope if slope > 0 else float("nan")), slope


def _plots(cfg: LongRangeConfig, m: dict) -> list[dict]:
    epochs = list(range(cfg.epochs + 1))  # 0: right after the warm start
    ceiling = m["truncated_accuracy_ceiling"]
    curves = [series(k, epochs, v) for k, v in m["accuracy_per_epoch"].items()]
    curves.append(series(f"ceiling when cut to {cfg.truncate}", epochs, [ceiling] * len(epochs)))

    def sweep_plot(key: str, label: str) -> dict:
        return line_plot(
            f"one training step vs length (batch {cfg.sweep_batch}): {label}",
            "sequence length N",
            label,
            [series(k, list(cfg.sweep), v[key]) for k, v in m["sweep"].items()],
            log_x=True,
            log_y=True,
        )

    return [
        line_plot(
            f"needle task, N={cfg.seq_len}: test accuracy per epoch",
            "epoch",
            "test accuracy",
            curves,
            integer_x=True,
        ),
        sweep_plot("seconds", "seconds per step"),
        sweep_plot("peak_mb", "peak tensor MB per step"),
    ]


def _notes(cfg: LongRangeConfig, m: dict) -> str:
    longest = cfg.sweep[-1]
    return (
        f"Materialized dense attention needs {m['memory_budget_mb']:.0f} MB for one step at "
        f"N={cfg.truncate}; BigBird's peak grows {m['bigbird_mb_per_1024_tokens']:.1f} MB per 1024 "
        f"tokens, so it trains N~{m['bigbird_length_at_budget']:.0f} in that memory; at "
        f"N={longest} it needs {m[f'materialized_over_bigbird_peak_memory_at_{longest}']:.1f}x "
        f"less. The sweep's model is one layer of width {cfg.sweep_dim}, {cfg.sweep_heads} heads, "
        "4x feed-forward (BERT-base's layer at full): the wider, the less the scores weigh. "
        "torch's SDPA is linear in memory too: against it BigBird gains time, "
        f"{m[f'dense_sdpa_over_bigbird_step_time_at_{longest}']:.1f}x per step at N={longest}."
    )


def judge(m: dict, cfg: LongRangeConfig) -> Judgement:
    """Checks: both full-length arms learned the task (above chance by 3 binomial s.e.); the
    cut arm is the matched baseline (same steps, no more time or memory per step than
    BigBird) and reached its ceiling. Targets: accuracy vs both dense arms, measured step
    time, measured memory."""
    cut_name = f"dense cut to {cfg.truncate}"
    acc, sec, mb = m["test_accuracy"], m["seconds_per_step"], m["peak_mb_per_step"]
    cut, bb, full = acc[cut_name], acc["BigBird full length"], acc["dense full length"]
    chance, ceiling, n = m["chance"], m["truncated_accuracy_ceiling"], cfg.test_size
    margin = 3 * math.sqrt(chance * (1 - chance) / n)
    detail = f"chance {chance:.3f} + 3 binomial s.e. over {n} test sequences"
    short = 3 * math.sqrt(ceiling * (1 - ceiling) / n)
    t_bb, t_full = sec["BigBird full length"], sec["dense full length"]
    matched = sec[cut_name] <= t_bb and mb[cut_name] <= mb["BigBird full length"]
    checks = [
        Check.that("dense at full length learned the task", full, ">=", chance + margin, detail),
        Check.that("BigBird at full length learned the task", bb, ">=", chance + margin, detail),
        Check(
            f"dense cut to {cfg.truncate} is the matched short-context baseline",
            matched,
            f"same {cfg.epochs} epochs x {math.ceil(cfg.train_size / cfg.batch_size)} steps as "
            f"BigBird from the same warm start; per step {sec[cut_name]:.3g} s vs BigBird "
            f"{t_bb:.3g} s and {mb[cut_name]:.4g} MB vs {mb['BigBird full length']:.4g} MB "
            "(measured): it gets no more compute or memory than BigBird",
        ),
        Check.that(
            f"dense cut to {cfg.truncate} reached its ceiling (it learned what its tokens allow)",
            cut,
            ">=",
            ceiling - short,
            f"ceiling {ceiling:.3f} (needle in the first {cfg.truncate} tokens, else a guess) "
            f"- 3 binomial s.e. over {n} test sequences",
        ),
    ]
    ratio = m["length_ratio_same_memory"]
    targets = [
        Target.check(f"BigBird accuracy minus dense cut to {cfg.truncate}", bb - cut, ">=", 0.3),
        Target.check("BigBird accuracy minus dense full length", bb - full, ">=", -0.05),
        Target.check(f"step time dense / BigBird at N={cfg.seq_len}", t_full / t_bb, ">=", 1.5),
        Target.check("length ratio at materialized dense's memory (paper: 8x)", ratio, ">=", 8.0),
    ]
    finding = (
        f"At N={cfg.seq_len} BigBird reached {bb:.3f} test accuracy vs {full:.3f} for dense "
        f"attention and {cut:.3f} for dense cut to {cfg.truncate} (ceiling "
        f"{ceiling:.3f}), stepping {t_full / t_bb:.1f}x faster than "
        f"dense SDPA (the dense warm start alone scored "
        f"{m['warm_start_accuracy_at_full_length']:.3f} at full length); in the memory "
        f"materialized attention needs at N={cfg.truncate} it trains {ratio:.1f}x longer "
        "sequences (paper: 8x)."
    )
    if bb >= full - 0.05 and t_full / t_bb >= 1.5:
        advice = (
            f"Use it when inputs are ~{cfg.seq_len}+ tokens and the answer can sit anywhere: it "
            f"kept dense accuracy at {t_full / t_bb:.1f}x the step speed; do not expect 8x longer "
            "sequences against torch's SDPA, which is already linear in memory."
        )
    else:
        advice = (
            f"Do not expect a gain at N={cfg.seq_len}; use it when dense attention's quadratic "
            "time dominates the training step."
        )
    return Judgement(checks, targets, finding, advice)


@register_recipe(
    "long-range",
    config=LongRangeConfig,
    presets=PRESETS,
    takeaway=7,
    summary="needle task at N>=2048: dense cut to 512 vs BigBird vs dense full; time, memory",
    judge=judge,
)
def run(cfg: LongRangeConfig) -> Result:
    task = {"values": cfg.values, "filler": cfg.filler}
    train_set = data.needle_task(cfg.train_size, cfg.seq_len, seed=cfg.seed, **task)
    test_set = data.needle_task(cfg.test_size, cfg.seq_len, seed=cfg.seed + 1, **task)

    warm, warm_s = nn.passkey_warm_start(
        cfg.seq_len,
        length=cfg.warm_len,
        size=cfg.warm_size,
        epochs=cfg.warm_epochs,
        dim=cfg.dim,
        depth=cfg.depth,
        heads=cfg.heads,
        batch_size=cfg.batch_size,
        lr=3 * cfg.lr,
        seed=cfg.seed,
        data_seed=cfg.seed + 2,
        **task,
    )
    warm_acc = train.evaluate(warm, test_set)["accuracy"]  # zero-shot at full length
    arms = _train_arms(cfg, warm, train_set, test_set)
    sweep = _sweep(cfg)
    budget, same_mem_len, slope = _same_memory_length(cfg, sweep)

    p = cfg.truncate / cfg.seq_len
    longest = cfg.sweep[-1]
    speed = sweep["dense SDPA"]["seconds"][-1] / sweep["BigBird"]["seconds"][-1]
    mem = sweep["dense, materialized scores"]["peak_mb"][-1] / sweep["BigBird"]["peak_mb"][-1]
    metrics = {
        "test_accuracy": arms["test_accuracy"],
        "seconds_per_step": arms["seconds_per_step"],
        "peak_mb_per_step": arms["peak_mb_per_step"],
        "truncated_accuracy_ceiling": p + (1 - p) / cfg.values,
        "warm_start_seconds": warm_s,
        "warm_start_accuracy_at_full_length": warm_acc,
        "sweep_lengths": list(cfg.sweep),
        "sweep": sweep,
        "memory_budget_mb": budget,
        "bigbird_length_at_budget": same_mem_len,
        "length_ratio_same_memory": same_mem_len / cfg.truncate,
        "bigbird_mb_per_1024_tokens": slope * 1024,
        f"dense_sdpa_over_bigbird_step_time_at_{longest}": speed,
        f"materialized_over_bigbird_peak_memory_at_{longest}": mem,
        "accuracy_per_epoch": arms["curves"],
        "chance": 1 / cfg.values,
    }
    return Result(
        recipe="long-range",
        claim=Claim(
            text="BigBird's sparse attention handles sequences up to 8x longer than full "
            "attention on similar hardware, and its linear cost keeps long-range accuracy",
            value=8.0,
            source="Zaheer et al., Big Bird: Transformers for Longer Sequences, arXiv "
            "2007.14062, abstract (8x) and Table 8 (ITC: block 64, 3 window, 2 global, 3 random)",
        ),
        metrics=metrics,
        plots=_plots(cfg, metrics),
        notes=_notes(cfg, metrics),
    )
