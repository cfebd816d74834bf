"""MPNet's permutation collator: permuted inputs, [M] tokens with position compensation.

MPNet (Song et al., arXiv 2004.09297) predicts the last ``P`` tokens of a random
permutation of each sequence. As in the authors' fairseq code
(``MaskedDataset.collater``):

- ``P = round(T * pred_prob)`` from the padded batch length ``T``, the same for every row;
- each row gets its own random permutation (``whole_word=True``: whole words, i.e. a
  token with its ``##`` continuations, move together, as in ``make_span_perm``);
- the last ``P`` tokens in permuted order are predicted; their inputs ``M`` are 80%
  ``[MASK]``, 10% a random non-special token and 10% unchanged;
- ``objective="mpnet"``: ``input_ids = [permuted (T); M (P); M (P)]`` with positions
  ``[perm; perm[-P:]; perm[-P:]]``. The first ``M`` copy joins the content stream (so every
  token sees all ``T`` positions: position compensation), the second is the query stream;
- ``objective="plm"``: ``[permuted (T); Q (P)]``: XLNet's PLM, no [M] in the content stream,
  and the query stream ``Q`` is pure ``[MASK]`` (no 80/10/10: a query input that were its own
  target would leak it; the official MPNet code's PLM does the same);
- ``objective="mlm"``: ``[permuted[:-P] (T - P); M (P)]``: BERT's MLM of the *same* chosen
  positions. With full attention and true positions, the order of the tokens does not change
  the result, so this is BERT masking in place.

Padding and special tokens are never predicted: they get the lowest permutation keys, so
they land in the non-predicted head of every row, and only real, non-special tokens fill
the predicted tail. A row with fewer such tokens than ``P`` (a short row in a padded batch)
fills the rest of its tail with padding/specials whose targets are -100 (nothing to learn);
the [M] copies of padding are marked as padding in ``attention_mask``, so no row attends
to them.

The output is plain tensors: ``(inputs, targets)`` with ``inputs`` a dict of ``(B, ...)``
tensors that ``takeaways.train.fit`` slices by row and passes to ``MPNetPretrainer`` as
keywords, and ``targets`` ``(B, P)`` (-100 = nothing to predict).

Example:
    >>> collate = MPNetCollator(tok, objective="mpnet", seed=0)
    >>> inputs, targets = collate(ids)  # ids (B, T) from tok, padded with tok.pad_id
    >>> sorted(inputs), targets.shape
    (['attention_mask', 'input_ids', 'positions', 'pred_size'], torch.Size([B, P]))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from takeaways.train import IGNORE_INDEX

__all__ = ["OBJECTIVES", "MPNetCollator", "permute_and_mask"]

OBJECTIVES = ("mpnet", "plm", "mlm")


def _min_length(pred_prob: float) -> int:
    """Shortest T with ``round(T * pred_prob) >= 1``."""
    T = 1
    while round(T * pred_prob) < 1:
        T += 1
    return T


def permute_and_mask(
    ids: Tensor,
    *,
    objective: str = "mpnet",
    vocab_size: int,
    mask_id: int,
    special_ids: tuple[int, ...],
    attention_mask: Tensor | None = None,
    pad_id: int | None = None,
    pred_prob: float = 0.15,
    mask_prob: float = 0.8,
    rand_prob: float = 0.1,
    continuation: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """Permute each row, pick the last ``P`` for prediction and build the objective's inputs.

    Args:
        ids: ``(B, T)`` token ids, padded to one length.
        objective: ``"mpnet"``, ``"plm"`` or ``"mlm"`` (see the module docstring).
        vocab_size: ids run over ``[0, vocab_size)``; random replacements avoid ``special_ids``.
        mask_id: id of ``[MASK]``.
        special_ids: ids never predicted (pad, cls, sep, ...).
        attention_mask: ``(B, T)`` nonzero = real token; default ``ids != pad_id`` (or all real).
        pad_id: padding id, used only when ``attention_mask`` is None.
        pred_prob: share of ``T`` predicted per row: ``P = round(T * pred_prob)``.
        mask_prob, rand_prob: shares of the predicted inputs that become ``[MASK]`` / a random
            token; the rest (``1 - mask_prob - rand_prob``) keep their token. Not for plm,
            whose query inputs are all ``[MASK]``.
        continuation: bool ``(vocab_size,)``, True for ``##`` word pieces: permute whole words.
        generator: torch RNG for reproducible permutations and corruption.

    Returns:
        ``inputs``: ``input_ids (B, L)``, ``positions (B, L)`` (true position of each input),
        ``attention_mask (B, L)`` (1 = real), ``pred_size (B,)`` (``P`` on every row), with
        ``L`` = ``T + 2P`` (mpnet), ``T + P`` (plm) or ``T`` (mlm); ``targets (B, P)``: the
        original ids of the predicted tail, -100 where it holds padding or a special token.

    Raises:
        ValueError: for an unknown objective, a wrong shape, bad probabilities, or sequences
            too short for one prediction.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    if ids.dim() != 2 or ids.dtype.is_floating_point:
        raise ValueError(
            f"ids must be an integer tensor (B, T), got {tuple(ids.shape)} {ids.dtype}"
        )
    if not (0.0 < pred_prob < 1.0 and mask_prob >= 0 and rand_prob >= 0):
        raise ValueError("pred_prob must be in (0, 1) and mask_prob, rand_prob >= 0")
    if mask_prob + rand_prob > 1.0 + 1e-9:
        raise ValueError(f"mask_prob + rand_prob must be <= 1, got {mask_prob + rand_prob}")
    B, T = ids.shape
    P = round(T * pred_prob)
    if P < 1 or P >= T:
        raise ValueError(
            f"sequences of length {T} give round({T} * pred_prob={pred_prob}) = {P} predicted "
            f"tokens; MPNet needs 1 <= P < T, so pass sequences of at least "
            f"{_min_length(pred_prob)} tokens or change pred_prob"
        )
    if attention_mask is None:
        real = ids != pad_id if pad_id is not None else torch.ones_like(ids, dtype=torch.bool)
    else:
        if attention_mask.shape != ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} must equal ids shape {(B, T)}"
            )
        real = attention_mask != 0
    special = torch.tensor(sorted(special_ids), dtype=ids.dtype)
    predictable = real & ~torch.isin(ids, special)  # (B, T)

    # Words: a token starts a word unless it is a ## piece following a predictable token.
    # Without whole-word masking every token is its own word.
    starts = torch.ones_like(predictable)
    if continuation is not None:
        cont = continuation.to(torch.bool)[ids]  # (B, T)
        starts[:, 1:] = ~cont[:, 1:] | ~predictable[:, 1:] | ~predictable[:, :-1]
        starts[:, 0] = True
    word = starts.long().cumsum(1) - 1  # (B, T) word index of each token
    # Random order of words; words with a non-predictable token sort first (the kept head).
    word_score = torch.rand(B, T, generator=generator)  # (B, words <= T)
    word_pred = torch.ones(B, T, dtype=torch.long).scatter_reduce(
        1, word, predictable.long(), reduce="amin"
    )  # (B, words) 1 = every token of the word is predictable
    word_score = word_score - 2.0 * (1 - word_pred).float()
    rank = word_score.argsort(1).argsort(1)  # (B, words) rank of each word
    key = rank.gather(1, word) * T + torch.arange(T)  # (B, T) words whole, tokens in order
    perm = key.argsort(1)  # (B, T) permuted order -> original position

    permuted = ids.gather(1, perm)  # (B, T)
    tail = permuted[:, T - P :]  # (B, P)
    tail_ok = predictable.gather(1, perm)[:, T - P :]  # (B, P)
    targets = tail.masked_fill(~tail_ok, IGNORE_INDEX)  # (B, P)

    choice = torch.rand(B, P, generator=generator)  # < mask: [MASK]; < mask+rand: random
    pool = torch.tensor([i for i in range(vocab_size) if i not in set(special_ids)])
    random_ids = pool[torch.randint(len(pool), (B, P), generator=generator)]
    corrupted = torch.where(choice < mask_prob, torch.full_like(tail, mask_id), tail)
    corrupted = torch.where(
        (choice >= mask_prob) & (choice < mask_prob + rand_prob), random_ids, corrupted
    )
    corrupted = torch.where(tail_ok, corrupted, tail)  # (B, P) padding/specials stay as is

    real_perm = real.gather(1, perm).long()  # (B, T)
    tail_real = real_perm[:, T - P :]  # (B, P)
    tail_pos = perm[:, T - P :]  # (B, P)
    if objective == "mlm":
        input_ids = torch.cat([permuted[:, : T - P], corrupted], 1)  # (B, T)
        positions, mask = perm, real_perm
    elif objective == "plm":
        query = torch.where(tail_ok, torch.full_like(tail, mask_id), tail)  # (B, P) pure [MASK]
        input_ids = torch.cat([permuted, query], 1)  # (B, T + P)
        positions = torch.cat([perm, tail_pos], 1)
        mask = torch.cat([real_perm, tail_real], 1)
    else:
        input_ids = torch.cat([permuted, corrupted, corrupted], 1)  # (B, T + 2P)
        positions = torch.cat([perm, tail_pos, tail_pos], 1)
        mask = torch.cat([real_perm, tail_real, tail_real], 1)
    inputs = {
        "input_ids": input_ids,
        "positions": positions,
        "attention_mask": mask,
        "pred_size": torch.full((B,), P, dtype=torch.long),
    }
    return inputs, targets


def _continuation_table(tokenizer: Any, vocab_size: int) -> Tensor:
    """bool ``(vocab_size,)``: True for WordPiece ``##`` continuation tokens."""
    backend = getattr(tokenizer, "backend", tokenizer)
    to_token = getattr(backend, "id_to_token", None)
    if to_token is None:
        raise TypeError(
            "whole_word=True needs a tokenizer with id_to_token (takeaways.data.Tokenizer or a "
            "tokenizers.Tokenizer) to find '##' continuation pieces"
        )
    return torch.tensor([str(to_token(i) or "").startswith("##") for i in range(vocab_size)])


class MPNetCollator:
    """Thin callable around ``permute_and_mask`` that reads ids from a tokenizer and keeps a seed.

    Args:
        tokenizer: a ``takeaways.data.Tokenizer`` (``vocab_size``, ``mask_id``, ``pad_id``,
            ``special_ids``; ``backend.id_to_token`` for ``whole_word``).
        objective: ``"mpnet"``, ``"plm"`` or ``"mlm"``; one collator per objective, the same
            seed gives all three the same permutations and corruption.
        pred_prob: share of each padded row predicted (``P = round(T * pred_prob)``).
        mask_prob, rand_prob, keep_prob: the 80/10/10 split of the predicted inputs (mpnet,
            mlm; plm's query stream is always pure ``[MASK]``); must sum to 1.
        whole_word: permute whole words (a token and its ``##`` pieces) together.
        seed: seeds the collator's own generator (each call draws fresh permutations).

    Raises:
        ValueError: for an unknown objective or probabilities that do not sum to 1.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        objective: str = "mpnet",
        pred_prob: float = 0.15,
        mask_prob: float = 0.8,
        rand_prob: float = 0.1,
        keep_prob: float = 0.1,
        whole_word: bool = False,
        seed: int = 0,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
        if (
            abs(mask_prob + rand_prob + keep_prob - 1.0) > 1e-6
            or min(mask_prob, rand_prob, keep_prob) < 0
        ):
            raise ValueError(
                f"mask_prob + rand_prob + keep_prob must be 1 with none negative, got "
                f"{mask_prob} + {rand_prob} + {keep_prob}"
            )
        self.objective = objective
        self.vocab_size = int(tokenizer.vocab_size)
        self.mask_id = int(tokenizer.mask_id)
        self.pad_id = int(tokenizer.pad_id)
        self.special_ids = tuple(int(i) for i in tokenizer.special_ids)
        self.pred_prob, self.mask_prob, self.rand_prob = pred_prob, mask_prob, rand_prob
        self.continuation = _continuation_table(tokenizer, self.vocab_size) if whole_word else None
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(
        self, ids: Tensor, attention_mask: Tensor | None = None
    ) -> tuple[dict[str, Tensor], Tensor]:
        """``(B, T)`` ids (padded with ``pad_id``) -> ``(inputs, targets)``; see ``permute_and_mask``."""
        return permute_and_mask(
            ids,
            objective=self.objective,
            vocab_size=self.vocab_size,
            mask_id=self.mask_id,
            special_ids=self.special_ids,
            attention_mask=attention_mask,
            pad_id=self.pad_id,
            pred_prob=self.pred_prob,
            mask_prob=self.mask_prob,
            rand_prob=self.rand_prob,
            continuation=self.continuation,
            generator=self.generator,
        )

    def static(self, ids: Tensor, copies: int) -> tuple[dict[str, Tensor], Tensor]:
        """``copies`` successive collations of all of ``ids``, stacked: static masks for ``fit()``.

        BERT's duplication: each pass over the rows gets its own draw from this collator's
        generator, so collators built with one seed give every objective the same draws.
        """
        parts = [self(ids) for _ in range(copies)]
        inputs = {k: torch.cat([p[0][k] for p in parts]) for k in parts[0][0]}
        return inputs, torch.cat([p[1] for p in parts])
