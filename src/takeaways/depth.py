"""Depth versus width of self-attention: the threshold, a parameter count, a sizing advisor.

Levine, Wies, Sharir, Bata & Shashua, "Limits to Depth Efficiencies of Self-Attention"
(NeurIPS 2020), arXiv 2006.12467; the arXiv v3 of January 2021 is titled "The
Depth-to-Width Interplay in Self-Attention".

Two different numbers come out of that paper, and they are easy to confuse:

1. **The theory's threshold** ``L_th = log3(d_x)`` (``depth_threshold``). Below it, each
   added layer is worth double-exponentially more width (*depth-efficient*). Above it,
   adding depth helps about as much as adding width (*depth-inefficient*). It marks
   where depth stops being special. It does not say that depth should stay below it.
2. **The paper's fitted optimum**: the depth it recommends for a network of a given
   size. The fit is ``ln(d_x) = 5.039 + 0.0555 * L``. It is far deeper than the
   threshold: about 95 layers and width 30K at one trillion parameters.

Where each number comes from (we could not read the paper's full text; see Sources):

- ``L_th = log3(d_x)``: stated by the authors in their summary post "Is depth useful
  for self-attention?" (KDnuggets, July 2020, first paragraph). The NeurIPS abstract
  says the threshold is logarithmic in the width.
- ``ln(d_x) = 5.039 + 0.0555 L``: quoted from Levine et al. (2020) by the BloombergGPT
  paper (Wu et al., arXiv 2303.17564, section 3.2 "Model Scaling", paragraph "Shape").
  It gives ``D = exp(5.039) exp(0.0555 L)`` as the optimal hidden size for ``L``
  layers, and pairs ``L = 70`` with ``D = 7510``. We could not find the equation's
  place inside arXiv 2006.12467 itself.
- "width of 30K ... optimal for a 1-Trillion parameter network" and "GPT3 ... too deep
  for its size": from the abstract of arXiv 2006.12467 v3. "Depth 92 and width 30K" at
  1T: the authors' blog post (cs.huji.ac.il/~yoavlevine/
  self_attention_depth_vs_width_post.html, "Bottom lines"). The fit above reaches 30K
  at about 95 layers; that ~3% gap is unexplained.
- The paper's experiments covered depths 6 to 48 (v3 abstract). Its per-size table
  of suggested depths and widths for the GPT-3 sizes is on the blog as an image. We
  did not read that image, so no number from it appears here.

Parameter counts (``parameter_count``) follow the standard block with biases:
``(4 + 2 r) d^2 + (9 + r) d`` weights per layer plus two LayerNorms (``r`` = FFN ratio).
This is exact for ``takeaways.nn.TransformerEncoder`` and for the released BERT,
GPT-2 and T5 checkpoints (T5 within 0.001%: its relative-position tables are not
counted). Sizes from the fit use the same count, embeddings included.

Example:
    >>> round(depth_threshold(768), 2)
    6.05
    >>> parameter_count(12, 768, vocab=30522, type_vocab=2, head="pooler")  # BERT-base
    109482240
    >>> s = suggest_architecture(model="gpt3-175b")
    >>> s.model.regime, s.fitted.depth < 96
    ('depth-inefficient', True)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["depth_threshold", "parameter_count", "suggest_architecture"]

# ln(width) = FIT_INTERCEPT + FIT_SLOPE * depth: the fitted optimal width for a given depth,
# quoted from Levine et al. (2020) in BloombergGPT (arXiv 2303.17564, section 3.2, "Shape").
FIT_INTERCEPT = 5.039
FIT_SLOPE = 0.0555
# Depths the paper trained (arXiv 2006.12467 v3 abstract): "networks of depths 6 to 48".
PAPER_DEPTHS = (6, 48)
# Candidate depths the advisor lists (plus the fitted and threshold depths of the query).
_DEPTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
_HEAD_DIM = 64  # head size the advisor assumes when heads are not given (BERT, GPT-2, GPT-3)
_NEAR = 0.15  # a shape within +-15% of the fitted depth is called "close to the fit"

Head = Literal["none", "pooler", "mlm"]


# ----------------------------------------------------------------------------- threshold


def _positive(name: str, value: object, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r:.40}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be a whole number, got {value}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def depth_threshold(width: float) -> float:
    """The depth ``L_th = log3(width)`` where self-attention turns depth-inefficient.

    Levine et al., arXiv 2006.12467: below ``L_th`` a deeper network needs
    double-exponentially more width to be matched by a shallower one; above it,
    depth and width contribute alike. This marks a regime boundary. It is not a
    recommended depth (see ``suggest_architecture`` for the paper's fitted optimum).

    Args:
        width: the hidden size ``d_x`` (> 0).

    Returns:
        ``log(width) / log(3)``, e.g. 6.05 for 768 and 8.57 for 12288.

    Raises:
        ValueError: for a non-positive width. TypeError: for a non-number.
    """
    return math.log(_positive("width", width)) / math.log(3.0)


def _fit_width(depth: float) -> float:
    """The fitted optimal width for ``depth`` layers: ``exp(5.039 + 0.0555 depth)``."""
    return math.exp(FIT_INTERCEPT + FIT_SLOPE * depth)


def _fit_depth(width: float) -> float:
    """The depth the fit pairs with ``width`` (may be < 1 for small widths)."""
    return (math.log(width) - FIT_INTERCEPT) / FIT_SLOPE


# ----------------------------------------------------------------------------- counting


def _norm(width: float, bias: bool) -> float:
    return 2 * width if bias else width  # LayerNorm gain (+ bias); T5's norm has a gain only


def _layer_terms(ffn_ratio: float, bias: bool, cross: bool) -> tuple[float, float]:
    """(d^2 coefficient, d coefficient) of one block: attention (+ cross-attention), FFN, norms."""
    attn_w, attn_b = 4.0, 4.0  # q, k, v and output projections
    ffn_w, ffn_b = 2.0 * ffn_ratio, ffn_ratio + 1.0
    norms = 3 if cross else 2
    quad = attn_w * (2 if cross else 1) + ffn_w
    lin = (attn_b * (2 if cross else 1) + ffn_b if bias else 0.0) + norms * (2 if bias else 1)
    return quad, lin


def _count(
    depth: float,
    width: float,
    *,
    vocab: int,
    ffn_ratio: float,
    max_len: int,
    type_vocab: int,
    decoder_depth: float,
    bias: bool,
    head: str,
) -> float:
    """``parameter_count`` on real numbers (the solvers need a continuous width)."""
    q_enc, l_enc = _layer_terms(ffn_ratio, bias, cross=False)
    q_dec, l_dec = _layer_terms(ffn_ratio, bias, cross=True)
    stacks = 2 if decoder_depth > 0 else 1
    total = (vocab + max_len + type_vocab) * width  # token (tied output), position, segment
    total += depth * (q_enc * width**2 + l_enc * width)
    total += decoder_depth * (q_dec * width**2 + l_dec * width)
    total += stacks * _norm(width, bias)  # embedding LN (BERT) or final LN (GPT-2, ours, T5)
    if head == "pooler":  # BERT's pooler: dense + tanh on [CLS]
        total += width**2 + (width if bias else 0)
    elif head == "mlm":  # BERT's / our MaskedLM: dense, LN, tied decoder with a bias per token
        total += width**2 + (width if bias else 0) + _norm(width, bias) + vocab
    return total


def parameter_count(
    depth: int,
    width: int,
    *,
    vocab: int,
    ffn_ratio: int = 4,
    max_len: int = 512,
    type_vocab: int = 0,
    decoder_depth: int = 0,
    bias: bool = True,
    head: Head = "none",
) -> int:
    """Parameters of a standard transformer with tied input/output embeddings.

    The block is BERT's / GPT-2's: q, k, v, output projection, a two-layer FFN of
    width ``ffn_ratio * width``, two LayerNorms, all with biases. One more
    LayerNorm per stack (BERT's embedding LN, or the final LN of GPT-2 and of
    ``takeaways.nn.TransformerEncoder``). ``decoder_depth > 0`` adds an encoder-decoder's
    decoder stack (self- and cross-attention, three norms per block).

    Exact for ``MaskedLM(TransformerEncoder(cfg))`` with ``head="mlm"`` and
    ``max_len=cfg.max_len``; for BERT-base ``(12, 768, vocab=30522, type_vocab=2,
    head="pooler")`` = 109,482,240; for GPT-2 ``(12, 768, vocab=50257, max_len=1024)`` =
    124,439,808; for T5-base ``(12, 768, vocab=32128, max_len=0, decoder_depth=12,
    bias=False)`` = 222,902,784 (768 below the checkpoint: relative-position tables).

    Args:
        depth: blocks in the (encoder) stack, >= 1.
        width: hidden size ``d_x``, >= 1.
        vocab: token-embedding rows (0 counts only the layers); the output layer is tied.
        ffn_ratio: FFN hidden size over width (4 in BERT, GPT-2/3 and T5-base).
        max_len: learned position-embedding rows (0 for relative positions as in T5).
        type_vocab: segment-embedding rows (2 in BERT, 0 elsewhere).
        decoder_depth: blocks of a decoder stack with cross-attention (T5), or 0.
        bias: biases in linear layers and LayerNorms (False for T5).
        head: ``"none"``, ``"pooler"`` (BERT's 110M/340M include it) or ``"mlm"``.

    Returns:
        The parameter count as an int.

    Raises:
        ValueError: for a non-positive depth/width, negative sizes or an unknown head.
    """
    _positive("depth", depth, integer=True)
    _positive("width", width, integer=True)
    for name, value in (("vocab", vocab), ("max_len", max_len), ("type_vocab", type_vocab)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if isinstance(decoder_depth, bool) or not isinstance(decoder_depth, int) or decoder_depth < 0:
        raise ValueError(f"decoder_depth must be an int >= 0, got {decoder_depth!r}")
    _positive("ffn_ratio", ffn_ratio)
    if head not in ("none", "pooler", "mlm"):
        raise ValueError(f"unknown head {head!r}; known: none, pooler, mlm")
    return int(
        round(
            _count(
                depth,
                width,
                vocab=vocab,
                ffn_ratio=ffn_ratio,
                max_len=max_len,
                type_vocab=type_vocab,
                decoder_depth=decoder_depth,
                bias=bias,
                head=head,
            )
        )
    )


# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class _Model:
    depth: int  # layers (per stack for encoder-decoders)
    width: int  # hidden size
    heads: int  # attention heads
    vocab: int  # embedding rows of the released checkpoint
    max_len: int  # learned positions (0: relative)
    published: float  # the paper's headline parameter count
    source: str  # where the shape and the headline come from
    type_vocab: int = 0
    decoder_depth: int = 0
    bias: bool = True
    head: Head = "none"
    ffn_ratio: int = 4

    def count(self) -> int:
        return parameter_count(
            self.depth,
            self.width,
            vocab=self.vocab,
            ffn_ratio=self.ffn_ratio,
            max_len=self.max_len,
            type_vocab=self.type_vocab,
            decoder_depth=self.decoder_depth,
            bias=self.bias,
            head=self.head,
        )


_BERT = "Devlin et al., arXiv 1810.04805, section 3 (L, H, A, total parameters); vocab 30522 and 512 positions from the released uncased checkpoints"
_GPT2 = "Radford et al. 2019, 'Language Models are Unsupervised Multitask Learners', Table 2 (parameters, layers, d_model) and section 2.3 (vocab 50,257, context 1024); heads from the released checkpoints. Table 2's counts are 5-6% below the released checkpoints"
_GPT3 = "Brown et al., arXiv 2005.14165, Table 2.1 (n_params, n_layers, d_model, n_heads); context 2048 and GPT-2's 50,257-token BPE (section 2)"
_T5 = "Raffel et al., arXiv 1910.10683, sections 3.1.1 (Base: 12+12 blocks, d_model 768, d_ff 3072, 12 heads, ~220M) and 3.7 (Small ~60M, Large ~770M); 32,128 embedding rows in the released checkpoints"

# Known models. The verdict for each comes from suggest_architecture(model=name).
KNOWN_MODELS: dict[str, _Model] = {
    "bert-base": _Model(12, 768, 12, 30522, 512, 110e6, _BERT, type_vocab=2, head="pooler"),
    "bert-large": _Model(24, 1024, 16, 30522, 512, 340e6, _BERT, type_vocab=2, head="pooler"),
    "gpt2": _Model(12, 768, 12, 50257, 1024, 117e6, _GPT2),
    "gpt2-medium": _Model(24, 1024, 16, 50257, 1024, 345e6, _GPT2),
    "gpt2-large": _Model(36, 1280, 20, 50257, 1024, 762e6, _GPT2),
    "gpt2-xl": _Model(48, 1600, 25, 50257, 1024, 1542e6, _GPT2),
    "gpt3-125m": _Model(12, 768, 12, 50257, 2048, 125e6, _GPT3),
    "gpt3-350m": _Model(24, 1024, 16, 50257, 2048, 350e6, _GPT3),
    "gpt3-760m": _Model(24, 1536, 16, 50257, 2048, 760e6, _GPT3),
    "gpt3-1.3b": _Model(24, 2048, 24, 50257, 2048, 1.3e9, _GPT3),
    "gpt3-2.7b": _Model(32, 2560, 32, 50257, 2048, 2.7e9, _GPT3),
    "gpt3-6.7b": _Model(32, 4096, 32, 50257, 2048, 6.7e9, _GPT3),
    # Table 2.1 prints d_model = 5140 for 13B; 40 heads x d_head 128 make it 5120.
    "gpt3-13b": _Model(40, 5120, 40, 50257, 2048, 13e9, _GPT3),
    "gpt3-175b": _Model(96, 12288, 96, 50257, 2048, 175e9, _GPT3),
    "t5-small": _Model(6, 512, 8, 32128, 0, 60e6, _T5, decoder_depth=6, bias=False),
    "t5-base": _Model(12, 768, 12, 32128, 0, 220e6, _T5, decoder_depth=12, bias=False),
    "t5-large": _Model(24, 1024, 16, 32128, 0, 770e6, _T5, decoder_depth=24, bias=False),
}


# ----------------------------------------------------------------------------- advisor


@dataclass(frozen=True)
class Option:
    """One candidate shape and where it sits."""

    depth: int  # layers (per stack for encoder-decoders)
    width: int  # hidden size d_x
    heads: int  # attention heads; width // heads is the head size
    params: int  # parameter_count of this shape with the query's vocab and conventions
    threshold: float  # log3(width): the theory's depth threshold at this width
    regime: str  # "depth-efficient" (depth < threshold) or "depth-inefficient"
    fit_depth: float  # the depth the paper's fit pairs with this width
    label: str = ""  # "asked", "fitted optimum", "at threshold", a model name, or ""


@dataclass(frozen=True)
class Suggestion:
    """What ``suggest_architecture`` found: candidate shapes and a plain-words verdict."""

    query: str  # what was asked, in words
    options: tuple[Option, ...]  # candidate shapes, shallow to deep
    fitted: Option | None  # the fit's optimum for this budget/width/depth (None: out of reach)
    threshold_depth: float | None  # budget queries: depth at which depth == log3(width)
    model: Option | None  # the asked shape (a known model, or depth + width)
    verdict: str  # one paragraph, plain words
    notes: tuple[str, ...]  # caveats and sources

    def table(self) -> str:
        """The options as a fixed-width text table (what ``takeaways depth`` prints)."""
        head = f"{'depth':>6} {'width':>7} {'heads':>5} {'params':>9} {'log3(w)':>8} {'fit L(w)':>8}  regime             note"
        rows = [head, "-" * len(head)]
        for o in self.options:
            fit = f"{o.fit_depth:.1f}" if o.fit_depth >= 1 else "<1"
            rows.append(
                f"{o.depth:>6} {o.width:>7} {o.heads:>5} {_human(o.params):>9} {o.threshold:>8.2f}"
                f" {fit:>8}  {o.regime:<18} {o.label}".rstrip()
            )
        return "\n".join(rows)


def _human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_count(text: str | float) -> float:
    """``"350M"``, ``"1.3B"``, ``"1T"``, ``"110e6"`` or ``125_000_000`` -> a number (> 0).

    Raises:
        ValueError: if the text is not a positive count.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _positive("params", text)
    if not isinstance(text, str):
        raise TypeError(f"params must be a number or a string like '350M', got {text!r:.40}")
    m = re.fullmatch(r"\s*([0-9][0-9_]*\.?[0-9_]*(?:e[+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*", text)
    if not m:
        raise ValueError(f"cannot read params {text!r}; write e.g. 350M, 1.3B, 1T or 110e6")
    return _positive("params", float(m.group(1).replace("_", "")) * _SUFFIX[m.group(2).upper()])


@dataclass(frozen=True)
class _Conv:
    """Counting conventions of a query: vocabulary, positions, FFN ratio, encoder-decoder."""

    vocab: int
    max_len: int
    ffn_ratio: int
    type_vocab: int = 0
    decoder: bool = False  # encoder-decoder: a decoder stack as deep as the encoder
    bias: bool = True
    head: Head = "none"

    def count(self, depth: float, width: float) -> float:
        return _count(
            depth,
            width,
            vocab=self.vocab,
            ffn_ratio=self.ffn_ratio,
            max_len=self.max_len,
            type_vocab=self.type_vocab,
            decoder_depth=depth if self.decoder else 0,
            bias=self.bias,
            head=self.head,
        )

    def width_for(self, depth: float, params: float) -> float | None:
        """The real width that makes ``count(depth, width) == params`` (None if none > 0)."""
        c = self.count(depth, 0.0)
        b = self.count(depth, 1.0) - c
        a = (self.count(depth, 2.0) - 2 * b - c) / 2.0  # count is a*w^2 + (b - a)*w + c
        b -= a
        disc = b * b - 4 * a * (c - params)
        if disc < 0:
            return None
        w = (-b + math.sqrt(disc)) / (2 * a)
        return w if w > 0 else None


def _round_width(width: float, heads: int | None) -> tuple[int, int]:
    """Round to a width that splits into heads: multiples of ``heads``, or of 64 (8 if tiny)."""
    if heads:
        unit = heads
    else:
        unit = _HEAD_DIM if width >= 2 * _HEAD_DIM else 8
    w = max(unit, int(round(width / unit)) * unit)
    return w, heads or max(1, w // _HEAD_DIM)


def _option(depth: int, width: int, heads: int, conv: _Conv, label: str = "") -> Option:
    th = depth_threshold(width)
    return Option(
        depth=depth,
        width=width,
        heads=heads,
        params=int(round(conv.count(depth, width))),
        threshold=th,
        regime="depth-efficient" if depth < th else "depth-inefficient",
        fit_depth=_fit_depth(width),
        label=label,
    )


def _fitted_for_budget(params: float, conv: _Conv) -> tuple[float, float] | None:
    """(depth, width) on the fitted curve whose parameter count is ``params`` (None if < 1 layer)."""
    size = lambda L: conv.count(L, _fit_width(L))  # noqa: E731  increasing in L
    lo, hi = 1.0, 4096.0
    if size(lo) > params or size(hi) < params:
        return None
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if size(mid) < params else (lo, mid)
    return lo, _fit_width(lo)


def _threshold_for_budget(params: float, conv: _Conv) -> float | None:
    """The depth L at which this budget's width satisfies L == log3(width)."""
    gap = lambda L: L - depth_threshold(conv.width_for(L, params) or 1.0)  # noqa: E731
    lo, hi = 0.05, 4096.0
    if conv.width_for(lo, params) is None or gap(lo) > 0:
        return None
    while hi - lo > 1e-9:
        mid = 0.5 * (lo + hi)
        if conv.width_for(mid, params) is None or gap(mid) > 0:
            hi = mid
        else:
            lo = mid
    return lo


def _compare(shape: Option, fit_depth: float | None, fit_width: float | None) -> str:
    where = (
        "below log3(width): the theory's depth-efficient regime, where a deeper network at this size "
        "would be worth far more width"
        if shape.regime == "depth-efficient"
        else "past log3(width): the depth-inefficient regime, where depth and width add about equally"
    )
    text = f"depth {shape.depth} at width {shape.width} is {where} (log3({shape.width}) = {shape.threshold:.2f})."
    if fit_depth is None or fit_width is None:
        return text + " The paper's fit has no optimum of at least one layer at this size."
    ratio = shape.depth / fit_depth
    if ratio > 1 + _NEAR:
        rel = "deeper than"
    elif ratio < 1 - _NEAR:
        rel = "shallower than"
    else:
        rel = "close to"
    text += (
        f" It is {rel} the paper's fitted optimum for its size, about {fit_depth:.0f} layers"
        f" x width {fit_width:,.0f} ({shape.depth} / {fit_depth:.1f} = {ratio:.2f})."
    )
    if not PAPER_DEPTHS[0] <= fit_depth <= PAPER_DEPTHS[1]:
        text += (
            f" That optimum lies outside the depths the paper trained ({PAPER_DEPTHS[0]}-"
            f"{PAPER_DEPTHS[1]}), so it is an extrapolation."
        )
    return text


_NOTES = (
    "threshold log3(width): Levine et al., arXiv 2006.12467 (authors' summary, KDnuggets 2020-07)",
    "fit ln(width) = 5.039 + 0.0555 depth: Levine et al. (2020) as quoted in BloombergGPT, arXiv 2303.17564, sec. 3.2",
    "the paper's own per-size table (blog image) was not read; 1T -> depth 92, width 30K per the authors' blog",
)


def suggest_architecture(
    *,
    params: float | str | None = None,
    width: int | None = None,
    depth: int | None = None,
    model: str | None = None,
    vocab: int = 30522,
    heads: int | None = None,
    ffn_ratio: int = 4,
    max_len: int = 512,
) -> Suggestion:
    """Depth/width/heads options near a parameter budget, a width or a depth, with their regimes.

    Each option reports the theory's threshold ``log3(width)`` and which side of it the
    depth falls (Levine et al., arXiv 2006.12467). It also reports the depth that the
    paper's fit ``ln(width) = 5.039 + 0.0555 depth`` pairs with that width.
    ``Suggestion.fitted`` is the fit's optimum for the query, where one exists.

    Ask one of:
        ``params`` (e.g. ``"350M"``): shapes of about that many parameters (embeddings
        of ``vocab`` rows and ``max_len`` positions included) from 1 layer up;
        ``width``: depths at that width; ``depth``: widths at that depth;
        ``depth`` and ``width``: that one shape; ``params`` with ``depth`` or
        ``width``: the shape that fills the budget; ``model``: a known model
        (``KNOWN_MODELS``: bert-base/large, gpt2..gpt2-xl, gpt3-125m..gpt3-175b,
        t5-small/base/large) with its own vocabulary and conventions.

    Args:
        params, width, depth, model: the query (see above).
        vocab: token-embedding rows counted in budgets (default BERT's 30522; 0 = layers only).
        heads: attention heads; widths are rounded to a multiple of it (default: head size 64).
        ffn_ratio: FFN width over model width.
        max_len: learned position rows counted in budgets.

    Returns:
        A ``Suggestion``; ``print(s.table())`` and ``print(s.verdict)``.

    Raises:
        ValueError: non-positive sizes, a budget too small for one layer at this vocab,
            an unknown model name (the message lists the known ones), or a bad combination.
        TypeError: a non-numeric size.
    """
    for name, value in (("width", width), ("depth", depth), ("heads", heads)):
        if value is not None:
            _positive(name, value, integer=True)
    for name, value in (("vocab", vocab), ("max_len", max_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    _positive("ffn_ratio", ffn_ratio)
    width, depth, heads = (None if v is None else int(v) for v in (width, depth, heads))
    budget = None if params is None else parse_count(params)
    if model is not None:
        if any(v is not None for v in (budget, width, depth)):
            raise ValueError("give model alone, or params/width/depth without model")
        return _for_model(model)
    if budget is None and width is None and depth is None:
        raise ValueError("say what to size: params (e.g. '350M'), width, depth, or model")
    if budget is not None and width is not None and depth is not None:
        raise ValueError("give at most two of params, width and depth")
    if heads is not None and width is not None and width % heads:
        raise ValueError(f"width {width} is not divisible by heads {heads}")
    conv = _Conv(vocab=vocab, max_len=max_len, ffn_ratio=int(ffn_ratio))
    if budget is not None:
        return _for_budget(budget, conv, heads, width=width, depth=depth)
    if width is not None and depth is not None:
        shape = _option(depth, width, heads or max(1, width // _HEAD_DIM), conv, "asked")
        return _for_shape(shape, conv, f"depth {depth}, width {width}", heads)
    if width is not None:
        return _for_width(width, conv, heads)
    return _for_depth(int(depth), conv, heads)  # type: ignore[arg-type]


def _fitted_option(params: float, conv: _Conv, heads: int | None) -> Option | None:
    fit = _fitted_for_budget(params, conv)
    if fit is None:
        return None
    L = max(1, int(round(fit[0])))
    w, h = _round_width(conv.width_for(L, params) or fit[1], heads)
    return _option(L, w, h, conv, "fitted optimum")


def _budget_options(params: float, conv: _Conv, heads: int | None) -> list[Option]:
    fit = _fitted_for_budget(params, conv)
    th = _threshold_for_budget(params, conv)
    extra = {int(round(x)) for x in (fit[0] if fit else None, th) if x is not None and x >= 0.5}
    top = max(12, 2 * max(extra, default=1))
    out = []
    for L in sorted(set(_DEPTHS) | extra):
        raw = conv.width_for(L, params)
        if L > top or raw is None or raw < max(8, heads or 1):
            continue
        w, h = _round_width(raw, heads)
        label = ""
        if fit and L == int(round(fit[0])):
            label = "fitted optimum"
        elif th is not None and L == int(round(th)):
            label = "at threshold"
        out.append(_option(L, w, h, conv, label))
    return out


def _for_budget(
    params: float, conv: _Conv, heads: int | None, *, width: int | None, depth: int | None
) -> Suggestion:
    min_w = max(8, heads or 1)
    if conv.count(1, min_w) > params:
        need = conv.count(1, min_w)
        raise ValueError(
            f"a budget of {_human(params)} parameters is too small for one layer of width {min_w} "
            f"with a vocab of {conv.vocab} (that needs {_human(need)}); raise params or lower vocab"
        )
    if depth is not None:
        raw = conv.width_for(depth, params)
        if raw is None or raw < min_w:
            raise ValueError(
                f"{_human(params)} parameters cannot hold {depth} layers of width >= {min_w} "
                f"at vocab {conv.vocab}; use fewer layers or a bigger budget"
            )
        w, h = _round_width(raw, heads)
        shape = _option(depth, w, h, conv, "asked")
        return _for_shape(shape, conv, f"{_human(params)} parameters at depth {depth}", heads)
    if width is not None:
        lo, hi = 0.0, 1e6
        if conv.count(1, width) > params:
            raise ValueError(
                f"one layer of width {width} already has {_human(conv.count(1, width))} parameters "
                f"at vocab {conv.vocab}, more than {_human(params)}; lower width or vocab"
            )
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if conv.count(mid, width) < params else (lo, mid)
        L = max(1, int(round(lo)))
        shape = _option(L, width, heads or max(1, width // _HEAD_DIM), conv, "asked")
        return _for_shape(shape, conv, f"{_human(params)} parameters at width {width}", heads)
    options = _budget_options(params, conv, heads)
    fitted = _fitted_option(params, conv, heads)
    th = _threshold_for_budget(params, conv)
    if fitted is None:
        verdict = (
            f"At {_human(params)} parameters the paper's fit asks for less than one layer, so it does "
            "not apply; every depth listed is a guess the paper does not cover."
        )
    else:
        verdict = (
            f"At {_human(params)} parameters the paper's fit puts the optimum near {fitted.depth} "
            f"layers x width {fitted.width} ({fitted.regime}: log3({fitted.width}) = "
            f"{fitted.threshold:.2f})."
        )
    if th is not None:
        verdict += (
            f" Depth equals log3(width) at about {th:.1f} layers for this budget. Shallower "
            "shapes are in the depth-efficient regime, where going deeper pays most. The threshold "
            "marks where depth stops being special; it is not a recommended depth."
        )
    return Suggestion(
        query=f"params = {_human(params)} (vocab {conv.vocab}, {conv.max_len} positions)",
        options=tuple(options),
        fitted=fitted,
        threshold_depth=th,
        model=None,
        verdict=verdict,
        notes=_NOTES,
    )


def _for_width(width: int, conv: _Conv, heads: int | None) -> Suggestion:
    h = heads or max(1, width // _HEAD_DIM)
    fit_L = _fit_depth(width)
    th = depth_threshold(width)
    depths = sorted(
        set(_DEPTHS) | {int(round(th))} | ({int(round(fit_L))} if fit_L >= 0.5 else set())
    )
    top = max(12, int(2 * max(fit_L, th)))
    options = []
    for L in depths:
        if L > top:
            continue
        label = ""
        if fit_L >= 0.5 and L == int(round(fit_L)):
            label = "fitted optimum"
        elif L == int(round(th)):
            label = "at threshold"
        options.append(_option(L, width, h, conv, label))
    fitted = (
        _option(max(1, int(round(fit_L))), width, h, conv, "fitted optimum")
        if fit_L >= 0.5
        else None
    )
    verdict = (
        f"At width {width} the threshold is log3({width}) = {th:.2f}: fewer layers are depth-efficient "
        "(deepening pays double-exponentially), more are depth-inefficient (depth and width add about "
        "equally)."
    )
    if fitted is not None:
        verdict += (
            f" The paper's fit pairs width {width} with about {fit_L:.1f} layers "
            f"({_human(fitted.params)} parameters at vocab {conv.vocab})."
        )
    else:
        verdict += f" The paper's fit pairs width {width} with less than one layer ({fit_L:.1f})."
    return Suggestion(f"width = {width}", tuple(options), fitted, None, None, verdict, _NOTES)


def _for_depth(depth: int, conv: _Conv, heads: int | None) -> Suggestion:
    fit_w = _fit_width(depth)
    th_w = 3.0**depth
    widths = sorted({64 * 2**k for k in range(0, 10)} | {_round_width(fit_w, heads)[0]})
    options = []
    for w in widths:
        if heads and w % heads:
            continue
        label = "fitted optimum" if w == _round_width(fit_w, heads)[0] else ""
        options.append(_option(depth, w, heads or max(1, w // _HEAD_DIM), conv, label))
    fw, fh = _round_width(fit_w, heads)
    fitted = _option(depth, fw, fh, conv, "fitted optimum")
    verdict = (
        f"Depth {depth} is at the threshold for width 3^{depth} = {th_w:,.0f}: narrower networks are "
        f"past it (depth-inefficient), wider ones below it (depth-efficient). The paper's fit pairs "
        f"depth {depth} with width about {fit_w:,.0f} ({_human(fitted.params)} parameters at vocab "
        f"{conv.vocab})."
    )
    return Suggestion(f"depth = {depth}", tuple(options), fitted, None, None, verdict, _NOTES)


def _for_shape(shape: Option, conv: _Conv, query: str, heads: int | None) -> Suggestion:
    fit = _fitted_for_budget(shape.params, conv)
    verdict = _compare(shape, *(fit if fit else (None, None)))
    options = _budget_options(shape.params, conv, heads)
    options = sorted(
        [o for o in options if o.depth != shape.depth] + [shape], key=lambda o: o.depth
    )
    return Suggestion(
        query=query,
        options=tuple(options),
        fitted=_fitted_option(shape.params, conv, heads),
        threshold_depth=_threshold_for_budget(shape.params, conv),
        model=shape,
        verdict=verdict,
        notes=_NOTES,
    )


def _for_model(name: str) -> Suggestion:
    key = name.strip().lower()
    if key not in KNOWN_MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}")
    m = KNOWN_MODELS[key]
    conv = _Conv(
        vocab=m.vocab,
        max_len=m.max_len,
        ffn_ratio=m.ffn_ratio,
        type_vocab=m.type_vocab,
        decoder=m.decoder_depth > 0,
        bias=m.bias,
        head=m.head,
    )
    shape = _option(m.depth, m.width, m.heads, conv, key)
    s = _for_shape(shape, conv, f"model {key}", None)  # other shapes: head size 64
    verdict = (
        f"{key} ({m.depth} layers, width {m.width}, {m.heads} heads, {_human(shape.params)} parameters; published {_human(m.published)}): "
        + s.verdict
    )
    if m.decoder_depth:
        verdict += (
            " (Encoder-decoder: depth is per stack and the budget holds both stacks, so the fit "
            "comparison is indicative only.)"
        )
    notes = s.notes + (f"{key}: {m.source}",)
    return Suggestion(s.query, s.options, s.fitted, s.threshold_depth, shape, verdict, notes)


# ----------------------------------------------------------------------------- plot


def save_regime_plot(suggestion: Suggestion, path: str) -> str:
    """Draw the regimes in the (width, depth) plane with the query's shapes and the known models.

    The threshold curve ``depth = log3(width)`` splits depth-efficient (below) from
    depth-inefficient (above); the fitted optimum ``depth = (ln width - 5.039) / 0.0555``
    is drawn too. Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [2 ** (k / 8) for k in range(8 * 4, 8 * 16 + 1)]  # 16 .. 65536
    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
    ax.plot(
        widths, [depth_threshold(w) for w in widths], "k-", label="threshold depth = log3(width)"
    )
    fit = [(w, _fit_depth(w)) for w in widths if _fit_depth(w) >= 1]
    ax.plot(
        [w for w, _ in fit],
        [d for _, d in fit],
        "b--",
        label="paper's fit: ln w = 5.039 + 0.0555 L",
    )
    ax.fill_between(
        widths, 0.8, [depth_threshold(w) for w in widths], color="0.9", label="depth-efficient"
    )
    for name, m in KNOWN_MODELS.items():
        ax.plot(m.width, m.depth, "o", color="tab:orange", ms=4)
        ax.annotate(name, (m.width, m.depth), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.plot(
        [o.width for o in suggestion.options],
        [o.depth for o in suggestion.options],
        "s",
        color="tab:green",
        ms=4,
        label=f"options: {suggestion.query}",
    )
    if suggestion.fitted is not None:
        ax.plot(
            suggestion.fitted.width,
            suggestion.fitted.depth,
            "*",
            color="tab:red",
            ms=11,
            label="fitted optimum",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width d_x")
    ax.set_ylabel("depth L")
    ax.set_title("Self-attention depth regimes (Levine et al., arXiv 2006.12467)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
