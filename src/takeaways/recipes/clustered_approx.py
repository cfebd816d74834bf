"""clustered-approx: swap clustered attention into a trained dense model (arXiv 2007.04825).

The paper approximates a pre-trained RoBERTa on GLUE and SQuAD with 25 clusters "and no loss
in performance". Here: train a small dense encoder on a real task (Rotten Tomatoes reviews,
fresh vs rotten, WordPiece trained on the training texts), then, without retraining, swap
every layer's attention for clustered or improved-clustered attention with C clusters
(``takeaways.nn.set_attention``) and measure test accuracy and the agreement of predictions
with the dense model.

Reviews are short (about 31 tokens), so C=25 leaves about one query per cluster: clustering
is then near-exact by construction and approximates nothing (the judge's regime check says
so). A second probe with long sequences (``needle_len`` tokens, C << N) uses the passkey task
(``takeaways.data.needle_task``), a dense model warm-started on ``needle_warm_len`` tokens and
trained at ``needle_len`` (``takeaways.nn.passkey_warm_start``): one query ([CLS]) must find
one key, the hard case for clustering, where the improved variant's exact top-k keys matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from takeaways import data, nn, train
from takeaways.attention import clustered_attention, improved_clustered_attention
from takeaways.recipes import register_recipe
from takeaways.results import Check, Claim, Judgement, Result, Target, line_plot, series

KERNELS = {"clustered": clustered_attention, "improved-clustered": improved_clustered_attention}
MIN_QUERIES_PER_CLUSTER = 4  # below this, clustering is near-exact and approximates nothing


@dataclass(frozen=True)
class ClusteredConfig:
    clusters: tuple[int, ...] = (2, 5, 10, 25, 50, 100)  # C values swapped in at evaluation
    topk: int = 8  # improved-clustered: exact keys per cluster (the paper used 32 on RoBERTa)
    bits: int = 32  # hash bits per query
    iterations: int = 10  # Hamming K-means iterations
    train_size: int | None = 2000  # training reviews (None = all 10,246)
    test_size: int | None = 500  # test reviews (None = all 2,562)
    max_len: int = 64  # tokens per review, [CLS] and [SEP] included
    vocab_size: int = 4000  # WordPiece vocabulary trained on the training texts
    dim: int = 128  # encoder width
    depth: int = 2  # encoder blocks
    heads: int = 4  # attention heads
    epochs: int = 2  # training epochs of the dense model
    batch_size: int = 64  # sequences per step
    lr: float = 1e-3  # AdamW peak learning rate
    needle_len: int = 0  # >0: also probe a dense model trained on the needle task at this N
    needle_train: int = 512  # passkey training sequences at needle_len (after a warm start)
    needle_test: int = 512  # passkey test sequences at needle_len
    needle_epochs: int = 2  # passkey training epochs at needle_len
    needle_values: int = 8  # passkey classes (chance = 1 / needle_values)
    needle_warm_len: int = 256  # warm start: dense passkey model trained at this length first
    needle_warm_size: int = 2000  # warm-start sequences
    needle_warm_epochs: int = 4  # warm-start epochs
    needle_batch_size: int = 8  # passkey sequences per step
    needle_lr: float = 1e-3  # passkey AdamW peak rate at needle_len (3x in the warm start)
    seed: int = 0  # data order, initialisation, hashing

    def validate(self) -> None:
        if not self.clusters or min(self.clusters) < 1:
            raise ValueError("clusters must be a non-empty list of ints >= 1")
        if min(self.topk, self.bits, self.epochs, self.batch_size, self.dim) < 1:
            raise ValueError("topk, bits, epochs, batch_size and dim must be >= 1")
        if any(n is not None and n < 1 for n in (self.train_size, self.test_size)):
            raise ValueError("train_size and test_size must be >= 1, or none for all reviews")
        if self.needle_len and self.needle_len < 8:
            raise ValueError("needle_len must be 0 (off) or >= 8")
        if self.needle_len and not 4 <= self.needle_warm_len <= self.needle_len:
            raise ValueError("need 4 <= needle_warm_len <= needle_len when needle_len > 0")
        sizes = (self.needle_train, self.needle_test, self.needle_warm_size, self.needle_epochs)
        if min(sizes) < 1 or self.needle_batch_size < 1 or self.needle_warm_epochs < 0:
            raise ValueError("needle sizes, epochs and batch size must be >= 1 (warm epochs >= 0)")
        if self.needle_values < 2 or self.needle_lr <= 0:
            raise ValueError("need needle_values >= 2 and needle_lr > 0")


def _predict(model: torch.nn.Module, inputs, batch: int = 256) -> torch.Tensor:
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(next(iter(inputs.values()))), batch):
            out.append(model(**{k: v[s : s + batch] for k, v in inputs.items()}).argmax(-1))
    return torch.cat(out)


def _sweep(model, inputs, labels, cfg: ClusteredConfig) -> dict[str, dict[str, list[float]]]:
    """Accuracy and agreement with the dense predictions for every kernel and C."""
    dense = _predict(model, inputs)
    out = {"dense": {"accuracy": float((dense == labels).float().mean())}}
    for name, kernel in KERNELS.items():
        options = {"bits": cfg.bits, "iterations": cfg.iterations, "seed": cfg.seed}
        if name == "improved-clustered":
            options["topk"] = cfg.topk
        acc, agree = [], []
        for c in cfg.clusters:
            with nn.set_attention(model, kernel, **options, clusters=c):
                pred = _predict(model, inputs)
            acc.append(float((pred == labels).float().mean()))
            agree.append(float((pred == dense).float().mean()))
        out[name] = {"accuracy": acc, "agreement": agree}
    return out


def _split(cfg: ClusteredConfig) -> tuple[data.Split, data.Split, int]:
    """The reviews the run trains and tests on (a seeded training subset, the first test
    rows) and the number of classes."""
    reviews = data.load("reviews")
    rng = np.random.default_rng(cfg.seed)
    tr = reviews.train.subset(rng.permutation(len(reviews.train))[: cfg.train_size])
    te = reviews.test.subset(np.arange(len(reviews.test))[: cfg.test_size])
    return tr, te, len(reviews.classes)


def facts(cfg: ClusteredConfig) -> dict:
    """Data-only metrics: the majority-class rate of the test reviews."""
    _, te, _ = _split(cfg)
    return {"majority_class_rate": float(np.bincount(te.y).max() / len(te))}


def _reviews(cfg: ClusteredConfig) -> tuple[dict, dict]:
    """Train the dense model on reviews; its sweep, and the metrics about the data."""
    tr, te, classes = _split(cfg)
    tok = data.train_wordpiece(list(tr.x), vocab_size=cfg.vocab_size)
    x_tr = tok.encode(list(tr.x), max_len=cfg.max_len, pad_to=cfg.max_len)
    x_te = tok.encode(list(te.x), max_len=cfg.max_len, pad_to=cfg.max_len)
    y_tr, y_te = torch.as_tensor(tr.y), torch.as_tensor(te.y)
    lengths = x_te["attention_mask"].sum(1).float()

    train.seed_everything(cfg.seed)
    enc = nn.TransformerEncoder(
        nn.EncoderConfig(
            vocab_size=tok.vocab_size,
            dim=cfg.dim,
            depth=cfg.depth,
            heads=cfg.heads,
            max_len=cfg.max_len,
            dropout=0.1,
        )
    )
    model = nn.SequenceClassifier(enc, classes, pooling="cls")
    fit = train.fit(
        model,
        (x_tr, y_tr),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup=0.1,
        seed=cfg.seed,
        desc="dense on reviews",
    )
    about = {
        "dense_train_seconds": fit.wall_s,
        "review_tokens_mean": float(lengths.mean()),
        "review_tokens_p90": float(lengths.quantile(0.9)),
        "train_size": len(tr),
        "test_size": len(te),
    }
    return _sweep(model, x_te, y_te, cfg), about


def _needle(cfg: ClusteredConfig) -> dict:
    """A dense passkey model at ``needle_len`` (warm-started short), and its sweep."""
    n, values = cfg.needle_len, cfg.needle_values
    model, _ = nn.passkey_warm_start(
        n,
        length=cfg.needle_warm_len,
        size=cfg.needle_warm_size,
        epochs=cfg.needle_warm_epochs,
        values=values,
        batch_size=cfg.needle_batch_size,
        lr=3 * cfg.needle_lr,
        seed=cfg.seed,
        data_seed=cfg.seed + 2,
    )
    xn, yn = data.needle_task(cfg.needle_train, n, values=values, seed=cfg.seed)
    xt, yt = data.needle_task(cfg.needle_test, n, values=values, seed=cfg.seed + 1)
    train.fit(
        model,
        (xn, yn),
        epochs=cfg.needle_epochs,
        batch_size=cfg.needle_batch_size,
        lr=cfg.needle_lr,
        warmup=0.1,
        seed=cfg.seed,
        desc=f"dense on passkey N={n}",
    )
    return _sweep(model, xt, yt, cfg)


def _c25(cfg: ClusteredConfig) -> tuple[int, int]:
    """(index, C) of the paper's C=25 in the sweep, or of its middle value."""
    i = cfg.clusters.index(25) if 25 in cfg.clusters else len(cfg.clusters) // 2
    return i, cfg.clusters[i]


def _plot(sweep: dict, cfg: ClusteredConfig, title: str) -> dict:
    xs = list(cfg.clusters)
    lines = [series(k, xs, sweep[k]["accuracy"]) for k in KERNELS]
    lines.append(series("dense (trained)", xs, [sweep["dense"]["accuracy"]] * len(xs)))
    return line_plot(title, "clusters C", "test accuracy", lines, log_x=True)


def _above(name: str, acc: float, base: float | None, n: int, what: str) -> Check:
    """``acc`` beats ``base`` (the majority class, chance) by 3 binomial s.e. over ``n``."""
    if base is None:
        return Check.missing(name, what)
    margin = 3 * math.sqrt(base * (1 - base) / n)
    return Check.that(name, acc, ">=", base + margin, f"{what} {base:.3f} + 3 s.e. over {n}")


def _regime(name: str, tokens: float, c: int) -> Check:
    """Enough queries per cluster for clustering to approximate anything."""
    detail = f"{tokens:.4g} tokens / {c} clusters; with fewer, clustering is near-exact"
    return Check.that(name, tokens / c, ">=", MIN_QUERIES_PER_CLUSTER, detail)


def judge(m: dict, cfg: ClusteredConfig) -> Judgement:
    """Checks: the dense models learned (reviews above the majority class, passkey above
    chance, by 3 binomial s.e.), and each probed arm is in the regime where clustering
    approximates anything (>= 4 queries per cluster at the judged C). Targets: accuracy drop
    at the paper's C=25 <= 1 point."""
    i, c = _c25(cfg)
    rev, tokens = m["reviews"], m["review_tokens_mean"]
    dense = rev["dense"]["accuracy"]
    checks = [
        _above(
            "reviews: dense model above the majority class",
            dense,
            m.get("majority_class_rate"),
            m["test_size"],
            "majority_class_rate",
        ),
        _regime(f"reviews: queries per cluster at C={c}", tokens, c),
    ]
    drop = {k: dense - rev[k]["accuracy"][i] for k in KERNELS}
    targets = [
        Target.check(
            f"reviews: accuracy drop, improved-clustered C={c}",
            drop["improved-clustered"],
            "<=",
            0.01,
        ),
        Target.check(f"reviews: accuracy drop, clustered C={c}", drop["clustered"], "<=", 0.01),
    ]
    finding = (
        f"Swapped into a dense reviews classifier ({dense:.3f}), C={c} clustered attention "
        f"changed test accuracy by {rev['clustered']['accuracy'][i] - dense:+.3f} and improved-clustered by "
        f"{rev['improved-clustered']['accuracy'][i] - dense:+.3f}, at {tokens / c:.1f} queries per cluster"
    )
    if "needle" in m:
        needle, n = m["needle"], m["needle_len"]
        nd = needle["dense"]["accuracy"]
        chance = 1 / cfg.needle_values
        checks.append(
            _above(f"needle N={n}: dense model above chance", nd, chance, cfg.needle_test, "chance")
        )
        checks.append(_regime(f"needle N={n}: queries per cluster at C={c}", n, c))
        improved = needle["improved-clustered"]["accuracy"][i]
        name = f"needle N={n}: accuracy drop, improved-clustered C={c}"
        targets.append(Target.check(name, nd - improved, "<=", 0.01))
        finding += f"; on the N={n} passkey task (dense {nd:.3f}) improved by {improved - nd:+.3f}"
    if tokens / c >= MIN_QUERIES_PER_CLUSTER:
        advice = f"Use it when sequences are long (N >> C={c}); on these reviews it held accuracy."
    else:
        advice = (
            f"Use it when sequences are long (N >> C={c}); do not read the reviews result as "
            f"evidence: at ~{tokens / c:.1f} queries per cluster it is exact attention in disguise."
        )
    return Judgement(checks, targets, finding + ".", advice)


@register_recipe(
    "clustered-approx",
    config=ClusteredConfig,
    presets={
        "smoke": {
            "clusters": (2, 25),
            "train_size": 256,
            "test_size": 128,
            "epochs": 1,
            "dim": 32,
            "vocab_size": 500,
        },
        "demo": {},
        "full": {"train_size": None, "test_size": None, "epochs": 4, "needle_len": 512},
    },
    takeaway=9,
    summary="train dense on reviews, swap in clustered attention (C=2..100): accuracy vs dense",
    judge=judge,
    facts=facts,
)
def run(cfg: ClusteredConfig) -> Result:
    rev, about = _reviews(cfg)
    needle = _needle(cfg) if cfg.needle_len else None

    i, c = _c25(cfg)
    dense_acc = rev["dense"]["accuracy"]
    tokens = about["review_tokens_mean"]
    metrics = {"reviews": rev, "clusters": list(cfg.clusters), **about}
    plots = [_plot(rev, cfg, f"reviews (mean {tokens:.0f} tokens): test accuracy")]
    notes = (
        f"Reviews, dense {dense_acc:.3f} (majority class {facts(cfg)['majority_class_rate']:.3f}); at "
        f"C={c}: clustered {rev['clustered']['accuracy'][i]:.3f}, improved-clustered "
        f"(top-{cfg.topk}) {rev['improved-clustered']['accuracy'][i]:.3f}. Reviews average "
        f"{tokens:.0f} tokens, so C={c} is about {tokens / c:.1f} queries per cluster and C >= "
        "the length is exact; the paper's GLUE sentences are similarly short."
    )
    if needle is not None:
        metrics["needle"] = needle
        metrics["needle_len"] = cfg.needle_len
        plots.append(_plot(needle, cfg, f"needle task N={cfg.needle_len}: test accuracy"))
        notes += (
            f" Needle N={cfg.needle_len} (C << N): dense {needle['dense']['accuracy']:.3f}; at "
            f"C={c} clustered {needle['clustered']['accuracy'][i]:.3f}, improved "
            f"{needle['improved-clustered']['accuracy'][i]:.3f}."
        )
    return Result(
        recipe="clustered-approx",
        claim=Claim(
            text="Improved clustered attention with 25 clusters approximates a pre-trained "
            "transformer (RoBERTa) on GLUE and SQuAD with no loss in performance",
            value=25.0,
            source="Vyas, Katharopoulos & Fleuret, Fast Transformers with Clustered Attention, "
            "arXiv 2007.04825, abstract and the RoBERTa approximation experiment",
        ),
        metrics=metrics,
        plots=plots,
        notes=notes,
    )
