"""``suggest_architecture``: depth/width/heads options near a budget, a width, a depth or a known model.

Levine et al., arXiv 2006.12467. Each query (``params``, ``width``, ``depth``,
both, or ``model``) has its own builder below; all return a ``Suggestion``
whose ``table()`` the CLI prints.

Example:
    >>> s = suggest_architecture(model="gpt3-175b")
    >>> s.model.regime, s.fitted.depth < 96
    ('depth-inefficient', True)
"""

from __future__ import annotations

from takeaways.depth.counting import Conventions, human_count, parse_count
from takeaways.depth.presets import KNOWN_MODELS
from takeaways.depth.shapes import Option, Suggestion, fitted_for_budget, threshold_for_budget
from takeaways.depth.theory import (
    PAPER_DEPTHS,
    check_positive,
    depth_threshold,
    fit_depth,
    fit_width,
)

__all__ = ["suggest_architecture"]

_HEAD_DIM = 64  # head size the advisor assumes when heads are not given (BERT, GPT-2, GPT-3)
_NEAR = 0.15  # a shape within +-15% of the fitted depth is called "close to the fit"
# Candidate depths the advisor lists (plus the fitted and threshold depths of the query).
_DEPTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


_NOTES = (
    "threshold log3(width): Levine et al., arXiv 2006.12467 v1 abstract; authors' summary, KDnuggets 2020-07",
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
            check_positive(name, value, integer=True)
    for name, value in (("vocab", vocab), ("max_len", max_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    check_positive("ffn_ratio", ffn_ratio)
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
    conv = Conventions(vocab=vocab, max_len=max_len, ffn_ratio=int(ffn_ratio))
    if budget is not None:
        return _for_budget(budget, conv, heads, width=width, depth=depth)
    if width is not None and depth is not None:
        shape = _option(depth, width, heads or max(1, width // _HEAD_DIM), conv, "asked")
        return _for_shape(shape, conv, f"depth {depth}, width {width}", heads)
    if width is not None:
        return _for_width(width, conv, heads)
    return _for_depth(int(depth), conv, heads)  # type: ignore[arg-type]


def _fitted_option(params: float, conv: Conventions, heads: int | None) -> Option | None:
    fit = fitted_for_budget(params, conv)
    if fit is None:
        return None
    L = max(1, int(round(fit[0])))
    w, h = _round_width(conv.width_for(L, params) or fit[1], heads)
    return _option(L, w, h, conv, "fitted optimum")


def _budget_options(params: float, conv: Conventions, heads: int | None) -> list[Option]:
    fit = fitted_for_budget(params, conv)
    th = threshold_for_budget(params, conv)
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
    params: float, conv: Conventions, heads: int | None, *, width: int | None, depth: int | None
) -> Suggestion:
    min_w = max(8, heads or 1)
    if conv.count(1, min_w) > params:
        need = conv.count(1, min_w)
        raise ValueError(
            f"a budget of {human_count(params)} parameters is too small for one layer of width {min_w} "
            f"with a vocab of {conv.vocab} (that needs {human_count(need)}); raise params or lower vocab"
        )
    if depth is not None:
        raw = conv.width_for(depth, params)
        if raw is None or raw < min_w:
            raise ValueError(
                f"{human_count(params)} parameters cannot hold {depth} layers of width >= {min_w} "
                f"at vocab {conv.vocab}; use fewer layers or a bigger budget"
            )
        w, h = _round_width(raw, heads)
        shape = _option(depth, w, h, conv, "asked")
        return _for_shape(shape, conv, f"{human_count(params)} parameters at depth {depth}", heads)
    if width is not None:
        lo, hi = 0.0, 1e6
        if conv.count(1, width) > params:
            raise ValueError(
                f"one layer of width {width} already has {human_count(conv.count(1, width))} parameters "
                f"at vocab {conv.vocab}, more than {human_count(params)}; lower width or vocab"
            )
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if conv.count(mid, width) < params else (lo, mid)
        L = max(1, int(round(lo)))
        shape = _option(L, width, heads or max(1, width // _HEAD_DIM), conv, "asked")
        return _for_shape(shape, conv, f"{human_count(params)} parameters at width {width}", heads)
    options = _budget_options(params, conv, heads)
    fitted = _fitted_option(params, conv, heads)
    th = threshold_for_budget(params, conv)
    if fitted is None:
        verdict = (
            f"At {human_count(params)} parameters the paper's fit asks for less than one layer, so it does "
            "not apply; every depth listed is a guess the paper does not cover."
        )
    else:
        verdict = (
            f"At {human_count(params)} parameters the paper's fit puts the optimum near {fitted.depth} "
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
        query=f"params = {human_count(params)} (vocab {conv.vocab}, {conv.max_len} positions)",
        options=tuple(options),
        fitted=fitted,
        threshold_depth=th,
        model=None,
        verdict=verdict,
        notes=_NOTES,
    )


def _for_width(width: int, conv: Conventions, heads: int | None) -> Suggestion:
    h = heads or max(1, width // _HEAD_DIM)
    fit_L = fit_depth(width)
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
            f"({human_count(fitted.params)} parameters at vocab {conv.vocab})."
        )
    else:
        verdict += f" The paper's fit pairs width {width} with less than one layer ({fit_L:.1f})."
    return Suggestion(f"width = {width}", tuple(options), fitted, None, None, verdict, _NOTES)


def _for_depth(depth: int, conv: Conventions, heads: int | None) -> Suggestion:
    fit_w = fit_width(depth)
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
        f"depth {depth} with width about {fit_w:,.0f} ({human_count(fitted.params)} parameters at vocab "
        f"{conv.vocab})."
    )
    return Suggestion(f"depth = {depth}", tuple(options), fitted, None, None, verdict, _NOTES)


def _for_shape(shape: Option, conv: Conventions, query: str, heads: int | None) -> Suggestion:
    fit = fitted_for_budget(shape.params, conv)
    verdict = _compare(shape, *(fit if fit else (None, None)))
    options = _budget_options(shape.params, conv, heads)
    options = sorted(
        [o for o in options if o.depth != shape.depth] + [shape], key=lambda o: o.depth
    )
    return Suggestion(
        query=query,
        options=tuple(options),
        fitted=_fitted_option(shape.params, conv, heads),
        threshold_depth=threshold_for_budget(shape.params, conv),
        model=shape,
        verdict=verdict,
        notes=_NOTES,
    )


def _for_model(name: str) -> Suggestion:
    key = name.strip().lower()
    if key not in KNOWN_MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}")
    m = KNOWN_MODELS[key]
    conv = Conventions(
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
        f"{key} ({m.depth} layers, width {m.width}, {m.heads} heads, {human_count(shape.params)} parameters; published {human_count(m.published)}): "
        + s.verdict
    )
    if m.decoder_depth:
        verdict += (
            " (Encoder-decoder: depth is per stack and the budget holds both stacks, so the fit "
            "comparison is indicative only.)"
        )
    notes = s.notes + (f"{key}: {m.source}",)
    return Suggestion(s.query, s.options, s.fitted, s.threshold_depth, shape, verdict, notes)


def _round_width(width: float, heads: int | None) -> tuple[int, int]:
    """Round to a width that splits into heads: multiples of ``heads``, or of 64 (8 if tiny)."""
    if heads:
        unit = heads
    else:
        unit = _HEAD_DIM if width >= 2 * _HEAD_DIM else 8
    w = max(unit, int(round(width / unit)) * unit)
    return w, heads or max(1, w // _HEAD_DIM)


def _option(depth: int, width: int, heads: int, conv: Conventions, label: str = "") -> Option:
    th = depth_threshold(width)
    return Option(
        depth=depth,
        width=width,
        heads=heads,
        params=int(round(conv.count(depth, width))),
        threshold=th,
        regime="depth-efficient" if depth < th else "depth-inefficient",
        fit_depth=fit_depth(width),
        label=label,
    )


def _compare(shape: Option, fit_L: float | None, fit_w: float | None) -> str:
    where = (
        "below log3(width): the theory's depth-efficient regime, where a deeper network at this size "
        "would be worth far more width"
        if shape.regime == "depth-efficient"
        else "past log3(width): the depth-inefficient regime, where depth and width add about equally"
    )
    text = f"depth {shape.depth} at width {shape.width} is {where} (log3({shape.width}) = {shape.threshold:.2f})."
    if fit_L is None or fit_w is None:
        return text + " The paper's fit has no optimum of at least one layer at this size."
    ratio = shape.depth / fit_L
    if ratio > 1 + _NEAR:
        rel = "deeper than"
    elif ratio < 1 - _NEAR:
        rel = "shallower than"
    else:
        rel = "close to"
    text += (
        f" It is {rel} the paper's fitted optimum for its size, about {fit_L:.0f} layers"
        f" x width {fit_w:,.0f} ({shape.depth} / {fit_L:.1f} = {ratio:.2f})."
    )
    if not PAPER_DEPTHS[0] <= fit_L <= PAPER_DEPTHS[1]:
        text += (
            f" That optimum lies outside the depths the paper trained ({PAPER_DEPTHS[0]}-"
            f"{PAPER_DEPTHS[1]}), so it is an extrapolation."
        )
    return text
