"""Attention kernels behind one calling convention, and the registry that names them.

Every kernel is a function ``fn(q, k, v, *, key_padding_mask=None, **options) -> out`` with
``q`` of shape ``(B, H, N_q, D)``, ``k`` and ``v`` of shape ``(B, H, N_k, D)`` and ``out`` of
shape ``(B, H, N_q, D)``. ``key_padding_mask`` is a bool ``(B, N_k)`` tensor where ``True``
marks a real token and ``False`` a padding token that no query may attend to.

A kernel may also take ``attn_bias``: a float ``(B or 1, H, N_q, N_k)`` tensor added to the
scores before the softmax (relative position bias, ``EncoderConfig.rel_buckets``). Kernels
without it are refused at construction when a bias is configured.

A kernel that also takes a ``layer_index`` keyword gets the index of the layer it runs in
(block-sparse kernels seed their per-layer random pattern with it, arXiv 2007.14062).

Rows whose keys are all padding (an empty sequence in the batch) have nothing to attend to;
``dense`` and ``reference`` return zeros for them, not NaN, and pass zero gradient through them.

``causal`` (``causal_attention``, reference ``causal_attention_reference``) lets query ``i``
see keys ``0..i`` only: a next-token LM's mask. It takes no padding mask (pack full rows).

Example:
    >>> q = k = v = torch.randn(2, 4, 7, 16)
    >>> mask = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    >>> out = get_attention("dense")(q, k, v, key_padding_mask=mask)  # (2, 4, 7, 16)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ATTENTION",
    "attention_reference",
    "causal_attention",
    "causal_attention_reference",
    "check_shapes",
    "dense_attention",
    "get_attention",
    "register_attention",
]


def check_shapes(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None) -> None:
    """Raise a one-line error unless q, k, v and the mask fit the calling convention.

    Kernels in other modules (``takeaways.attention``) call it first, so every kernel refuses
    bad shapes with the same words.

    Raises:
        ValueError: if a tensor is not 4-D or the shapes do not fit together.
        TypeError: if ``key_padding_mask`` is not bool.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D (B, H, N, D), got shape {tuple(t.shape)}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(
            f"k and v must agree on (B, H, N), got {tuple(k.shape)} and {tuple(v.shape)}"
        )
    if q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must agree on B, H and D, got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if key_padding_mask is not None:
        expected = (k.shape[0], k.shape[2])
        if tuple(key_padding_mask.shape) != expected:
            raise ValueError(
                f"key_padding_mask must have shape (B, N_k) = {expected}, "
                f"got {tuple(key_padding_mask.shape)}"
            )
        if key_padding_mask.dtype != torch.bool:
            raise TypeError(
                f"key_padding_mask must be bool (True = real token), got {key_padding_mask.dtype}; "
                "convert it with mask.bool()"
            )


def dense_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    attn_bias: Tensor | None = None,
) -> Tensor:
    """Full softmax attention through ``F.scaled_dot_product_attention`` (arXiv 1706.03762).

    Args:
        q: queries ``(B, H, N_q, D)``.
        k: keys ``(B, H, N_k, D)``.
        v: values ``(B, H, N_k, D)``.
        key_padding_mask: bool ``(B, N_k)``, ``True`` = real token; ``None`` attends to all.
        attn_bias: float ``(B or 1, H, N_q, N_k)`` added to the scores, or ``None``.

    Returns:
        ``(B, H, N_q, D)``; all zeros for a batch row whose keys are all padding.

    Raises:
        ValueError: if the shapes do not fit together.
        TypeError: if ``key_padding_mask`` is not bool.
    """
    check_shapes(q, k, v, key_padding_mask)
    if attn_bias is not None:
        attn_bias = attn_bias.to(q.dtype)
    if key_padding_mask is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias)  # (B, H, N_q, D)
    # Some SDPA backends (and older torch on CPU) return NaN for a row with no allowed key.
    # Let such rows attend everywhere, then zero them, so every backend gives the same zeros.
    has_keys = key_padding_mask.any(dim=-1)  # (B,)
    allowed = key_padding_mask | ~has_keys[:, None]  # (B, N_k)
    mask = allowed[:, None, None, :]  # (B, 1, 1, N_k)
    if attn_bias is not None:  # one float mask: the bias, and the dtype's min where blocked
        blocked = torch.tensor(torch.finfo(q.dtype).min, dtype=q.dtype, device=q.device)
        mask = torch.where(mask, attn_bias, blocked)  # (B, H, N_q, N_k)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out * has_keys[:, None, None, None].to(out.dtype)  # (B, H, N_q, D)


def attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    attn_bias: Tensor | None = None,
) -> Tensor:
    """Explicit masked-softmax attention: the naive path that tests hold kernels against.

    Args:
        q: queries ``(B, H, N_q, D)``.
        k: keys ``(B, H, N_k, D)``.
        v: values ``(B, H, N_k, D)``.
        key_padding_mask: bool ``(B, N_k)``, ``True`` = real token; ``None`` attends to all.
        attn_bias: float ``(B or 1, H, N_q, N_k)`` added to the scores, or ``None``.

    Returns:
        ``(B, H, N_q, D)``; all zeros for a batch row whose keys are all padding.

    Raises:
        ValueError: if the shapes do not fit together.
        TypeError: if ``key_padding_mask`` is not bool.
    """
    check_shapes(q, k, v, key_padding_mask)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, H, N_q, N_k)
    if attn_bias is not None:
        scores = scores + attn_bias
    if key_padding_mask is None:
        return scores.softmax(dim=-1) @ v  # (B, H, N_q, D)
    keep = key_padding_mask[:, None, None, :]  # (B, 1, 1, N_k)
    # A finite fill (not -inf) keeps an all-padding row finite; zeroing the padded weights
    # after the softmax then gives that row all-zero weights and a zero output.
    scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1) * keep.to(scores.dtype)  # (B, H, N_q, N_k)
    return weights @ v  # (B, H, N_q, D)


# ----------------------------------------------------------------------------- causal


def causal_attention(
    q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None = None
) -> Tensor:
    """Causal softmax attention: query ``i`` sees keys ``0..i`` (a decoder-only LM's mask).

    ``F.scaled_dot_product_attention(is_causal=True)``; registered as ``"causal"``, so
    ``EncoderConfig(attention="causal")`` turns the encoder into a next-token LM body.
    Rows are full windows of text (no padding), as in GPT-style training on packed rows.

    Args:
        q: queries ``(B, H, N, D)``.
        k: keys ``(B, H, N, D)``, as many as queries (self-attention).
        v: values ``(B, H, N, D)``.
        key_padding_mask: must be ``None``; pack rows without padding instead.

    Returns:
        ``(B, H, N, D)``.

    Raises:
        ValueError: for a padding mask, shapes that do not fit, or ``N_q != N_k``.
    """
    if key_padding_mask is not None:
        raise ValueError(
            "causal_attention takes no key_padding_mask; pass full windows without padding"
        )
    _check_causal_shapes(q, k, v)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, N, D)


def causal_attention_reference(
    q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None = None
) -> Tensor:
    """The naive path of ``causal_attention``: scores, an upper-triangular -inf mask, softmax."""
    if key_padding_mask is not None:
        raise ValueError("causal_attention_reference takes no key_padding_mask")
    _check_causal_shapes(q, k, v)
    N = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, H, N, N)
    future = torch.ones(N, N, dtype=torch.bool, device=q.device).triu(1)  # key j > query i
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1) @ v  # (B, H, N, D)


def _check_causal_shapes(q: Tensor, k: Tensor, v: Tensor) -> None:
    """``check_shapes``, plus as many keys as queries (causal attention is self-attention)."""
    check_shapes(q, k, v, None)
    if q.size(-2) != k.size(-2):
        raise ValueError(
            "causal attention is self-attention: q and k must have one length N, "
            f"got {q.size(-2)} and {k.size(-2)}"
        )


# name -> kernel; technique modules add theirs with register_attention when imported
# (``import takeaways.attention`` registers bigbird, clustered, improved-clustered), so this
# layer never imports the layer above it.
ATTENTION: dict[str, Callable[..., Tensor]] = {
    "dense": dense_attention,
    "reference": attention_reference,
    "causal": causal_attention,
}


def register_attention(name: str, fn: Callable[..., Tensor], *, overwrite: bool = False) -> None:
    """Add an attention kernel to ``ATTENTION`` so configs can name it.

    Args:
        name: the key that ``EncoderConfig(attention=name)`` will use.
        fn: a kernel following the calling convention in this module's docstring.
        overwrite: replace an existing kernel of the same name instead of raising.

    Raises:
        TypeError: if ``fn`` is not callable or ``name`` is not a string.
        ValueError: if ``name`` is taken and ``overwrite`` is False.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"attention name must be a non-empty str, got {name!r}")
    if not callable(fn):
        raise TypeError(f"attention {name!r} must be callable, got {type(fn).__name__}")
    if name in ATTENTION and ATTENTION[name] is not fn and not overwrite:
        raise ValueError(
            f"attention {name!r} is already registered; pick another name or pass overwrite=True"
        )
    ATTENTION[name] = fn


def get_attention(name_or_fn: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Return the kernel registered under a name, or the callable itself.

    Args:
        name_or_fn: a key of ``ATTENTION`` or an attention callable.

    Returns:
        The attention callable.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
        TypeError: for anything that is neither a str nor callable.
    """
    if callable(name_or_fn):
        return name_or_fn
    if not isinstance(name_or_fn, str):
        raise TypeError(
            f"attention must be a registered name or a callable, got {type(name_or_fn).__name__}"
        )
    if name_or_fn not in ATTENTION:
        known = ", ".join(sorted(ATTENTION))
        raise ValueError(
            f"unknown attention {name_or_fn!r}; known: {known} (bigbird, clustered and "
            "improved-clustered register themselves: import takeaways.attention first)"
        )
    return ATTENTION[name_or_fn]
