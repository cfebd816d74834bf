"""Candidate shapes and where they sit: ``Option``, ``Suggestion`` and the solvers behind them.

An ``Option`` is one (depth, width, heads) with its parameter count, its
threshold ``log3(width)``, its regime and the depth the fit pairs with its
width. The solvers find, for a parameter budget, the depth on the fitted curve
(``fitted_for_budget``), the depth at which depth equals ``log3(width)``
(``threshold_for_budget``), and the trainable shape of a given depth whose layers
fill the budget (``shape_for_budget``), or whose whole language model (embeddings and head included)
fills it (``shape_for_total``, what the ``depth`` recipe sweeps) (Levine et
al., arXiv 2006.12467).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from takeaways.depth.counting import Conventions, human_count, parameter_count
from takeaways.depth.theory import depth_threshold, fit_width

__all__ = [
    "Option",
    "Suggestion",
    "fitted_for_budget",
    "shape_for_budget",
    "shape_for_total",
    "threshold_for_budget",
]


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
                f"{o.depth:>6} {o.width:>7} {o.heads:>5} {human_count(o.params):>9} {o.threshold:>8.2f}"
                f" {fit:>8}  {o.regime:<18} {o.label}".rstrip()
            )
        return "\n".join(rows)


def fitted_for_budget(params: float, conv: Conventions) -> tuple[float, float] | None:
    """The point on the paper's fitted curve whose parameter count is ``params``.

    Solves ``conv.count(L, fit_width(L)) == params`` for a real depth ``L`` by bisection
    (the count grows with ``L`` along the fit).

    Args:
        params: the parameter budget, counted with ``conv``'s conventions.
        conv: the counting conventions (vocabulary, positions, FFN ratio, ...).

    Returns:
        ``(depth, width)`` as real numbers, or ``None`` when the fit asks for under one layer
        (or over 4096) at this budget.

    Example:
        >>> L, w = fitted_for_budget(1e12, Conventions(vocab=50257, max_len=2048, ffn_ratio=4))
        >>> round(L), round(w, -3)
        (95, 30000.0)
    """
    size = lambda L: conv.count(L, fit_width(L))  # noqa: E731  increasing in L
    lo, hi = 1.0, 4096.0
    if size(lo) > params or size(hi) < params:
        return None
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if size(mid) < params else (lo, mid)
    return lo, fit_width(lo)


def threshold_for_budget(params: float, conv: Conventions) -> float | None:
    """The real depth ``L`` at which this budget's width satisfies ``L == log3(width)``.

    At a fixed budget, deeper means narrower; shallower shapes than the returned depth are
    in the depth-efficient regime (Levine et al., arXiv 2006.12467).

    Args:
        params: the parameter budget, counted with ``conv``'s conventions.
        conv: the counting conventions.

    Returns:
        The depth (a real number), or ``None`` if no positive width fits the budget.

    Example:
        >>> round(threshold_for_budget(200_000, Conventions(vocab=0, max_len=0, ffn_ratio=4)), 2)
        3.81
    """
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


def shape_for_budget(budget: int, depth: int) -> tuple[int, int, int]:
    """The trainable shape of ``depth`` blocks whose layer parameters come closest to ``budget``.

    Layer parameters are ``parameter_count(depth, width, vocab=0, max_len=0)``: the blocks
    and the final norm, no embeddings. Widths step by 1 below 32, then by 2, by 4 from 64
    and by 8 from 128, searched within 0.7-1.3x of ``sqrt(budget / (12 depth))`` (the
    ``12 d^2`` per block dominates). Heads are about ``width / 32`` and divide the width.

    Args:
        budget: layer parameters to hold fixed, e.g. ``50_000``.
        depth: blocks, >= 1.

    Returns:
        ``(width, heads, layer_params)``; ``layer_params`` is the shape's exact count.

    Example:
        >>> shape_for_budget(200_000, 1)
        (128, 4, 198528)
    """
    layer = lambda w: parameter_count(depth, w, vocab=0, max_len=0)  # noqa: E731
    w0 = math.sqrt(budget / (12 * depth))  # 12 d^2 per block dominates
    step = 1 if w0 < 32 else (2 if w0 < 64 else (4 if w0 < 128 else 8))
    cands = [w for w in range(step, int(1.3 * w0) + 2 * step, step) if w >= 0.7 * w0]
    width = min(cands, key=lambda w: abs(layer(w) - budget))
    heads = max(1, width // 32)
    while width % heads:
        heads -= 1
    return width, heads, layer(width)


def shape_for_total(budget: int, depth: int, *, vocab: int, max_len: int) -> tuple[int, int, int]:
    """The shape of ``depth`` blocks whose whole language model comes closest to ``budget``.

    Counts everything a ``MaskedLM(TransformerEncoder(...))`` holds (``sweep.shape_lm``):
    token and position embeddings, the blocks, the final norm and the LM head (dense, norm,
    tied decoder with a bias per token), i.e. ``parameter_count(depth, width, vocab=vocab,
    max_len=max_len, head="mlm")``, which is exact for that model. The width is the integer
    nearest the real solution of that count, so the total is within half a width step of the
    budget (about ``1 / width`` of it; under 5% from width 20). Heads as ``shape_for_budget``.

    Args:
        budget: total parameters to hold fixed, e.g. ``100_000``.
        depth: blocks, >= 1.
        vocab: token-embedding rows (the tied decoder reuses them).
        max_len: learned position-embedding rows.

    Returns:
        ``(width, heads, total_params)``; ``total_params`` is the shape's exact count.

    Raises:
        ValueError: if even width 1 exceeds the budget.

    Example:
        >>> shape_for_total(100_000, 2, vocab=96, max_len=64)
        (60, 1, 101556)
    """
    conv = Conventions(vocab=vocab, max_len=max_len, ffn_ratio=4, head="mlm")
    w = conv.width_for(depth, budget)
    if w is None or w < 1:
        raise ValueError(f"no width >= 1 fits {budget:,} parameters at depth {depth}")
    total = lambda w: parameter_count(depth, w, vocab=vocab, max_len=max_len, head="mlm")  # noqa: E731
    width = min({max(1, math.floor(w)), math.ceil(w)}, key=lambda c: abs(total(c) - budget))
    heads = max(1, width // 32)
    while width % heads:
        heads -= 1
    return width, heads, total(width)
