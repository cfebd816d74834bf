"""lottery-bert: lottery tickets in the packaged pre-trained MiniLM, on review sentiment and MLM.

Takeaway 3 (Chen et al., arXiv:2007.12223) on a real pre-trained BERT: the packaged
all-MiniLM-L6-v2 (6 layers, 384 wide; ``nn.load_minilm``). Two parts:

1. Reviews (Rotten Tomatoes fresh vs rotten). IMP with the paper's schedule: fine-tune,
   prune 10% of the original attention / feed-forward weights globally, rewind the
   survivors to the pre-trained weights, fine-tune again, up to 90%. At chosen
   sparsities two controls train the same way: the pre-trained weights under a random
   mask with the same per-layer sparsity (``random_like``), and one-shot magnitude
   pruning of the fine-tuned dense model, trained on without rewinding.
2. MLM transfer. MiniLM was distilled from a teacher's self-attention (arXiv 2002.10957)
   and never trained to predict tokens, and the packaged checkpoint has no MLM head: a
   head on the frozen encoder gets about 7% of masked wiki tokens right, no better than
   guessing frequent words. So an MLM phase first trains a head (BERT's transform plus a
   bias over the tied word embeddings) together with the encoder on ``wiki`` with BERT's
   80/10/10 masking; that MLM-trained model plays the role of the paper's pre-trained
   BERT with its MLM head. IMP on MLM (the paper's 10% steps, rewinding to the MLM-trained
   weights) then finds a ticket at the paper's 70%, whose masks are transferred to a fresh
   pre-trained MiniLM and fine-tuned on reviews, next to a random control.

Every fine-tune has the same data, epochs and schedule; test accuracy is the final
epoch's. The word embeddings (12 M of MiniLM's 22.7 M parameters, never pruned) stay
frozen in every run, which halves the optimizer's work; the classifier mean-pools, as
MiniLM was trained to. The demo preset keeps only the first 2 pre-trained layers and a few hundred
reviews so it fits in a minute; the numbers to quote come from ``full``.
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
from takeaways.lottery import Ticket, find_ticket
from takeaways.lottery.imp import sparsity_schedule
from takeaways.nn.mlm import mask_tokens
from takeaways.recipes import register_recipe
from takeaways.results import Claim, Result, Target


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
        if (
            min(self.max_len, self.mlm_max_len) < 8
            or min(self.max_train, self.max_test, self.mlm_train, self.mlm_test) < 8
        ):
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


class MaskedTokenHead(tnn.Module):
    """MiniLM plus a small MLM head that decodes only the masked positions.

    ``forward(input_ids, attention_mask, positions)`` returns logits ``(B, M, V)`` for the
    ``M`` masked positions of each row, so the 30,522-way decoder (tied to the word
    embeddings) costs M / N of decoding every token.
    """

    def __init__(self, encoder: nn.MiniLMEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        d = encoder.dim
        self.transform = tnn.Sequential(tnn.Linear(d, d), tnn.GELU(), tnn.LayerNorm(d))
        self.bias = tnn.Parameter(torch.zeros(encoder.embeddings.num_embeddings))

    def forward(self, input_ids: Tensor, attention_mask: Tensor, positions: Tensor) -> Tensor:
        h = self.encoder(input_ids, attention_mask)  # (B, N, C)
        h = h.gather(1, positions[..., None].expand(-1, -1, h.shape[-1]))  # (B, M, C)
        return self.transform(h) @ self.encoder.embeddings.weight.T + self.bias  # (B, M, V)

    def forward_reference(
        self, input_ids: Tensor, attention_mask: Tensor, positions: Tensor
    ) -> Tensor:
        """Naive reference: decode every position, then pick the masked ones."""
        h = self.encoder(input_ids, attention_mask)  # (B, N, C)
        logits = self.transform(h) @ self.encoder.embeddings.weight.T + self.bias  # (B, N, V)
        return logits[torch.arange(len(positions))[:, None], positions]  # (B, M, V)


def _masked(batch: dict[str, Tensor], tok: data.Tokenizer, seed: int):
    """BERT's 80/10/10 masking of 15% of each row's real tokens: (inputs, targets (B, M))."""
    g = torch.Generator().manual_seed(seed)
    ids, positions, targets = mask_tokens(
        batch["input_ids"], vocab_size=tok.vocab_size, mask_id=tok.mask_id,
        special_ids=tok.special_ids, generator=g,
    )  # fmt: skip
    return {
        "input_ids": ids,
        "attention_mask": batch["attention_mask"],
        "positions": positions,
    }, targets


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[: min(n, k)])


@register_recipe(
    "lottery-bert",
    config=LotteryBertConfig,
    presets={
        "smoke": {
            "layers": 1,
            "max_len": 16,
            "max_train": 32,
            "max_test": 32,
            "rounds": 1,
            "rate": 0.5,
            "control_rounds": (1,),
            "mlm_train": 16,
            "mlm_round_train": 16,
            "mlm_test": 16,
        },
        "demo": {},
        "full": {
            "layers": 6,
            "max_len": 40,
            "max_train": 1024,
            "max_test": 1000,
            "batch_size": 32,
            "lr": 1e-4,
            "rate": 0.1,
            "rounds": 9,
            "control_rounds": (5, 7, 9),
            "mlm_train": 3072,
            "mlm_round_train": 768,
            "mlm_test": 512,
            "mlm_rate": 0.1,
            "mlm_rounds": 7,
            "mlm_lr": 1e-4,
            "time_budget_s": 1800.0,
        },
    },  # fmt: skip
    takeaway=3,
    summary="IMP tickets in pre-trained MiniLM on reviews vs random / one-shot pruning; MLM ticket transfer",
)
def run(cfg: LotteryBertConfig) -> Result:
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: LotteryBertConfig) -> Result:
    t0, cpu0 = time.perf_counter(), time.process_time()
    train.seed_everything(cfg.seed)
    encoder, tok = nn.load_minilm()
    encoder.bert.encoder.layer = encoder.bert.encoder.layer[: cfg.layers]
    pretrained = copy.deepcopy(encoder.state_dict())

    reviews = data.load("reviews")
    tr = _subset(len(reviews.train), cfg.max_train, cfg.seed)
    te = _subset(len(reviews.test), cfg.max_test, cfg.seed + 1)
    enc = lambda texts: tok.encode(list(texts), max_len=cfg.max_len, pad_to=cfg.max_len)  # noqa: E731
    train_xy = (enc(reviews.train.x[tr]), torch.as_tensor(reviews.train.y[tr]))
    test_xy = (enc(reviews.test.x[te]), torch.as_tensor(reviews.test.y[te]))

    def classifier() -> tnn.Module:
        encoder.load_state_dict(pretrained)
        torch.manual_seed(cfg.seed)  # the same head init for every run
        clf = nn.SequenceClassifier(copy.deepcopy(encoder), 2, pooling="mean")  # as MiniLM pools
        clf.encoder.embeddings.weight.requires_grad_(False)
        return clf

    def fit(model: tnn.Module, xy: Any = train_xy, lr: float = cfg.lr) -> None:
        train.fit(
            model, xy, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, schedule="linear",
            warmup=0.1, seed=cfg.seed, progress=False,
        )  # fmt: skip

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
    sparsity = [h["sparsity"] for h in ticket.history]
    imp = [h["score"] for h in ticket.history]
    dense = imp[0]
    controlled = list(cfg.control_rounds or range(1, cfg.rounds + 1))
    random_acc, oneshot_acc = {}, {}
    for r in controlled:
        model.load_state_dict(start)
        handle = ticket.at_round(r).random_like(seed=cfg.seed + r).apply(model)
        fit(model)
        random_acc[r] = acc(model)
        handle.remove()
        model.load_state_dict(dense_state)
        handle = Ticket.magnitude(model, sparsity[r]).apply(model)
        fit(model)
        oneshot_acc[r] = acc(model)
        handle.remove()
    t_reviews = time.perf_counter() - t0

    # ---- 2. MLM: an MLM phase (head + encoder), IMP on MLM, transfer to reviews
    wiki = data.load("wiki")
    passages = [p for doc in (*wiki.train.x, *wiki.test.x) for p in doc.split("\n") if len(p) > 80]
    pick = _subset(len(passages), cfg.mlm_train + cfg.mlm_test, cfg.seed + 2)
    texts = [passages[i] for i in pick]
    mlm_x, mlm_y = _masked(
        tok.encode(texts, max_len=cfg.mlm_max_len, pad_to=cfg.mlm_max_len), tok, cfg.seed
    )
    split, per_round = cfg.mlm_train, cfg.mlm_round_train
    mlm_train = ({k: v[:split] for k, v in mlm_x.items()}, mlm_y[:split])
    mlm_round = ({k: v[:per_round] for k, v in mlm_x.items()}, mlm_y[:per_round])
    mlm_test = ({k: v[split:] for k, v in mlm_x.items()}, mlm_y[split:])
    encoder.load_state_dict(pretrained)
    mlm = MaskedTokenHead(copy.deepcopy(encoder))
    mlm.encoder.embeddings.weight.requires_grad_(False)
    mlm_before = acc(mlm, mlm_test)  # the untrained head: chance
    fit(mlm, mlm_train, cfg.mlm_phase_lr)
    mlm_phase = acc(mlm, mlm_test)
    mlm_ticket = (
        find_ticket(  # rewinds to the MLM-trained weights: this model's "pre-trained" state
            mlm,
            lambda m: fit(m, mlm_round, cfg.mlm_lr),
            lambda m: acc(m, mlm_test),
            rate=cfg.mlm_rate,
            rounds=cfg.mlm_rounds,
            train_last=False,  # only its masks are transferred
        )
    )
    transferred = {}
    for name, t in (("ticket", mlm_ticket), ("random", mlm_ticket.random_like(seed=cfg.seed))):
        clf = classifier()
        handle = t.transfer(clf)
        fit(clf)
        transferred[name] = acc(clf)
        handle.remove()
    seconds = {
        "load + IMP": t_imp,
        "reviews total": t_reviews,
        "total": time.perf_counter() - t0,
        "CPU seconds": time.process_time() - cpu0,
    }
    mlm_acc = {"untrained head": mlm_before, "after the MLM phase": mlm_phase}

    return _result(
        cfg, sparsity, imp, random_acc, oneshot_acc, mlm_acc, mlm_ticket, transferred, dense,
        seconds,
    )  # fmt: skip


def _result(
    cfg: LotteryBertConfig,
    sparsity: list[float],
    imp: list[float],
    random_acc: dict[int, float],
    oneshot_acc: dict[int, float],
    mlm_acc: dict[str, float],
    mlm_ticket: Ticket,
    transferred: dict[str, float],
    dense: float,
    seconds: dict[str, float],
) -> Result:
    matching = [r for r in range(1, len(imp)) if imp[r] >= dense - 0.01]
    best = max(matching) if matching else 0
    # the control compared at the matching sparsity (or the nearest controlled round below it)
    below = [r for r in random_acc if r <= max(best, 1)]
    cmp_round = max(below) if below else min(random_acc)
    mlm_s = mlm_ticket.sparsity
    metrics: dict[str, Any] = {"dense reviews accuracy": dense}
    for r in range(1, len(imp)):
        tag = f"{100 * sparsity[r]:.0f}%"
        metrics[f"IMP ticket accuracy at {tag}"] = imp[r]
        if r in random_acc:
            metrics[f"random control accuracy at {tag}"] = random_acc[r]
            metrics[f"one-shot (no rewind) accuracy at {tag}"] = oneshot_acc[r]
    metrics["highest sparsity within 1 point of dense"] = sparsity[best]
    metrics["MLM accuracy on held-out wiki"] = mlm_acc
    metrics["MLM accuracy by IMP round"] = {
        f"{100 * h['sparsity']:.0f}%": h["score"] for h in mlm_ticket.history
    }
    metrics[f"MLM ticket ({100 * mlm_s:.0f}%) transferred: reviews accuracy"] = transferred[
        "ticket"
    ]
    metrics[f"MLM random control ({100 * mlm_s:.0f}%) transferred: reviews accuracy"] = transferred[
        "random"
    ]
    metrics["seconds"] = seconds
    metrics["paper: highest matching sparsity, SST-2 / MLM (Table 2)"] = {"SST-2": 0.6, "MLM": 0.7}
    targets = [
        Target.check("highest IMP sparsity within 1 point of dense accuracy", sparsity[best], ">=", 0.5),
        Target.check(
            f"IMP ticket minus random control at {100 * sparsity[cmp_round]:.0f}% (points)",
            100 * (imp[cmp_round] - random_acc[cmp_round]), ">=", 2.0,
        ),
        Target.check(
            f"MLM ticket ({100 * mlm_s:.0f}%) transferred to reviews minus dense (points)",
            100 * (transferred["ticket"] - dense), ">=", -1.0,
        ),
        Target.check(
            "CPU seconds / threads of this preset (its wall time on idle cores)",
            seconds["CPU seconds"] / cfg.threads, "<=", cfg.time_budget_s,
        ),
    ]  # fmt: skip
    pct = [100 * s for s in sparsity]
    ctl = sorted(random_acc)
    plots = [
        {
            "title": f"MiniLM ({cfg.layers} of 6 layers) on reviews: test accuracy vs sparsity",
            "kind": "line",
            "x_label": "sparsity of the attention and feed-forward weights (%)",
            "y_label": f"test accuracy ({cfg.max_test} reviews)",
            "series": [
                {"name": "IMP ticket (rewound to pre-trained)", "x": pct, "y": imp},
                {"name": "random pruning, same layer sparsity", "x": [pct[r] for r in ctl], "y": [random_acc[r] for r in ctl]},
                {"name": "one-shot magnitude, no rewind", "x": [pct[r] for r in ctl], "y": [oneshot_acc[r] for r in ctl]},
                {"name": f"MLM ticket transferred ({100 * mlm_s:.0f}%)", "x": [100 * mlm_s], "y": [transferred["ticket"]]},
                {"name": "dense", "x": [0.0, pct[-1]], "y": [dense, dense]},
            ],
        }
    ]  # fmt: skip
    se = 100 * (dense * (1 - dense) / cfg.max_test) ** 0.5
    notes = (
        f"MiniLM with its first {cfg.layers} of 6 pre-trained layers, fine-tuned on {cfg.max_train} "
        f"reviews for {cfg.epochs} epoch(s) per run, scored on {cfg.max_test} (one standard error "
        f"of an accuracy near {dense:.2f} is {se:.1f} points, so 'within 1 point' is within noise "
        f"at this size). Dense {dense:.3f}; IMP tickets "
        + ", ".join(f"{p:.0f}%: {a:.3f}" for p, a in zip(pct[1:], imp[1:]))
        + "; random controls "
        + ", ".join(f"{pct[r]:.0f}%: {random_acc[r]:.3f}" for r in ctl)
        + "; one-shot "
        + ", ".join(f"{pct[r]:.0f}%: {oneshot_acc[r]:.3f}" for r in ctl)
        + f". MLM on {cfg.mlm_test} held-out wiki passages: masked-token accuracy "
        f"{mlm_acc['untrained head']:.3f} with an untrained head, {mlm_acc['after the MLM phase']:.3f} "
        f"after the MLM phase ({cfg.mlm_train} passages, head and encoder). The MLM ticket "
        f"({100 * mlm_s:.0f}%, IMP rounds of {cfg.mlm_round_train} passages rewound to the "
        f"MLM-trained weights) fine-tunes on reviews to {transferred['ticket']:.3f}; its "
        f"random control to {transferred['random']:.3f}. One-shot pruning continues from the "
        "fine-tuned weights, so it has one more fine-tune behind it than a ticket."
    )
    return Result(
        recipe="lottery-bert",
        claim=Claim(
            text=(
                "Matching subnetworks of pre-trained BERT exist at 40% to 90% sparsity (SST-2: "
                "60%), found by IMP with rewinding to the pre-trained weights; the 70% subnetwork "
                "found on the MLM task transfers to every downstream task"
            ),
            value=0.6,
            source="Chen et al., NeurIPS 2020, arXiv:2007.12223 (abstract; Table 2, SST-2 and MLM)",
        ),
        metrics=metrics,
        targets=targets,
        plots=plots,
        notes=notes,
    )
