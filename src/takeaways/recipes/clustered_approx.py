"""clustered-approx: clustered attention swapped into a pre-trained model at 512 tokens (arXiv 2007.04825).

The paper swaps clustered attention into a pre-trained RoBERTa, without retraining, and
reports that improved-clustered attention with 25 clusters loses nothing on GLUE and SQuAD.
Here the pre-trained model is the packaged MiniLM-L6 (``takeaways.nn.load_minilm``; trained
with dense attention, 512 learned positions) and the inputs are 512-token passages of real
text, so every layer has N = 512 queries: C = 25, 50, 100 clusters leave 20, 10 and 5
queries per cluster, the regime where clustering approximates rather than copies attention.
Every layer's attention is swapped through ``takeaways.hf.extended_attention`` (the same
mechanism that runs BigBird inside HF encoders) and restored afterwards.

The task is the one this model was trained for: semantic search. MiniLM-L6 (all-MiniLM-L6-v2)
is a sentence embedder with no MLM head, so masked-token accuracy would need a head (and
the encoder) trained first, and a classifier would need fine-tuning; either would measure
the new head as much as the swap. Retrieval needs neither: every article of gensim's
Wikipedia sample is cut into disjoint 512-token passages (up to ``passages_per_doc``, evenly
spread through the article), each passage is embedded (mean pooling, unit length, as the
model's own sentence setup does) and its nearest other passage by cosine similarity counts
as a hit when it comes from the same article. Top-1 accuracy over all passages, dense vs
clustered, is compared per passage (a paired t-interval over passages, which treats the
passages of one article as independent); the swapped model embeds both the query and the
passages it is searched among. The mean cosine between the dense and the clustered
embedding of a passage says how close the vectors stay.

The model's own sentence setup truncates at 256 tokens; its 512 learned positions come from
the MiniLM pre-training underneath, so dense at 512 tokens is the model as it is, judged by
the same task, not a setting it was tuned for (the baseline below shows it uses the length).

Why the task can show a drop: the same search on the first 64 tokens of each passage
(dense) is the baseline for "reads the whole passage", and random retrieval is the chance
floor. The judge checks that dense at 512 tokens sits clearly above both and below 100%.

Speed: one-thread CPU time (``time.process_time``), the median of ``timing_runs`` interleaved
runs, of the MiniLM forward on one 512-token passage (HF's SDPA attention vs each swapped
kernel) and of the attention call alone at MiniLM's shape (B=1, H=12, N=512, D=32).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
import torch

from takeaways import data, nn
from takeaways.attention import clustered_attention, improved_clustered_attention
from takeaways.hf import extended_attention
from takeaways.measure import clock_for
from takeaways.nn.sentence import mean_pool
from takeaways.recipes import register_recipe
from takeaways.results import (
    Check,
    Claim,
    Judgement,
    Paired,
    Result,
    Target,
    line_plot,
    paired_diff,
    series,
)

KERNELS = {"clustered": clustered_attention, "improved-clustered": improved_clustered_attention}
MIN_QUERIES_PER_CLUSTER = 5  # below this, clustering is near-exact and approximates nothing
ROOM = 0.01  # dense must leave this much below 100% for a 1-point drop to show
SHORT_GAP = 0.05  # dense at full length beats the short-input baseline by this, CI included


@dataclass(frozen=True)
class ClusteredConfig:
    clusters: tuple[int, ...] = (25, 50, 100)  # C values swapped into every layer
    topk: int = 32  # improved-clustered: exact keys per cluster (fast-transformers' default)
    bits: int = 32  # hash bits per query
    iterations: int = 10  # Hamming K-means iterations
    corpus: str = "wiki"  # "wiki" (gensim's Wikipedia sample) or "pydoc"
    length: int = 512  # tokens per passage, [CLS] and [SEP] included (MiniLM's positions: 512)
    short: int = 64  # baseline: the first `short` tokens of each passage, dense
    passages_per_doc: int = 10  # at most this many disjoint passages per article
    docs: int | None = None  # articles used, in corpus order (None = all with >= 2 passages)
    batch_size: int = 8  # passages per forward
    timing_runs: int = 5  # interleaved timing runs per arm (the median is reported)
    threads: int = 1  # torch threads; 1 makes the timings one-thread CPU time
    seed: int = 0  # hash planes (each layer adds its index)

    def validate(self) -> None:
        if not self.clusters or min(self.clusters) < 1:
            raise ValueError("clusters must be a non-empty list of ints >= 1")
        if min(self.topk, self.bits, self.batch_size, self.timing_runs, self.threads) < 1:
            raise ValueError("topk, bits, batch_size, timing_runs and threads must be >= 1")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if not 4 <= self.short < self.length <= 512:
            raise ValueError(
                f"need 4 <= short < length <= 512 (MiniLM's positions), got short={self.short}, "
                f"length={self.length}"
            )
        if self.passages_per_doc < 2:
            raise ValueError("passages_per_doc must be >= 2 (a passage needs a partner)")
        if self.docs is not None and self.docs < 2:
            raise ValueError("docs must be >= 2, or none for all articles")
        if self.corpus not in ("wiki", "pydoc"):
            raise ValueError(f"corpus must be 'wiki' or 'pydoc', got {self.corpus!r}")


# ----------------------------------------------------------------------------- data


def _passages(cfg: ClusteredConfig, tok: data.Tokenizer) -> tuple[torch.Tensor, np.ndarray]:
    """Disjoint ``cfg.length``-token passages, ``(P, length)`` ids, and each one's article.

    An article of ``n`` whole passages (``length - 2`` word pieces each, between [CLS] and
    [SEP]) gives ``min(n, passages_per_doc)`` of them, evenly spaced from first to last, so
    two passages of one article are rarely neighbours in the text. Articles with fewer than
    two passages are skipped.
    """
    corpus = data.load(cfg.corpus)
    texts = [str(t) for t in (*corpus.train.x, *corpus.test.x)]
    backend = tok.backend
    backend.no_truncation()  # whole articles; tok.encode sets its own truncation again
    pieces = [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    cls, sep, body = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]"), cfg.length - 2
    rows, doc = [], []
    for ids in pieces:
        n = len(ids) // body
        if n < 2:
            continue
        if cfg.docs is not None and doc and doc[-1] + 1 >= cfg.docs:
            break
        d = doc[-1] + 1 if doc else 0
        for j in np.unique(np.linspace(0, n - 1, min(n, cfg.passages_per_doc)).round()):
            j = int(j)
            rows.append([cls, *ids[j * body : (j + 1) * body], sep])
            doc.append(d)
    if len(set(doc)) < 2:
        raise ValueError(
            f"{cfg.corpus} has fewer than 2 articles of >= 2 passages of {cfg.length} tokens; "
            "lower length"
        )
    return torch.tensor(rows, dtype=torch.long), np.asarray(doc)


def _chance(doc: np.ndarray) -> float:
    """Expected top-1 accuracy of a random neighbour: same-article others over all others."""
    same = np.bincount(doc)[doc] - 1
    return float(np.mean(same / (len(doc) - 1)))


def facts(cfg: ClusteredConfig) -> dict:
    """Data-only metrics: passages, articles, tokens per passage and the chance rate."""
    ids, doc = _passages(cfg, data.minilm_tokenizer())
    return {
        "passages": len(doc),
        "articles": int(doc.max() + 1),
        "tokens_per_passage_mean": float(ids.shape[1]),
        "chance_accuracy": _chance(doc),
    }


# ----------------------------------------------------------------------------- measuring


def _embed(encoder: torch.nn.Module, ids: torch.Tensor, batch: int) -> torch.Tensor:
    """Unit-length mean-pooled embeddings of full (unpadded) rows, ``(P, dim)``."""
    out = []
    with torch.inference_mode():
        for s in range(0, len(ids), batch):
            x = ids[s : s + batch]
            mask = torch.ones_like(x)
            out.append(mean_pool(encoder(x, mask), mask))
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def _hits(emb: torch.Tensor, doc: np.ndarray) -> list[float]:
    """Per passage: 1.0 when its nearest other passage (cosine) is from the same article."""
    sims = emb @ emb.T  # (P, P)
    sims.fill_diagonal_(-math.inf)
    nearest = sims.argmax(dim=-1).numpy()
    return (doc[nearest] == doc).astype(float).tolist()


DIFF_KEYS = ("diff_vs_dense", "diff_se", "diff_ci_lo", "diff_ci_hi")  # a stored Paired


def _paired(a: list[float], b: list[float]) -> dict[str, float]:
    """``paired_diff(a, b)`` (95%) as stored numbers; ``_stored`` rebuilds the Paired."""
    d = paired_diff(a, b)
    return dict(zip(DIFF_KEYS, (d.mean, d.se, d.lo, d.hi)))


def _options(name: str, c: int, cfg: ClusteredConfig) -> dict:
    options = {"clusters": c, "bits": cfg.bits, "iterations": cfg.iterations, "seed": cfg.seed}
    return {**options, "topk": cfg.topk} if name == "improved-clustered" else options


def _sweep(encoder, ids: torch.Tensor, doc: np.ndarray, cfg: ClusteredConfig) -> dict:
    """Dense, short-input and every kernel x C: accuracy, paired difference, cosine to dense."""
    dense_emb = _embed(encoder, ids, cfg.batch_size)
    dense = _hits(dense_emb, doc)
    short_ids = torch.cat([ids[:, : cfg.short - 1], ids[:, -1:]], dim=1)  # [CLS] ... [SEP]
    short = _hits(_embed(encoder, short_ids, cfg.batch_size), doc)
    out = {
        "dense": {"accuracy": float(np.mean(dense))},
        f"dense_first_{cfg.short}_tokens": {"accuracy": float(np.mean(short))},
    }
    out[f"dense_first_{cfg.short}_tokens"].update(_paired(short, dense))
    for name in KERNELS:
        keys = ("accuracy", *DIFF_KEYS, "cosine_mean", "cosine_min")
        arm: dict[str, list[float]] = {key: [] for key in keys}
        for c in cfg.clusters:
            with extended_attention(encoder, name, **_options(name, c, cfg)):
                emb = _embed(encoder, ids, cfg.batch_size)
            hits = _hits(emb, doc)
            cos = (emb * dense_emb).sum(-1)
            arm["accuracy"].append(float(np.mean(hits)))
            for key, value in _paired(hits, dense).items():
                arm[key].append(value)
            arm["cosine_mean"].append(float(cos.mean()))
            arm["cosine_min"].append(float(cos.min()))
        out[name] = arm
    return out


def _speed(encoder, ids: torch.Tensor, cfg: ClusteredConfig) -> dict:
    """Median CPU seconds of one forward (one passage) and of one attention call, per arm.

    Arms run interleaved, ``timing_runs`` rounds after a warm-up round, so a change of load
    hits every arm alike; with one thread the clock is the process's CPU time.
    """
    clock = clock_for(cfg.threads)
    x, mask = ids[:1], torch.ones_like(ids[:1])
    cfgh = encoder.bert.config
    H, D = cfgh.num_attention_heads, cfgh.hidden_size // cfgh.num_attention_heads
    g = torch.Generator().manual_seed(cfg.seed)
    q, k, v = torch.randn(3, 1, H, ids.shape[1], D, generator=g).unbind(0)  # (1, H, N, D)
    arms = [("dense", None, None)] + [(n, n, c) for n in KERNELS for c in cfg.clusters]
    forward: dict[str, list[float]] = {}
    attention: dict[str, list[float]] = {}
    with torch.inference_mode():
        for r in range(cfg.timing_runs + 1):  # round 0 warms up
            for label, name, c in arms:
                key = label if name is None else f"{name} C={c}"
                fn = nn.dense_attention if name is None else KERNELS[name]
                opts = {} if name is None else _options(name, c, cfg)
                t0 = clock()
                fn(q, k, v, **opts)
                t_att = clock() - t0
                if name is None:
                    t0 = clock()
                    encoder(x, mask)
                    t_fwd = clock() - t0
                else:
                    with extended_attention(encoder, name, **opts):
                        t0 = clock()
                        encoder(x, mask)
                        t_fwd = clock() - t0
                if r:
                    forward.setdefault(key, []).append(t_fwd)
                    attention.setdefault(key, []).append(t_att)
    med = {k: statistics.median(v) for k, v in forward.items()}
    med_att = {k: statistics.median(v) for k, v in attention.items()}
    return {
        "clock": "process CPU time" if cfg.threads == 1 else "wall time",
        "threads": cfg.threads,
        "runs": cfg.timing_runs,
        "forward_seconds": med,
        "attention_seconds": med_att,
        "forward_speedup_vs_dense": {k: med["dense"] / t for k, t in med.items() if k != "dense"},
        "attention_speedup_vs_dense": {
            k: med_att["dense"] / t for k, t in med_att.items() if k != "dense"
        },
    }


# ----------------------------------------------------------------------------- judging


def _c25(cfg: ClusteredConfig) -> tuple[int, int]:
    """(index, C) of the paper's C=25 in the sweep, or of its smallest value."""
    i = cfg.clusters.index(25) if 25 in cfg.clusters else 0
    return i, cfg.clusters[i]


def _stored(m: dict, arm: dict, i: int | None = None) -> Paired:
    """The 95% ``Paired`` that ``_paired`` stored in ``arm`` (at C index ``i`` for a kernel)."""
    mean, se, lo, hi = (arm[k] if i is None else arm[k][i] for k in DIFF_KEYS)
    return Paired(mean, se, lo, hi, int(m["passages"]), 0.95)


def judge(m: dict, cfg: ClusteredConfig) -> Judgement:
    """Checks: the inputs reach 512 tokens; the largest C leaves >= 5 queries per
    cluster; dense retrieval is above chance by 3 binomial s.e. and leaves >= 1 point of
    room below 100%; dense on the full passage beats the same model on its first ``short``
    tokens by >= 5 points with the whole paired 95% interval (so reading the whole passage
    matters, and a kernel that loses it could show). Targets (the paper's): accuracy at
    C=25 no more than 1 point below dense, met only when the lower end of the paired 95%
    interval of (kernel - dense) is above -1 point; for both kernels."""
    i, c = _c25(cfg)
    sweep, tokens, n = m["retrieval"], m["tokens_per_passage_mean"], m["passages"]
    dense, chance = sweep["dense"]["accuracy"], m.get("chance_accuracy")
    short = sweep[f"dense_first_{cfg.short}_tokens"]
    gap = _stored(m, short)  # short - dense
    checks = [
        Check.that(
            "inputs reach 512 tokens (MiniLM's position limit)",
            tokens,
            ">=",
            512,
            "mean tokens per passage, [CLS] and [SEP] included",
        ),
        Check.that(
            f"queries per cluster at the largest C={max(cfg.clusters)}",
            tokens / max(cfg.clusters),
            ">=",
            MIN_QUERIES_PER_CLUSTER,
            f"{tokens:.4g} tokens / {max(cfg.clusters)} clusters; with fewer, clustering is "
            "near-exact",
        ),
        (
            Check.missing("dense retrieval above chance", "chance_accuracy")
            if chance is None
            else Check.that(
                "dense retrieval above chance",
                dense,
                ">=",
                chance + 3 * math.sqrt(chance * (1 - chance) / n),
                f"chance {chance:.4f} + 3 binomial s.e. over {n} passages",
            )
        ),
        Check.that(
            "dense retrieval leaves room for a drop", dense, "<=", 1 - ROOM, "below 100% by 1 point"
        ),
        Check.that(
            f"dense on {cfg.length} tokens beats dense on the first {cfg.short}",
            -gap.hi,
            ">=",
            SHORT_GAP,
            f"lower end of the paired 95% interval of dense - short; point {-gap.mean:+.3f}",
        ),
    ]
    targets = [
        Target.beats(
            f"retrieval accuracy change, {k} C={c} vs dense (>= -1 point)",
            _stored(m, sweep[k], i),
            goal=-0.01,
            op=">",
        )
        for k in ("improved-clustered", "clustered")
    ]
    diff = {k: _stored(m, sweep[k], i) for k in KERNELS}
    worst = {}  # kernel -> (C, its difference) where the kernel lost most
    for k in KERNELS:
        means = sweep[k]["diff_vs_dense"]
        j = int(np.argmin(means))
        worst[k] = (cfg.clusters[j], means[j])
    finding = (
        f"Swapped into every layer of the pre-trained MiniLM at {tokens:.0f} tokens "
        f"({tokens / c:.1f} queries per cluster at C={c}), with no retraining, same-article "
        f"retrieval over {n} passages moved from dense {dense:.3f} by "
        f"{diff['improved-clustered'].mean:+.3f} (95% CI {diff['improved-clustered'].lo:+.3f} "
        f"to {diff['improved-clustered'].hi:+.3f}) for improved-clustered and "
        f"{diff['clustered'].mean:+.3f} ({diff['clustered'].lo:+.3f} to "
        f"{diff['clustered'].hi:+.3f}) for plain clustered at C={c} (mean cosine to the dense "
        f"embedding {sweep['improved-clustered']['cosine_mean'][i]:.4f} and "
        f"{sweep['clustered']['cosine_mean'][i]:.4f}); the largest loss was "
        + "; ".join(f"{k} C={wc}: {w:+.3f}" for k, (wc, w) in worst.items())
        + f" (first-{cfg.short}-token baseline {short['accuracy']:.3f})"
    )
    if diff["improved-clustered"].lo > -0.01:
        advice = (
            f"Use improved-clustered attention (top-{cfg.topk}, C={c}) as a drop-in for a "
            "pre-trained model's dense attention on long inputs: here it kept the task metric "
            "within 1 point without retraining"
        )
    else:
        advice = (
            f"Check the task metric before swapping C={c} clustered attention into a "
            "pre-trained model: here a loss of 1 point or more was not ruled out"
        )
    speedup = m.get("speed", {}).get("forward_speedup_vs_dense", {})
    fast = speedup.get(f"improved-clustered C={c}")
    if fast is not None and fast < 1:
        advice += (
            f"; at {tokens:.0f} tokens its forward is {1 / fast:.2f}x dense SDPA's time on one "
            "CPU thread, so the case for it is longer inputs"
        )
    return Judgement(checks, targets, finding + ".", advice + ".")


def _plot(sweep: dict, cfg: ClusteredConfig, tokens: float) -> dict:
    xs = list(cfg.clusters)
    lines = []
    for k in KERNELS:
        arm = sweep[k]
        half = [(hi - lo) / 2 for lo, hi in zip(arm["diff_ci_lo"], arm["diff_ci_hi"])]
        lines.append(series(k, xs, arm["diff_vs_dense"], half))
    short = sweep[f"dense_first_{cfg.short}_tokens"]["diff_vs_dense"]
    lines.append(series(f"dense, first {cfg.short} tokens", xs, [short] * len(xs)))
    lines.append(series("goal: -1 point", xs, [-0.01] * len(xs)))
    return line_plot(
        f"MiniLM, {tokens:.0f}-token passages: retrieval accuracy minus dense (±95% CI)",
        "clusters C (every layer)",
        "top-1 accuracy change vs dense",
        lines,
        log_x=True,
    )


@register_recipe(
    "clustered-approx",
    config=ClusteredConfig,
    presets={
        "smoke": {
            "clusters": (2, 4),
            "length": 24,
            "short": 8,
            "docs": 4,
            "passages_per_doc": 2,
            "timing_runs": 1,
            "iterations": 3,
            "topk": 4,
        },
        "demo": {
            "clusters": (10, 25, 50),
            "length": 256,
            "docs": 16,
            "passages_per_doc": 3,
            "timing_runs": 3,
        },
        "full": {},
    },
    takeaway=9,
    summary="swap clustered attention (C=25..100) into pre-trained MiniLM at 512 tokens: "
    "retrieval accuracy and speed vs dense",
    judge=judge,
    facts=facts,
)
def run(cfg: ClusteredConfig) -> Result:
    encoder, tok = nn.load_minilm()
    encoder.eval()
    ids, doc = _passages(cfg, tok)
    sweep = _sweep(encoder, ids, doc, cfg)
    speed = _speed(encoder, ids, cfg)
    i, c = _c25(cfg)
    tokens = float(ids.shape[1])
    metrics = {
        "retrieval": sweep,
        "clusters": list(cfg.clusters),
        "queries_per_cluster": [tokens / x for x in cfg.clusters],
        "speed": speed,
    }
    fwd = speed["forward_seconds"]
    notes = (
        f"{len(doc)} passages of {tokens:.0f} tokens from {int(doc.max() + 1)} {cfg.corpus} "
        f"articles; same-article top-1 retrieval: dense {sweep['dense']['accuracy']:.3f}, "
        f"first {cfg.short} tokens {sweep[f'dense_first_{cfg.short}_tokens']['accuracy']:.3f}, "
        f"chance {_chance(doc):.4f}. At C={c}: clustered {sweep['clustered']['accuracy'][i]:.3f} "
        f"(cosine to dense {sweep['clustered']['cosine_mean'][i]:.4f}), improved-clustered "
        f"(top-{cfg.topk}) {sweep['improved-clustered']['accuracy'][i]:.3f} (cosine "
        f"{sweep['improved-clustered']['cosine_mean'][i]:.4f}). One-passage forward, "
        f"{speed['clock']}, median of {cfg.timing_runs}: dense {fwd['dense'] * 1e3:.0f} ms, "
        f"clustered C={c} {fwd[f'clustered C={c}'] * 1e3:.0f} ms, improved C={c} "
        f"{fwd[f'improved-clustered C={c}'] * 1e3:.0f} ms."
    )
    return Result(
        recipe="clustered-approx",
        claim=Claim(
            text="Improved clustered attention with 25 clusters approximates a pre-trained "
            "transformer (RoBERTa) on GLUE and SQuAD with no loss in performance, without "
            "retraining",
            value=25.0,
            source="Vyas, Katharopoulos & Fleuret, Fast Transformers with Clustered Attention, "
            "arXiv 2007.04825, abstract and the RoBERTa approximation experiment",
        ),
        metrics=metrics,
        plots=[_plot(sweep, cfg, tokens)],
        notes=notes,
    )
