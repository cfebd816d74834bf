"""Masked-language-model pieces shared by recipes: packed rows, BERT's masking, gathered logits.

``pack_rows`` turns documents into fixed-length rows of one token stream, ``masked_copies``
draws static BERT masks over them (one independent draw per pass, BERT's duplication), and
``unigram_loss`` is the loss of predicting every masked token from its training frequency
alone: the plateau a small MLM sits on before it learns to use context. ``wiki_rows`` trains
a WordPiece vocabulary on ``wiki`` and packs both splits, ``mlm_sets`` masks them for
training and validation (with the unigram loss of the targets), and ``plateau_check`` is the
evidence check that a run's validation loss left that plateau by a stated margin.

``mask_tokens`` picks 15% of each row's positions as BERT does (arXiv 1810.04805, section
3.1); ``GatheredMLM`` wraps a ``MaskedLM`` so the vocabulary projection runs only at the
picked positions (BERT's ``masked_lm_positions`` gather), which is most of an MLM step's
cost saved when the vocabulary is large. ``gathered_logits_reference`` is the naive
all-positions path the fast one is tested against.

Example:
    >>> ids = torch.randint(5, 100, (2, 20))
    >>> inputs, positions, targets = mask_tokens(ids, vocab_size=100, mask_id=4,
    ...                                          special_ids=(0, 1, 2, 3, 4))
    >>> positions.shape, targets.shape
    (torch.Size([2, 3]), torch.Size([2, 3]))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from takeaways import data
from takeaways.nn.transformer import MaskedLM
from takeaways.results import Check
from takeaways.train import IGNORE_INDEX

__all__ = [
    "GatheredMLM",
    "gathered_logits",
    "gathered_logits_reference",
    "mask_tokens",
    "masked_copies",
    "mlm_sets",
    "pack_rows",
    "plateau_check",
    "unigram_loss",
    "wiki_rows",
]


def mask_tokens(
    ids: Tensor,
    *,
    vocab_size: int,
    mask_id: int,
    special_ids: tuple[int, ...],
    rate: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """BERT's masking (arXiv 1810.04805, section 3.1): pick ``rate`` of the positions of each row.

    Of the picked positions, 80% become ``[MASK]``, 10% a random non-special token and
    10% stay as they are. Special tokens are never picked. Each row gets the same
    number ``K = max(1, round(rate * N))`` of positions. A row with fewer non-special
    tokens than K pads its positions with target -100.

    Args:
        ids: ``(R, N)`` token ids.
        vocab_size: ids run over ``[0, vocab_size)``; random replacements avoid ``special_ids``.
        mask_id: id of ``[MASK]``.
        special_ids: ids that are never masked (e.g. ``tokenizer.special_ids``).
        rate: fraction of positions predicted per row, in (0, 1].
        generator: torch RNG for reproducible masks.

    Returns:
        ``inputs (R, N)``: ids with the replacements; ``positions (R, K)``: predicted
        positions, ascending; ``targets (R, K)``: original ids there (-100 = padding).
    """
    if ids.dim() != 2:
        raise ValueError(f"ids must be 2-D (R, N), got shape {tuple(ids.shape)}")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    R, N = ids.shape
    K = max(1, round(rate * N))
    special = torch.tensor(sorted(special_ids), dtype=ids.dtype)
    normal = ~torch.isin(ids, special)  # (R, N)
    scores = torch.rand(R, N, generator=generator)
    scores[~normal] = 2.0  # specials sort last: picked only to pad short rows
    positions = scores.argsort(dim=1)[:, :K].sort(dim=1).values  # (R, K)
    valid = normal.gather(1, positions)  # (R, K)
    targets = ids.gather(1, positions).masked_fill(~valid, IGNORE_INDEX)  # (R, K)

    choice = torch.rand(R, K, generator=generator)  # < 0.8 mask, < 0.9 random, else keep
    pool = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])
    random_ids = pool[torch.randint(len(pool), (R, K), generator=generator)]
    current = ids.gather(1, positions)
    new = torch.where(choice < 0.8, torch.full_like(current, mask_id), current)
    new = torch.where((choice >= 0.8) & (choice < 0.9), random_ids, new)
    new = torch.where(valid, new, current)
    inputs = ids.clone().scatter_(1, positions, new)
    return inputs, positions, targets


def gathered_logits(
    mlm: MaskedLM, input_ids: Tensor, positions: Tensor, attention_mask: Tensor | None = None
) -> Tensor:
    """Vocabulary logits of a ``MaskedLM`` at ``positions`` only: ``(B, N) -> (B, K, V)``."""
    h = mlm.encoder(input_ids, attention_mask=attention_mask)  # (B, N, C)
    idx = positions.unsqueeze(-1).expand(-1, -1, h.size(-1))  # (B, K, C)
    return mlm.decoder(mlm.transform(h.gather(1, idx)))  # (B, K, V)


def gathered_logits_reference(
    mlm: MaskedLM, input_ids: Tensor, positions: Tensor, attention_mask: Tensor | None = None
) -> Tensor:
    """The naive path: logits at every position, then pick ``positions`` (same result)."""
    logits = mlm(input_ids, attention_mask=attention_mask)  # (B, N, V)
    return logits.gather(1, positions.unsqueeze(-1).expand(-1, -1, logits.size(-1)))


class GatheredMLM(torch.nn.Module):
    """Thin module around ``gathered_logits`` so ``fit()`` can call ``model(input_ids=, positions=)``."""

    def __init__(self, mlm: MaskedLM) -> None:
        super().__init__()
        self.mlm = mlm

    def forward(
        self, input_ids: Tensor, positions: Tensor, attention_mask: Tensor | None = None
    ) -> Tensor:
        return gathered_logits(self.mlm, input_ids, positions, attention_mask)  # (B, K, V)


def pack_rows(tok: Any, texts: Iterable[str], seq_len: int) -> Tensor:
    """Documents -> one id stream (documents joined by [SEP]) -> ``(R, seq_len)`` rows.

    Args:
        tok: a ``takeaways.data.Tokenizer`` (its ``backend`` encodes without special tokens).
        texts: the documents, in order; the stream's tail shorter than a row is dropped.
        seq_len: tokens per row.
    """
    tok.backend.no_truncation()
    stream: list[int] = []
    for enc in tok.backend.encode_batch([str(t) for t in texts], add_special_tokens=False):
        stream.extend(enc.ids)
        stream.append(tok.sep_id)
    n = len(stream) // seq_len
    return torch.tensor(stream[: n * seq_len], dtype=torch.long).view(n, seq_len)


def masked_copies(
    tok: Any, rows: Tensor, copies: int, rate: float, seed: int
) -> tuple[dict[str, Tensor], Tensor]:
    """``copies`` independent ``mask_tokens`` draws over ``rows``, stacked (static masks).

    Returns:
        ``({"input_ids": (copies * R, N), "positions": (copies * R, K)}, targets (copies * R, K))``,
        ready for ``fit(GatheredMLM(...), ...)``.
    """
    g = torch.Generator().manual_seed(seed)
    parts = [
        mask_tokens(
            rows,
            vocab_size=tok.vocab_size,
            mask_id=tok.mask_id,
            special_ids=tok.special_ids,
            rate=rate,
            generator=g,
        )
        for _ in range(copies)
    ]
    inputs, positions, targets = (torch.cat(t) for t in zip(*parts))
    return {"input_ids": inputs, "positions": positions}, targets


def unigram_loss(train_targets: Tensor, val_targets: Tensor, vocab: int) -> float:
    """Cross-entropy of the training targets' token frequencies (add-1/2) on the validation targets.

    Targets equal to ``IGNORE_INDEX`` are left out on both sides.
    """
    y = train_targets[train_targets != IGNORE_INDEX]
    p = (torch.bincount(y, minlength=vocab).double() + 0.5) / (len(y) + 0.5 * vocab)
    return float(-p[val_targets[val_targets != IGNORE_INDEX]].log().mean())


def wiki_rows(
    vocab: int, seq_len: int, eval_rows: int | None = None
) -> tuple[data.Tokenizer, Tensor, Tensor]:
    """A WordPiece tokenizer trained on ``wiki``'s training split, and both splits as packed rows.

    Returns:
        ``(tok, train_rows (R, seq_len), val_rows (<= eval_rows, seq_len))``; ``eval_rows`` None
        keeps every test row.
    """
    wiki = data.load("wiki")
    tok = data.train_wordpiece(wiki.train.x, vocab_size=vocab)
    train_rows = pack_rows(tok, wiki.train.x, seq_len)
    return tok, train_rows, pack_rows(tok, wiki.test.x, seq_len)[:eval_rows]


def copies_for(samples: int, rows: int) -> int:
    """Static-mask copies of ``rows`` rows needed to feed ``samples`` training samples (>= 1)."""
    return max(1, math.ceil(samples / rows))


def mlm_sets(
    tok: Any, train_rows: Tensor, val_rows: Tensor, *, samples: int, rate: float, seed: int
) -> tuple[tuple[dict[str, Tensor], Tensor], tuple[dict[str, Tensor], Tensor], float]:
    """Masked training and validation sets and the unigram loss of their targets.

    The training rows get ``copies_for(samples, len(train_rows))`` mask draws from ``seed``,
    the validation rows one draw from ``seed + 10_000``.

    Returns:
        ``(train_set, val_set, unigram)``, the sets as ``masked_copies`` returns them.
    """
    copies = copies_for(samples, len(train_rows))
    train_set = masked_copies(tok, train_rows, copies, rate, seed)
    val_set = masked_copies(tok, val_rows, 1, rate, seed + 10_000)
    return train_set, val_set, unigram_loss(train_set[1], val_set[1], tok.vocab_size)


def plateau_check(
    name: str, val_loss: float, unigram: float, margin: float, detail: str = ""
) -> Check:
    """The check that a run left the unigram plateau: ``unigram - val_loss >= margin`` nats.

    Until it does, an MLM predicts from token frequencies alone, and anything compared
    downstream compares untrained encoders. ``detail`` defaults to both losses.
    """
    detail = detail or f"val loss {val_loss:.4f} vs unigram {unigram:.4f}"
    return Check.that(name, unigram - val_loss, ">=", margin, detail)
