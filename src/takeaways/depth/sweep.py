"""Training a depth sweep: a language model of a given shape, its data, and reading the sweep.

What the ``depth`` recipe trains at each (depth, width) of a fixed parameter budget
(Levine et al., arXiv 2006.12467): ``lm_task`` turns documents into next-token windows
(``"clm"``) or BERT-masked windows (``"mlm"``); ``shape_lm`` builds the
``TransformerEncoder`` + ``MaskedLM`` head of one shape for that objective; ``summarise_sweep``
reads the validation losses of one budget's sweep (best depth, where deeper stops helping
beyond the seed range, the threshold depth, the paper's fit). ``frequent_ids`` shrinks a
vocabulary to its most frequent ids (the rest become [UNK]), so that at small parameter budgets
the embedding does not eat the budget.

Example:
    >>> x, y = lm_task(tok, texts, 64, objective="clm")  # doctest: +SKIP
    >>> model = shape_lm(tok.vocab_size, width=46, depth=2, heads=2, max_len=64)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import torch

from takeaways import nn
from takeaways.depth.advisor import suggest_architecture
from takeaways.nn.mlm import GatheredMLM, masked_copies, pack_rows

__all__ = [
    "best_deeper",
    "frequent_ids",
    "lm_task",
    "shape_lm",
    "summarise_sweep",
    "tail_improvement",
]

Objective = Literal["clm", "mlm"]


def lm_task(
    tok: Any,
    texts: Iterable[str],
    seq_len: int,
    *,
    objective: Objective = "clm",
    max_rows: int | None = None,
    min_rows: int = 0,
    mask_rate: float = 0.15,
    seed: int = 0,
) -> tuple[Any, torch.Tensor]:
    """(inputs, targets) of a language-modelling task over consecutive document text.

    Args:
        tok: a ``takeaways.data.Tokenizer``; documents are joined by [SEP] (``pack_rows``).
        texts: the documents, in order.
        seq_len: tokens per input window.
        objective: ``"clm"``: inputs ``(R, seq_len)`` and their next tokens ``(R, seq_len)``;
            ``"mlm"``: ``masked_copies`` of the windows (BERT's 80/10/10 at ``mask_rate``).
        max_rows: keep only the first windows (``None``: all).
        min_rows: mlm only: draw enough independent maskings of the windows to reach this
            many rows (at least one); e.g. steps x batch size, so no masking repeats.
        seed: the mlm masks' seed.
    """
    if objective == "clm":
        rows = pack_rows(tok, texts, seq_len + 1)[:max_rows]  # one extra token: the last target
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
    rows = pack_rows(tok, texts, seq_len)[:max_rows]
    copies = max(1, math.ceil(min_rows / len(rows)))
    return masked_copies(tok, rows, copies, mask_rate, seed)


def frequent_ids(rows: torch.Tensor, size: int, *, unk_id: int) -> torch.Tensor:
    """A lookup ``old id -> new id`` keeping the ``size`` most frequent ids of ``rows``.

    The kept ids are renumbered ``0 .. size - 1`` by falling frequency (ties: lower id first);
    ``unk_id`` is always kept, and every other id maps to its new number. Apply it as
    ``lookup[rows]``.

    Args:
        rows: token ids ``(R, N)`` the frequencies are counted on (the training split).
        size: ids to keep, >= 2.
        unk_id: the id that absorbs the dropped ones.

    Returns:
        ``(max(rows.max(), unk_id) + 1,)`` long tensor with values in ``[0, size)``.
    """
    if size < 2:
        raise ValueError(f"size must be >= 2, got {size}")
    counts = torch.bincount(rows.flatten(), minlength=max(int(rows.max()), unk_id) + 1)
    counts[unk_id] = counts.max() + 1  # always kept
    order = sorted(range(len(counts)), key=lambda i: (-int(counts[i]), i))[:size]
    lookup = torch.full((len(counts),), -1, dtype=torch.long)
    lookup[order] = torch.arange(len(order))
    return torch.where(lookup < 0, lookup[unk_id], lookup)


def shape_lm(
    vocab: int, width: int, depth: int, heads: int, *, max_len: int, objective: Objective = "clm"
) -> torch.nn.Module:
    """A dropout-free ``TransformerEncoder`` of this shape with the ``MaskedLM`` head.

    ``"clm"`` uses the causal attention kernel and the MaskedLM head (dense + LN + tied decoder)
    as the LM head over every position; ``"mlm"`` dense attention, decoding only the masked
    positions (``GatheredMLM``). Dropout is 0: a sweep of under one pass has nothing to regularize.
    """
    enc = nn.TransformerEncoder(
        nn.EncoderConfig(
            vocab_size=vocab,
            dim=width,
            depth=depth,
            heads=heads,
            max_len=max_len,
            dropout=0.0,
            attention="causal" if objective == "clm" else "dense",
        )
    )
    mlm = nn.MaskedLM(enc)
    return mlm if objective == "clm" else GatheredMLM(mlm)


def summarise_sweep(rows: dict[int, dict], budget: int) -> dict[str, Any]:
    """Read one budget's sweep: ``rows[depth]`` holds ``val_loss`` (mean over seeds),
    ``val_loss_range`` (max - min over seeds) and ``width``.

    Returns the best depth and its width; ``stop_depth``, the first depth whose next deeper
    depth does not improve the loss by more than either's seed range (the deepest if every
    step helps); the depth where depth = log3(width) and the paper's fitted shape at this
    budget (``suggest_architecture``); the depth-1-minus-best gap and the larger seed range.
    """
    depths = sorted(rows)
    best = min(depths, key=lambda L: rows[L]["val_loss"])
    stop = depths[-1]
    for a, b in zip(depths, depths[1:]):
        noise = max(rows[a]["val_loss_range"], rows[b]["val_loss_range"])
        if rows[a]["val_loss"] - rows[b]["val_loss"] <= noise:
            stop = a
            break
    advice = suggest_architecture(params=budget, vocab=0, max_len=0)
    fit = advice.fitted
    return {
        "best_depth": best,
        "best_width": rows[best]["width"],
        "stop_depth": stop,
        "threshold_depth": advice.threshold_depth,
        "fit_depth": fit.depth if fit else None,
        "fit_width": fit.width if fit else None,
        "gap_vs_depth1": rows[depths[0]]["val_loss"] - rows[best]["val_loss"],
        "seed_range": max(rows[depths[0]]["val_loss_range"], rows[best]["val_loss_range"]),
    }


def best_deeper(rows: dict[int, dict]) -> int | None:
    """The depth past the shallowest with the lowest ``val_loss`` (None with one depth)."""
    depths = sorted(rows)
    return min(depths[1:], key=lambda L: rows[L]["val_loss"]) if len(depths) > 1 else None


def tail_improvement(curve: list[tuple[int, float]], tail: float) -> float:
    """The loss drop over the last ``tail`` of the steps over the drop since the first point.

    ``curve`` is ``[(step, loss), ...]`` ascending in step; the tail starts at the last point
    at or before ``(1 - tail) * last step``. nan when the curve has under three points or did
    not improve from its first point.
    """
    if len(curve) < 3:
        return math.nan
    end_step, end = curve[-1]
    start = max((p for p in curve if p[0] <= (1 - tail) * end_step), key=lambda p: p[0])
    total = curve[0][1] - end
    return (start[1] - end) / total if total > 0 else math.nan
