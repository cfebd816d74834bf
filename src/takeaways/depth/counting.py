"""Parameter counts of standard transformers, and parsing of counts such as "350M".

The block is BERT's / GPT-2's with biases: ``(4 + 2 r) d^2 + (9 + r) d`` weights
per layer plus two LayerNorms (``r`` = FFN ratio), exact for
``takeaways.nn.TransformerEncoder`` and the released BERT, GPT-2 and T5
checkpoints (T5 within 0.001%). ``Conventions`` holds one query's counting
conventions and solves the count for a width.

Example:
    >>> parameter_count(12, 768, vocab=30522, type_vocab=2, head="pooler")  # BERT-base
    109482240
    >>> parse_count("1.3B")
    1300000000.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from takeaways.depth.theory import check_positive

__all__ = ["Conventions", "human_count", "parameter_count", "parse_count"]

Head = Literal["none", "pooler", "mlm"]


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
    check_positive("depth", depth, integer=True)
    check_positive("width", width, integer=True)
    for name, value in (("vocab", vocab), ("max_len", max_len), ("type_vocab", type_vocab)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if isinstance(decoder_depth, bool) or not isinstance(decoder_depth, int) or decoder_depth < 0:
        raise ValueError(f"decoder_depth must be an int >= 0, got {decoder_depth!r}")
    check_positive("ffn_ratio", ffn_ratio)
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


def human_count(n: float) -> str:
    """A count in three significant digits with a suffix: ``human_count(1.3e9) == "1.3B"``."""
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
        return check_positive("params", text)
    if not isinstance(text, str):
        raise TypeError(f"params must be a number or a string like '350M', got {text!r:.40}")
    # a sign is read so that "-5M" is told it must be positive, not that it is unreadable
    m = re.fullmatch(
        r"\s*([+-]?[0-9][0-9_]*\.?[0-9_]*(?:e[+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*", text
    )
    if not m:
        raise ValueError(f"cannot read params {text!r}; write e.g. 350M, 1.3B, 1T or 110e6")
    return check_positive(
        "params", float(m.group(1).replace("_", "")) * _SUFFIX[m.group(2).upper()]
    )


@dataclass(frozen=True)
class Conventions:
    """Counting conventions of a query: vocabulary, positions, FFN ratio, encoder-decoder.

    ``count(depth, width)`` is ``parameter_count`` on real numbers under these conventions
    (an encoder-decoder gets a decoder as deep as the encoder); ``width_for(depth, params)``
    solves it for the width. The advisor's solvers work on these.

    Example:
        >>> conv = Conventions(vocab=0, max_len=0, ffn_ratio=4)
        >>> conv.count(2, 64) == parameter_count(2, 64, vocab=0, max_len=0)
        True
        >>> round(conv.width_for(2, conv.count(2, 64)), 6)
        64.0
    """

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
