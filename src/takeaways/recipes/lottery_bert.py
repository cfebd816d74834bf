"""lottery-bert: lottery tickets in the packaged pre-trained MiniLM, on review sentiment and MLM.

Takeaway 3 (Chen et al., arXiv:2007.12223) on a real pre-trained BERT, all-MiniLM-L6-v2
(``nn.load_minilm``). Two parts:

1. Reviews (Rotten Tomatoes fresh vs rotten). IMP with the paper's schedule: fine-tune, prune
   a share of the original attention / feed-forward weights globally, rewind the survivors to
   the pre-trained weights, repeat. At chosen sparsities two controls train the same way: a
   random mask with the same per-layer sparsity (``random_like``) and one-shot magnitude
   pruning of the fine-tuned dense model, trained on without rewinding.
2. MLM transfer. MiniLM was distilled from a teacher's self-attention (arXiv 2002.10957) and
   ships without an MLM head (a head on the frozen encoder gets ~7% of masked wiki tokens, no
   better than frequent words). So an MLM phase first trains a head (``nn.MaskedLM``, decoded at
   masked positions by ``GatheredMLM``) with the encoder on ``wiki`` (BERT's 80/10/10 masking);
   that model plays the paper's pre-trained BERT. IMP on MLM, rewinding to it, finds a ticket
   at the paper's 70%, whose masks are fine-tuned on reviews in a fresh MiniLM beside a random
   control.

Every fine-tune has the same data, epochs and schedule; accuracy is the final epoch's. The word
embeddings (12 M of 22.7 M parameters, never pruned) stay frozen; the classifier mean-pools, as
MiniLM was trained to. ``judge`` checks that the dense fine-tune and the transferred MLM ticket
(or its control) beat the majority class and that the MLM phase left the unigram solution; both
floors are data-only ``facts``, so ``rejudge`` can add them to an older result.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch import nn as tnn

from takeaways import data, nn, train
from takeaways.lottery import find_ticket
from takeaways.lottery.imp import sparsity_schedule, train_controls
from takeaways.lottery.metrics import by_sparsity, compared_sparsity, ticket_metrics
from takeaways.nn.mlm import GatheredMLM, masked_copies
from takeaways.recipes import register_recipe
from takeaways.results import Check, Claim, Judgement, Result, Target, line_plot, series


@dataclass(frozen=True)
class LotteryBertConfig:
    layers: int = 2  # first pre-trained MiniLM layers kept (6 = the whole model)
    max_len: int = 32  # tokens per review / wiki passage, [CLS] and [SEP] included
    max_train: int = 192  # reviews used for every fine-tune (of 10,246)
    max_test: int = 200  # reviews scored (of 2,562)
    epochs: int = 1  # epochs of every fine-tune (IMP round, control, transfer)
    batch_size: int = 16
    lr: float = 3e-4  # AdamW peak, 10% warm-up then linear decay within each run
    rate: float = 0.3  # linear IMP schedule: share of the original weights pruned per round
    rounds: int = 2  # IMP rounds on reviews (the paper: rate 0.1, 9 rounds -> 90%)
    control_rounds: tuple[int, ...] = (2,)  # rounds that also run both controls (empty = all)
    mlm_max_len: int = 32  # tokens per wiki passage in the MLM part
    mlm_train: int = 192  # wiki passages of the MLM phase (each masked once)
    mlm_round_train: int = 64  # of those, the passages each MLM IMP round trains on
    mlm_test: int = 96  # held-out wiki passages scoring MLM accuracy
    mlm_phase_lr: float = 5e-4  # AdamW peak of the MLM phase (head and encoder together)
    mlm_rate: float = 0.7  # linear schedule of the MLM ticket
    mlm_rounds: int = 1  # mlm_rate x mlm_rounds = the MLM ticket's sparsity (paper: 0.7)
    mlm_lr: float = 3e-4  # AdamW peak of each MLM IMP round
    seed: int = 0
    threads: int = 1  # intra-op threads (1 is fastest on shared cores)
    time_budget_s: float = 60.0  # budget of the preset in CPU seconds of this process

    def validate(self) -> None:
        if not 1 <= self.layers <= 6:
            raise ValueError(f"layers must be in 1..6 (MiniLM-L6), got {self.layers}")
        sizes = (self.max_train, self.max_test, self.mlm_train, self.mlm_test)
        if min(self.max_len, self.mlm_max_len, *sizes) < 8:
            raise ValueError("max_len, mlm_max_len and every data size must be >= 8")
        if min(self.epochs, self.batch_size, self.threads) < 1:
            raise ValueError("epochs, batch_size and threads must be >= 1")
        if not 8 <= self.mlm_round_train <= self.mlm_train:
            raise ValueError(
                f"mlm_round_train must be in 8..mlm_train={self.mlm_train}, got {self.mlm_round_train}"
            )
        sparsity_schedule("linear", self.rate, self.rounds)
        sparsity_schedule("linear", self.mlm_rate, self.mlm_rounds)
        bad = [r for r in self.control_rounds if not 1 <= r <= self.rounds]
        if bad:
            raise ValueError(f"control_rounds must lie in 1..rounds={self.rounds}, got {bad}")


def _reviews(tok: data.Tokenizer, cfg: LotteryBertConfig) -> tuple[tuple, tuple]:
    """The reviews every fine-tune trains on and every accuracy is scored on: (x, y) pairs."""
    reviews = data.load("reviews")
    tr = data.sample_indices(len(reviews.train), cfg.max_train, seed=cfg.seed)
    te = data.sample_indices(len(reviews.test), cfg.max_test, seed=cfg.seed + 1)
    enc = lambda texts: tok.encode(list(texts), max_len=cfg.max_len, pad_to=cfg.max_len)  # noqa: E731
    train_xy = (enc(reviews.train.x[tr]), torch.as_tensor(reviews.train.y[tr]))
    test_xy = (enc(reviews.test.x[te]), torch.as_tensor(reviews.test.y[te]))
    return train_xy, test_xy


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


def _mlm_transfer(
    cfg: LotteryBertConfig,
    tok: data.Tokenizer,
    encoder: tnn.Module,
    classifier: Any,
    fit: Any,
    acc: Any,
) -> dict[str, Any]:
    """The MLM part: an MLM phase on wiki, IMP on MLM, its ticket and a random control
    transferred to fresh classifiers and fine-tuned on reviews. Returns its metrics."""
    mlm_x, mlm_y = _wiki_mlm(tok, cfg)
    split, per_round = cfg.mlm_train, cfg.mlm_round_train
    mlm_train = ({k: v[:split] for k, v in mlm_x.items()}, mlm_y[:split])
    mlm_round = ({k: v[:per_round] for k, v in mlm_x.items()}, mlm_y[:per_round])
    mlm_test = ({k: v[split:] for k, v in mlm_x.items()}, mlm_y[split:])  # as in facts()
    mlm = GatheredMLM(nn.MaskedLM(encoder, init="torch"))  # decodes the masked positions only
    encoder.embeddings.weight.requires_grad_(False)  # tied to the head; frozen in every run
    mlm_before = acc(mlm, mlm_test)  # the untrained head: chance
    fit(mlm, mlm_train, cfg.mlm_phase_lr)
    mlm_phase = acc(mlm, mlm_test)
    # IMP on MLM rewinds to the MLM-trained weights (this model's "pre-trained" state); only its
    # masks transfer, so its last round is not trained
    round_fit, round_acc = lambda m: fit(m, mlm_round, cfg.mlm_lr), lambda m: acc(m, mlm_test)
    mlm_ticket = find_ticket(
        mlm, round_fit, round_acc, rate=cfg.mlm_rate, rounds=cfg.mlm_rounds, train_last=False
    )
    transferred = {}
    for name, t in (("ticket", mlm_ticket), ("random", mlm_ticket.random_like(seed=cfg.seed))):
        clf = classifier()
        handle = t.transfer(clf)
        fit(clf)
        transferred[name] = acc(clf)
        handle.remove()
    tag = f"{100 * mlm_ticket.sparsity:.0f}%"
    on_wiki = {"untrained head": mlm_before, "after the MLM phase": mlm_phase}
    by_round = {f"{100 * h['sparsity']:.0f}%": h["score"] for h in mlm_ticket.history}
    return {
        "MLM accuracy on held-out wiki": on_wiki,
        "MLM accuracy by IMP round": by_round,
        f"MLM ticket ({tag}) transferred: reviews accuracy": transferred["ticket"],
        f"MLM random control ({tag}) transferred: reviews accuracy": transferred["random"],
    }


def facts(cfg: LotteryBertConfig) -> dict[str, Any]:
    """Data-only floors from the run's subsets and masking: the majority class on the scored
    reviews; the most frequent masked training token on the held-out wiki passages (unigram)."""
    tok = data.minilm_tokenizer()
    (_, y_train), (_, y_test) = _reviews(tok, cfg)
    _, mlm_y = _wiki_mlm(tok, cfg)
    unigram = train.majority_accuracy(mlm_y[: cfg.mlm_train], mlm_y[cfg.mlm_train :])
    return {
        "majority-class reviews accuracy": train.majority_accuracy(y_train, y_test),
        "MLM accuracy of the most frequent training token (unigram)": unigram,
    }


def _transfer(m: dict[str, Any]) -> tuple[float, float | None, float | None]:
    """(MLM ticket sparsity %, its transferred reviews accuracy, its random control's)."""
    ticket = next(k for k in m if k.startswith("MLM ticket (") and k.endswith("reviews accuracy"))
    pct = float(ticket[len("MLM ticket (") : ticket.index("%")])
    control = f"MLM random control ({pct:.0f}%) transferred: reviews accuracy"
    return pct, m[ticket], m.get(control)


def _plot(cfg: LotteryBertConfig, m: dict[str, Any]) -> dict[str, Any]:
    imp, rnd = by_sparsity(m, "IMP ticket accuracy"), by_sparsity(m, "random control accuracy")
    one = by_sparsity(m, "one-shot (no rewind) accuracy")
    dense = m["dense reviews accuracy"]
    mlm_pct, mlm_acc, _ = _transfer(m)
    return line_plot(
        f"MiniLM ({cfg.layers} of 6 layers) on reviews: test accuracy vs sparsity",
        "sparsity of the attention and feed-forward weights (%)",
        f"test accuracy ({cfg.max_test} reviews)",
        [
            series("IMP ticket (rewound to pre-trained)", [0.0, *imp], [dense, *imp.values()]),
            series("random pruning, same layer sparsity", list(rnd), list(rnd.values())),
            series("one-shot magnitude, no rewind", list(one), list(one.values())),
            series(f"MLM ticket transferred ({mlm_pct:.0f}%)", [mlm_pct], [mlm_acc]),
            series("dense", [0.0, max(imp)], [dense, dense]),
        ],
    )


def _notes(cfg: LotteryBertConfig, m: dict[str, Any]) -> str:
    dense = m["dense reviews accuracy"]
    se = 100 * (dense * (1 - dense) / cfg.max_test) ** 0.5
    return (
        f"MiniLM with its first {cfg.layers} of 6 pre-trained layers, fine-tuned on {cfg.max_train} "
        f"reviews for {cfg.epochs} epoch(s) per run, scored on {cfg.max_test} (one standard error "
        f"of the dense accuracy is {se:.1f} points, so 'within 1 point' is within noise at this "
        f"size). The MLM phase trains head and encoder on {cfg.mlm_train} wiki passages, each MLM "
        f"IMP round on {cfg.mlm_round_train}; MLM accuracy is scored on {cfg.mlm_test} held-out "
        "passages. One-shot pruning continues from the fine-tuned weights, so it has one more "
        "fine-tune behind it than a ticket."
    )


# ----------------------------------------------------------------------------- judging


def judge(m: dict[str, Any], cfg: LotteryBertConfig) -> Judgement:
    """Checks: the dense fine-tune learned (above the majority class), the MLM phase left the
    unigram solution, and the transfer comparison is not between two majority-class models."""
    dense, majority = m["dense reviews accuracy"], m.get("majority-class reviews accuracy")
    unigram = m.get("MLM accuracy of the most frequent training token (unigram)")
    mlm_phase = m["MLM accuracy on held-out wiki"]["after the MLM phase"]
    mlm_pct, ticket, control = _transfer(m)
    maj, beats = "majority-class accuracy", "beats the majority class by >="
    left = "the MLM phase left the unigram solution (>= 2 points above it)"
    transfer = f"the {mlm_pct:.0f}% MLM ticket or its random control {beats} 2 points"
    checks = [
        Check.above(f"dense reviews fine-tune {beats} 5 points", dense, majority, 0.05, maj),
        Check.above(left, mlm_phase, unigram, 0.02, "unigram (most frequent token) accuracy"),
        Check.above(transfer, max(ticket, control), majority, 0.02, maj),
    ]
    imp, rnd = by_sparsity(m, "IMP ticket accuracy"), by_sparsity(m, "random control accuracy")
    at, s_best = compared_sparsity(imp, rnd, dense), m["highest sparsity within 1 point of dense"]
    gap = 100 * (imp[at] - rnd[at])
    transferred = f"MLM ticket ({mlm_pct:.0f}%) transferred to reviews minus dense (points)"
    cpu = "CPU seconds / threads of this preset (its wall time on idle cores)"
    targets = [
        Target.check("highest IMP sparsity within 1 point of dense accuracy", s_best, ">=", 0.5),
        Target.check(f"IMP ticket minus random control at {at:.0f}% (points)", gap, ">=", 2.0),
        Target.check(transferred, 100 * (ticket - dense), ">=", -1.0),
        Target.check(cpu, m["seconds"]["CPU seconds"] / cfg.threads, "<=", cfg.time_budget_s),
    ]
    floor = f", majority class {majority:.3f}" if majority is not None else ""
    finding = (
        f"IMP tickets kept the dense accuracy ({dense:.3f}{floor}) within 1 point up to "
        f"{s_best:.0%} sparsity (paper, SST-2: 60%) and led the random control at {at:.0f}% by "
        f"{gap:+.1f} points; the {mlm_pct:.0f}% MLM ticket fine-tuned to {ticket:.3f} (its random "
        f"control {control:.3f}) after an MLM phase reaching {mlm_phase:.3f} masked-token accuracy."
    )
    advice = (
        f"Use IMP with rewinding when {cfg.rounds + 1} fine-tunes are affordable and a "
        f"{s_best:.0%}-sparse BERT that keeps its accuracy is worth it"
        if s_best >= 0.5
        else f"Do not expect matching tickets above {s_best:.0%} sparsity at this scale; use IMP "
        "when the dense fine-tune is well above the majority class"
    )
    advice += (
        "; an MLM ticket transferred here."
        if ticket - dense >= -0.01
        else "; find a ticket per task: the MLM ticket did not transfer at this scale."
    )
    return Judgement(checks, targets, finding, advice)


# fmt: off
PRESETS = {
    "smoke": {"layers": 1, "max_len": 16, "max_train": 32, "max_test": 32, "rounds": 1,
              "rate": 0.5, "control_rounds": (1,), "mlm_train": 16, "mlm_round_train": 16,
              "mlm_test": 16},
    "demo": {},
    "full": {"layers": 6, "max_len": 40, "max_train": 1024, "max_test": 1000, "batch_size": 32,
             "lr": 1e-4, "rate": 0.1, "rounds": 9, "control_rounds": (5, 7, 9), "mlm_train": 3072,
             "mlm_round_train": 768, "mlm_test": 512, "mlm_rate": 0.1, "mlm_rounds": 7,
             "mlm_lr": 1e-4, "time_budget_s": 1800.0},
}
# fmt: on


@register_recipe(
    "lottery-bert",
    config=LotteryBertConfig,
    presets=PRESETS,
    takeaway=3,
    summary="IMP tickets in pre-trained MiniLM on reviews vs random / one-shot pruning; MLM ticket transfer",
    judge=judge,
    facts=facts,
)
def run(cfg: LotteryBertConfig) -> Result:
    t0, cpu0 = time.perf_counter(), time.process_time()
    train.seed_everything(cfg.seed)
    encoder, tok = nn.load_minilm()
    encoder.bert.encoder.layer = encoder.bert.encoder.layer[: cfg.layers]
    pretrained = copy.deepcopy(encoder.state_dict())

    train_xy, test_xy = _reviews(tok, cfg)

    def classifier() -> tnn.Module:
        encoder.load_state_dict(pretrained)
        torch.manual_seed(cfg.seed)  # the same head init for every run
        clf = nn.SequenceClassifier(copy.deepcopy(encoder), 2, pooling="mean")  # as MiniLM pools
        clf.encoder.embeddings.weight.requires_grad_(False)
        return clf

    schedule = {"schedule": "linear", "warmup": 0.1, "seed": cfg.seed, "progress": False}

    def fit(model: tnn.Module, xy: Any = train_xy, lr: float = cfg.lr) -> None:
        train.fit(model, xy, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, **schedule)

    def acc(model: tnn.Module, xy: Any = test_xy) -> float:
        return train.evaluate(model, xy, batch_size=64)["accuracy"]

    # ---- 1. IMP on reviews, with the random and one-shot controls
    model = classifier()
    start = copy.deepcopy(model.state_dict())
    dense_state: dict[str, Any] = {}

    def score(m: tnn.Module) -> float:
        if not dense_state:  # round 0: the dense fine-tune, kept for one-shot pruning
            dense_state.update(copy.deepcopy(m.state_dict()))
        return acc(m)

    ticket = find_ticket(model, fit, score, rate=cfg.rate, rounds=cfg.rounds)
    t_imp = time.perf_counter() - t0
    rounds = cfg.control_rounds or range(1, cfg.rounds + 1)
    controls = train_controls(
        model,
        ticket,
        rounds,
        fit,
        acc,
        start=start,
        trained=dense_state,
        seed=lambda r: cfg.seed + r,
    )
    t_reviews = time.perf_counter() - t0

    # ---- 2. MLM: an MLM phase (head + encoder), IMP on MLM, transfer to reviews
    encoder.load_state_dict(pretrained)
    mlm_metrics = _mlm_transfer(cfg, tok, copy.deepcopy(encoder), classifier, fit, acc)

    arms = {"random control accuracy": "random", "one-shot (no rewind) accuracy": "one-shot"}
    controlled = {arm: controls[key] for arm, key in arms.items()}
    metrics = ticket_metrics(ticket.history, controlled, dense="dense reviews accuracy")
    metrics.update(mlm_metrics)
    metrics["seconds"] = {
        "load + IMP": t_imp,
        "reviews total": t_reviews,
        "total": time.perf_counter() - t0,
        "CPU seconds": time.process_time() - cpu0,
    }
    metrics["paper: highest matching sparsity, SST-2 / MLM (Table 2)"] = {"SST-2": 0.6, "MLM": 0.7}
    plots, notes = [_plot(cfg, metrics)], _notes(cfg, metrics)
    return Result("lottery-bert", CLAIM, metrics, plots=plots, notes=notes)
