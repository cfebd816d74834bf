"""The passkey classifier: an encoder that reads the needle task's answer at [CLS].

``passkey_classifier`` builds it for ``takeaways.data.needle_task`` with any attention kernel;
``passkey_warm_start`` trains a dense one on short sequences, as BigBird was warm-started
from RoBERTa trained at 512 tokens (arXiv 2007.14062): a small model trained from scratch at
N=2048 does not start attending to the needle within a CPU budget (the gradient that would
point its attention there is ~1/N), so long-sequence models start from these weights.

Example:
    >>> model, seconds = passkey_warm_start(1024, length=256, size=2000, epochs=4)
    >>> bigbird = passkey_classifier(max_len=1024, attention="bigbird",
    ...                              attention_options={"block_size": 64})
    >>> bigbird.load_state_dict(model.state_dict())  # same parameters, sparse attention
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from takeaways import train
from takeaways.data.tasks import needle_task, needle_vocab_size
from takeaways.nn.transformer import EncoderConfig, SequenceClassifier, TransformerEncoder

__all__ = ["passkey_classifier", "passkey_warm_start"]


def passkey_classifier(
    *,
    max_len: int,
    values: int = 8,
    filler: int = 1,
    dim: int = 64,
    depth: int = 2,
    heads: int = 1,
    ffn_ratio: int = 2,
    attention: str | Callable[..., Tensor] = "dense",
    attention_options: dict[str, Any] | None = None,
) -> SequenceClassifier:
    """A Pre-LN encoder + [CLS] classifier over the needle task's vocabulary, no dropout.

    Args:
        max_len: longest sequence (the learned position table).
        values, filler: the task's value classes and filler symbols (set the vocabulary).
        dim, depth, heads, ffn_ratio: the encoder's shape.
        attention, attention_options: the kernel (``EncoderConfig.attention``) and its options.

    Returns:
        ``SequenceClassifier`` mapping ``(input_ids, attention_mask)`` ``(B, N)`` to logits
        ``(B, values)``; parameters do not depend on the attention kernel, so a state_dict
        moves between dense and sparse models.
    """
    enc = TransformerEncoder(
        EncoderConfig(
            vocab_size=needle_vocab_size(values, filler),
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
    return SequenceClassifier(enc, values, pooling="cls", dropout=0.0)


def passkey_warm_start(
    max_len: int,
    *,
    length: int,
    size: int,
    epochs: int,
    values: int = 8,
    filler: int = 1,
    dim: int = 64,
    depth: int = 2,
    heads: int = 1,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    data_seed: int = 2,
) -> tuple[SequenceClassifier, float]:
    """A dense ``passkey_classifier`` trained on ``size`` sequences of ``length`` tokens.

    Seeds torch with ``seed`` before building the model (the init) and trains with it (the
    order); the data comes from ``needle_task(..., seed=data_seed)``.

    Args:
        max_len: the model's position table (the long length it will be trained at next).
        length: tokens per warm-start sequence (<= ``max_len``).
        size, epochs: warm-start sequences and passes over them (0 epochs: untrained).
        values, filler, dim, depth, heads: as in ``passkey_classifier``.
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
    x, y = needle_task(size, length, values=values, filler=filler, seed=data_seed)
    train.seed_everything(seed)
    model = passkey_classifier(
        max_len=max_len, values=values, filler=filler, dim=dim, depth=depth, heads=heads
    )
    if not epochs:
        return model, 0.0
    out = train.fit(
        model,
        (x, y),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        warmup=0.1,
        seed=seed,
        desc=f"warm start at N={length}",
    )
    return model, out.wall_s
