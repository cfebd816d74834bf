"""Long inputs for Hugging Face BERT-family encoders: our attention kernels in their layers.

``extend_attention(model, "bigbird", max_length=4096)`` changes a ``transformers`` BERT or
RoBERTa encoder (or any module holding one, such as ``BertForSequenceClassification`` or the
packaged MiniLM from ``takeaways.nn.load_minilm()``) in place:

- every ``BertSelfAttention`` / ``RobertaSelfAttention`` becomes a ``KernelSelfAttention``
  that keeps the same ``query``, ``key`` and ``value`` ``nn.Linear`` modules (the same
  tensors, so ``state_dict`` keys and values are unchanged and training updates them) and
  hands the per-head ``q, k, v`` ``(B, H, N, D)`` to one of our kernels: ``"bigbird"``
  (arXiv 2007.14062), ``"clustered"`` / ``"improved-clustered"`` (arXiv 2007.04825) or
  ``"dense"`` (SDPA), chosen by name through ``takeaways.nn.attention.get_attention`` exactly
  as our own encoder chooses them. The output projection (``BertSelfOutput``) is untouched.
- with ``max_length`` above the learned positions, the position table is extended by copying
  the pre-trained positions over and over: new position ``p`` gets learned position
  ``p mod P``. This is the warm start Longformer used from RoBERTa's 512 positions
  (Beltagy, Peters & Cohan, arXiv 2004.05150, section 5 "Pretraining and Finetuning": the
  new positions up to 4,096 start as repeated copies of RoBERTa's 512 learned ones).
  BigBird's released models were also warm-started from a RoBERTa checkpoint; the rule
  cited here is Longformer's. RoBERTa reserves the first ``padding_idx + 1`` rows (2 for
  RoBERTa: token positions start at ``padding_idx + 1``); those rows stay as they are and
  only the learned rows after them are copied, so ``max_length`` counts tokens for both
  families. ``config.max_position_embeddings`` and the ``position_ids`` / ``token_type_ids``
  buffers grow with the table.

``restore(model)`` undoes both; ``with extended_attention(model, ...):`` does it on exit.

Padding: HF's ``attention_mask`` (1 = real token) reaches the kernels as a bool key padding
mask. On transformers 5 the model's mask hook is switched to one that passes the 2-D mask
itself, so no ``(B, 1, N, N)`` mask is ever built; other versions hand the layer a 4-D
mask, which is read back into the 2-D one (a mask that differs between queries or holds
other biases is refused). Where HF and a kernel differ by design: padded *query* rows of
the clustered kernels take their nearest cluster's output (real rows are unaffected).

Not carried over: attention-probability dropout (``attention_probs_dropout_prob``; the
kernels have none, so the patched model differs from HF's in train mode only), attention
weights (layers return ``None`` for them), head masks, caches, decoders and cross-attention
(refused with a one-line error).

Tested (tests/test_hf.py, torch 2.13 on CPU) with transformers 5.24.0 (``BertSelfAttention``
on the attention interface, called with keywords, returning ``(output, weights)``; our mask
hook), 4.57.1 (called with keywords, a 4-D sdpa mask) and 4.46.3 (``BertSdpaSelfAttention``
called positionally with a 4-D mask, returning a tuple).

Example:
    >>> encoder, tokenizer = takeaways.nn.load_minilm()   # a BertModel inside
    >>> extend_attention(encoder, "bigbird", max_length=4096, block_size=64)
    >>> batch = tokenizer.encode(long_texts, max_len=4096)
    >>> hidden = encoder(**batch)                          # (B, N <= 4096, 384)
    >>> restore(encoder)                                   # dense, 512 positions again
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

import takeaways.attention  # noqa: F401  (registers bigbird, clustered, improved-clustered)
from takeaways.nn.attention import dense_attention, get_attention

__all__ = ["extend_attention", "extended_attention", "restore"]

# The self-attention classes whose forward KernelSelfAttention reproduces (absolute positions
# only). The Sdpa subclasses are transformers 4's (4.57 still has them); 5 has one class.
SUPPORTED = (
    "BertSelfAttention",
    "BertSdpaSelfAttention",
    "RobertaSelfAttention",
    "RobertaSdpaSelfAttention",
)
HF_NAME = "takeaways"  # our entry in transformers' attention and mask interfaces
_PATCH = "_takeaways_extend_attention"  # attribute holding what restore() puts back
# Positional arguments of the self-attention forward before transformers 4.48, after the mask.
_OLD_POSITIONAL = (
    "head_mask",
    "encoder_hidden_states",
    "encoder_attention_mask",
    "past_key_value",
    "output_attentions",
)
_NOT_SUPPORTED = (
    "head_mask",
    "encoder_hidden_states",
    "encoder_attention_mask",
    "past_key_value",
    "past_key_values",
    "cache",
)


# ----------------------------------------------------------------------------- the mask


def key_padding_mask(mask: Any, batch: int, n: int) -> Tensor | None:
    """Whatever mask HF hands an attention layer, as a bool ``(B, N)`` key mask (True = real).

    Accepts ``None``, a 2-D ``(B, N)`` mask (nonzero = real), a 4-D bool ``(B, 1|H, N|1, N)``
    mask (True = attend) or a 4-D additive float mask (0 = attend, <= -1e4 = blocked), as
    transformers' sdpa / eager paths build them.

    Returns:
        bool ``(B, N)``, or ``None`` when every token is real (the kernels' fast path).

    Raises:
        ValueError: for a mask that is not a padding mask (rows or heads that differ, e.g.
            causal; additive biases other than 0 and blocked; a ``BlockMask``) or whose
            shape does not fit ``(B, N)``.
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise ValueError(
            f"attention_mask of type {type(mask).__name__} is not supported under "
            "extend_attention; pass a 2-D (B, N) padding mask"
        )
    if mask.dim() == 4:
        if mask.dtype == torch.bool:
            allowed = mask
        else:
            allowed = mask == 0
            if not bool((allowed | (mask <= -1e4)).all()):
                raise ValueError(
                    "attention_mask holds additive biases other than 0 and blocked; "
                    "extend_attention's kernels take a padding mask only"
                )
        keys = allowed[:, 0, 0, :]  # (B, N)
        if not bool((allowed == keys[:, None, None, :]).all()):
            raise ValueError(
                "attention_mask differs between queries or heads (causal or custom 4-D "
                "mask); extend_attention's kernels take a 2-D (B, N) padding mask only"
            )
        mask = keys
    elif mask.dim() == 2:
        mask = mask.bool()
    else:
        raise ValueError(f"attention_mask must be 2-D (B, N) or 4-D, got shape {tuple(mask.shape)}")
    if tuple(mask.shape) != (batch, n):
        raise ValueError(
            f"attention_mask covers {tuple(mask.shape)} tokens, the input has (B, N) = {(batch, n)}"
        )
    return None if bool(mask.all()) else mask


# ----------------------------------------------------------------------------- the layer


class KernelSelfAttention(nn.Module):
    """BERT self-attention whose core is one of our kernels; the projections are HF's own.

    Built from a ``BertSelfAttention``-style module, it keeps that module's ``query``,
    ``key``, ``value`` (and ``dropout``) submodules under the same names, so ``state_dict``
    keys do not change. Called like the module it replaces (keywords on transformers 5,
    positionally before 4.48) and returns ``(output (B, N, H*D), None)``.

    Args:
        original: the HF self-attention module (its weights are shared, not copied).
        kernel: a kernel following ``takeaways.nn.attention``'s calling convention.
        options: keyword options for the kernel (``layer_index`` included where it takes one).
    """

    def __init__(
        self, original: nn.Module, kernel: Callable[..., Tensor], options: dict[str, Any]
    ) -> None:
        super().__init__()
        self.query, self.key, self.value = original.query, original.key, original.value
        self.dropout = original.dropout  # unused (the kernels have no dropout); kept as HF's
        self.heads = int(original.num_attention_heads)
        self.head_size = int(original.attention_head_size)
        # HF scales scores by ``scaling`` (1/sqrt(D) in BERT); the kernels by 1/sqrt(D).
        scaling = getattr(original, "scaling", self.head_size**-0.5)
        q_scale = float(scaling) * math.sqrt(self.head_size)
        self.q_scale = 1.0 if abs(q_scale - 1.0) < 1e-6 else q_scale
        self.kernel = kernel
        self.options = dict(options)

    def forward(
        self, hidden_states: Tensor, attention_mask: Any = None, *args: Any, **kwargs: Any
    ) -> tuple[Tensor, None]:
        """Attend over ``hidden_states`` ``(B, N, C)``; returns ``((B, N, H*D), None)``.

        Raises:
            ValueError: for cross-attention, caches, head masks or a mask that is not a
                padding mask.
        """
        given = {**dict(zip(_OLD_POSITIONAL, args)), **kwargs}
        for name in _NOT_SUPPORTED:
            if given.get(name) is not None:
                raise ValueError(
                    f"extend_attention's layers compute self-attention only; {name} is not "
                    "supported (call restore(model) to use HF's attention)"
                )
        B, N, _ = hidden_states.shape
        shape = (B, N, self.heads, self.head_size)
        q = self.query(hidden_states).view(shape).transpose(1, 2)  # (B, H, N, D)
        k = self.key(hidden_states).view(shape).transpose(1, 2)  # (B, H, N, D)
        v = self.value(hidden_states).view(shape).transpose(1, 2)  # (B, H, N, D)
        if self.q_scale != 1.0:
            q = q * self.q_scale
        kpm = key_padding_mask(attention_mask, B, N)
        y = self.kernel(q, k, v, key_padding_mask=kpm, **self.options)  # (B, H, N, D)
        return y.transpose(1, 2).reshape(B, N, self.heads * self.head_size), None

    def extra_repr(self) -> str:
        name = getattr(self.kernel, "__name__", type(self.kernel).__name__)
        return f"kernel={name}, options={self.options}"


def _bind_options(fn: Callable[..., Tensor], options: dict[str, Any], layer_index: int) -> dict:
    """``options`` plus ``layer_index`` where ``fn`` takes it; a one-line TypeError unless
    ``fn(q, k, v, key_padding_mask=, **options)`` binds (the encoder checks kernels alike)."""
    options = dict(options)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to check: pass the options as given
        return options
    p = params.get("layer_index")
    if p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
        options.setdefault("layer_index", layer_index)
    try:
        inspect.signature(fn).bind(None, None, None, key_padding_mask=None, **options)
    except TypeError as err:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(
            f"kernel {name!r} does not accept options {sorted(options)}: {err}"
        ) from None
    return options


# ----------------------------------------------------------------------------- positions


def _position_offset(embeddings: nn.Module) -> int:
    """Rows before the first learned position: ``padding_idx + 1`` for RoBERTa, 0 for BERT."""
    pad = getattr(embeddings, "padding_idx", None)
    return 0 if pad is None else int(pad) + 1


def _extended_table(table: nn.Embedding, offset: int, max_length: int) -> nn.Embedding:
    """A ``max_length + offset`` row copy of ``table``: reserved rows kept, learned rows tiled.

    New token position ``p`` (row ``offset + p``) holds learned position ``p mod P``, the
    Longformer warm start (arXiv 2004.05150, section 5).
    """
    P = table.num_embeddings - offset  # learned positions
    w = table.weight
    new = nn.Embedding(
        max_length + offset,
        table.embedding_dim,
        padding_idx=table.padding_idx,
        device=w.device,
        dtype=w.dtype,
    )
    with torch.no_grad():
        new.weight[:offset] = w[:offset]
        new.weight[offset:] = w[offset:].repeat(math.ceil(max_length / P), 1)[:max_length]
    new.weight.requires_grad_(w.requires_grad)
    return new


def _extended_buffer(name: str, old: Tensor, size: int) -> Tensor:
    """``position_ids`` / ``token_type_ids`` grown along the last dim to ``size``."""
    new = old.new_zeros(*old.shape[:-1], size)
    new[..., : old.shape[-1]] = old
    if name == "position_ids":
        new[..., old.shape[-1] :] = torch.arange(old.shape[-1], size, device=old.device)
    return new


# ----------------------------------------------------------------------------- HF's mask hook


def _hf_padding_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    mask_function: Any = None,
    attention_mask: Tensor | None = None,
    **kwargs: Any,
) -> Tensor | None:
    """transformers' mask interface entry: the 2-D padding mask itself, never ``(B, 1, N, N)``."""
    return attention_mask


def _hf_dense_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """transformers' attention interface entry, for attention modules left unpatched (none in
    a supported encoder): keeps the name valid. Dense SDPA over the 2-D padding mask."""
    if scaling is not None:
        query = query * (scaling * math.sqrt(query.shape[-1]))
    kpm = key_padding_mask(attention_mask, key.shape[0], key.shape[2])
    out = dense_attention(query, key, value, key_padding_mask=kpm)  # (B, H, N, D)
    return out.transpose(1, 2).contiguous(), None


def _register_with_hf() -> bool:
    """Add ``HF_NAME`` to transformers' attention and mask interfaces; False where it has none
    (before 4.48 the layers get a 4-D mask, which ``key_padding_mask`` reads back)."""
    try:
        from transformers.masking_utils import AttentionMaskInterface
        from transformers.modeling_utils import AttentionInterface
    except ImportError:
        return False
    AttentionMaskInterface.register(HF_NAME, _hf_padding_mask)
    AttentionInterface.register(HF_NAME, _hf_dense_attention)
    return True


# ----------------------------------------------------------------------------- patch, restore


@dataclass
class _Patch:
    """What ``restore`` puts back."""

    attention: list[tuple[nn.Module, str, nn.Module]] = field(default_factory=list)
    tables: list[tuple[nn.Module, nn.Embedding]] = field(default_factory=list)
    buffers: list[tuple[nn.Module, str, Tensor]] = field(default_factory=list)
    configs: list[tuple[Any, int, Any]] = field(default_factory=list)  # config, positions, impl


def _find(model: nn.Module) -> tuple[list[tuple[nn.Module, str, nn.Module]], list[nn.Module]]:
    """The supported self-attention modules (with their parents) and the position embeddings.

    Raises:
        ValueError: for unsupported attention modules, decoders or relative positions.
    """
    if any(hasattr(m, _PATCH) or isinstance(m, KernelSelfAttention) for m in model.modules()):
        raise ValueError(f"{type(model).__name__} is already extended; call restore(model) first")
    found, others = [], []
    for parent in model.modules():
        for name, child in parent.named_children():
            cls = type(child).__name__
            if cls in SUPPORTED:
                found.append((parent, name, child))
            elif cls.endswith(("SelfAttention", "CrossAttention")) or all(
                isinstance(getattr(child, a, None), nn.Linear) for a in ("query", "key", "value")
            ):
                others.append(cls)
    supported = ", ".join(SUPPORTED)
    if others or not found:
        seen = ", ".join(sorted(set(others))) or "no attention modules"
        raise ValueError(
            f"extend_attention supports BERT-style encoders ({supported}); "
            f"{type(model).__name__} has {seen}"
        )
    for _, _, m in found:
        if getattr(m, "is_decoder", False) or getattr(m, "is_causal", False):
            raise ValueError(
                f"{type(m).__name__} is a decoder layer; extend_attention supports "
                "bidirectional encoders only"
            )
        kind = getattr(m, "position_embedding_type", "absolute")
        if kind != "absolute" or hasattr(m, "distance_embedding"):
            raise ValueError(
                f"{type(m).__name__} uses {kind} position embeddings; extend_attention "
                "supports absolute positions only"
            )
    embeddings = [
        m
        for m in model.modules()
        if isinstance(getattr(m, "position_embeddings", None), nn.Embedding)
    ]
    return found, embeddings


def _configs(model: nn.Module) -> list[Any]:
    """The distinct HF configs held by ``model``'s modules (one for most models)."""
    seen: dict[int, Any] = {}
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "max_position_embeddings"):
            seen.setdefault(id(cfg), cfg)
    return list(seen.values())


def extend_attention(
    model: nn.Module,
    kernel: str | Callable[..., Tensor] | None = "bigbird",
    *,
    max_length: int | None = None,
    **options: Any,
) -> nn.Module:
    """Run a Hugging Face BERT/RoBERTa encoder on our attention kernels, with longer inputs.

    In place; ``restore(model)`` undoes it. See the module docstring for what changes.

    Args:
        model: a ``transformers`` ``BertModel`` / ``RobertaModel`` or any module holding one
            (a task head, ``takeaways.nn.MiniLMEncoder``).
        kernel: ``"bigbird"``, ``"clustered"``, ``"improved-clustered"``, ``"dense"`` (any
            name in ``takeaways.nn.attention.ATTENTION``, or a kernel callable); ``None``
            keeps HF's attention and only extends the positions.
        max_length: tokens the model should accept; above the learned positions the table
            is extended by copying them (Longformer's rule, arXiv 2004.05150 section 5).
            ``None`` keeps the table.
        **options: kernel options, e.g. ``block_size=64, random_blocks=3, seed=0`` for
            BigBird or ``clusters=25`` for clustered attention. Each layer also gets its
            ``layer_index`` (its own random blocks / hash planes).

    Returns:
        ``model`` itself.

    Raises:
        ValueError: for unsupported attention modules (the message names their class and
            what is supported), a model already extended, ``max_length`` below the learned
            positions, an unknown kernel name, or nothing to do.
        TypeError: if the kernel does not accept ``options``.

    Example:
        >>> extend_attention(model, "bigbird", max_length=4096, block_size=64)
        >>> model(input_ids, attention_mask=mask).last_hidden_state  # (B, N, C), N <= 4096
    """
    if kernel is None and max_length is None:
        raise ValueError("kernel=None and max_length=None change nothing; pass one of them")
    if kernel is None and options:
        raise ValueError(f"kernel=None takes no kernel options, got {sorted(options)}")
    if max_length is not None and (
        not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1
    ):
        raise ValueError(f"max_length must be an int >= 1 or None, got {max_length!r}")
    found, embeddings = _find(model)
    # Check everything before changing anything: a refused call leaves the model as it was.
    layers = []
    if kernel is not None:
        fn = get_attention(kernel)
        for i, (parent, name, original) in enumerate(found):
            layers.append((parent, name, original, _bind_options(fn, options, i)))
    if max_length is not None:
        if not embeddings:
            raise ValueError(
                f"{type(model).__name__} has no position_embeddings to extend; pass max_length=None"
            )
        for emb in embeddings:
            have = emb.position_embeddings.num_embeddings - _position_offset(emb)
            if max_length < have:
                raise ValueError(
                    f"max_length={max_length} is below the model's {have} positions; "
                    f"extend_attention only extends (pass max_length >= {have} or None)"
                )

    patch = _Patch()
    for parent, name, original, opts in layers:
        setattr(parent, name, KernelSelfAttention(original, fn, opts))
        patch.attention.append((parent, name, original))
    configs = _configs(model)
    use_hook = bool(layers) and _register_with_hf()
    for emb in embeddings if max_length is not None else []:
        offset = _position_offset(emb)
        table = emb.position_embeddings
        if table.num_embeddings == max_length + offset:
            continue
        emb.position_embeddings = _extended_table(table, offset, max_length)
        patch.tables.append((emb, table))
        for buf in ("position_ids", "token_type_ids"):
            old = emb._buffers.get(buf)
            if old is not None:
                setattr(emb, buf, _extended_buffer(buf, old, max_length + offset))
                patch.buffers.append((emb, buf, old))
    for cfg in configs:
        impl = getattr(cfg, "_attn_implementation", None)
        patch.configs.append((cfg, cfg.max_position_embeddings, impl))
        if patch.tables:
            offset = _position_offset(patch.tables[0][0])
            cfg.max_position_embeddings = max_length + offset
        if use_hook:  # transformers 5: the layers get the 2-D padding mask, no (B, 1, N, N)
            cfg._attn_implementation = HF_NAME
    setattr(model, _PATCH, patch)
    return model


def restore(model: nn.Module) -> nn.Module:
    """Undo ``extend_attention``: HF's attention modules, position table, buffers and config.

    Weights trained while extended are kept: Q/K/V are the same tensors, and the first rows
    of the extended position table are copied back into the original one.

    Args:
        model: the model passed to ``extend_attention`` (or a module holding it).

    Returns:
        ``model`` itself.

    Raises:
        ValueError: if nothing in ``model`` was extended.
    """
    holders = [m for m in model.modules() if hasattr(m, _PATCH)]
    if not holders:
        raise ValueError(f"{type(model).__name__} was not extended; nothing to restore")
    for holder in holders:
        patch: _Patch = getattr(holder, _PATCH)
        for parent, name, original in patch.attention:
            setattr(parent, name, original)
        for emb, table in patch.tables:
            current = emb.position_embeddings.weight
            table.to(device=current.device, dtype=current.dtype)
            with torch.no_grad():
                table.weight.copy_(current[: table.num_embeddings])
            emb.position_embeddings = table
        for emb, buf, old in patch.buffers:
            setattr(emb, buf, old.to(emb._buffers[buf].device))
        for cfg, positions, impl in patch.configs:
            cfg.max_position_embeddings = positions
            if getattr(cfg, "_attn_implementation", None) != impl:
                cfg._attn_implementation = impl
        delattr(holder, _PATCH)
    return model


@contextlib.contextmanager
def extended_attention(
    model: nn.Module,
    kernel: str | Callable[..., Tensor] | None = "bigbird",
    *,
    max_length: int | None = None,
    **options: Any,
) -> Iterator[nn.Module]:
    """``extend_attention`` for the block, ``restore`` on exit (also on an exception).

    Example:
        >>> with extended_attention(model, "clustered", clusters=25):
        ...     hidden = model(input_ids, attention_mask=mask).last_hidden_state
    """
    extend_attention(model, kernel, max_length=max_length, **options)
    try:
        yield model
    finally:
        restore(model)
