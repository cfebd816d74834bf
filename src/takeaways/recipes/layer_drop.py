"""layer-drop: MLM pre-training with and without progressive layer dropping, then fine-tuning.

Takeaway 1 (Zhang & He, arXiv 2010.13369): PLD trains a Pre-LN BERT with a random subset of
its layers switched off each step, more so deeper in and more so as training goes on
(``takeaways.layerdrop``). The paper reports 24% less time per sample, 2.5x less time to
the same downstream accuracy and GLUE parity (82.9 vs 82.1).

Two pre-training runs on ``wiki`` (BERT's MLM: 15% of positions, 80/10/10, static masks,
logits only at the masked positions) share the architecture, the initial weights, the
data order, the masks and the number of steps; the second attaches
``prepare_layer_drop(encoder.layers, theta_bar=0.5, gamma=gamma_eff)`` as a ``fit()`` hook.
A clock hook evaluates the validation MLM loss every ``eval_every`` steps and leaves its
own time out of the training clock, so each run has a loss curve against training
seconds. The clock is the process's CPU time when the recipe runs one thread (``threads=1``,
the default): that is its wall time on idle cores, and other jobs sharing the cores do not
inflate it, so the two runs, timed one after the other, compare fairly even if the load
changes between them (it is wall time with more threads). From them: samples/s, the time-per-sample ratio, the baseline's final validation
loss and the first time each run reaches it (linear interpolation between evaluations),
and their ratio. Both encoders are then fine-tuned, PLD detached, on ``reviews`` (fresh vs
rotten) with the same head init, data and schedule. Finally the baseline's pre-training
step is timed under bf16 autocast and in fp32 for a few steps.

Choices, and why:

* Depth over width (12 layers of width 128): the embedding, the MLM head and the optimizer
  cost the same whatever is dropped, so layers must dominate the step for dropping them to
  show. The gathered head and a 1,024-piece WordPiece keep the head small.
* ``gamma``: the paper's 0.001 over 200K steps saturates ``theta`` after about 5K steps
  (2.5% of training). We train for hundreds of steps, so ``gamma_eff = 0.001 * 200_000 /
  steps`` by default: ``theta`` saturates at the same fraction of the run.
* One learning rate for both runs (the paper gave PLD a larger one, 1e-3): the comparison
  isolates the dropping. A warm-up then cosine decay, as the depth recipe.
* A 512-piece WordPiece and MPNet's shared relative-position bias (32 buckets), as the
  mpnet recipe uses: with 1,024 pieces and learned absolute positions only, the MLM loss
  stayed on the unigram plateau for the whole budget (measured below); with 512 pieces
  (more words split into ## pieces that their neighbours predict) the mpnet recipe's MLM
  left it within 1,200 steps. Both runs share the choice, so the comparison is unaffected.
* bf16: measured, not used for the comparison; on CPUs without bf16 matmul units it is
  much slower than fp32 (the ratio is reported as measured).

Measured here, one thread, median of 4 steps of 32 rows x 64 tokens, vocab 1,024: 12 x 128
takes 0.75 s per fp32 step, 0.53 s with PLD's theta at 0.5 (1.41x; 0.73 of the layers run)
and 9.2 s under bf16 autocast (0.08x); 12 x 64 (the demo) 0.25 vs 0.21 s (1.16x: the fixed
costs weigh more at width 64); 8 x 128 1.21x. The full preset is estimated, not run, at about
25 minutes on a quiet core: 1,000 baseline steps (~750 s) + 1,000 PLD steps (~550 s) +
21 evaluations per run (~40 s) + fine-tuning on 3,000 reviews and scoring 2,562 (~110 s) +
bf16 (~30 s).

The MLM plateau: at this size the validation loss sits at the unigram loss for hundreds of
steps. Measured on the full shape (baseline, one thread): 5.766 after 300 steps at lr 2e-3
(unigram 5.766); at lr 5e-3 on a 1,000-step schedule 5.744 after 550 steps and still 5.744
after 650. So the full preset's 1,000 steps most likely end only just under the unigram: its
time-to-loss ratio would then time a plateau, which the notes say whenever the final losses
are not 0.1 nats under the unigram. A clear escape needs more steps (or a bigger batch) than
25 single-threaded minutes buy at this depth.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from takeaways import data, nn, train
from takeaways.layerdrop import keep_probs, pld_theta, prepare_layer_drop
from takeaways.nn.mlm import GatheredMLM, masked_copies, pack_rows, unigram_loss
from takeaways.recipes import register_recipe
from takeaways.results import Claim, Result, Target

PAPER_GAMMA, PAPER_STEPS = 0.001, 200_000  # DeepSpeed's tutorial: gamma over BERT's 200K steps


# ----------------------------------------------------------------------------- helpers


def scaled_gamma(steps: int) -> float:
    """``gamma`` that saturates ``theta`` at the paper's fraction of a ``steps``-step run."""
    return PAPER_GAMMA * PAPER_STEPS / steps


def time_to_loss(seconds: list[float], losses: list[float], target: float) -> float:
    """First time a loss curve reaches ``target``, interpolated linearly between evaluations.

    Args:
        seconds: training seconds at each evaluation, ascending.
        losses: the validation loss at each of them.
        target: the loss to reach.

    Returns:
        The time the curve first gets to ``<= target`` (``seconds[0]`` if it starts there);
        NaN if it never does.
    """
    if len(seconds) != len(losses) or not seconds:
        raise ValueError(f"need equal, non-empty curves; got {len(seconds)} and {len(losses)}")
    if losses[0] <= target:
        return float(seconds[0])
    for i in range(1, len(losses)):
        if losses[i] <= target:
            t0, t1, l0, l1 = seconds[i - 1], seconds[i], losses[i - 1], losses[i]
            return float(t0 + (l0 - target) / (l0 - l1) * (t1 - t0))
    return float("nan")


def clock_for(threads: int) -> Callable[[], float]:
    """The training clock: this process's CPU seconds when it runs one thread, else wall time.

    A one-threaded run's CPU time is its wall time on idle cores, and other jobs on shared
    cores do not inflate it, so two runs timed one after the other compare fairly even when
    the machine's load changes between them. With more threads CPU time adds up over them,
    so wall time is used (fair only on otherwise idle cores).
    """
    return time.process_time if threads == 1 else time.perf_counter


class TrainClock:
    """``fit()`` hook: evaluates every ``every`` steps and keeps its own time off the clock.

    ``curve`` holds ``(training seconds, step, validation loss)`` rows, starting at step 0;
    ``seconds`` is the training time so far (setup in ``fit`` included, evaluation excluded),
    read from ``clock`` (``clock_for(threads)``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        val: Any,
        *,
        every: int,
        last: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.model, self.val, self.every, self.last = model, val, every, last
        self.clock = clock
        self.seconds = 0.0
        self.curve = [(0.0, 0, self._eval())]
        self.mark = clock()

    def _eval(self) -> float:
        return train.evaluate(self.model, self.val, batch_size=256)["loss"]

    def on_batch(self, info: train.BatchInfo) -> None:
        self.seconds += self.clock() - self.mark
        if info.step % self.every == 0 or info.step == self.last:
            self.curve.append((self.seconds, info.step, self._eval()))
        self.mark = self.clock()


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class LayerDropConfig:
    dim: int = 64  # width of the residual stream
    depth: int = 12  # encoder layers (PLD drops these; the rest is fixed cost)
    heads: int = 2  # attention heads
    seq_len: int = 64  # tokens per pre-training row (wiki text, documents joined by [SEP])
    vocab: int = 512  # WordPiece vocabulary trained on the wiki training split (small: see above)
    rel_buckets: int = 32  # shared relative-position bias buckets (MPNet/T5); 0 = off
    steps: int = 50  # pre-training optimizer steps of each run
    batch_size: int = 32  # rows per pre-training step
    lr: float = 2e-3  # AdamW peak for both runs; warm-up, then cosine decay to 0
    warmup: float = 0.05  # fraction of the steps spent warming up
    mask_rate: float = 0.15  # fraction of each row predicted (80/10/10)
    theta_bar: float = 0.5  # PLD: the keep probability of the top layer decays to this
    gamma: float | None = None  # PLD decay per step; None = 0.001 * 200_000 / steps
    eval_every: int = 10  # steps between validation evaluations (off the clock)
    eval_rows: int = 96  # validation rows from the wiki test split
    ft_train: int = 384  # reviews fine-tuned on (of 10,246)
    ft_test: int = 384  # reviews scored (of 2,562)
    ft_len: int = 40  # tokens per review, [CLS] and [SEP] included
    ft_epochs: int = 1  # fine-tuning epochs (same for both encoders)
    ft_batch: int = 32
    ft_lr: float = 5e-4  # AdamW peak of fine-tuning, 10% warm-up then linear decay
    bf16_steps: int = 2  # baseline steps in bf16 and in fp32 (median after the first; 0 = skip)
    seed: int = 0  # init, data order, masks and the PLD gates
    threads: int = 1  # torch threads (small matmuls: 1 is fastest on shared cores)

    def validate(self) -> None:
        pld_theta(0, theta_bar=self.theta_bar, gamma=self.gamma or 0.0)  # one-line errors
        if min(self.dim, self.depth, self.heads, self.steps, self.batch_size) < 1:
            raise ValueError("dim, depth, heads, steps and batch_size must be >= 1")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.seq_len < 8 or self.vocab < 64 or self.ft_len < 4:
            raise ValueError("seq_len must be >= 8, vocab >= 64 and ft_len >= 4")
        if min(self.eval_every, self.eval_rows, self.threads, self.ft_epochs, self.ft_batch) < 1:
            raise ValueError("eval_every, eval_rows, threads, ft_epochs and ft_batch must be >= 1")
        if min(self.ft_train, self.ft_test) < 8 or self.bf16_steps < 0:
            raise ValueError("ft_train and ft_test must be >= 8 and bf16_steps >= 0")
        if not 0.0 < self.mask_rate <= 1.0 or not 0.0 <= self.warmup < 1.0:
            raise ValueError("mask_rate must be in (0, 1] and warmup in [0, 1)")
        if self.lr <= 0 or self.ft_lr <= 0:
            raise ValueError("lr and ft_lr must be > 0")

    @property
    def gamma_eff(self) -> float:
        return scaled_gamma(self.steps) if self.gamma is None else self.gamma


# ----------------------------------------------------------------------------- run


@register_recipe(
    "layer-drop",
    config=LayerDropConfig,
    presets={
        "smoke": {
            "dim": 32,
            "depth": 4,
            "heads": 2,
            "seq_len": 16,
            "vocab": 256,
            "steps": 6,
            "batch_size": 8,
            "eval_every": 2,
            "eval_rows": 16,
            "ft_train": 16,
            "ft_test": 16,
            "ft_len": 16,
            "ft_batch": 8,
            "bf16_steps": 2,
        },
        "demo": {},
        "full": {
            "dim": 128,
            "steps": 1000,
            "lr": 2e-3,
            "eval_every": 50,
            "eval_rows": 128,
            "ft_train": 3000,
            "ft_test": 2562,
            "bf16_steps": 3,
        },
    },  # fmt: skip
    takeaway=1,
    summary="MLM pre-training with vs without progressive layer dropping: time per sample, "
    "time to the baseline's loss, fine-tuned accuracy",
)
def run(cfg: LayerDropConfig) -> Result:
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg)
    finally:
        torch.set_num_threads(threads)


def _model(cfg: LayerDropConfig, vocab: int) -> GatheredMLM:
    train.seed_everything(cfg.seed)  # the same initial weights for every run
    enc = nn.TransformerEncoder(
        nn.EncoderConfig(
            vocab_size=vocab,
            dim=cfg.dim,
            depth=cfg.depth,
            heads=cfg.heads,
            max_len=max(cfg.seq_len, cfg.ft_len),
            rel_buckets=cfg.rel_buckets,
            dropout=0.0,  # a few passes over the data at most: nothing to regularize
        )
    )
    return GatheredMLM(nn.MaskedLM(enc))


def _run(cfg: LayerDropConfig) -> Result:
    t_start = time.perf_counter()
    wiki = data.load("wiki")
    tok = data.train_wordpiece(wiki.train.x, vocab_size=cfg.vocab)
    rows = pack_rows(tok, wiki.train.x, cfg.seq_len)
    copies = max(1, math.ceil(cfg.steps * cfg.batch_size / len(rows)))
    train_set = masked_copies(tok, rows, copies, cfg.mask_rate, cfg.seed)
    val_rows = pack_rows(tok, wiki.test.x, cfg.seq_len)[: cfg.eval_rows]
    val_set = masked_copies(tok, val_rows, 1, cfg.mask_rate, cfg.seed + 10_000)
    unigram = unigram_loss(train_set[1], val_set[1], tok.vocab_size)
    epochs = math.ceil(cfg.steps * cfg.batch_size / len(train_set[1]))

    def pretrain(pld: bool) -> dict[str, Any]:
        model = _model(cfg, tok.vocab_size)
        hooks: list[Any] = []
        handle = None
        if pld:
            handle = prepare_layer_drop(
                model.mlm.encoder.layers, theta_bar=cfg.theta_bar, gamma=cfg.gamma_eff,
                seed=cfg.seed,
            )  # fmt: skip
            hooks.append(handle)
        clock = TrainClock(
            model, val_set, every=cfg.eval_every, last=cfg.steps, clock=clock_for(cfg.threads)
        )
        hooks.append(clock)
        train.fit(
            model, train_set, epochs=epochs, max_steps=cfg.steps, batch_size=cfg.batch_size,
            lr=cfg.lr, warmup=cfg.warmup, seed=cfg.seed, hooks=hooks,
            desc="pre-train " + ("PLD" if pld else "baseline"),
        )  # fmt: skip
        out = {
            "seconds": [c[0] for c in clock.curve],
            "steps": [c[1] for c in clock.curve],
            "val_loss": [c[2] for c in clock.curve],
            "train_seconds": clock.seconds,
            "samples_per_s": cfg.steps * cfg.batch_size / clock.seconds,
        }
        if handle is not None:
            out["drop_rate_per_layer"] = handle.drop_rate
            out["layer_calls_run"] = sum(handle.executed) / (
                sum(handle.executed) + sum(handle.dropped)
            )
            handle.remove()
        out["encoder"] = model.mlm.encoder
        return out

    # One untimed step first: the process's first training step pays one-off costs (kernel
    # selection, allocator growth) that would otherwise land on whichever run goes first.
    train.fit(
        _model(cfg, tok.vocab_size), train_set, epochs=1, max_steps=1,
        batch_size=cfg.batch_size, seed=cfg.seed, progress=False,
    )  # fmt: skip
    base, pld = pretrain(False), pretrain(True)
    t_pretrain = time.perf_counter() - t_start

    # ---- the baseline's final loss: when each run first gets there
    target_loss = base["val_loss"][-1]
    t_base = time_to_loss(base["seconds"], base["val_loss"], target_loss)
    t_pld = time_to_loss(pld["seconds"], pld["val_loss"], target_loss)
    time_ratio = t_base / t_pld if t_pld > 0 else float("nan")
    sample_ratio = pld["samples_per_s"] / base["samples_per_s"]  # = baseline / PLD time per sample

    # ---- fine-tune both encoders on reviews (no PLD), same head init, data and schedule
    reviews = data.load("reviews")
    rng = np.random.default_rng(cfg.seed)
    tr = np.sort(rng.permutation(len(reviews.train))[: cfg.ft_train])
    te = np.sort(rng.permutation(len(reviews.test))[: cfg.ft_test])
    enc = lambda t: tok.encode(list(t), max_len=cfg.ft_len, pad_to=cfg.ft_len)  # noqa: E731
    ft_train = (enc(reviews.train.x[tr]), torch.as_tensor(reviews.train.y[tr]))
    ft_test = (enc(reviews.test.x[te]), torch.as_tensor(reviews.test.y[te]))

    def finetune(encoder: torch.nn.Module) -> float:
        torch.manual_seed(cfg.seed)  # the same head init for both
        clf = nn.SequenceClassifier(copy.deepcopy(encoder), 2, pooling="mean")
        train.fit(
            clf, ft_train, epochs=cfg.ft_epochs, batch_size=cfg.ft_batch, lr=cfg.ft_lr,
            schedule="linear", warmup=0.1, seed=cfg.seed, desc="fine-tune",
        )  # fmt: skip
        return train.evaluate(clf, ft_test, batch_size=256)["accuracy"]

    acc_base, acc_pld = finetune(base["encoder"]), finetune(pld["encoder"])
    majority = float(max(ft_test[1].float().mean(), 1 - ft_test[1].float().mean()))
    t_finetune = time.perf_counter() - t_start - t_pretrain

    # ---- bf16 autocast vs fp32: the baseline's pre-training step, same everything
    bf16: dict[str, Any] = {}
    if cfg.bf16_steps:
        for on in (False, True):
            model = _model(cfg, tok.vocab_size)
            times: list[float] = []
            clock = clock_for(cfg.threads)
            mark = [clock()]

            def tick(info: train.BatchInfo, times=times, mark=mark, clock=clock) -> None:
                t = clock()
                times.append(t - mark[0])
                mark[0] = t

            fitted = train.fit(
                model, train_set, epochs=epochs, max_steps=cfg.bf16_steps,
                batch_size=cfg.batch_size, lr=cfg.lr, warmup=cfg.warmup, seed=cfg.seed,
                bf16=on, hooks=[tick], progress=False,
            )  # fmt: skip
            key = "bf16" if on else "fp32"
            steady = times[1:] or times  # the first step pays one-off costs
            bf16[f"{key} seconds per step"] = float(np.median(steady))
            bf16[f"{key} train loss"] = fitted.final["loss"]
            bf16[f"{key} val loss"] = train.evaluate(model, val_set, batch_size=256)["loss"]
        bf16["speed-up (fp32 / bf16 seconds per step)"] = (
            bf16["fp32 seconds per step"] / bf16["bf16 seconds per step"]
        )
        bf16["val loss difference (bf16 - fp32)"] = bf16["bf16 val loss"] - bf16["fp32 val loss"]
    seconds = {
        "pre-training (both runs, with evaluations)": t_pretrain,
        "fine-tuning (both)": t_finetune,
        "total": time.perf_counter() - t_start,
    }
    return _result(
        cfg, base, pld, unigram, target_loss, t_base, t_pld, time_ratio, sample_ratio,
        acc_base, acc_pld, majority, bf16, seconds, tok.vocab_size,
    )  # fmt: skip


def _result(
    cfg: LayerDropConfig,
    base: dict[str, Any],
    pld: dict[str, Any],
    unigram: float,
    target_loss: float,
    t_base: float,
    t_pld: float,
    time_ratio: float,
    sample_ratio: float,
    acc_base: float,
    acc_pld: float,
    majority: float,
    bf16: dict[str, Any],
    seconds: dict[str, float],
    vocab: int,
) -> Result:
    curves = {
        name: {k: run[k] for k in ("seconds", "steps", "val_loss")}
        for name, run in (("baseline", base), ("PLD", pld))
    }
    layer_params = sum(p.numel() for p in base["encoder"].layers.parameters())
    total_params = sum(p.numel() for p in base["encoder"].parameters())
    theta_end = pld_theta(cfg.steps, theta_bar=cfg.theta_bar, gamma=cfg.gamma_eff)
    reached = math.isfinite(t_pld)
    metrics: dict[str, Any] = {
        "baseline samples/s": base["samples_per_s"],
        "PLD samples/s": pld["samples_per_s"],
        "time per sample, baseline / PLD": sample_ratio,
        "baseline training seconds": base["train_seconds"],
        "PLD training seconds": pld["train_seconds"],
        "baseline final val loss": target_loss,
        "PLD final val loss": pld["val_loss"][-1],
        "unigram val loss": unigram,
        "baseline final val loss below unigram (nats)": unigram - target_loss,
        "baseline seconds to its final val loss": t_base,
        "PLD seconds to the baseline's final val loss": t_pld if reached else None,
        "time to the baseline's final val loss, baseline / PLD": time_ratio if reached else None,
        "PLD share of layer calls run": pld["layer_calls_run"],
        "PLD drop rate per layer": pld["drop_rate_per_layer"],
        "gamma (scaled)": cfg.gamma_eff,
        "theta at the last step": theta_end,
        "reviews accuracy, baseline": acc_base,
        "reviews accuracy, PLD": acc_pld,
        "reviews accuracy, PLD minus baseline (points)": 100 * (acc_pld - acc_base),
        "reviews majority-class accuracy": majority,
        "bf16": bf16,
        "curves": curves,
        "vocab": vocab,
        "layer parameters": layer_params,
        "encoder parameters": total_params,
        "pre-training tokens per run": cfg.steps * cfg.batch_size * cfg.seq_len,
        "seconds": seconds,
        "paper": {"time per sample saved": 0.24, "speed-up to same accuracy": 2.5,
                  "GLUE avg PLD / baseline": [82.9, 82.1]},
    }  # fmt: skip
    targets = [
        Target.check("PLD time per sample: baseline / PLD", sample_ratio, ">=", 1.3),
        Target.check(
            "time to the baseline's final val loss: baseline / PLD",
            time_ratio if reached else float("nan"), ">=", 1.5,
        ),
        Target.check(
            "reviews accuracy, PLD minus baseline (points)",
            100 * (acc_pld - acc_base), ">=", -1.0,
        ),
    ]  # fmt: skip
    evals = cfg.steps // cfg.eval_every
    theta_x = [round(cfg.steps * i / 40) for i in range(41)]
    plots = [
        {
            "title": f"Validation MLM loss vs training time ({cfg.depth} x {cfg.dim}, wiki)",
            "kind": "line",
            "x_label": "training seconds (one-thread CPU time = wall on idle cores; evaluation excluded)",
            "y_label": "validation MLM cross-entropy (nats)",
            "series": [
                {"name": "baseline", "x": base["seconds"], "y": base["val_loss"]},
                {"name": "PLD", "x": pld["seconds"], "y": pld["val_loss"]},
                {
                    "name": "unigram",
                    "x": [0.0, max(base["seconds"][-1], pld["seconds"][-1])],
                    "y": [unigram, unigram],
                },
            ],
        },
        {
            "title": f"PLD schedule (theta_bar {cfg.theta_bar}, gamma {cfg.gamma_eff:.3g})",
            "kind": "line",
            "x_label": "optimizer step",
            "y_label": "keep probability",
            "series": [
                {
                    "name": "theta (top layer)",
                    "x": theta_x,
                    "y": [
                        pld_theta(t, theta_bar=cfg.theta_bar, gamma=cfg.gamma_eff) for t in theta_x
                    ],
                },
                {
                    "name": "mean over layers",
                    "x": theta_x,
                    "y": [
                        float(
                            np.mean(
                                keep_probs(
                                    pld_theta(t, theta_bar=cfg.theta_bar, gamma=cfg.gamma_eff),
                                    cfg.depth,
                                )
                            )
                        )
                        for t in theta_x
                    ],
                },  # fmt: skip
            ],
        },
    ]
    left = (
        "both runs left the unigram plateau"
        if max(base["val_loss"][-1], pld["val_loss"][-1]) < unigram - 0.1
        else "the runs did not both clearly leave the unigram plateau, so the time-to-loss "
        "ratio compares times to a plateau loss and says little"
    )
    bf16_note = (
        f" bf16 autocast on the baseline's step: {bf16['fp32 seconds per step']:.3f} s fp32 vs "
        f"{bf16['bf16 seconds per step']:.3f} s bf16, a {bf16['speed-up (fp32 / bf16 seconds per step)']:.2f}x "
        f"speed-up as measured; after {cfg.bf16_steps} steps the val loss differs by "
        f"{bf16['val loss difference (bf16 - fp32)']:+.4f} nats."
        if bf16
        else ""
    )
    notes = (
        f"Scale: a {cfg.depth}-layer, {cfg.dim}-wide Pre-LN encoder ({layer_params:,} layer "
        f"parameters of {total_params:,}), {cfg.steps} steps x {cfg.batch_size} rows x "
        f"{cfg.seq_len} tokens per run on ~2.4 MB of wiki text, single-threaded CPU; the paper "
        "trains BERT-base for 200K steps x 4K x 128 tokens on 64 V100s. gamma scaled to "
        f"{cfg.gamma_eff:.3g} (0.001 x 200K / {cfg.steps}) so theta reaches {theta_end:.3f} by "
        f"the end and saturates at the paper's 2.5% of training; PLD ran "
        f"{100 * pld['layer_calls_run']:.0f}% of the layer calls. Time per sample, baseline / PLD: "
        f"{sample_ratio:.2f} ({base['samples_per_s']:.1f} vs {pld['samples_per_s']:.1f} samples/s). "
        f"The baseline ends at val loss {target_loss:.3f} (unigram {unigram:.3f}; {left}); PLD "
        + (
            f"reaches it after {t_pld:.1f} s vs the baseline's {t_base:.1f} s ({time_ratio:.2f}x)"
            if reached
            else f"never reaches it (ends at {pld['val_loss'][-1]:.3f})"
        )
        + f". Fine-tuned on {cfg.ft_train} reviews ({cfg.ft_epochs} epoch(s)), scored on "
        f"{cfg.ft_test}: baseline {acc_base:.3f}, PLD {acc_pld:.3f}, majority class {majority:.3f} "
        f"(one standard error is about "
        f"{100 * (0.25 / cfg.ft_test) ** 0.5:.1f} points, so a 1-point gap is within noise"
        + (
            "; neither fine-tune beat the majority class by a point, so the accuracy target "
            "says nothing here). "
            if max(acc_base, acc_pld) < majority + 0.01
            else "). "
        )
        + f"Loss curves are against training time with the {evals} evaluations taken off "
        "the clock; with one thread that clock is the process's CPU time (wall time on idle "
        "cores), because wall time on a shared machine is noisy (two demo runs timed by the "
        "wall clock gave 1.24 and 1.40 for the same time-per-sample ratio under other jobs' "
        "load). The paper's 2.5x to the same accuracy combines the faster step with a "
        "larger learning rate for PLD; we give both runs one rate, so only the faster step "
        "(and any loss cost of dropping) is measured here." + bf16_note
    )
    return Result(
        recipe="layer-drop",
        claim=Claim(
            text=(
                "Progressive layer dropping pre-trains BERT with 24% less time per sample and "
                "reaches the baseline's downstream accuracy 2.5x faster, at GLUE parity "
                "(82.9 vs 82.1)"
            ),
            value=0.24,
            source=(
                "Zhang & He, NeurIPS 2020, arXiv 2010.13369 (abstract); DeepSpeed progressive "
                "layer dropping tutorial (GLUE table, theta 0.5, gamma 0.001)"
            ),
        ),
        metrics=metrics,
        targets=targets,
        plots=plots,
        notes=notes,
    )
