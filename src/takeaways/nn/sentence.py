"""Sentence embeddings from the packaged MiniLM: mean pooling over real tokens, batched and cached.

all-MiniLM-L6-v2 was trained as a sentence embedder whose sentence vector is the mean of
its last hidden states over the real (unpadded) tokens, scaled to unit length (the
model's own sentence-transformers configuration: a mean-pooling module, then a
normalization module, at most 256 tokens). ``embed_texts`` computes exactly that, with a
fast path that sorts the texts by length so a batch pads little, and
``embed_texts_reference`` is the plain one-batch-at-a-time version it is tested against.

Embeddings are cached under ``takeaways.data.cache_dir()/embeddings``, keyed by a hash of
the texts and the settings, so a rerun on the same data does not embed again.

Example:
    >>> vectors = embed_texts(["a fine film", "a dull film"])   # doctest: +SKIP
    >>> vectors.shape
    (2, 384)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["embed_texts", "embed_texts_reference", "mean_pool"]

MAX_LEN = 256  # the model's sentence-transformers max_seq_length


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """(B, N, C) hidden states, (B, N) mask with 1 on real tokens -> (B, C) mean over real tokens."""
    m = mask.to(hidden.dtype)[..., None]  # (B, N, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty; pass at least one string")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not a string: {t!r:.60}")
    return texts


def embed_texts_reference(
    texts: Sequence[str], *, max_len: int = MAX_LEN, normalize: bool = True
) -> np.ndarray:
    """The naive reference: each text alone through the model, mean-pooled. (N, 384) float32."""
    from takeaways.nn.minilm import load_minilm

    encoder, tok = load_minilm()
    out = []
    with torch.inference_mode():
        for t in _check_texts(texts):
            batch = tok.encode([t], max_len=max_len)
            v = mean_pool(encoder(**batch), batch["attention_mask"])[0]
            out.append(torch.nn.functional.normalize(v, dim=0) if normalize else v)
    return torch.stack(out).numpy().astype(np.float32)


def _cache_file(texts: list[str], max_len: int, normalize: bool) -> object:
    from takeaways.data import cache_dir

    h = hashlib.sha256(f"all-MiniLM-L6-v2|mean|{max_len}|{normalize}|{len(texts)}".encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return cache_dir() / "embeddings" / f"{h.hexdigest()[:32]}.npy"


def embed_texts(
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    max_len: int = MAX_LEN,
    normalize: bool = True,
    progress: bool = False,
    cache: bool = True,
    device: str = "cpu",
) -> np.ndarray:
    """Embed texts with the packaged MiniLM as its sentence-transformers setup does.

    Args:
        texts: N strings (an empty string embeds [CLS] [SEP] alone).
        batch_size: texts per forward pass; texts are sorted by length first, so a
            batch holds texts of similar length and pads little.
        max_len: most tokens per text, [CLS] and [SEP] included (the model's 256 by default).
        normalize: scale each vector to unit length (the model's own last step).
        progress: show a progress bar.
        cache: read and write ``cache_dir()/embeddings`` (keyed by the texts and settings).
        device: where the model runs.

    Returns:
        (N, 384) float32, row i for texts[i].

    Raises:
        ValueError, TypeError: no texts, or a text that is not a string.
        ImportError: the ``hf`` extra is missing.
    """
    from tqdm.auto import tqdm

    from takeaways.files import atomic_path
    from takeaways.nn.minilm import load_minilm

    texts = _check_texts(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    path = _cache_file(texts, max_len, normalize)
    if cache and path.is_file():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    encoder, tok = load_minilm(device=device)
    lengths = [len(ids) for ids in (e.ids for e in tok.backend.encode_batch(texts))]
    order = np.argsort(lengths, kind="stable")[::-1]  # longest first: the peak memory shows early
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    bar = tqdm(total=len(texts), desc="embedding texts (MiniLM)", unit="text", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = tok.encode([texts[i] for i in idx], max_len=max_len)
            batch = {k: v.to(device) for k, v in batch.items()}
            v = mean_pool(encoder(**batch), batch["attention_mask"])
            if normalize:
                v = torch.nn.functional.normalize(v, dim=1)
            out[idx] = v.float().cpu().numpy()
            bar.update(len(idx))
    bar.close()
    if cache:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, out)
    return out
