"""The recall reader: an encoder that answers ``takeaways.data.recall_task`` at its query marker.

``recall_reader`` builds it with any attention kernel; ``recall_warm_start`` trains a dense one
on short sequences placed at random offsets of the long position table, as BigBird was
warm-started from RoBERTa trained at 512 tokens (arXiv 2007.14062). The random offsets train
every row of the position table, so the binding of a key to the token after it, learned
short, holds anywhere in the long sequence; what the short model has not learned is to carry
the answer across a long sequence through a sparse pattern.

Example:
    >>> model, seconds = recall_warm_start(2048, length=256, size=4000, epochs=3)
    >>> bigbird = recall_reader(max_len=2048, attention="bigbird",
    ...                         attention_options={"block_size": 64})
    >>> bigbird.load_state_dict(model.state_dict())  # same parameters, sparse attention
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch import nn as tnn

from takeaways import train
from takeaways.data.tasks import RECALL_QUERY, recall_task, recall_vocab_size
from takeaways.nn.transformer import EncoderConfig, TransformerEncoder, init_bert_weights

__all__ = ["RecallReader", "recall_reader", "recall_warm_start"]


class RecallReader(tnn.Module):
    """Encoder + a linear head on the hidden state at the (first) query marker.

    Args:
        encoder: a ``TransformerEncoder``.
        num_classes: output logits.
        query_id: the token id whose position is read (``RECALL_QUERY``).
    """

    def __init__(self, encoder: TransformerEncoder, num_classes: int, *, query_id: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.query_id = query_id
        self.head = tnn.Linear(encoder.dim, num_classes)
        self.head.apply(init_bert_weights)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        positions: Tensor | None = None,
    ) -> Tensor:
        """Logits ``(B, num_classes)`` read at the query marker of each row of ``(B, N)`` ids."""
        h = self.encoder(input_ids, attention_mask=attention_mask, positions=positions)
        at = (input_ids == self.query_id).int().argmax(dim=1)  # (B,): first query marker
        return self.head(h[torch.arange(len(h)), at])  # (B, num_classes)


def recall_reader(
    *,
    max_len: int,
    values: int = 16,
    filler: int = 16,
    dim: int = 64,
    depth: int = 3,
    heads: int = 2,
    ffn_ratio: int = 2,
    attention: str | Callable[..., Tensor] = "dense",
    attention_options: dict[str, Any] | None = None,
) -> RecallReader:
    """A Pre-LN encoder over ``recall_task``'s vocabulary read at the query marker, no dropout.

    Args:
        max_len: longest sequence (the learned position table).
        values, filler: the task's value classes and filler symbols (set the vocabulary).
        dim, depth, heads, ffn_ratio: the encoder's shape.
        attention, attention_options: the kernel (``EncoderConfig.attention``) and its options.

    Returns:
        ``RecallReader`` mapping ``(input_ids, attention_mask, positions)`` to logits
        ``(B, values)``; parameters do not depend on the kernel, so a state_dict moves between
        dense and sparse models.
    """
    enc = TransformerEncoder(
        EncoderConfig(
            vocab_size=recall_vocab_size(values, filler),
            dim=dim,
            depth=depth,
            heads=heads,
            ffn_ratio=ffn_ratio,
            max_len=max_len,
            dropout=0.0,
            attention=attention,
            attention_options=dict(attention_options or {}),
        )
    )
    with torch.no_grad():  # sinusoids (arXiv 1706.03762): "the next position" is linear
        enc.pos.weight.copy_(sinusoids(max_len, dim) * enc.pos.weight.std() * 2**0.5)
    return RecallReader(enc, values, query_id=RECALL_QUERY)


def sinusoids(n: int, dim: int) -> Tensor:
    """The sinusoidal position table ``(n, dim)`` of arXiv 1706.03762 (sin, cos interleaved)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]  # (n, 1)
    freq = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    table = torch.zeros(n, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return table.float()


def recall_warm_start(
    max_len: int,
    *,
    length: int,
    size: int,
    epochs: int,
    values: int = 16,
    filler: int = 16,
    value_rate: float = 0.0,
    dim: int = 64,
    depth: int = 3,
    heads: int = 2,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    data_seed: int = 2,
) -> tuple[RecallReader, float]:
    """A dense ``recall_reader`` trained on ``size`` sequences of ``length`` tokens.

    Each sequence sits at a uniform random offset of the ``max_len`` position table
    (``positions`` input), so every position embedding is trained. Seeds torch with ``seed``
    before building the model (the init) and trains with it (the order); the data comes from
    ``recall_task(..., seed=data_seed)``.

    Args:
        max_len: the model's position table (the long length it will be trained at next).
        length: tokens per warm-start sequence (<= ``max_len``).
        size, epochs: warm-start sequences and passes over them (0 epochs: untrained).
        values, filler, dim, depth, heads: as in ``recall_reader``.
        value_rate: ``recall_task``'s share of value tokens in the haystack.
        batch_size, lr: AdamW steps with 10% warmup then cosine decay (``train.fit``).
        seed, data_seed: see above.

    Returns:
        (the model, training wall seconds).

    Raises:
        ValueError: if ``length > max_len`` or a size is not positive.
    """
    if not 3 <= length <= max_len or size < 1 or epochs < 0:
        raise ValueError(
            f"need 3 <= length <= max_len, size >= 1 and epochs >= 0; got length={length}, "
            f"max_len={max_len}, size={size}, epochs={epochs}"
        )
    task = recall_task(
        size, length, values=values, filler=filler, value_rate=value_rate, seed=data_seed
    )
    g = torch.Generator().manual_seed(data_seed)
    offset = torch.randint(0, max_len - length + 1, (size, 1), generator=g)  # (size, 1)
    inputs = {**task.inputs, "positions": offset + torch.arange(length)[None, :]}
    train.seed_everything(seed)
    model = recall_reader(
        max_len=max_len, values=values, filler=filler, dim=dim, depth=depth, heads=heads
    )
    if not epochs:
        return model, 0.0
    out = train.fit(
        model,
        (inputs, task.labels),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        warmup=0.1,
        seed=seed,
        desc=f"warm start at N={length}",
    )
    return model, out.wall_s
