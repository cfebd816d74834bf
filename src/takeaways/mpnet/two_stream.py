"""Two-stream self-attention over our encoder's own blocks: MPNet, PLM and MLM from one code path.

MPNet (Song et al., arXiv 2004.09297, section 2; fairseq ``two_stream_self_attention``)
runs two streams through every layer with the *same* weights:

- the **content stream** ``c`` (``N_c`` tokens): the permuted sequence, plus (mpnet) one copy
  of the ``P`` [M] tokens that carry the predicted positions (position compensation);
- the **query stream** ``q`` (``P`` tokens): [M] tokens at the predicted positions.

Queries of both streams are projected by the layer's q weights; keys and values come from
the content stream only; each stream has its own mask; the same LayerNorms and feed-forward
follow. The LM head reads the query stream. ``objective="mlm"`` has no query stream: the
content stream attends everywhere and the head reads its last ``P`` rows (BERT).

Masks (``two_stream_masks``; True = may attend, the opposite of fairseq's convention), with
columns ordered ``[non-predicted (T-P); predicted originals (P); [M] copies (P)]``:

- query row i: non-predicted, originals j < i, and [M] j >= i (plm: no [M] columns);
- content row of predicted original i: non-predicted, originals j <= i, [M] j > i;
- content rows of non-predicted tokens and of [M] copies: non-predicted and all [M].

The wrapper attaches to a ``TransformerEncoder`` (Pre-LN or Post-LN, any width/depth):
positions are given explicitly, so its learned position table is indexed by the permuted
tokens' true positions, and an optional relative bias (``EncoderConfig.rel_buckets``) is
computed from the same true positions. The two-stream pass needs arbitrary per-row masks,
so it always uses dense attention; the encoder's configured kernel is what fine-tuning and
``encoder(...)`` use afterwards. Layer-drop gates on the blocks are bypassed here.

``two_stream_block`` (fast: both streams concatenated into one SDPA call and one LN/FFN
pass) has its naive reference ``two_stream_block_reference`` (each stream separately,
explicit masked softmax) beside it; tests hold them together.

Example:
    >>> enc = TransformerEncoder(EncoderConfig(vocab_size=100, dim=32, heads=2, depth=2))
    >>> model = MPNetPretrainer(enc, objective="mpnet")
    >>> inputs, targets = permute_and_mask(ids, vocab_size=100, mask_id=4, special_ids=(0, 4))
    >>> model(**inputs).shape  # (B, P, V)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from takeaways.mpnet.collate import OBJECTIVES
from takeaways.nn.transformer import MaskedLM, TransformerEncoder

__all__ = [
    "MPNetPretrainer",
    "two_stream_block",
    "two_stream_block_reference",
    "two_stream_masks",
]


def two_stream_masks(
    T: int, P: int, objective: str = "mpnet", *, device: torch.device | None = None
) -> tuple[Tensor, Tensor | None]:
    """Content and query masks of one permuted row (True = may attend).

    Args:
        T: sequence length (non-predicted ``T - P`` first, then the ``P`` predicted originals).
        P: number of predicted tokens, ``1 <= P < T``.
        objective: ``"mpnet"`` (``N_c = T + P``: [M] copies in the content stream),
            ``"plm"`` (``N_c = T``) or ``"mlm"`` (``N_c = T``, full attention, no query stream).

    Returns:
        ``content (N_c, N_c)`` and ``query (P, N_c)`` bool masks (``query`` is None for mlm).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    if not 1 <= P < T:
        raise ValueError(f"need 1 <= P < T, got T={T}, P={P}")
    if objective == "mlm":
        return torch.ones(T, T, dtype=torch.bool, device=device), None
    n = T - P
    i = torch.arange(P, device=device)
    before = i[None, :] < i[:, None]  # (P, P) [row i, col j]: j < i
    upto = i[None, :] <= i[:, None]  # (P, P): j <= i
    Nc = T + P if objective == "mpnet" else T
    content = torch.zeros(Nc, Nc, dtype=torch.bool, device=device)
    content[:, :n] = True  # everyone sees the non-predicted tokens
    content[n:T, n:T] = upto  # original i sees originals j <= i
    query = torch.zeros(P, Nc, dtype=torch.bool, device=device)
    query[:, :n] = True
    query[:, n:T] = before  # query i sees originals j < i
    if objective == "mpnet":
        content[:n, T:] = True  # non-predicted rows see every [M] (position compensation)
        content[n:T, T:] = ~upto  # original i sees [M] j > i
        content[T:, T:] = True  # [M] rows: like non-predicted rows
        query[:, T:] = ~before  # query i sees [M] j >= i
    return content, query


def _float_mask(allowed: Tensor, bias: Tensor | None, dtype: torch.dtype) -> Tensor:
    """Additive score mask: ``bias`` (or 0) where allowed, the dtype's min where blocked.

    A finite minimum (not -inf) keeps a row with no allowed key finite.
    """
    allowed = allowed[:, None]  # (B, 1, N_q, N_k)
    blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=allowed.device)
    base = torch.zeros((), dtype=dtype, device=allowed.device) if bias is None else bias.to(dtype)
    return torch.where(allowed, base, blocked)  # (B, H or 1, N_q, N_k)


def _heads(x: Tensor, H: int) -> Tensor:
    B, N, C = x.shape
    return x.view(B, N, H, C // H).transpose(1, 2)  # (B, H, N, D)


def two_stream_block(
    block: nn.Module,
    c: Tensor,
    q: Tensor | None,
    content_allowed: Tensor,
    query_allowed: Tensor | None,
    content_bias: Tensor | None = None,
    query_bias: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Run one ``Block``'s weights on both streams at once (fast path).

    The streams are concatenated along the sequence (``N_c + P`` query rows against the
    ``N_c`` content keys), so one ``scaled_dot_product_attention`` call and one LN/FFN pass
    serve both; per-token LN and FFN make that identical to running them separately.

    Args:
        block: a ``takeaways.nn.transformer.Block`` (``ln1, attn.qkv, attn.proj, ln2, mlp``).
        c: content stream ``(B, N_c, C)``; q: query stream ``(B, P, C)`` or None.
        content_allowed: bool ``(B, N_c, N_c)``; query_allowed: bool ``(B, P, N_c)`` or None.
        content_bias, query_bias: float ``(B or 1, H, N_c or P, N_c)`` score biases, or None.

    Returns:
        The new ``(c, q)``.
    """
    attn, post = block.attn, getattr(block, "post_norm", False)
    Nc, C, H = c.shape[1], c.shape[2], attn.heads
    x = c if q is None else torch.cat([c, q], 1)  # (B, N, C), N = N_c (+ P)
    allowed = content_allowed if q is None else torch.cat([content_allowed, query_allowed], 1)
    bias = content_bias
    if q is not None and content_bias is not None:
        bias = torch.cat(
            [content_bias.expand(len(c), -1, -1, -1), query_bias.expand(len(c), -1, -1, -1)], 2
        )
    h = x if post else block.ln1(x)
    qs, k, v = attn.qkv(h).split(C, dim=-1)  # 3 x (B, N, C)
    k, v = k[:, :Nc], v[:, :Nc]  # keys and values from the content stream only
    mask = _float_mask(allowed, bias, qs.dtype)  # (B, H or 1, N, N_c)
    y = F.scaled_dot_product_attention(_heads(qs, H), _heads(k, H), _heads(v, H), attn_mask=mask)
    y = attn.drop(attn.proj(y.transpose(1, 2).reshape(x.shape)))  # (B, N, C)
    if post:
        x = block.ln1(x + y)
        x = block.ln2(x + block.mlp(x))
    else:
        x = x + y
        x = x + block.mlp(block.ln2(x))
    return (x, None) if q is None else (x[:, :Nc], x[:, Nc:])


def two_stream_block_reference(
    block: nn.Module,
    c: Tensor,
    q: Tensor | None,
    content_allowed: Tensor,
    query_allowed: Tensor | None,
    content_bias: Tensor | None = None,
    query_bias: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Naive path: each stream on its own, explicit scores, masked softmax, weighted sum."""
    attn, post = block.attn, getattr(block, "post_norm", False)
    C, H = c.shape[2], attn.heads
    W, b = attn.qkv.weight, attn.qkv.bias  # (3C, C), (3C,)
    hc = c if post else block.ln1(c)
    k = _heads(hc @ W[C : 2 * C].T + b[C : 2 * C], H)  # (B, H, N_c, D)
    v = _heads(hc @ W[2 * C :].T + b[2 * C :], H)  # (B, H, N_c, D)

    def stream(x: Tensor, allowed: Tensor, bias: Tensor | None) -> Tensor:
        h = x if post else block.ln1(x)
        qh = _heads(h @ W[:C].T + b[:C], H)  # (B, H, N_q, D)
        scores = qh @ k.transpose(-2, -1) / math.sqrt(C // H)  # (B, H, N_q, N_c)
        if bias is not None:
            scores = scores + bias
        scores = scores.masked_fill(~allowed[:, None], torch.finfo(scores.dtype).min)
        y = scores.softmax(-1) @ v  # (B, H, N_q, D)
        y = attn.drop(attn.proj(y.transpose(1, 2).reshape(x.shape)))  # (B, N_q, C)
        if post:
            x = block.ln1(x + y)
            return block.ln2(x + block.mlp(x))
        x = x + y
        return x + block.mlp(block.ln2(x))

    c_out = stream(c, content_allowed, content_bias)
    q_out = None if q is None else stream(q, query_allowed, query_bias)
    return c_out, q_out


class MPNetPretrainer(nn.Module):
    """MPNet / PLM / MLM pre-training objective around a ``TransformerEncoder``; returns logits.

    Owns a ``MaskedLM`` head (BERT's transform + a decoder tied to the token embedding) at
    ``.mlm``; the encoder is ``.encoder`` (the same module, trained in place), ready for a
    ``SequenceClassifier`` or ``takeaways.mpnet.to_hf_mpnet`` afterwards.

    ``forward(**inputs)`` takes ``permute_and_mask``'s inputs and returns logits ``(B, P, V)``
    for the predicted tokens, so ``fit(model, (inputs, targets))`` trains it.

    Args:
        encoder: a ``TransformerEncoder`` (needs ``embed_tokens``, ``position_bias``,
            ``layers`` of ``Block``, ``norm``).
        objective: ``"mpnet"``, ``"plm"`` or ``"mlm"``; must match the collator's.
        reference: run the naive per-stream path (for tests).

    Raises:
        ValueError: for an unknown objective; TypeError: for an encoder of another kind.
    """

    def __init__(
        self, encoder: TransformerEncoder, *, objective: str = "mpnet", reference: bool = False
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
        if not all(hasattr(encoder, a) for a in ("embed_tokens", "position_bias", "layers")):
            raise TypeError(
                f"MPNetPretrainer needs a takeaways TransformerEncoder, got {type(encoder).__name__}"
            )
        self.objective = objective
        self.reference = reference
        self.mlm = MaskedLM(encoder)

    @property
    def encoder(self) -> TransformerEncoder:
        return self.mlm.encoder

    def streams(
        self, input_ids: Tensor, positions: Tensor, attention_mask: Tensor, pred_size: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Final hidden states ``(c (B, N_c, C), q (B, P, C) or None)``."""
        enc = self.encoder
        B, L = input_ids.shape
        P = int(pred_size.reshape(-1)[0])
        extra = {"mlm": 0, "plm": P, "mpnet": 2 * P}[self.objective]
        T = L - extra
        if P < 1 or T <= P:
            raise ValueError(
                f"inputs of length {L} with pred_size {P} do not fit objective "
                f"{self.objective!r}; collate with the same objective as the model"
            )
        Nc = L if self.objective == "mlm" else L - P
        real = attention_mask != 0  # (B, L)
        content, query = two_stream_masks(T, P, self.objective, device=input_ids.device)
        content = content[None] & real[:, None, :Nc]  # (B, N_c, N_c)
        c_pos, c = positions[:, :Nc], enc.embed_tokens(input_ids[:, :Nc], positions[:, :Nc])
        c_bias = enc.position_bias(c_pos, c_pos)  # (B, H, N_c, N_c) or None
        q = q_bias = None
        if query is not None:
            query = query[None] & real[:, None, :Nc]  # (B, P, N_c)
            q_pos = positions[:, Nc:]  # (B, P)
            q = enc.embed_tokens(input_ids[:, Nc:], q_pos)  # (B, P, C)
            q_bias = enc.position_bias(q_pos, c_pos)  # (B, H, P, N_c) or None
        run = two_stream_block_reference if self.reference else two_stream_block
        for block in enc.layers:
            c, q = run(block, c, q, content, query, c_bias, q_bias)
        return enc.norm(c), None if q is None else enc.norm(q)

    def forward(
        self, input_ids: Tensor, positions: Tensor, attention_mask: Tensor, pred_size: Tensor
    ) -> Tensor:
        """Vocabulary logits ``(B, P, V)`` of the predicted tokens."""
        c, q = self.streams(input_ids, positions, attention_mask, pred_size)
        P = int(pred_size.reshape(-1)[0])
        h = c[:, -P:] if q is None else q  # (B, P, C)
        return self.mlm.decoder(self.mlm.transform(h))  # (B, P, V)
