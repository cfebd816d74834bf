"""Tasks generated offline and seeded: the passkey task, associative recall and the
marked-review document.

``needle_task`` makes sequences whose label depends on two tokens up to the whole length
apart, the long-range case BigBird (arXiv 2007.14062) and clustered attention (arXiv
2007.04825) are meant for. ``recall_task`` is that case with no global read-out: a key
marker and its value sit at one random place, the question at another, so the answer must
travel far to where it is read (its docstring says what each part of a sparse pattern can
do). ``marked_review_task`` builds long documents from real text: many reviews in a row,
one of them wrapped in markers at a uniformly random position, the label being that
review's sentiment.

Example:
    >>> x, y = needle_task(4, 512, values=8, seed=0)
    >>> x["input_ids"].shape, y.shape
    (torch.Size([4, 512]), torch.Size([4]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

if TYPE_CHECKING:
    from takeaways.data.tokenize import Tokenizer

__all__ = [
    "RECALL_KEY",
    "RECALL_QUERY",
    "Recall",
    "recall_task",
    "recall_vocab_size",
    "recall_window",
    "NEEDLE_CLS",
    "NEEDLE_MARK",
    "NEEDLE_PAD",
    "MarkedDocs",
    "marked_review_task",
    "needle_task",
    "needle_vocab_size",
]

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


# ----------------------------------------------------------------------------- recall

RECALL_KEY, RECALL_QUERY = 1, 2  # token ids; 0 is unused ([PAD]), values start at 3


def recall_vocab_size(values: int, filler: int = 0) -> int:
    """Token ids ``recall_task`` uses: [PAD], key, query, ``values`` values, ``filler`` fillers."""
    return 3 + values + filler


class Recall(NamedTuple):
    """What ``recall_task`` returns; ``key``/``query`` are the markers' token indices."""

    inputs: dict[str, torch.Tensor]  # input_ids, attention_mask: long (n, seq_len), no padding
    labels: torch.Tensor  # long (n,): the value after the key marker, in [0, values)
    key: torch.Tensor  # long (n,): index of the key marker (its value is at key + 1)
    query: torch.Tensor  # long (n,): index of the query marker, where the answer is read


def recall_task(
    n: int,
    seq_len: int,
    *,
    values: int = 16,
    filler: int = 16,
    value_rate: float = 0.0,
    edge: int = 0,
    seed: int = 0,
) -> Recall:
    """``n`` recall sequences: which value follows the key marker? Asked far away, at the query.

    Haystack tokens are filler symbols, each a value token instead with probability
    ``value_rate``; then one key marker goes at a uniform index ``p`` in ``[edge, seq_len -
    edge - 2]`` with its value (the label) at ``p + 1``, and one query marker at a uniform
    index ``q`` in ``[edge, seq_len - edge - 1]`` other than ``p, p + 1``. A model reads its
    answer at ``q``. With ``edge = block_size``, no marker or answer touches BigBird's global
    blocks (the first and last block), so:

    - the answer must travel ``|q - p|`` tokens (uniform over the sequence, a third of it on
      average) to a query that is not global: a sliding window moves it one window per
      layer; global or random blocks move it anywhere in one or two hops;
    - a dense model cut to ``keep`` tokens around the query (``recall_window``) sees the key
      with probability ``~keep / seq_len`` and otherwise guesses (chance ``1 / values``);
    - with ``value_rate > 0`` the answer's token also occurs as a distractor, and only its
      neighbour (the key marker) tells it apart: a binding of two adjacent tokens that global
      tokens alone cannot make (they see both, not which follows which). Small models learn
      that binding slowly (an induction-style circuit); ``value_rate = 0`` keeps the value
      unique.

    Compared with the passkey task (``needle_task``: read at [CLS], which sits in a global
    block and so sees every token in every layer), no read-out is global here.

    Args:
        n: sequences.
        seq_len: tokens per sequence (>= ``2 * edge + 3``).
        values: classes (>= 2); value token ``3 + i`` is label ``i``.
        filler: filler symbols, never an answer (0: the haystack is all value tokens).
        value_rate: probability that a haystack token is a value token (ignored, 1, when
            ``filler = 0``).
        edge: tokens at each end that hold no marker and no answer.
        seed: the generator's seed; the same arguments give the same tensors.

    Returns:
        ``Recall(inputs, labels, key, query)``; vocabulary ``recall_vocab_size(values, filler)``.

    Raises:
        ValueError: for ``n < 1``, ``values < 2``, ``filler < 0``, ``edge < 0``, a
            ``value_rate`` outside [0, 1] or a ``seq_len`` too short for the edges and markers.

    Example:
        >>> r = recall_task(4, 2048, values=16, edge=64, seed=0)
        >>> ids = r.inputs["input_ids"]
        >>> bool((ids[torch.arange(4), r.key + 1] == 3 + r.labels).all())
        True
    """
    if n < 1 or values < 2 or filler < 0 or edge < 0 or not 0.0 <= value_rate <= 1.0:
        raise ValueError(
            f"recall_task needs n >= 1, values >= 2, filler >= 0, edge >= 0 and value_rate in "
            f"[0, 1]; got n={n}, values={values}, filler={filler}, edge={edge}, "
            f"value_rate={value_rate}"
        )
    if seq_len < 2 * edge + 3:
        raise ValueError(
            f"seq_len {seq_len} is too short for edge {edge}: the key, its value and the "
            f"query must fit between the edges; use seq_len >= {2 * edge + 3}"
        )
    g = torch.Generator().manual_seed(seed)
    hay_values = torch.randint(3, 3 + values, (n, seq_len), generator=g)  # (n, seq_len)
    hay_filler = torch.randint(3 + values, 3 + values + max(filler, 1), (n, seq_len), generator=g)
    is_value = torch.rand(n, seq_len, generator=g) < (value_rate if filler else 1.0)
    ids = torch.where(is_value, hay_values, hay_filler)  # (n, seq_len)
    span = seq_len - 2 * edge  # indices the markers may use
    key = edge + torch.randint(0, span - 1, (n,), generator=g)  # value at key + 1 <= end
    # The query: uniform over the span's other span - 2 indices (skip the key and its value).
    slot = torch.randint(0, span - 2, (n,), generator=g)
    query = edge + slot + 2 * (edge + slot >= key).long()
    labels = torch.randint(0, values, (n,), generator=g)
    rows = torch.arange(n)
    ids[rows, key] = RECALL_KEY
    ids[rows, key + 1] = 3 + labels
    ids[rows, query] = RECALL_QUERY
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    return Recall(inputs, labels, key, query)


def recall_window(task: Recall, keep: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Cut every sequence to the ``keep`` tokens around its query, keeping true positions.

    The most generous cut a ``keep``-token model can get: centred on the query (shifted
    inwards at the ends), with ``positions`` ``(n, keep)`` holding each kept token's index in
    the full sequence, so the model's position table is used as at full length.

    Returns:
        ``(inputs, labels)`` with ``input_ids``, ``attention_mask`` and ``positions``, all
        ``(n, keep)``.
    """
    ids = task.inputs["input_ids"]
    n, seq_len = ids.shape
    if not 1 <= keep <= seq_len:
        raise ValueError(f"keep must be in [1, {seq_len}], got {keep}")
    start = (task.query - keep // 2).clamp(0, seq_len - keep)  # (n,)
    positions = start[:, None] + torch.arange(keep)[None, :]  # (n, keep)
    cut = ids.gather(1, positions)
    inputs = {"input_ids": cut, "attention_mask": torch.ones_like(cut), "positions": positions}
    return inputs, task.labels


# ----------------------------------------------------------------------------- marked review


class MarkedDocs(NamedTuple):
    """What ``marked_review_task`` returns; ``start``/``end`` bound the marked span."""

    inputs: dict[str, torch.Tensor]  # input_ids, attention_mask: long (n, length), no padding
    labels: torch.Tensor  # long (n,): the marked review's label
    start: torch.Tensor  # long (n,): token index of the opening marker
    end: torch.Tensor  # long (n,): token index just after the closing marker
    review: torch.Tensor  # long (n,): index into ``texts`` of the marked review


def marked_review_task(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    tokenizer: Tokenizer,
    *,
    n: int,
    length: int,
    edge: int = 64,
    max_review_tokens: int = 48,
    seed: int = 0,
) -> MarkedDocs:
    """``n`` documents of ``length`` tokens made of real reviews; one is marked, it is the label.

    Each document is ``[CLS]``, then reviews each followed by ``[SEP]``, then a final
    ``[SEP]``; exactly ``length`` tokens, no padding. One review, drawn class-balanced (its
    class uniform, then a review of that class), is wrapped as ``[MASK] review [MASK]
    [SEP]`` (``[MASK]`` never comes out of tokenizing plain text, so the marker cannot occur
    by chance); its opening marker sits at a token index drawn uniformly from ``[edge,
    length - edge - span]``, so never in the first or last ``edge`` tokens (BigBird's global
    blocks when ``edge`` is the block size). Everything else is distractor reviews drawn
    uniformly from ``texts`` (their labels are whatever they are), the one before the span
    and the one at the end cut where the tokens run out. The label is the marked review's.

    Args:
        texts: the review pool (e.g. ``load("reviews").train.x``).
        labels: ``(len(texts),)`` integer labels.
        tokenizer: a WordPiece ``Tokenizer`` (``minilm_tokenizer()``).
        n: documents.
        length: tokens per document (>= ``2 * edge + max_review_tokens + 4``).
        edge: tokens at each end the marked span never touches.
        max_review_tokens: the marked review is cut to this many tokens (distractors are not).
        seed: the generator's seed; the same arguments give the same documents.

    Returns:
        ``MarkedDocs(inputs, labels, start, end, review)``.

    Raises:
        ValueError: for mismatched ``texts``/``labels``, an empty class, ``n < 1`` or a
            ``length`` too short for the edges and the span.

    Example:
        >>> reviews = load("reviews")
        >>> docs = marked_review_task(reviews.train.x, reviews.train.y, minilm_tokenizer(),
        ...                           n=8, length=2048, seed=0)
        >>> docs.inputs["input_ids"].shape, (docs.start >= 512).float().mean()
    """
    y = np.asarray(labels, dtype=np.int64)
    if len(texts) != len(y) or len(y) < 2:
        raise ValueError(f"need >= 2 texts and one label each; got {len(texts)} and {len(y)}")
    if n < 1 or edge < 1 or max_review_tokens < 1:
        raise ValueError(
            f"need n, edge, max_review_tokens >= 1; got {n}, {edge}, {max_review_tokens}"
        )
    need = 2 * edge + max_review_tokens + 4
    if length < need:
        raise ValueError(
            f"length {length} is too short: the marked span ({max_review_tokens} + 3 tokens) "
            f"must fit between the {edge}-token edges; use length >= {need}"
        )
    classes = np.unique(y)
    tokenizer.backend.no_truncation()  # whole reviews; ``Tokenizer.encode`` sets its own limit
    rows = [e.ids[1:-1] for e in tokenizer.backend.encode_batch([str(t) for t in texts])]
    sep, mark = tokenizer.sep_id, tokenizer.mask_id
    by_class = [np.flatnonzero(y == c) for c in classes]
    rng = np.random.default_rng(seed)

    def stream(count: int, avoid: int) -> list[int]:
        """``count`` tokens of distractor reviews, each followed by [SEP]."""
        out: list[int] = []
        while len(out) < count:
            i = int(rng.integers(len(rows)))
            if i != avoid:
                out += rows[i] + [sep]
        return out[:count]

    ids = np.empty((n, length), dtype=np.int64)
    start = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    review = np.empty(n, dtype=np.int64)
    for d in range(n):
        pool = by_class[int(rng.integers(len(classes)))]
        r = int(pool[rng.integers(len(pool))])
        span = [mark] + rows[r][:max_review_tokens] + [mark, sep]
        s = int(rng.integers(edge, length - edge - len(span) + 1))  # uniform, both ends in
        tail = length - s - len(span) - 1  # tokens between the span and the final [SEP]
        doc = [tokenizer.cls_id] + stream(s - 1, r) + span + stream(tail, r) + [sep]
        ids[d], start[d], end[d], review[d] = doc, s, s + len(span) - 1, r
    return MarkedDocs(
        {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.ones(n, length, dtype=torch.long),
        },
        torch.from_numpy(y[review]),
        torch.from_numpy(start),
        torch.from_numpy(end),
        torch.from_numpy(review),
    )
