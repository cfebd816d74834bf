"""mpnet: MPNet vs MLM vs PLM pre-training at equal steps and equal compute, compared downstream.

Takeaway 4 (Song et al., arXiv 2004.09297). One encoder architecture and vocabulary
(``nn.mlm.wiki_rows``); per seed three pre-training runs that differ only in the objective
(``takeaways.mpnet.MPNetCollator`` / ``MPNetPretrainer`` with ``objective="mlm" | "plm" |
"mpnet"``). The collators share a seed, so all three see the same rows, permutations,
predicted positions and corruption; only what each predicted token may see differs. MPNet's
two streams cost more per step than MLM's one, so a fourth run, ``mlm, equal compute``, trains
MLM for as many steps as fit in that seed's measured MPNet CPU time. Each pre-trained encoder,
and the same encoder randomly initialized, is fine-tuned as a ``SequenceClassifier`` on the
tasks with identical data, steps and seeds.

The judge's checks: every pre-training run ended ``PLATEAU_MARGIN`` nats under the unigram
loss of its targets; on each task every pre-trained arm beat the majority class (a data-only
``facts`` metric) by ``MAJORITY_MARGIN`` points and beat the random init with a paired interval
above zero — else pre-training did nothing useful and ranking the objectives says nothing.
The targets, MPNet beats MLM (equal steps and equal compute) and PLM, are met only when the
paired 95% t-interval over seeds lies above zero.

The encoder is Pre-LN with MPNet's shared relative position bias (32 buckets) (``layout="hf"``:
MPNet's own layout, exportable by ``to_hf_mpnet``). Masks are static, one draw per pass. The
full preset is character-level (``vocab=128`` leaves WordPiece at wiki's 451-symbol
alphabet): the previous 512-piece WordPiece preset ended every objective on the unigram
plateau and below a random init downstream. Tweets is the downstream task: on reviews a
character-level encoder of this size stays at the majority class pre-trained or not (pilot,
2,000 labels: 57.3% vs 58.2%, majority 57.5%), while on tweets a 4-layer encoder pre-trained
by MLM beat the same encoder from scratch (pilot, one seed, 4,000 labels: 65.0% vs 61.2%).
Scale: the paper, 110M parameters, 160GB, 125K updates of 8,192 x 512 tokens; the full preset,
~0.8M parameters, ~3MB of Wikipedia, 1,600 shared + 900 updates of 32 x 64 characters.

Why a shared MLM prefix (``shared_steps``): at character level every objective first sits on
the unigram plateau, and how long depends on the objective, not on what it learns after. A
one-seed pilot (2 x 64 encoder, 800 steps, lr 1e-3; unigram 3.536) ended MLM at 3.209 and
MPNet at 3.21 but PLM at 3.49, and MLM with pure ``[MASK]`` inputs (no 10% kept or random
tokens) at 3.50: the kept tokens, which MLM and MPNet's content [M] copies have and PLM's
pure-[MASK] query stream must not, bootstrap the escape. At 2,400 steps PLM (3.19) and
pure-[MASK] MLM (3.22) were still only 0.3 nats below the unigram loss. The paper's 125K steps make that phase negligible; here it would decide the
comparison. So each seed trains one MLM prefix (warm-up, then the peak rate) and all three
objectives continue from it for ``steps``; the prefix favours MLM, if anything.

Why a linear probe (``probe``) and which measure is judged (``judged``): fine-tuning all
weights on 2,000 labels let a random init catch up with encoders at validation loss 2.6 (the
previous full preset: scratch 60.2% beat MLM 59.2%, MPNet 59.6%, PLM 55.4%). A logistic-
regression probe on frozen mean-pooled features (``train.probe_score``) measures what
pre-training put into the features, but a random character encoder's pooled features are
already a strong bag of character n-grams: at val 2.5 (an 800-step prefix) the probe gave
scratch 56.3% against 54.4-57.1% pre-trained, and at val 1.4-1.6 (a 2,000-step prefix) only
+2.7 to +4.0 points. Fine-tuning on 4,000 labels with those encoders gave +6.2 to +6.6, so
fine-tuning (the paper's measure) is judged; the probe stays an option, off in the full preset.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import torch

from takeaways import data, nn, train
from takeaways.mpnet import HF_LAYOUT, MPNetCollator, MPNetPretrainer
from takeaways.nn.mlm import copies_for, plateau_check, unigram_loss, wiki_rows
from takeaways.recipes import register_recipe, seed_range
from takeaways.results import (
    RERUN,
    Check,
    Claim,
    Judgement,
    Result,
    Target,
    bar_plot,
    mean_se,
    paired_diff,
)

OBJECTIVES = ("mlm", "plm", "mpnet")
MATCHED = "mlm, equal compute"  # MLM for as many steps as MPNet's CPU time buys
TASKS = ("reviews", "tweets")
PLATEAU_MARGIN = 0.5  # nats: a pre-training run "left the unigram plateau" when this far below it
MAJORITY_MARGIN = 1.0  # points: a fine-tune "learned" when this far above the majority class
MEASURES = {"finetune": ("accuracy", "fine-tuned"), "probe": ("probe_accuracy", "linear-probe")}
CLAIM = Claim(
    text=(
        "MPNet (masked and permuted pre-training) beats BERT's MLM and XLNet's PLM "
        "downstream: GLUE dev average 87.7 vs BERT 83.1, XLNet 84.5 and RoBERTa 86.4 "
        "at base size"
    ),
    value=87.7,
    source=(
        "Song et al., arXiv 2004.09297 (NeurIPS 2020), as reported in the paper, "
        "Table 3; pre-training recipe (125K updates, lr 5e-4) from microsoft/MPNet's README"
    ),
)
# full: a 1,600-step MLM prefix per seed, then 900 steps per objective, fine-tuned on 4,000
# tweets labels for 2 epochs. Chosen from one-seed pilots (commit b5706db's code) as the most
# pre-training that fits the 60 CPU-minute cap at 3 seeds: a 2,000-step prefix, 1,200 steps and
# 4,000 labels x 3 epochs gave scratch 59.6%, MLM 66.1%, PLM 66.1%, MPNet 65.8% but measured
# 25 CPU-minutes per seed (pre-training 16.6: prefix 4.1, MLM 2.5, PLM 3.0, MPNet 3.5, MLM at
# equal compute 3.5; one fine-tune 1.7 with 2,000 test rows; the probe 0.4 per arm, so it is off);
# a 1,600-step prefix with 3,000 labels x 2 epochs gave scratch 58.4%, MLM 62.8%, PLM 63.2%,
# MPNet 63.1%. Fewer labels shrink the gain (2,000 x 3: scratch 58.0%, MLM 61.6%).
PRESETS = {
    "smoke": {
        "vocab": 256, "dim": 32, "steps": 4, "eval_rows": 16, "ft_train": 64, "ft_test": 64,
        "ft_len": 16, "seq_len": 16,
    },
    "demo": {},
    "full": {
        "vocab": 128, "dim": 128, "depth": 4, "heads": 2, "seq_len": 64, "steps": 900,
        "shared_steps": 1600, "lr": 1e-3, "warmup": 0.05, "eval_rows": 256, "ft_len": 128,
        "ft_train": 4000, "ft_test": 2000, "ft_epochs": 2, "ft_lr": 5e-4, "tasks": ("tweets",),
        "probe": False, "judged": "finetune", "seeds": 3,
    },
}  # fmt: skip


@dataclass(frozen=True)
class MPNetConfig:
    vocab: int = 512  # WordPiece vocabulary trained on the wiki split (small: see the docstring)
    dim: int = 64  # encoder width (the same encoder for every objective)
    depth: int = 2  # encoder blocks
    heads: int = 2  # attention heads
    layout: Literal["pre", "hf"] = "pre"  # Pre-LN + relative bias, or HF MPNet's Post-LN layout
    dropout: float = 0.0  # encoder dropout (under a few passes over the data: little to regularize)
    seq_len: int = 32  # pre-training tokens per row (consecutive wiki text)
    steps: int = 100  # pre-training optimizer steps per objective, equal for all
    shared_steps: int = 0  # MLM steps per seed that every objective continues from (0 = none)
    batch_size: int = 32  # pre-training rows per step
    lr: float = 3e-3  # AdamW peak of pre-training; warm-up then cosine to 0
    warmup: float = 0.1  # fraction of the pre-training steps spent warming up
    pred_prob: float = 0.15  # share of each row predicted (MPNet's --pred-prob)
    whole_word: bool = False  # permute whole words (a token and its ## pieces) together
    eval_rows: int = 128  # held-out wiki rows scored by each objective's own loss
    ft_len: int = 32  # tokens per review / tweet, [CLS] and [SEP] included
    ft_train: int | None = 500  # training examples per task (None = all)
    ft_test: int | None = 400  # test examples per task (None = all)
    ft_epochs: int = 2  # fine-tuning epochs, equal for all
    ft_batch_size: int = 32
    ft_lr: float = 1e-3  # AdamW peak of fine-tuning, 10% warm-up then cosine
    pooling: Literal["mean", "cls"] = "mean"  # classifier pooling (mean: 61.9% vs cls 58.1%
    # from scratch on 2,000 reviews x 4 epochs; cls stays near the 57.1% majority class)
    tasks: tuple[str, ...] = TASKS  # downstream datasets (reviews first: it holds the target)
    scratch: bool = True  # also score a randomly initialized encoder (no pre-training)
    finetune: bool = True  # fine-tune every encoder on each task (the paper's measure)
    probe: bool = False  # also score a linear probe on each encoder's frozen mean-pooled features
    judged: Literal["finetune", "probe"] = "finetune"  # the measure the checks and targets use
    equal_compute: bool = True  # also train MLM for MPNet's measured CPU time (threads must be 1)
    seeds: int = 1  # independent runs (init, data order, permutations); mean ± s.e. reported
    seed: int = 0  # first seed
    threads: int = 1  # torch threads (tiny matmuls: 1 avoids sync overhead on shared cores)

    def validate(self) -> None:
        sizes = (self.vocab, self.dim, self.depth, self.heads, self.steps, self.batch_size)
        if min(sizes) < 1 or min(self.eval_rows, self.ft_epochs, self.ft_batch_size) < 1:
            raise ValueError("sizes, steps, batch sizes, eval_rows and ft_epochs must be >= 1")
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} must be divisible by heads={self.heads}")
        if self.vocab < 64:
            raise ValueError(f"vocab must be >= 64, got {self.vocab}")
        if not 0.0 < self.pred_prob < 1.0:
            raise ValueError(f"pred_prob must be in (0, 1), got {self.pred_prob}")
        if round(self.seq_len * self.pred_prob) < 1:
            raise ValueError("seq_len x pred_prob rounds to 0 predicted tokens; raise either")
        if self.ft_len < 4:
            raise ValueError(f"ft_len must be >= 4, got {self.ft_len}")
        if any(n is not None and n < 1 for n in (self.ft_train, self.ft_test)):
            raise ValueError("ft_train and ft_test must be >= 1, or none for all")
        if not self.tasks or any(t not in TASKS for t in self.tasks):
            raise ValueError(f"tasks must be a non-empty subset of {', '.join(TASKS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.shared_steps < 0:
            raise ValueError(f"shared_steps must be >= 0, got {self.shared_steps}")
        if min(self.seeds, self.threads) < 1 or self.lr <= 0 or self.ft_lr <= 0:
            raise ValueError("seeds and threads must be >= 1 and lr, ft_lr > 0")
        if not (self.finetune if self.judged == "finetune" else self.probe):
            raise ValueError(f"judged={self.judged!r} needs {self.judged}=true")
        if self.equal_compute and self.threads != 1:
            raise ValueError("equal_compute times runs in CPU seconds: set threads=1")


# ----------------------------------------------------------------------------- data


def _task_subsets(name: str, cfg: MPNetConfig) -> tuple[data.Split, data.Split, int]:
    """(train, test, classes) of a downstream task: the training rows subsampled by a fixed
    seed, the first ``ft_test`` test rows."""
    bundle = data.load(name)
    rng = np.random.default_rng(1234)
    tr = bundle.train.subset(rng.permutation(len(bundle.train))[: cfg.ft_train])
    te = bundle.test.subset(np.arange(len(bundle.test))[: cfg.ft_test])
    return tr, te, len(bundle.classes)


def facts(cfg: MPNetConfig) -> dict[str, Any]:
    """Data-only metrics: per task, the share of the scored test rows in their most frequent class."""
    return {
        "majority_class_accuracy": {t: _majority(_task_subsets(t, cfg)[1].y) for t in cfg.tasks}
    }


# ----------------------------------------------------------------------------- judge


def judge(m: dict[str, Any], cfg: MPNetConfig) -> Judgement:
    """Checks: off the unigram plateau, above the majority class, above a random init, on the
    judged measure (fine-tuned or linear-probe accuracy)."""
    unigram, majority = m["unigram_val_loss"], m.get("majority_class_accuracy")
    plateau = "pre-training left the unigram plateau (nats below the unigram loss, worst seed)"
    checks = [
        plateau_check(f"{o} {plateau}", max(m["val_loss"][o]["per_seed"]), unigram, PLATEAU_MARGIN)
        for o in m["val_loss"]
    ]
    key, what = MEASURES[cfg.judged]
    if key not in m:
        checks.append(Check.missing(f"{what} accuracy of every arm", what))
        return Judgement(checks, [], f"No {what} accuracy in this result.", "Rerun it.")
    acc = m[key]
    tag = "" if cfg.judged == "finetune" else f", {what} accuracy"  # fine-tuning: the paper's
    for t in cfg.tasks:
        name = f"{t}: every pre-trained arm beat the majority class{tag} (points, worst arm)"
        if majority is None:
            checks.append(Check.missing(name, "majority-class accuracy"))
        else:
            worst = min(_pretrained(acc[t]), key=lambda o: acc[t][o]["mean"])
            checks.append(Check.that(
                name, 100 * (acc[t][worst]["mean"] - majority[t]), ">=", MAJORITY_MARGIN,
                f"{worst} {acc[t][worst]['mean']:.4f} vs majority class {majority[t]:.4f}",
            ))  # fmt: skip
        name = (
            f"{t}: every pre-trained arm beat a randomly initialized encoder{tag} (points, "
            "worst arm; the paired interval must lie above 0)"
        )
        if "scratch" not in acc[t]:
            checks.append(Check(name, False, "no scratch arm in this result; rerun with scratch=true"))  # fmt: skip
        else:
            gain = {o: _points(acc[t][o], acc[t]["scratch"]) for o in _pretrained(acc[t])}
            worst = min(gain, key=lambda o: gain[o].lo if gain[o].n > 1 else gain[o].mean)
            passed = gain[worst].mean > 0 and gain[worst].excludes(0.0)
            checks.append(Check(name, passed, f"{worst} minus scratch, points: {gain[worst]}"))
    targets = []
    for t in cfg.tasks:
        n = len(acc[t]["mlm"]["per_seed"])
        for other, label in (
            ("mlm", "MLM, equal steps"),
            ("plm", "PLM, equal steps"),
            (MATCHED, "MLM, equal compute"),
        ):
            name = f"{t}: MPNet minus {label}{tag or ' accuracy'} (points, paired over {n} seeds)"
            if other in acc[t]:
                targets.append(Target.beats(name, _points(acc[t]["mpnet"], acc[t][other])))
            elif other == MATCHED and cfg.equal_compute:
                missing = f"the equal-compute arm is {RERUN}"
                targets.append(Target(name, float("nan"), 0.0, ">", False, None, missing))
    return Judgement(checks, targets, _finding(m, cfg), _advice(m, cfg, checks, targets))


def _pretrained(arms: dict[str, Any]) -> list[str]:
    """The pre-trained arms of one task's accuracies (every arm but scratch)."""
    return [a for a in arms if a != "scratch"]


def _points(a: dict[str, Any], b: dict[str, Any]):
    """Paired difference ``a - b`` of two arms' per-seed accuracies, in points."""
    return paired_diff([100 * x for x in a["per_seed"]], [100 * x for x in b["per_seed"]])


def _finding(m: dict[str, Any], cfg: MPNetConfig) -> str:
    key, what = MEASURES[cfg.judged]
    t, acc = cfg.tasks[0], m[key][cfg.tasks[0]]
    majority = m.get("majority_class_accuracy")
    arms = ", ".join(f"{a} {100 * v['mean']:.1f}%" for a, v in acc.items())
    other = MEASURES["probe" if cfg.judged == "finetune" else "finetune"]
    also = (
        f"; {other[1]} accuracy "
        + ", ".join(f"{a} {100 * v['mean']:.1f}%" for a, v in m[other[0]][t].items())
        if other[0] in m
        else ""
    )
    return (
        f"On {t}, MPNet minus MLM {what} accuracy in points is "
        f"{_points(acc['mpnet'], acc['mlm'])}; mean test {what} accuracy {arms}"
        + (f" (majority class {100 * majority[t]:.1f}%)" if majority else "")
        + "; validation loss "
        + ", ".join(f"{o} {m['val_loss'][o]['mean']:.3f}" for o in OBJECTIVES)
        + f" vs unigram {m['unigram_val_loss']:.3f}{also}."
    )


def _advice(m: dict[str, Any], cfg: MPNetConfig, checks: list[Check], targets: list[Target]) -> str:
    failed = [c.name for c in checks if not c.passed]
    if failed:
        return (
            "Do not expect MPNet to beat MLM at this scale: the check "
            f"'{failed[0]}' failed, so no objective was ranked; use it when pre-training runs "
            "long enough that an MLM encoder clearly beats a randomly initialized one downstream."
        )
    if all(t.met for t in targets):
        return (
            "Use it when pre-training an encoder from scratch: MPNet beat MLM on every task "
            f"here ({', '.join(f'{t.measured:+.1f}' for t in targets)} points) at the same steps."
        )
    return (
        "Do not expect a gain over MLM at this scale (the paired interval of MPNet - MLM "
        "includes zero on at least one task); use it when pre-training runs long enough to "
        "separate the objectives, as in the paper."
    )


# ----------------------------------------------------------------------------- run


@register_recipe(
    "mpnet",
    config=MPNetConfig,
    presets=PRESETS,
    takeaway=4,
    summary="MPNet vs MLM vs PLM pre-training at equal steps on wiki: downstream accuracy",
    judge=judge,
    facts=facts,
)
def run(cfg: MPNetConfig) -> Result:
    t_start = time.perf_counter()
    tok, train_rows, val_rows = wiki_rows(cfg.vocab, cfg.seq_len, cfg.eval_rows)
    tasks = {}  # tokenized (train, test, classes) of each downstream task
    for name in cfg.tasks:
        tr, te, classes = _task_subsets(name, cfg)
        tasks[name] = (tok.encode_split(tr, cfg.ft_len), tok.encode_split(te, cfg.ft_len), classes)
    encoder_cfg = nn.EncoderConfig(
        vocab_size=tok.vocab_size, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads,
        max_len=max(cfg.seq_len, cfg.ft_len), dropout=cfg.dropout,
        # MPNet's relative position bias either way; "hf" adds Post-LN and embedding LN
        **(HF_LAYOUT if cfg.layout == "hf" else {"rel_buckets": 32}),
    )  # fmt: skip
    arms = (
        (("scratch",) if cfg.scratch else ())
        + OBJECTIVES
        + ((MATCHED,) if cfg.equal_compute else ())
    )

    val_loss: dict[str, list[float]] = {o: [] for o in arms if o != "scratch"}
    accuracy: dict[str, dict[str, list[float]]] = {t: {a: [] for a in arms} for t in cfg.tasks}
    probe: dict[str, dict[str, list[float]]] = {t: {a: [] for a in arms} for t in cfg.tasks}
    seconds: dict[str, list[float]] = {a: [] for a in arms}
    pretrain_cpu: dict[str, list[float]] = {a: [] for a in arms if a != "scratch"}
    matched_steps: list[int] = []
    unigram = math.nan
    prefix: dict[str, list[float]] = {"val_loss": [], "cpu_seconds": []}
    for seed in seed_range(cfg):
        start = None  # the weights every objective starts from: its init, or the shared prefix
        if cfg.shared_steps:
            train.seed_everything(seed)
            encoder = nn.TransformerEncoder(encoder_cfg)
            loss, _, cpu = _pretrain(
                cfg, tok, encoder, "mlm", train_rows, val_rows, seed + 20_000, cfg.shared_steps,
                schedule="constant", desc=f"pre-train shared mlm prefix seed {seed}",
            )  # fmt: skip
            prefix["val_loss"].append(loss)
            prefix["cpu_seconds"].append(cpu)
            start = copy.deepcopy(encoder.state_dict())
        for arm in arms:
            train.seed_everything(seed)
            encoder = nn.TransformerEncoder(encoder_cfg)  # the same init for every arm
            t0 = time.perf_counter()
            if arm != "scratch":
                if start is not None:
                    encoder.load_state_dict(start)
                objective, steps = arm, cfg.steps
                if arm == MATCHED:  # the MLM steps that this seed's MPNet CPU time buys
                    per_step = pretrain_cpu["mlm"][-1] / cfg.steps
                    objective, steps = "mlm", round(pretrain_cpu["mpnet"][-1] / per_step)
                    matched_steps.append(steps)
                loss, arm_unigram, cpu = _pretrain(
                    cfg, tok, encoder, objective, train_rows, val_rows, seed, steps
                )
                val_loss[arm].append(loss)
                pretrain_cpu[arm].append(cpu)
                unigram = arm_unigram if math.isnan(unigram) else unigram
            if cfg.probe:  # before fine-tuning changes the weights
                for name, (tr, te, _) in tasks.items():
                    probe[name][arm].append(train.probe_score(encoder, tr, te))
            if cfg.finetune:
                for name, acc in _finetune(cfg, encoder, tasks, arm, seed).items():
                    accuracy[name][arm].append(acc)
            seconds[arm].append(time.perf_counter() - t0)

    def summary(xs: list[float], spread: bool = True) -> dict[str, Any]:
        mean, se = mean_se(xs)
        return {"mean": mean, **({"spread": max(xs) - min(xs)} if spread else {}),
                "per_seed": xs, "se": se}  # fmt: skip

    by_task = lambda scores: {  # noqa: E731
        t: {a: summary(v) for a, v in accs.items()} for t, accs in scores.items()
    }
    metrics = {
        **({"accuracy": by_task(accuracy)} if cfg.finetune else {}),
        **({"probe_accuracy": by_task(probe)} if cfg.probe else {}),
        "val_loss": {o: summary(v, spread=False) for o, v in val_loss.items()},
        "unigram_val_loss": unigram,
        "vocab": tok.vocab_size,
        "train_rows": len(train_rows),
        "pretrain_tokens_per_run": cfg.steps * cfg.batch_size * cfg.seq_len,
        "encoder_parameters": sum(p.numel() for p in encoder.parameters()),
        "seconds_per_arm": {a: mean_se(v)[0] for a, v in seconds.items()},
        "pretrain_cpu_seconds": {a: mean_se(v)[0] for a, v in pretrain_cpu.items()},
        "pretrain_steps": {
            **{o: cfg.steps for o in OBJECTIVES},
            **({MATCHED: matched_steps} if matched_steps else {}),
        },
        "setup_seconds": time.perf_counter() - t_start - sum(map(sum, seconds.values())),
    }
    if cfg.shared_steps:
        metrics["shared_mlm_prefix"] = {"steps": cfg.shared_steps, **prefix}
    plots = _plots(cfg, metrics, facts(cfg))  # the registry also merges facts into the metrics
    notes = _notes(cfg, metrics)
    return Result(recipe="mpnet", claim=CLAIM, metrics=metrics, plots=plots, notes=notes)


def _pretrain(
    cfg: MPNetConfig, tok, encoder, objective: str, train_rows, val_rows, seed: int, steps: int,
    *, schedule: str = "cosine", desc: str | None = None,
):  # fmt: skip
    """Pre-train ``encoder`` in place for ``steps``; (validation loss, unigram loss of the same
    targets, CPU seconds of the training loop). ``seed`` seeds the masks and data order."""
    copies = copies_for(steps * cfg.batch_size, len(train_rows))
    model = MPNetPretrainer(encoder, objective=objective)
    collator = partial(
        MPNetCollator, tok, objective=objective, pred_prob=cfg.pred_prob, whole_word=cfg.whole_word
    )
    train_set = collator(seed=seed).static(train_rows, copies)
    val_set = collator(seed=seed + 10_000).static(val_rows, 1)
    unigram = unigram_loss(train_set[1], val_set[1], tok.vocab_size)
    t0 = time.process_time()
    train.fit(
        model, train_set, epochs=copies, max_steps=steps, batch_size=cfg.batch_size,
        lr=cfg.lr, warmup=cfg.warmup, schedule=schedule, seed=seed,
        desc=desc or f"pre-train {objective} seed {seed}",
    )  # fmt: skip
    cpu = time.process_time() - t0
    return train.evaluate(model, val_set, batch_size=128)["loss"], unigram, cpu


def _finetune(cfg: MPNetConfig, encoder, tasks: dict, arm: str, seed: int) -> dict[str, float]:
    """Test accuracy on each task of a classifier fine-tuned from ``encoder``'s weights."""
    pretrained = encoder.state_dict()
    out = {}
    for name, (tr, te, classes) in tasks.items():
        train.seed_everything(seed)
        encoder.load_state_dict(pretrained)  # every task starts from the same weights
        clf = nn.SequenceClassifier(encoder, classes, pooling=cfg.pooling)
        out[name] = train.fit_score(
            clf, tr, te, epochs=cfg.ft_epochs, batch_size=cfg.ft_batch_size, lr=cfg.ft_lr,
            warmup=0.1, seed=seed, desc=f"fine-tune {arm} on {name} seed {seed}",
        )  # fmt: skip
    return out


def _majority(y: np.ndarray) -> float:
    """The share of the most frequent class in labels ``y``."""
    return float(torch.bincount(torch.as_tensor(y, dtype=torch.long)).max()) / len(y)


# ----------------------------------------------------------------------------- report


def _plots(cfg: MPNetConfig, m: dict[str, Any], floor: dict[str, Any]) -> list[dict[str, Any]]:
    n = cfg.seeds
    plots = [
        bar_plot(
            f"{t}: {what} test accuracy after pre-training with each objective "
            f"(mean ± s.e., {n} seeds)",
            f"{what} test accuracy",
            [(a, v["mean"], v["se"]) for a, v in m[key][t].items()],
            x_label="pre-training objective",
            reference=("majority class", floor["majority_class_accuracy"][t]),
        )
        for key, what in MEASURES.values()
        if key in m
        for t in cfg.tasks
    ]
    plots.append(
        bar_plot(
            f"Validation loss of each objective on its own held-out targets ({n} seeds)",
            "cross-entropy (nats)",
            [(o, v["mean"], v["se"]) for o, v in m["val_loss"].items()],
            x_label="pre-training objective",
            reference=("unigram", m["unigram_val_loss"]),
        )
    )
    return plots


def _notes(cfg: MPNetConfig, m: dict[str, Any]) -> str:
    return (
        "Validation losses are each objective's own loss on held-out wiki targets (same rows, "
        "positions and corruption for all three); they are not comparable across objectives, "
        f"since PLM predicts from less context than MLM. Scale: encoder {cfg.depth} x {cfg.dim} "
        f"({m['encoder_parameters']:,} parameters with embeddings), {cfg.steps} pre-training "
        f"steps x {cfg.batch_size} x {cfg.seq_len} tokens ({m['pretrain_tokens_per_run']:,} "
        f"tokens) on the ~3MB gensim Wikipedia sample, vocab {m['vocab']}; the paper: BERT-base "
        "size, 160GB of text, 125K updates of 8K x 512 tokens, lr 5e-4, 10K warm-up steps."
    )
