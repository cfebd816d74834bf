"""lottery-bert: lottery tickets in the packaged pre-trained MiniLM, on review sentiment and MLM.

Takeaway 3 (Chen et al., arXiv:2007.12223) on a real pre-trained BERT, all-MiniLM-L6-v2
(``nn.load_minilm``), with the paper's protocol throughout: every IMP round starts from the
pre-trained weights, trains, prunes a share of the original attention / feed-forward weights
globally by magnitude, and rewinds the survivors to the pre-trained weights.

1. Reviews (Rotten Tomatoes fresh vs rotten), ``seeds`` times (head init, data order and the
   random masks per seed, the same seed in every arm, so arms pair): the dense fine-tune, IMP
   to ``rate x rounds`` sparsity, and at ``control_rounds`` a random mask with the ticket's
   per-layer sparsity, trained the same way. Every run is scored on a validation split carved
   from the training reviews (disjoint from the ``max_train`` fine-tuned on) and on the test
   split. Choices use the validation split only: the highest sparsity whose ticket matches
   dense (mean paired validation gap within 1 point) and the controlled sparsity to compare
   at; the test split then gives paired intervals at those choices.
2. MLM. MiniLM was distilled from a teacher's self-attention (arXiv 2002.10957) and ships
   without an MLM head, so an MLM head is first trained on the frozen pre-trained encoder
   (BERT's 80/10/10 masking on ``wiki``); the encoder with that head plays the paper's
   pre-trained BERT with its MLM head. IMP on MLM rewinds to it (the pre-trained encoder
   weights), finds the paper's 70% ticket, and that ticket is applied to the same pre-trained
   encoder in a reviews classifier -- the mask found, on the weights it was found on (the run
   measures ``max |w - w0 * mask|`` right after the transfer; a check requires 0) -- and
   fine-tuned on reviews with every seed, beside a random mask of the same layer sparsity.

Every fine-tune has the same data, epochs and schedule; accuracy is the final epoch's. The
word embeddings (12 M of 22.7 M parameters, never pruned) stay frozen; the classifier
mean-pools, as MiniLM was trained to. The one-shot magnitude control of earlier versions is
left out (the issue asks for IMP against random pruning, and it costs a fine-tune per
controlled round and seed). ``judge`` checks that the dense fine-tune and the transferred MLM
ticket (or its control) beat the majority class, that MLM training from the pre-trained
weights left the unigram solution, and that the transferred ticket is the one found; the
floors are data-only ``facts``, so ``rejudge`` can add them to an older result.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch import nn as tnn

from takeaways import data, nn, train
from takeaways.lottery import find_ticket
from takeaways.lottery.imp import sparsity_schedule, train_controls
from takeaways.lottery.metrics import compared_sparsity
from takeaways.nn.mlm import GatheredMLM, masked_copies
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

MATCH = 0.01  # a ticket "matches" dense when its mean paired validation gap is within this


@dataclass(frozen=True)
class LotteryBertConfig:
    layers: int = 2  # first pre-trained MiniLM layers kept (6 = the whole model)
    max_len: int = 32  # tokens per review / wiki passage, [CLS] and [SEP] included
    max_train: int = 192  # reviews used for every fine-tune (of 10,246)
    max_val: int = 96  # further training reviews scoring every run for the choices
    max_test: int = 200  # test reviews scored (of 2,562)
    epochs: int = 1  # epochs of every reviews fine-tune (IMP round, control, transfer)
    batch_size: int = 16
    lr: float = 3e-4  # AdamW peak, 10% warm-up then linear decay within each run
    rate: float = 0.3  # linear IMP schedule: share of the original weights pruned per round
    rounds: int = 2  # IMP rounds on reviews (the paper: rate 0.1, 9 rounds -> 90%)
    control_rounds: tuple[int, ...] = (2,)  # rounds that also run the random control (empty = all)
    seeds: int = 2  # fine-tune seeds (head init, data order, random masks), paired across arms
    mlm_max_len: int = 32  # tokens per wiki passage in the MLM part
    mlm_train: int = 192  # wiki passages training the MLM head on the frozen encoder
    mlm_round_train: int = 64  # of those, the passages each MLM IMP round trains on
    mlm_test: int = 96  # held-out wiki passages scoring MLM accuracy
    mlm_head_lr: float = 1e-3  # AdamW peak of the head-only MLM training
    mlm_rate: float = 0.7  # linear schedule of the MLM ticket
    mlm_rounds: int = 1  # mlm_rate x mlm_rounds = the MLM ticket's sparsity (paper: 0.7)
    mlm_lr: float = 3e-4  # AdamW peak of each MLM IMP round (encoder and head)
    mlm_epochs: int = 1  # epochs of the head training and of each MLM IMP round
    seed: int = 0
    threads: int = 1  # intra-op threads (1 is fastest on shared cores)
    time_budget_s: float = 60.0  # budget of the preset in CPU seconds of this process

    def validate(self) -> None:
        if not 1 <= self.layers <= 6:
            raise ValueError(f"layers must be in 1..6 (MiniLM-L6), got {self.layers}")
        sizes = (self.max_train, self.max_val, self.max_test, self.mlm_train, self.mlm_test)
        if min(self.max_len, self.mlm_max_len, *sizes) < 8:
            raise ValueError("max_len, mlm_max_len and every data size must be >= 8")
        if min(self.epochs, self.mlm_epochs, self.batch_size, self.threads, self.seeds) < 1:
            raise ValueError("epochs, mlm_epochs, batch_size, threads and seeds must be >= 1")
        if not 8 <= self.mlm_round_train <= self.mlm_train:
            raise ValueError(
                f"mlm_round_train must be in 8..mlm_train={self.mlm_train}, got {self.mlm_round_train}"
            )
        sparsity_schedule("linear", self.rate, self.rounds)
        sparsity_schedule("linear", self.mlm_rate, self.mlm_rounds)
        bad = [r for r in self.control_rounds if not 1 <= r <= self.rounds]
        if bad:
            raise ValueError(f"control_rounds must lie in 1..rounds={self.rounds}, got {bad}")


def _reviews(tok: data.Tokenizer, cfg: LotteryBertConfig) -> tuple[tuple, tuple, tuple]:
    """(train, validation, test) (x, y) pairs: train and validation are disjoint draws from
    the training reviews (one permutation's first rows and the next ones)."""
    reviews = data.load("reviews")
    tr = data.sample_indices(len(reviews.train), cfg.max_train, seed=cfg.seed)
    both = data.sample_indices(len(reviews.train), cfg.max_train + cfg.max_val, seed=cfg.seed)
    va = np.setdiff1d(both, tr)
    te = data.sample_indices(len(reviews.test), cfg.max_test, seed=cfg.seed + 1)
    enc = lambda texts: tok.encode(list(texts), max_len=cfg.max_len, pad_to=cfg.max_len)  # noqa: E731
    xy = lambda split, rows: (enc(split.x[rows]), torch.as_tensor(split.y[rows]))  # noqa: E731
    return xy(reviews.train, tr), xy(reviews.train, va), xy(reviews.test, te)


def _wiki_mlm(tok: data.Tokenizer, cfg: LotteryBertConfig) -> tuple[dict, Tensor]:
    """Held-out-able wiki passages with one BERT 80/10/10 masking: (inputs, targets (R, K))."""
    wiki = data.load("wiki")
    passages = [p for doc in (*wiki.train.x, *wiki.test.x) for p in doc.split("\n") if len(p) > 80]
    pick = data.sample_indices(len(passages), cfg.mlm_train + cfg.mlm_test, seed=cfg.seed + 2)
    rows = tok.encode([passages[i] for i in pick], max_len=cfg.mlm_max_len, pad_to=cfg.mlm_max_len)
    x, y = masked_copies(tok, rows["input_ids"], 1, 0.15, cfg.seed)
    return {**x, "attention_mask": rows["attention_mask"]}, y


CLAIM = Claim(
    text=(
        "Matching subnetworks of pre-trained BERT exist at 40% to 90% sparsity (SST-2: "
        "60%), found by IMP with rewinding to the pre-trained weights; the 70% subnetwork "
        "found on the MLM task transfers to every downstream task"
    ),
    value=0.6,
    source="Chen et al., NeurIPS 2020, arXiv:2007.12223 (abstract; Table 2, SST-2 and MLM)",
)


def _pct(sparsity: float) -> str:
    return f"{100 * sparsity:.0f}%"


def _mlm_ticket(cfg: LotteryBertConfig, tok: data.Tokenizer, encoder: tnn.Module) -> tuple:
    """The MLM part up to the ticket: an MLM head trained on the frozen pre-trained encoder,
    then IMP on MLM rewinding to (pre-trained encoder, that head). Returns the ticket, the
    state it was found from, and its metrics."""
    mlm_x, mlm_y = _wiki_mlm(tok, cfg)
    split, per_round = cfg.mlm_train, cfg.mlm_round_train
    head_train = ({k: v[:split] for k, v in mlm_x.items()}, mlm_y[:split])
    mlm_round = ({k: v[:per_round] for k, v in mlm_x.items()}, mlm_y[:per_round])
    mlm_test = ({k: v[split:] for k, v in mlm_x.items()}, mlm_y[split:])  # as in facts()
    mlm = GatheredMLM(nn.MaskedLM(encoder, init="torch"))  # decodes the masked positions only
    schedule = {"schedule": "linear", "warmup": 0.1, "seed": cfg.seed, "progress": False}

    def fit(xy: Any, lr: float) -> None:
        train.fit(mlm, xy, epochs=cfg.mlm_epochs, batch_size=cfg.batch_size, lr=lr, **schedule)

    def acc(m: tnn.Module) -> float:
        return train.evaluate(m, mlm_test, batch_size=64)["accuracy"]

    untrained = acc(mlm)
    encoder.requires_grad_(False)  # the head alone, on the pre-trained encoder
    fit(head_train, cfg.mlm_head_lr)
    head_only = acc(mlm)
    encoder.requires_grad_(True)
    encoder.embeddings.weight.requires_grad_(False)  # tied to the head's decoder; never pruned
    found_from = copy.deepcopy(mlm.state_dict())  # what every IMP round rewinds to
    ticket = find_ticket(
        mlm,
        lambda m: fit(mlm_round, cfg.mlm_lr),
        acc,
        rate=cfg.mlm_rate,
        rounds=cfg.mlm_rounds,
        train_last=False,
    )
    metrics = {
        "MLM accuracy on held-out wiki": {
            "untrained head": untrained,
            "head trained on the frozen pre-trained encoder": head_only,
        },
        "MLM accuracy by IMP round": {_pct(h["sparsity"]): h["score"] for h in ticket.history},
    }
    return ticket, found_from, metrics


def facts(cfg: LotteryBertConfig) -> dict[str, Any]:
    """Data-only floors from the run's subsets and masking: the majority class on the scored
    reviews; the most frequent masked training token on the held-out wiki passages (unigram)."""
    tok = data.minilm_tokenizer()
    (_, y_train), _, (_, y_test) = _reviews(tok, cfg)
    _, mlm_y = _wiki_mlm(tok, cfg)
    unigram = train.majority_accuracy(mlm_y[: cfg.mlm_train], mlm_y[cfg.mlm_train :])
    return {
        "majority-class reviews accuracy": train.majority_accuracy(y_train, y_test),
        "MLM accuracy of the most frequent training token (unigram)": unigram,
    }


def _per_seed(m: dict[str, Any], split: str) -> dict[str, list[float]] | None:
    return (m.get("per seed") or {}).get(split)


def _mlm_arms(m: dict[str, Any]) -> tuple[str, str, float]:
    """Per-seed names of the transferred MLM ticket and its control, and its sparsity (%)."""
    name = next(k for k in m["per seed"]["test"] if k.startswith("MLM ticket "))
    pct = float(name[len("MLM ticket ") : -1])
    return name, f"MLM random {pct:.0f}%", pct


def _choices(m: dict[str, Any]) -> tuple[float, float]:
    """From the validation split only: the highest IMP sparsity (%) whose ticket matches dense
    (mean paired gap >= -MATCH; 0 when none does) and the controlled sparsity to compare at."""
    val = _per_seed(m, "validation")
    mean = lambda arm: mean_std(val[arm])[0]  # noqa: E731
    imp = {float(k[4:-1]): mean(k) for k in val if k.startswith("IMP ")}
    rnd = {float(k[7:-1]): mean(k) for k in val if k.startswith("random ")}
    dense = mean("dense")
    matching = [s for s, a in imp.items() if a >= dense - MATCH]
    return max(matching, default=0.0), compared_sparsity(imp, rnd, dense, tolerance=MATCH)


def _plot(cfg: LotteryBertConfig, m: dict[str, Any]) -> dict[str, Any]:
    test = m["per seed"]["test"]
    band = lambda arm: (100 * mean_std(test[arm])[0], 100 * mean_std(test[arm])[1])  # noqa: E731
    imp = sorted(float(k[4:-1]) for k in test if k.startswith("IMP "))
    rnd = sorted(float(k[7:-1]) for k in test if k.startswith("random "))
    ticket, _, pct = _mlm_arms(m)
    dense = band("dense")
    line = lambda name, xs, arm: series(  # noqa: E731
        name,
        [0.0, *xs] if arm == "IMP" else xs,
        [*([dense[0]] if arm == "IMP" else []), *(band(f"{arm} {x:.0f}%")[0] for x in xs)],
        [*([dense[1]] if arm == "IMP" else []), *(band(f"{arm} {x:.0f}%")[1] for x in xs)],
    )
    return line_plot(
        f"MiniLM ({cfg.layers} of 6 layers) on reviews: test accuracy vs sparsity "
        f"(mean and s.d. over {cfg.seeds} seeds)",
        "sparsity of the attention and feed-forward weights (%)",
        f"test accuracy (%, {cfg.max_test} reviews)",
        [
            line("IMP ticket (rewound to pre-trained)", imp, "IMP"),
            line("random pruning, same layer sparsity", rnd, "random"),
            series(
                f"MLM ticket ({pct:.0f}%) on reviews", [pct], [band(ticket)[0]], [band(ticket)[1]]
            ),
            series("dense", [0.0, max(imp)], [dense[0], dense[0]]),
        ],
    )


def _notes(cfg: LotteryBertConfig) -> str:
    return (
        f"MiniLM with its first {cfg.layers} of 6 pre-trained layers, fine-tuned on {cfg.max_train} "
        f"reviews for {cfg.epochs} epoch(s) per run with {cfg.seeds} seeds; choices are made on "
        f"{cfg.max_val} further training reviews, intervals are paired over the seeds on "
        f"{cfg.max_test} test reviews. The MLM head trains on {cfg.mlm_train} wiki passages with "
        f"the encoder frozen; each MLM IMP round trains encoder and head on {cfg.mlm_round_train} "
        f"for {cfg.mlm_epochs} epoch(s); "
        f"MLM accuracy is scored on {cfg.mlm_test} held-out passages. One MLM ticket is found "
        "(seed 0); its interval covers the reviews fine-tunes, not the MLM search."
    )


# ----------------------------------------------------------------------------- judging


def judge(m: dict[str, Any], cfg: LotteryBertConfig) -> Judgement:
    """Checks: per-seed values exist, the dense fine-tune learned (above the majority class),
    MLM training from the pre-trained weights left the unigram solution, the transfer is not
    between two majority-class models, and the transferred ticket is the one found."""
    majority = m.get("majority-class reviews accuracy")
    unigram = m.get("MLM accuracy of the most frequent training token (unigram)")
    maj, beats = "majority-class accuracy", "beats the majority class by >="
    cpu = "CPU seconds / threads of this preset (its wall time on idle cores)"
    budget = Target.check(cpu, m["seconds"]["CPU seconds"] / cfg.threads, "<=", cfg.time_budget_s)
    test = _per_seed(m, "test")
    if test is None or _per_seed(m, "validation") is None:
        what = "per-seed validation and test accuracies"
        checks = [Check.missing("every arm has per-seed accuracies (validation and test)", what)]
        one = m.get("highest sparsity within 1 point of dense")
        finding = (
            "This result predates seeds and a validation split: one seed, scored and chosen on "
            f"test, dense {m['dense reviews accuracy']:.3f}"
            + (f", IMP tickets within 1 point of it up to {one:.0%} sparsity" if one else "")
            + "; rerun the full preset."
        )
        return Judgement(checks, [budget], finding, "Rerun before relying on it.")
    mean = lambda arm: mean_std(test[arm])[0]  # noqa: E731
    points = lambda a, b: paired_diff([100 * x for x in test[a]], [100 * x for x in test[b]])  # noqa: E731
    dense, mlm_dense = mean("dense"), m["MLM accuracy by IMP round"]["0%"]
    ticket, control, pct = _mlm_arms(m)
    s_best, s_ctrl = _choices(m)
    first = min(float(k[4:-1]) for k in test if k.startswith("IMP "))
    at_best = f"IMP {s_best or first:.0f}%"  # no matching round: the first one's ticket
    deviation = m["MLM ticket applied: max |w - w0 * mask| after transfer"]
    checks = [
        Check.above(f"dense reviews fine-tune {beats} 5 points", dense, majority, 0.05, maj),
        Check.above(
            "MLM training from the pre-trained weights left the unigram solution (>= 2 points)",
            mlm_dense,
            unigram,
            0.02,
            "unigram (most frequent token) accuracy",
        ),
        Check.above(
            f"the {pct:.0f}% MLM ticket or its random control {beats} 2 points",
            max(mean(ticket), mean(control)),
            majority,
            0.02,
            maj,
        ),
        Check.that(
            "the MLM ticket fine-tuned is the mask found, on the weights it was found on",
            deviation,
            "<=",
            0.0,
            f"max |w - w0 * mask| = {deviation:.3g} right after the transfer",
        ),
    ]
    match, vs_random = (
        points(at_best, "dense"),
        points(f"IMP {s_ctrl:.0f}%", f"random {s_ctrl:.0f}%"),
    )
    transfer, transfer_rnd = points(ticket, "dense"), points(ticket, control)
    targets = [
        Target.check(
            "highest IMP sparsity matching dense (chosen on validation: mean gap within 1 point)",
            s_best / 100,
            ">=",
            0.5,
        ),
        Target.beats(f"{at_best} ticket minus dense, test (points; within 1)", match, goal=-1.0),
        Target.beats(
            f"IMP ticket minus random control at {s_ctrl:.0f}%, test (points)", vs_random, goal=2.0
        ),
        Target.beats(
            f"{pct:.0f}% MLM ticket minus dense on reviews (points; within 1)", transfer, goal=-1.0
        ),
        budget,
    ]
    floor = f", majority class {majority:.3f}" if majority is not None else ""
    finding = (
        f"Over {len(test['dense'])} seeds, IMP tickets matched the dense fine-tune ({dense:.3f}"
        f"{floor}) on validation up to {s_best:.0f}% sparsity (paper, SST-2: 60%); on test the "
        f"{at_best} ticket minus dense was {match} points and the ticket led random pruning at "
        f"{s_ctrl:.0f}% by {vs_random} points. The {pct:.0f}% ticket found on MLM (masked-token "
        f"accuracy {mlm_dense:.3f} dense, unigram {unigram if unigram is None else round(unigram, 3)})"
        f" fine-tuned to {mean(ticket):.3f} on reviews: {transfer} points against dense, "
        f"{transfer_rnd} against a random mask of the same layer sparsity."
    )
    advice = (
        f"Use IMP with rewinding when {cfg.rounds + 1} fine-tunes are affordable and a "
        f"{s_best:.0f}%-sparse BERT that keeps its accuracy is worth it"
        if s_best >= 50
        else f"Do not expect matching tickets above {s_best:.0f}% sparsity at this scale"
    )
    advice += (
        "; an MLM ticket transferred here."
        if transfer.lo > -1.0
        else "; find a ticket per task: the MLM ticket was not shown to transfer at this scale."
    )
    return Judgement(checks, targets, finding, advice)


# fmt: off
PRESETS = {
    "smoke": {"layers": 1, "max_len": 16, "max_train": 32, "max_val": 16, "max_test": 32,
              "rounds": 1, "rate": 0.5, "control_rounds": (1,), "seeds": 2, "mlm_train": 16,
              "mlm_round_train": 16, "mlm_test": 16},
    "demo": {},
    # full: 3 seeds x (dense + 7 IMP rounds + random at 50/60/70% + 2 MLM transfers) fine-tunes
    # of MiniLM-L6 on 1,024 reviews for 3 epochs, plus the MLM head and 7 MLM IMP rounds of one
    # epoch each; a stated budget of 66 CPU-minutes. MLM rounds train on all 3,072 passages at
    # 5e-4: at 768 passages and 1e-4 (commit b154ed3) round 0 reached 7.3% masked-token
    # accuracy, unigram 5.8%. Three epochs, because one (32 steps) left the 70% MLM ticket at the
    # majority class (commit b5706db: 58.0% vs 57.2%); a one-seed pilot of the transfer gave, at
    # 1 / 2 / 3 epochs of lr 1e-4 (seed 0, test), dense 71.1 / 76.2 / 78.0%, MLM ticket
    # 58.5 / 63.3 / 67.3%, random 70% 58.0 / 58.3 / 58.2%; 1 epoch at 3e-4: dense 75.2%, MLM
    # ticket 59.0%.
    "full": {"layers": 6, "max_len": 40, "max_train": 1024, "max_val": 500, "max_test": 1000,
             "batch_size": 32, "lr": 1e-4, "rate": 0.1, "rounds": 7, "control_rounds": (5, 6, 7),
             "seeds": 3, "mlm_train": 3072, "mlm_round_train": 3072, "mlm_test": 512,
             "mlm_rate": 0.1, "mlm_rounds": 7, "mlm_lr": 5e-4, "epochs": 3,
             "time_budget_s": 3960.0},
}
# fmt: on


@register_recipe(
    "lottery-bert",
    config=LotteryBertConfig,
    presets=PRESETS,
    takeaway=3,
    summary="IMP tickets in pre-trained MiniLM on reviews vs random pruning; MLM ticket transfer",
    judge=judge,
    facts=facts,
)
def run(cfg: LotteryBertConfig) -> Result:
    t0, cpu0 = time.perf_counter(), time.process_time()
    train.seed_everything(cfg.seed)
    encoder, tok = nn.load_minilm()
    encoder.bert.encoder.layer = encoder.bert.encoder.layer[: cfg.layers]
    pretrained = copy.deepcopy(encoder.state_dict())
    train_xy, val_xy, test_xy = _reviews(tok, cfg)
    val: dict[str, list[float]] = {}
    test: dict[str, list[float]] = {}

    def classifier(seed: int) -> tnn.Module:
        encoder.load_state_dict(pretrained)
        torch.manual_seed(seed)  # the same head init in every arm of a seed
        clf = nn.SequenceClassifier(copy.deepcopy(encoder), 2, pooling="mean")  # as MiniLM pools
        clf.encoder.embeddings.weight.requires_grad_(False)
        return clf

    def fitter(seed: int) -> Any:
        schedule = {"schedule": "linear", "warmup": 0.1, "seed": seed, "progress": False}
        return lambda m: train.fit(
            m, train_xy, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, **schedule
        )

    def scorer(arms: list[str]) -> Any:
        """Scores the next run as ``arms.pop(0)`` on both splits; returns the validation one."""

        def score(m: tnn.Module) -> float:
            arm = arms.pop(0)
            for split, xy in ((val, val_xy), (test, test_xy)):
                split.setdefault(arm, []).append(train.evaluate(m, xy, batch_size=64)["accuracy"])
            return val[arm][-1]

        return score

    # ---- 1. IMP on reviews and its random control, per seed
    schedule = sparsity_schedule("linear", cfg.rate, cfg.rounds)
    rounds = cfg.control_rounds or range(1, cfg.rounds + 1)
    for seed in seed_range(cfg):
        model = classifier(seed)
        start = copy.deepcopy(model.state_dict())
        imp_arms = ["dense", *(f"IMP {_pct(s)}" for s in schedule)]
        ticket = find_ticket(
            model, fitter(seed), scorer(imp_arms), rate=cfg.rate, rounds=cfg.rounds
        )
        random_arms = [f"random {_pct(schedule[k - 1])}" for k in rounds]
        train_controls(
            model, ticket, rounds, fitter(seed), scorer(random_arms), start=start,
            trained=None, seed=lambda k, s=seed: 1000 * s + k, arms=("random",),
        )  # fmt: skip
    t_reviews = time.perf_counter() - t0

    # ---- 2. MLM: a head on the frozen pre-trained encoder, IMP on MLM, the ticket on reviews
    encoder.load_state_dict(pretrained)
    mlm_ticket, found_from, mlm_metrics = _mlm_ticket(cfg, tok, copy.deepcopy(encoder))
    tag = _pct(mlm_ticket.sparsity)
    deviation = 0.0
    for seed in seed_range(cfg):
        control = mlm_ticket.random_like(seed=1000 * seed + 999)
        for arm, t in ((f"MLM ticket {tag}", mlm_ticket), (f"MLM random {tag}", control)):
            clf = classifier(seed)
            handle = t.transfer(clf)
            if t is mlm_ticket:
                deviation = max(deviation, mlm_ticket.deviation(clf, found_from))
            fitter(seed)(clf)
            scorer([arm])(clf)
            handle.remove()

    metrics: dict[str, Any] = {"dense reviews accuracy": mean_std(test["dense"])[0]}
    for arm, values in test.items():
        if arm.startswith(("IMP ", "random ")):
            kind = "IMP ticket accuracy" if arm.startswith("IMP ") else "random control accuracy"
            metrics[f"{kind} at {arm.split()[-1]}"] = mean_std(values)[0]
    metrics["per seed"] = {"validation": val, "test": test}
    metrics.update(mlm_metrics)
    metrics["MLM ticket applied: max |w - w0 * mask| after transfer"] = deviation
    metrics[f"MLM ticket ({tag}) transferred: reviews accuracy"] = mean_std(
        test[f"MLM ticket {tag}"]
    )[0]
    metrics[f"MLM random control ({tag}) transferred: reviews accuracy"] = mean_std(
        test[f"MLM random {tag}"]
    )[0]
    metrics["seconds"] = {
        "reviews (IMP and controls, all seeds)": t_reviews,
        "total": time.perf_counter() - t0,
        "CPU seconds": time.process_time() - cpu0,
    }
    metrics["paper: highest matching sparsity, SST-2 / MLM (Table 2)"] = {"SST-2": 0.6, "MLM": 0.7}
    return Result("lottery-bert", CLAIM, metrics, plots=[_plot(cfg, metrics)], notes=_notes(cfg))
