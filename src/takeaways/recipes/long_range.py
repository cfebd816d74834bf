"""long-range: BigBird on a task whose answer must cross the sequence (arXiv 2007.14062).

The task (``takeaways.data.recall_task``): a haystack of filler tokens; a key marker at a
uniform position ``p`` with its value (one of ``values`` classes) at ``p + 1``; a query
marker at another uniform position ``q``. The model (``takeaways.nn.recall_reader``) reads
its answer at ``q``. No marker, value or read-out sits in BigBird's global blocks (the
first and last ``block_size`` tokens), so nothing reaches the answer for free: in a
passkey task read at [CLS], [CLS] sits in global block 0 and sees everything in every
layer, so any pattern solved it. Here the value must travel ``|q - p|`` tokens (a third of
the sequence on average) to a non-global query, which each part of the pattern does
differently: a sliding window moves it one block per layer (with ``depth`` layers it
reaches only queries a few blocks away), global blocks gather it in one layer and hand it
to every query in the next, random blocks connect far blocks directly (two hops of 3
random + 3 window blocks cover most of 32 blocks).

Why not also put the value tokens in the haystack, so that only the key marker before it
identifies the answer and global tokens alone could not bind the two? That version
(``recall_task(value_rate > 0)``) needs an induction-style circuit (one layer tags each
token with its predecessor, the next matches the tag). In pilots, models 64 wide with 2-4
layers stayed at or near chance for 1,500-2,250 steps on 32-256 tokens (lr 1e-3 and 3e-3,
with and without a curriculum over the distractor rate, learned or sinusoidal positions);
at 32 tokens the loss had only begun to fall after 1,500 steps. It cannot be trained at
N=2048 in a CPU budget. The value is therefore unique, so a global block can find it by
content and global-only attention can solve the task: the ablations measure which parts of
the pattern carry the answer across the sequence, not that every part is needed.

As BigBird was warm-started from RoBERTa (512 tokens), one dense model is first trained on
``warm_len`` tokens placed at random offsets of the long position table
(``takeaways.nn.recall_warm_start``); every arm starts from its weights and takes the same
long-phase steps. The arms: dense attention on the ``truncate`` tokens around the query
(the most generous cut: it sees the key whenever it is within ``truncate / 2`` tokens, with
true positions), dense attention at full length, full BigBird (window 3 + global 2 +
random 3 blocks, the paper's ITC setting) and three ablations of it: global only, window
only, window + random (no global). The epoch-0 point of each curve is that warm start
(dense, short) scored under the arm's pattern at full length, before any long training.

Then a sweep of one training step (forward + backward) of one BERT-base layer (768 wide,
12 heads) over lengths, for BigBird, dense torch SDPA (memory-efficient: it never
materializes the scores) and dense with materialized scores (the 2020 baseline, O(N^2)
memory): this process's CPU time (one thread, so other jobs on shared cores do not count),
runs interleaved across the kinds, median, and peak tensor memory
(``takeaways.measure.peak_bytes``). The paper's "8x longer sequences on the same hardware"
is a memory claim against materialized attention; SDPA is linear in memory too, so against
it the gain can only be time.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from takeaways import data, measure, nn, train
from takeaways.attention import bigbird_attention
from takeaways.recipes import register_recipe
from takeaways.results import Check, Claim, Judgement, Result, Target, line_plot, series

BIGBIRD = "BigBird (window 3 + global 2 + random 3)"
ABLATIONS = {  # name: BigBird options overriding (window, global, random) = (3, 2, r)
    "global only": {"window_blocks": 0, "random_blocks": 0},
    "window only": {"global_blocks": 0, "random_blocks": 0},
    "window + random (no global)": {"global_blocks": 0},
}
DENSE = "dense full length"


@dataclass(frozen=True)
class LongRangeConfig:
    seq_len: int = 2048  # tokens per sequence
    truncate: int = 512  # the cut dense baseline sees the `truncate` tokens around the query
    warm_len: int = 256  # warm start: one dense model trained on sequences this long
    warm_size: int = 4000  # warm-start training sequences
    warm_epochs: int = 2  # warm-start epochs
    warm_lr: float = 3e-3  # warm-start AdamW peak learning rate
    train_size: int = 1200  # long training sequences (each arm at its own length)
    test_size: int = 512  # test sequences, all seq_len long
    epochs: int = 2  # passes over the long training set, the same for every arm
    batch_size: int = 8  # sequences per step
    lr: float = 1e-3  # AdamW peak learning rate of the long phase
    dim: int = 64  # encoder width
    heads: int = 2  # attention heads
    depth: int = 3  # encoder blocks
    values: int = 16  # classes: possible values after the key marker
    filler: int = 16  # distinct haystack symbols
    block_size: int = 64  # BigBird block (the paper's ITC setting); also the marker-free edge
    random_blocks: int = 3  # BigBird random blocks per query block
    sweep: tuple[int, ...] = (512, 1024, 2048, 4096)  # lengths of the step time/memory sweep
    sweep_batch: int = 1  # sequences per step in the sweep
    sweep_dim: int = 768  # the sweep's one-layer model: width (BERT-base's layer)
    sweep_heads: int = 12  # ... its heads
    sweep_runs: int = 3  # timed steps per kind and length, interleaved across the kinds
    seed: int = 0  # data and initialisation

    def validate(self) -> None:
        if not 2 <= self.truncate < self.seq_len or not 4 <= self.warm_len <= self.seq_len:
            raise ValueError("need 2 <= truncate < seq_len and 4 <= warm_len <= seq_len")
        if self.seq_len < 2 * self.block_size + 3:
            raise ValueError("need seq_len >= 2 * block_size + 3 (markers avoid global blocks)")
        sizes = (self.train_size, self.test_size, self.warm_size, self.batch_size, self.dim)
        if min(sizes) < 1 or self.epochs < 1 or self.warm_epochs < 0 or self.sweep_runs < 1:
            raise ValueError("sizes, epochs and sweep_runs must be >= 1, warm_epochs >= 0")
        if self.values < 2 or self.filler < 1 or not self.sweep:
            raise ValueError("need values >= 2, filler >= 1 and a non-empty sweep")
        if self.truncate not in self.sweep or self.seq_len not in self.sweep:
            raise ValueError(
                f"sweep must contain truncate={self.truncate} (the memory budget) and "
                f"seq_len={self.seq_len} (the step-time target)"
            )


# fmt: off
PRESETS = {
    "smoke": {"seq_len": 256, "truncate": 64, "warm_len": 64, "warm_size": 64, "warm_epochs": 1,
              "train_size": 16, "test_size": 32, "epochs": 1, "block_size": 16, "depth": 2,
              "sweep": (64, 256), "sweep_dim": 32, "sweep_heads": 2, "sweep_runs": 1},
    "demo": {"seq_len": 512, "truncate": 128, "warm_len": 128, "warm_size": 3000,
             "warm_epochs": 1, "train_size": 128, "test_size": 128, "epochs": 1, "block_size": 32,
             "sweep": (128, 512), "sweep_dim": 128, "sweep_heads": 2, "sweep_runs": 1},
    "full": {},
}
# fmt: on


def _arms(cfg: LongRangeConfig) -> dict[str, tuple[Any, dict[str, int]]]:
    """Full-length arms: name -> (attention, its options)."""
    base = {"block_size": cfg.block_size, "random_blocks": cfg.random_blocks}
    arms: dict[str, tuple[Any, dict[str, int]]] = {BIGBIRD: (bigbird_attention, base)}
    for name, change in ABLATIONS.items():
        arms[name] = (bigbird_attention, {**base, **change})
    arms[DENSE] = ("dense", {})
    return arms


def _model(cfg: LongRangeConfig, attention: Any, options: dict[str, int]) -> nn.RecallReader:
    return nn.recall_reader(
        max_len=cfg.seq_len,
        values=cfg.values,
        filler=cfg.filler,
        dim=cfg.dim,
        depth=cfg.depth,
        heads=cfg.heads,
        attention=attention,
        attention_options=options,
    )


def _train_arms(cfg: LongRangeConfig, warm, train_set, test_set) -> dict[str, dict]:
    """Each arm from the warm start: test accuracy, CPU seconds and peak MB per step, curve."""
    full_train = (train_set.inputs, train_set.labels)
    full_test = (test_set.inputs, test_set.labels)
    cut = f"dense cut to {cfg.truncate} (around the query)"
    runs = {cut: ("dense", {}, data.recall_window(train_set, cfg.truncate),
                  data.recall_window(test_set, cfg.truncate))}  # fmt: skip
    for name, (attention, options) in _arms(cfg).items():
        runs[name] = (attention, options, full_train, full_test)
    out: dict[str, dict] = {k: {} for k in ("test_accuracy", "seconds_per_step",
                                            "peak_mb_per_step", "warm_start_accuracy", "curves")}  # fmt: skip
    for name, (attention, options, tr, te) in runs.items():
        model = _model(cfg, attention, options)
        model.load_state_dict(warm.state_dict())  # same parameters whatever the attention
        start = train.evaluate(model, te, batch_size=16)["accuracy"]  # the warm start, as it sees
        timer = measure.StepTimer(measure.clock_for(1))
        fit = train.fit(
            model,
            tr,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            warmup=0.1,
            eval_data=te,
            hooks=[timer],
            seed=cfg.seed,
            desc=name,
        )
        out["test_accuracy"][name] = fit.final["eval_accuracy"]
        out["warm_start_accuracy"][name] = start
        out["seconds_per_step"][name] = timer.steady()
        model.train()
        batch = {k: v[: cfg.batch_size] for k, v in tr[0].items()}
        step = measure.classification_step(model, batch, tr[1][: cfg.batch_size])
        out["peak_mb_per_step"][name] = measure.step_cost(step, runs=0)[1]
        out["curves"][name] = [start] + [r["eval_accuracy"] for r in fit.history]
    return out


def _sweep(cfg: LongRangeConfig) -> dict[str, dict[str, list[float]]]:
    """One training step of one BERT-shaped layer per length and kind: CPU s (median of
    ``sweep_runs``, interleaved across kinds) and peak tensor MB (first, untimed, call)."""
    kinds = {
        "BigBird": (bigbird_attention, {"block_size": cfg.block_size,
                                        "random_blocks": cfg.random_blocks}),
        "dense SDPA": ("dense", {}),
        "dense, materialized scores": ("reference", {}),
    }  # fmt: skip
    out = {k: {"seconds": [], "peak_mb": []} for k in kinds}
    for n in cfg.sweep:
        task = data.recall_task(cfg.sweep_batch, n, values=cfg.values, filler=cfg.filler, seed=n)
        steps = {}
        for kind, (attention, options) in kinds.items():
            torch.manual_seed(cfg.seed)
            model = nn.recall_reader(
                max_len=n,
                values=cfg.values,
                filler=cfg.filler,
                dim=cfg.sweep_dim,
                depth=1,
                heads=cfg.sweep_heads,
                ffn_ratio=4,
                attention=attention,
                attention_options=options,
            )
            ids = {"input_ids": task.inputs["input_ids"]}  # full length: no padding mask
            steps[kind] = measure.classification_step(model, ids, task.labels)
            out[kind]["peak_mb"].append(measure.peak_bytes(steps[kind])[1] / 2**20)  # + warm-up
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(cfg.sweep_runs):
            for kind, step in steps.items():
                t0 = time.process_time()
                step()
                times[kind].append(time.process_time() - t0)
        for kind in kinds:
            out[kind]["seconds"].append(statistics.median(times[kind]))
    return out


def _length_at(cfg: LongRangeConfig, sweep: dict, budget_kind: str) -> tuple[float, float]:
    """(MB ``budget_kind`` needs at ``truncate``, the length BigBird reaches in that memory
    on a line fitted to its peak MB over the sweep's sparse lengths)."""
    budget = sweep[budget_kind]["peak_mb"][cfg.sweep.index(cfg.truncate)]
    xs, ys = list(cfg.sweep), sweep["BigBird"]["peak_mb"]
    if len(xs) >= 3:  # the shortest length runs BigBird's dense path: fit the sparse regime
        xs, ys = xs[1:], ys[1:]
    slope, icpt = measure.memory_per_token(xs, ys)
    return budget, ((budget - icpt) / slope if slope > 0 else float("nan"))


def _plots(cfg: LongRangeConfig, m: dict) -> list[dict]:
    epochs = list(range(cfg.epochs + 1))
    curves = [series(k, epochs, v) for k, v in m["accuracy_per_epoch"].items()]
    curves.append(series("chance", epochs, [m["chance"]] * len(epochs)))

    def sweep_plot(key: str, label: str) -> dict:
        return line_plot(
            f"one training step of one BERT-base layer (768 wide, 12 heads) vs length: {label}"
            if cfg.sweep_dim == 768
            else f"one training step of one {cfg.sweep_dim}-wide layer vs length: {label}",
            "sequence length N",
            label,
            [series(k, list(cfg.sweep), v[key]) for k, v in m["sweep"].items()],
            log_x=True,
            log_y=True,
        )

    return [
        line_plot(
            f"recall task, N={cfg.seq_len}: test accuracy per epoch (epoch 0 = the dense "
            f"warm start from N={cfg.warm_len}, scored under each arm's pattern)",
            "epoch of long training (0: warm start only)",
            "test accuracy",
            curves,
            integer_x=True,
        ),
        sweep_plot("seconds", "CPU seconds per step (one thread)"),
        sweep_plot("peak_mb", "peak tensor MB per step"),
    ]


def _memory_sentence(m: dict, last: int) -> str:
    """What the sweep says about memory, in words chosen by its numbers."""
    sdpa_ratio = m["length_ratio_same_memory_vs_sdpa"]
    sdpa_mem = m[f"dense_sdpa_over_bigbird_peak_memory_at_{last}"]
    if sdpa_ratio < 2 and sdpa_mem < 1.5:
        return (
            f"torch's memory-efficient SDPA removes the memory argument: in its memory at "
            f"N={m['sweep_lengths'][0]} BigBird trains only {sdpa_ratio:.2f}x the length, and "
            f"at N={last} SDPA's step peaks at {sdpa_mem:.2f}x BigBird's; BigBird's case is "
            "compute, which grows linearly"
        )
    return (
        f"against torch's memory-efficient SDPA BigBird still trains {sdpa_ratio:.2f}x longer "
        f"sequences in the same memory (SDPA's peak {sdpa_mem:.2f}x BigBird's at N={last})"
    )


def _notes(cfg: LongRangeConfig, m: dict) -> str:
    sw, n = m["sweep"], cfg.seq_len
    i, last = cfg.sweep.index(n), cfg.sweep[-1]
    bb, sdpa, mat = sw["BigBird"], sw["dense SDPA"], sw["dense, materialized scores"]
    j = cfg.sweep.index(cfg.truncate)
    scores_mb = mat["peak_mb"][j] - sdpa["peak_mb"][j]  # what storing the scores adds
    return (
        f"Sweep (one layer {cfg.sweep_dim} wide, {cfg.sweep_heads} heads, batch "
        f"{cfg.sweep_batch}; CPU seconds, median of {cfg.sweep_runs} interleaved runs): at "
        f"N={n} BigBird {bb['seconds'][i]:.3g} s vs SDPA {sdpa['seconds'][i]:.3g} s vs "
        f"materialized {mat['seconds'][i]:.3g} s; at N={last} {bb['seconds'][-1]:.3g} s vs "
        f"{sdpa['seconds'][-1]:.3g} s vs {mat['seconds'][-1]:.3g} s. Peak memory at N={last}: "
        f"BigBird {bb['peak_mb'][-1]:.0f} MB, SDPA {sdpa['peak_mb'][-1]:.0f} MB, materialized "
        f"{mat['peak_mb'][-1]:.0f} MB ({m[f'materialized_over_bigbird_peak_memory_at_{last}']:.1f}x "
        f"BigBird's). At N={cfg.truncate} materialized attention needs "
        f"{m['memory_budget_mb']:.0f} MB, of which storing the scores adds "
        f"{scores_mb:.0f} MB over SDPA's {sdpa['peak_mb'][j]:.0f} MB (projections and "
        f"feed-forward, linear in N, are the rest); in that memory BigBird trains "
        f"N~{m['bigbird_length_at_budget']:.0f} ({m['length_ratio_same_memory']:.2f}x), in "
        f"SDPA's N~{m['bigbird_length_at_sdpa_budget']:.0f}. {_memory_sentence(m, last)}."
    )


def judge(m: dict, cfg: LongRangeConfig) -> Judgement:
    """Checks: dense at full length and BigBird learned the task; the cut arm is far below
    dense at full length (the task needs the long range), reached its ceiling and is the
    matched short-context baseline; at least one ablation is clearly below BigBird (the
    pattern's parts matter). Targets: BigBird vs the cut and full dense arms, step time and
    memory from the sweep."""
    cut_name = f"dense cut to {cfg.truncate} (around the query)"
    acc, sec, mb = m["test_accuracy"], m["seconds_per_step"], m["peak_mb_per_step"]
    cut, bb, full = acc[cut_name], acc[BIGBIRD], acc[DENSE]
    chance, ceiling, n = m["chance"], m["truncated_accuracy_ceiling"], cfg.test_size

    def se(*ps: float) -> float:  # binomial s.e. of a difference of independent proportions
        return math.sqrt(sum(p * (1 - p) / n for p in ps))

    def clear(a: float, b: float) -> float:  # a gap that is clearly not noise: 3 s.e., and
        return max(3 * se(a, b), 3 / n)  # at least 3 test sequences (s.e. is 0 at 0 or 1)

    margin = 3 * math.sqrt(chance * (1 - chance) / n)
    detail = f"chance {chance:.3f} + 3 binomial s.e. over {n} test sequences"
    ablations = {k: bb - acc[k] for k in ABLATIONS}  # how far each is below BigBird
    worst = max(ablations, key=ablations.get)
    matched = sec[cut_name] <= sec[BIGBIRD] and mb[cut_name] <= mb[BIGBIRD]
    steps = math.ceil(cfg.train_size / cfg.batch_size) * cfg.epochs
    checks = [
        Check.that("dense at full length learned the task", full, ">=", chance + margin, detail),
        Check.that("BigBird at full length learned the task", bb, ">=", chance + margin, detail),
        Check.that(
            f"dense cut to {cfg.truncate} is far below dense at full length (the task needs "
            "the long range)",
            full - cut,
            ">=",
            max(0.3, 3 * se(full, cut)),
            f"full {full:.3f} - cut {cut:.3f}; needs >= 0.3 and >= 3 s.e. of the difference",
        ),
        Check.that(
            "at least one ablation is clearly below full BigBird (the pattern's parts matter)",
            ablations[worst],
            ">=",
            clear(bb, acc[worst]),
            f"BigBird {bb:.3f} - {worst} {acc[worst]:.3f}; needs 3 s.e. of the difference "
            f"and 3 of {n} test sequences",
        ),
        Check.that(
            f"dense cut to {cfg.truncate} reached its ceiling (it learned what its tokens allow)",
            cut,
            ">=",
            ceiling - 3 * math.sqrt(ceiling * (1 - ceiling) / n),
            f"ceiling {ceiling:.3f} (key and value inside the cut in "
            f"{m['key_inside_cut']:.3f} of test sequences, else a guess) - 3 binomial s.e.",
        ),
        Check(
            f"dense cut to {cfg.truncate} is the matched short-context baseline",
            matched,
            f"same {steps} steps as BigBird from the same warm start; per step "
            f"{sec[cut_name]:.3g} CPU s vs BigBird {sec[BIGBIRD]:.3g} s and {mb[cut_name]:.4g} "
            f"MB vs {mb[BIGBIRD]:.4g} MB (measured): no more compute or memory than BigBird",
        ),
    ]
    i = cfg.sweep.index(cfg.seq_len)
    speed = m["sweep"]["dense SDPA"]["seconds"][i] / m["sweep"]["BigBird"]["seconds"][i]
    ratio = m["length_ratio_same_memory"]
    targets = [
        Target.check(f"BigBird accuracy minus dense cut to {cfg.truncate}", bb - cut, ">=", 0.3),
        Target.check("BigBird accuracy minus dense full length", bb - full, ">=", -0.02),
        Target.check(
            f"step time dense SDPA / BigBird at N={cfg.seq_len} (sweep, one layer "
            f"{cfg.sweep_dim} wide)",
            speed,
            ">=",
            1.5,
        ),
        Target.check("length ratio at materialized dense's memory (paper: 8x)", ratio, ">=", 8.0),
    ]
    abl = ", ".join(f"{k} {acc[k]:.3f}" for k in ABLATIONS)
    below = [k for k in ABLATIONS if bb - acc[k] >= clear(bb, acc[k])]
    kept = [k for k in ABLATIONS if k not in below]
    warm = m["warm_start_accuracy"]
    last = cfg.sweep[-1]
    finding = (
        f"At N={cfg.seq_len} ({n} test sequences) BigBird reached {bb:.3f} vs {full:.3f} for "
        f"dense attention and {cut:.3f} for dense cut to the {cfg.truncate} tokens around the "
        f"query (ceiling {ceiling:.3f}); ablations: {abl}: "
        + (f"clearly below BigBird: {', '.join(below)}" if below else "none clearly below")
        + (f"; not clearly below: {', '.join(kept)}" if kept else "")
        + f". The dense warm start alone scored {warm[BIGBIRD]:.3f} under BigBird's pattern "
        f"and {warm[DENSE]:.3f} dense. One layer {cfg.sweep_dim} wide stepped {speed:.2f}x "
        f"faster than dense SDPA at N={cfg.seq_len} "
        f"({m[f'dense_sdpa_over_bigbird_step_time_at_{last}']:.2f}x at N={last}); in the memory "
        f"materialized attention needs at N={cfg.truncate} BigBird trains {ratio:.2f}x longer "
        f"sequences (paper: 8x); {_memory_sentence(m, last)}."
    )
    if bb >= full - 0.02 and bb - cut >= 0.3:
        carriers = (
            f"here {' and '.join(kept)} alone also carried the answer, {', '.join(below)} did not"
            if kept and below
            else "every ablation did as well here"
            if kept
            else "every part of the pattern was needed here"
        )
        advice = (
            f"Use it when the answer can sit anywhere in ~{cfg.seq_len}+ tokens and dense "
            f"attention's quadratic compute dominates: it kept dense accuracy and stepped "
            f"{speed:.2f}x as fast as dense SDPA at N={cfg.seq_len} "
            f"({m[f'dense_sdpa_over_bigbird_step_time_at_{last}']:.2f}x at N={last}). Keep a "
            f"part that jumps across the sequence (global or random blocks; {carriers}). For "
            "memory alone, use torch's SDPA first: it does not store the scores."
        )
    else:
        advice = (
            f"Do not expect dense accuracy from BigBird at N={cfg.seq_len} with this training "
            "budget; if memory is the problem, torch's SDPA does not store the scores."
        )
    return Judgement(checks, targets, finding, advice)


@register_recipe(
    "long-range",
    config=LongRangeConfig,
    presets=PRESETS,
    takeaway=7,
    summary="recall task at N=2048: BigBird, its ablations, dense full and cut to 512; time, memory",
    judge=judge,
    threads=1,
)
def run(cfg: LongRangeConfig) -> Result:
    cfg.validate()
    task = {"values": cfg.values, "filler": cfg.filler, "edge": cfg.block_size}
    train_set = data.recall_task(cfg.train_size, cfg.seq_len, seed=cfg.seed, **task)
    test_set = data.recall_task(cfg.test_size, cfg.seq_len, seed=cfg.seed + 1, **task)

    warm, warm_s = nn.recall_warm_start(
        cfg.seq_len,
        length=cfg.warm_len,
        size=cfg.warm_size,
        epochs=cfg.warm_epochs,
        values=cfg.values,
        filler=cfg.filler,
        dim=cfg.dim,
        depth=cfg.depth,
        heads=cfg.heads,
        batch_size=2 * cfg.batch_size,
        lr=cfg.warm_lr,
        seed=cfg.seed,
        data_seed=cfg.seed + 2,
    )
    arms = _train_arms(cfg, warm, train_set, test_set)
    sweep = _sweep(cfg)
    budget, length = _length_at(cfg, sweep, "dense, materialized scores")
    sdpa_budget, sdpa_length = _length_at(cfg, sweep, "dense SDPA")

    # The cut's ceiling from the test set itself: key and value inside the kept tokens.
    start = (test_set.query - cfg.truncate // 2).clamp(0, cfg.seq_len - cfg.truncate)
    inside = ((test_set.key >= start) & (test_set.key + 1 < start + cfg.truncate)).float()
    p = float(inside.mean())
    last = cfg.sweep[-1]
    bb_sw, sdpa_sw = sweep["BigBird"], sweep["dense SDPA"]
    mat_sw = sweep["dense, materialized scores"]
    metrics = {
        "test_accuracy": arms["test_accuracy"],
        "warm_start_accuracy": arms["warm_start_accuracy"],
        "seconds_per_step": arms["seconds_per_step"],
        "peak_mb_per_step": arms["peak_mb_per_step"],
        "key_inside_cut": p,
        "truncated_accuracy_ceiling": p + (1 - p) / cfg.values,
        "warm_start_seconds": warm_s,
        "sweep_lengths": list(cfg.sweep),
        "sweep": sweep,
        "memory_budget_mb": budget,
        "bigbird_length_at_budget": length,
        "length_ratio_same_memory": length / cfg.truncate,
        "sdpa_memory_budget_mb": sdpa_budget,
        "bigbird_length_at_sdpa_budget": sdpa_length,
        "length_ratio_same_memory_vs_sdpa": sdpa_length / cfg.truncate,
        f"dense_sdpa_over_bigbird_step_time_at_{last}": sdpa_sw["seconds"][-1]
        / bb_sw["seconds"][-1],
        f"materialized_over_bigbird_peak_memory_at_{last}": mat_sw["peak_mb"][-1]
        / bb_sw["peak_mb"][-1],
        f"dense_sdpa_over_bigbird_peak_memory_at_{last}": sdpa_sw["peak_mb"][-1]
        / bb_sw["peak_mb"][-1],
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
