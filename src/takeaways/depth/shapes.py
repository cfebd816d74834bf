"""Candidate shapes and where they sit: ``Option``, ``Suggestion`` and the solvers behind them.

An ``Option`` is one (depth, width, heads) with its parameter count, its
threshold ``log3(width)``, its regime and the depth the fit pairs with its
width. The solvers find, for a parameter budget, the depth on the fitted curve
and the depth at which depth equals ``log3(width)`` (Levine et al., arXiv
2006.12467).
"""

from __future__ import annotations

from dataclasses import dataclass

from takeaways.depth.counting import _Conv, _human
from takeaways.depth.theory import PAPER_DEPTHS, _fit_depth, _fit_width, depth_threshold

__all__ = ["Option", "Suggestion"]

_HEAD_DIM = 64  # head size the advisor assumes when heads are not given (BERT, GPT-2, GPT-3)
_NEAR = 0.15  # a shape within +-15% of the fitted depth is called "close to the fit"


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
