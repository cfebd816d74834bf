"""Synthetic tasks generated offline and seeded: the passkey (needle-in-a-haystack) task.

``needle_task`` makes sequences whose label depends on two tokens up to the whole length
apart, the long-range case BigBird (arXiv 2007.14062) and clustered attention (arXiv
2007.04825) are meant for.

Example:
    >>> x, y = needle_task(4, 512, values=8, seed=0)
    >>> x["input_ids"].shape, y.shape
    (torch.Size([4, 512]), torch.Size([4]))
"""

from __future__ import annotations

import torch

__all__ = ["NEEDLE_CLS", "NEEDLE_MARK", "NEEDLE_PAD", "needle_task", "needle_vocab_size"]

NEEDLE_PAD, NEEDLE_CLS, NEEDLE_MARK = 0, 1, 2  # token ids; values follow, then filler symbols


def needle_vocab_size(values: int, filler: int) -> int:
    """Token ids ``needle_task`` uses: [PAD], [CLS], marker, ``values`` values, ``filler`` fillers."""
    return 3 + values + filler


def needle_task(
    n: int,
    seq_len: int,
    *,
    values: int = 8,
    filler: int = 1,
    min_len: int | None = None,
    seed: int = 0,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``n`` passkey sequences: ``{"input_ids", "attention_mask"}`` ``(n, seq_len)`` and labels.

    Token ids: 0 [PAD], 1 [CLS] (position 0), 2 marker, ``3 .. 3+values-1`` values, then
    ``filler`` filler symbols (vocabulary ``needle_vocab_size(values, filler)``). Each
    sequence has a real length drawn uniformly from ``[min_len, seq_len]`` (all ``seq_len``
    when ``min_len`` is None), [PAD] after it; the marker sits uniformly in
    ``[1, length - 2]``, its value right after it. A classifier reading [CLS] must find the
    marker anywhere in the sequence; chance is ``1 / values``.

    Args:
        n: sequences.
        seq_len: tokens per sequence, [CLS] included (>= 3).
        values: classes (>= 2).
        filler: distinct filler symbols (1: a uniform haystack, as in passkey tests).
        min_len: shortest real length, or None for all ``seq_len``.
        seed: the generator's seed; the same arguments give the same tensors.

    Returns:
        ``({"input_ids": long (n, seq_len), "attention_mask": long (n, seq_len)}, labels)``
        with labels long ``(n,)`` in ``[0, values)``.

    Raises:
        ValueError: for ``n < 1``, ``seq_len < 3``, ``values < 2`` or ``filler < 1``.
    """
    if n < 1 or seq_len < 3 or values < 2 or filler < 1:
        raise ValueError(
            f"needle_task needs n >= 1, seq_len >= 3, values >= 2 and filler >= 1; got n={n}, "
            f"seq_len={seq_len}, values={values}, filler={filler}"
        )
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3 + values, 3 + values + filler, (n, seq_len), generator=g)
    ids[:, 0] = NEEDLE_CLS
    low = seq_len if min_len is None else max(3, min(min_len, seq_len))
    length = torch.randint(low, seq_len + 1, (n,), generator=g)  # (n,)
    mask = torch.arange(seq_len)[None, :] < length[:, None]  # (n, seq_len)
    ids = ids.masked_fill(~mask, NEEDLE_PAD)
    pos = 1 + (torch.rand(n, generator=g) * (length - 2)).long()  # uniform in [1, length-2]
    labels = torch.randint(0, values, (n,), generator=g)
    rows = torch.arange(n)
    ids[rows, pos] = NEEDLE_MARK
    ids[rows, pos + 1] = 3 + labels
    return {"input_ids": ids, "attention_mask": mask.long()}, labels
