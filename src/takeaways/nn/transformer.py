"""A small Pre-LN BERT-style encoder with pluggable attention, plus MLM and classifier heads.

Read top to bottom in build order: ``EncoderConfig -> MultiHeadAttention -> FeedForward ->
Block -> TransformerEncoder -> MaskedLM -> SequenceClassifier``.

The encoder is BERT (arXiv 1810.04805) with the LayerNorm moved in front of each sublayer
(Pre-LN, arXiv 2002.04745) and one final LayerNorm. Pre-LN keeps each ``Block`` a pure
residual unit, ``x -> x + f(x)`` with the output shaped like the input, so a technique can skip
or gate whole blocks in ``encoder.layers`` (progressive layer dropping, arXiv 2010.13369).

Two opt-in layout switches give BERT's / HF MPNet's layout instead (arXiv 2004.09297; used by
``takeaways.mpnet.export``): ``norm="post"`` puts each LayerNorm after its residual add and drops
the final one, ``embed_norm=True`` normalizes the embeddings, and ``rel_buckets > 0`` adds a
T5-style relative position bias (arXiv 1910.10683), one table shared by all layers, to the
attention scores. The defaults leave the Pre-LN encoder and its state_dict keys unchanged.

Attention is a plug-in: ``EncoderConfig.attention`` names a kernel in
``takeaways.nn.attention.ATTENTION`` (or is a callable), and ``attention_options`` are passed
to it on every call. See ``takeaways.nn.attention`` for the calling convention.

Example:
    >>> cfg = EncoderConfig(vocab_size=1000, dim=64, depth=2, heads=4)
    >>> encoder = TransformerEncoder(cfg)
    >>> ids = torch.randint(0, 1000, (2, 10))
    >>> encoder(ids).shape
    torch.Size([2, 10, 64])
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from takeaways.nn.attention import get_attention

__all__ = [
    "Block",
    "EncoderConfig",
    "FeedForward",
    "MaskedLM",
    "MultiHeadAttention",
    "SequenceClassifier",
    "TransformerEncoder",
    "relative_position_bucket",
    "set_attention",
]


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes and choices for ``TransformerEncoder``.

    Raises:
        ValueError: if a size is not positive or ``dim`` is not divisible by ``heads``.
    """

    vocab_size: int  # number of token ids, e.g. ``tokenizer.vocab_size``
    dim: int = 256  # width of the residual stream
    depth: int = 4  # number of Blocks
    heads: int = 4  # attention heads; head size is dim // heads
    ffn_ratio: int = 4  # feed-forward hidden width = ffn_ratio * dim
    max_len: int = 512  # longest sequence the learned position table covers
    dropout: float = 0.1  # on embeddings and on each sublayer's output
    attention: str | Callable[..., Tensor] = "dense"  # ATTENTION key or a kernel callable
    attention_options: dict[str, Any] = field(default_factory=dict)  # extra kernel kwargs
    norm: str = "pre"  # "pre": LN before each sublayer + a final LN; "post": LN after each add
    embed_norm: bool = False  # LayerNorm on token + position embeddings (BERT, HF MPNet)
    rel_buckets: int = 0  # T5 relative-position buckets added to attention scores; 0 = off
    rel_max_distance: int = 128  # distances beyond this share the last bucket (T5, MPNet)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "depth", "heads", "ffn_ratio", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"EncoderConfig.{name} must be a positive int, got {value!r}")
        if self.dim % self.heads != 0:
            raise ValueError(
                f"EncoderConfig.dim={self.dim} must be divisible by heads={self.heads}; "
                f"try dim={self.heads * max(1, round(self.dim / self.heads))}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"EncoderConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"EncoderConfig.norm must be 'pre' or 'post', got {self.norm!r}")
        if self.rel_buckets != 0 and (self.rel_buckets < 4 or self.rel_buckets % 2):
            raise ValueError(
                f"EncoderConfig.rel_buckets must be 0 (off) or an even int >= 4, "
                f"got {self.rel_buckets!r}"
            )
        if self.rel_max_distance < 1:
            raise ValueError(
                f"EncoderConfig.rel_max_distance must be >= 1, got {self.rel_max_distance!r}"
            )


def relative_position_bucket(
    relative_position: Tensor, *, num_buckets: int = 32, max_distance: int = 128
) -> Tensor:
    """T5's bidirectional buckets of ``key_pos - query_pos`` (arXiv 1910.10683), as HF MPNet has them.

    Half the buckets hold keys after the query, half keys before it; within each half, the
    first quarter of buckets are exact distances and the rest grow logarithmically up to
    ``max_distance``, past which all share the last bucket.

    Args:
        relative_position: integer tensor of ``key_pos - query_pos``, any shape.
        num_buckets: even, >= 4.
        max_distance: distance at which the logarithmic buckets stop growing.

    Returns:
        Bucket ids in ``[0, num_buckets)``, the input's shape.
    """
    n = -relative_position
    half = num_buckets // 2
    ret = (n < 0).to(torch.long) * half
    n = n.abs()
    max_exact = half // 2
    is_small = n < max_exact
    # clamp(min=1) only guards log(0) in the branch that is_small discards anyway
    large = max_exact + (
        torch.log(n.clamp(min=1).float() / max_exact)
        / math.log(max_distance / max_exact)
        * (half - max_exact)
    ).to(torch.long)
    large = large.clamp(max=half - 1)
    return ret + torch.where(is_small, n, large)


def _accepts_keyword(fn: Callable[..., Tensor], name: str) -> bool:
    """True if ``fn`` has a parameter ``name`` that can be passed by keyword."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # some builtins have no signature: pass nothing extra
        return False
    p = params.get(name)
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def _accepts_layer_index(fn: Callable[..., Tensor]) -> bool:
    """True if ``fn`` has a parameter named ``layer_index`` that can be passed by keyword."""
    return _accepts_keyword(fn, "layer_index")


def _check_options(fn: Callable[..., Tensor], options: dict[str, Any]) -> None:
    """Raise a one-line TypeError unless ``fn(q, k, v, key_padding_mask=, **options)`` binds."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(None, None, None, key_padding_mask=None, **options)
    except TypeError as err:
        name = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(
            f"attention {name!r} does not accept options {sorted(options)}: {err}"
        ) from None


class MultiHeadAttention(nn.Module):
    """Self-attention that projects to per-head q, k, v and hands them to a kernel.

    Args:
        config: the encoder config (``dim``, ``heads``, ``dropout``, ``attention``, options).
        layer_index: which Block this is; passed to kernels that take ``layer_index``.

    Raises:
        ValueError: for an unknown attention name.
        TypeError: if the kernel does not accept the configured ``attention_options``.
    """

    def __init__(self, config: EncoderConfig, *, layer_index: int = 0) -> None:
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.dim, 3 * config.dim)  # one matmul for q, k and v
        self.proj = nn.Linear(config.dim, config.dim)
        self.drop = nn.Dropout(config.dropout)
        self.layer_index = layer_index
        self.rel_buckets = config.rel_buckets
        self.attention, self.options = self.resolve(config.attention, config.attention_options)

    def resolve(
        self, attention: str | Callable[..., Tensor], options: dict[str, Any]
    ) -> tuple[Callable[..., Tensor], dict[str, Any]]:
        """The kernel and the options this layer would call it with; checked, not applied.

        Adds ``layer_index`` for kernels that take it. ``set_attention`` swaps kernels
        through here, so a swap is checked exactly as construction is.

        Raises:
            ValueError: for an unknown attention name.
            TypeError: if the kernel does not accept ``options`` (or ``attn_bias`` when the
                encoder has ``rel_buckets``).
        """
        fn = get_attention(attention)
        options = dict(options)
        # Inspect once here, not on every forward: only kernels that ask get the layer index.
        if _accepts_layer_index(fn):
            options["layer_index"] = self.layer_index
        _check_options(fn, options)
        if self.rel_buckets and not _accepts_keyword(fn, "attn_bias"):
            name = getattr(fn, "__name__", type(fn).__name__)
            raise TypeError(
                f"attention {name!r} takes no attn_bias, which rel_buckets={self.rel_buckets} "
                "needs; use attention='dense' or 'reference', or set rel_buckets=0"
            )
        return fn, options

    def forward(
        self, x: Tensor, key_padding_mask: Tensor | None = None, attn_bias: Tensor | None = None
    ) -> Tensor:
        """Attend over the sequence.

        Args:
            x: ``(B, N, C)`` hidden states.
            key_padding_mask: bool ``(B, N)``, ``True`` = real token, or ``None``.
            attn_bias: float ``(B or 1, H, N, N)`` added to the attention scores, or ``None``.

        Returns:
            ``(B, N, C)``.
        """
        B, N, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)  # 3 x (B, N, C)
        q = q.view(B, N, self.heads, C // self.heads).transpose(1, 2)  # (B, H, N, D)
        k = k.view(B, N, self.heads, C // self.heads).transpose(1, 2)  # (B, H, N, D)
        v = v.view(B, N, self.heads, C // self.heads).transpose(1, 2)  # (B, H, N, D)
        if attn_bias is None:
            y = self.attention(q, k, v, key_padding_mask=key_padding_mask, **self.options)
        else:
            y = self.attention(
                q, k, v, key_padding_mask=key_padding_mask, attn_bias=attn_bias, **self.options
            )
        if y.shape != q.shape:  # a plug-in kernel got the convention wrong: say so here
            raise ValueError(
                f"attention kernel returned shape {tuple(y.shape)}, expected {tuple(q.shape)}"
            )
        y = y.transpose(1, 2).reshape(B, N, C)  # (B, N, C): heads side by side again
        return self.drop(self.proj(y))  # (B, N, C)


class FeedForward(nn.Module):
    """Position-wise two-layer MLP with GELU, as in BERT.

    Args:
        config: the encoder config (``dim``, ``ffn_ratio``, ``dropout``).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.dim, config.ffn_ratio * config.dim)
        self.proj = nn.Linear(config.ffn_ratio * config.dim, config.dim)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, N, C) -> (B, N, C)``."""
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, N, C)


class Block(nn.Module):
    """One Pre-LN residual unit: ``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``.

    The output has the input's shape, so the block can be skipped (identity) as a whole.
    With ``config.norm="post"`` it is BERT's Post-LN layer instead: ``ln1(x + attn(x))`` then
    ``ln2(x + mlp(x))`` (same modules, so the same state_dict keys).

    Args:
        config: the encoder config.
        layer_index: position of the block in the stack (for per-layer attention patterns).
    """

    def __init__(self, config: EncoderConfig, *, layer_index: int = 0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.dim)
        self.attn = MultiHeadAttention(config, layer_index=layer_index)
        self.ln2 = nn.LayerNorm(config.dim)
        self.mlp = FeedForward(config)
        self.post_norm = config.norm == "post"

    def forward(
        self, x: Tensor, key_padding_mask: Tensor | None = None, attn_bias: Tensor | None = None
    ) -> Tensor:
        """Map ``(B, N, C) -> (B, N, C)``; ``key_padding_mask`` is bool ``(B, N)`` or None.

        ``attn_bias`` (float ``(B or 1, H, N, N)``) is added to the attention scores.
        """
        if self.post_norm:
            x = self.ln1(x + self.attn(x, key_padding_mask, attn_bias))  # (B, N, C)
            return self.ln2(x + self.mlp(x))  # (B, N, C)
        x = x + self.attn(self.ln1(x), key_padding_mask=key_padding_mask, attn_bias=attn_bias)
        x = x + self.mlp(self.ln2(x))  # (B, N, C)
        return x


class TransformerEncoder(nn.Module):
    """Token + learned position embeddings, a stack of Pre-LN Blocks, a final LayerNorm.

    Attributes:
        embed: token embedding ``nn.Embedding(vocab_size, dim)`` (MaskedLM ties to it).
        pos: learned position embedding ``nn.Embedding(max_len, dim)``.
        layers: ``nn.ModuleList`` of ``Block``; techniques attach to it in place.
        norm: the final LayerNorm (Pre-LN leaves the residual stream unnormalized);
            ``nn.Identity`` with ``norm="post"``.
        embed_norm: LayerNorm on the embeddings, or ``nn.Identity`` (the default).
        rel_bias: ``nn.Embedding(rel_buckets, heads)`` shared by all layers, or ``None``.
        dim: the hidden width.

    Args:
        config: sizes and the attention choice.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.dim = config.dim
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        self.pos = nn.Embedding(config.max_len, config.dim)
        # Identity (no parameters, no state_dict keys) unless asked: defaults stay as they were.
        self.embed_norm = nn.LayerNorm(config.dim) if config.embed_norm else nn.Identity()
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(Block(config, layer_index=i) for i in range(config.depth))
        self.norm = nn.LayerNorm(config.dim) if config.norm == "pre" else nn.Identity()
        self.rel_bias = (
            nn.Embedding(config.rel_buckets, config.heads) if config.rel_buckets else None
        )
        self.apply(init_bert_weights)

    def embed_tokens(self, input_ids: Tensor, positions: Tensor) -> Tensor:
        """Token + position embeddings (then ``embed_norm`` and dropout): ``(B, N) -> (B, N, C)``.

        ``positions`` is ``(N,)`` or ``(B, N)``: each token's true position, so a permuted
        sequence (``takeaways.mpnet``) indexes the learned table at the original places.
        """
        x = self.embed(input_ids) + self.pos(positions)  # (B, N, C)
        return self.drop(self.embed_norm(x))  # (B, N, C)

    def position_bias(self, query_pos: Tensor, key_pos: Tensor) -> Tensor | None:
        """Relative position bias ``(B or 1, H, N_q, N_k)`` from true positions, or None if off.

        Args:
            query_pos: ``(N_q,)`` or ``(B, N_q)`` positions of the queries.
            key_pos: ``(N_k,)`` or ``(B, N_k)`` positions of the keys.
        """
        if self.rel_bias is None:
            return None
        rel = key_pos.unsqueeze(-2) - query_pos.unsqueeze(-1)  # (B?, N_q, N_k)
        bucket = relative_position_bucket(
            rel,
            num_buckets=self.config.rel_buckets,
            max_distance=self.config.rel_max_distance,
        )
        bias = self.rel_bias(bucket)  # (B?, N_q, N_k, H)
        bias = bias.movedim(-1, -3)  # (B?, H, N_q, N_k)
        return bias if bias.dim() == 4 else bias.unsqueeze(0)  # (B or 1, H, N_q, N_k)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        *,
        positions: Tensor | None = None,
    ) -> Tensor:
        """Encode a batch of token ids.

        Args:
            input_ids: ``(B, N)`` integer token ids.
            attention_mask: ``(B, N)`` int or bool, nonzero/True = real token; ``None`` = all real.
            positions: ``(B, N)`` or ``(N,)`` true position of each token; ``None`` = 0..N-1.

        Returns:
            ``(B, N, dim)`` hidden states (padding positions hold values; ignore them).

        Raises:
            ValueError: for a wrong shape or ``N > max_len``.
            TypeError: if ``input_ids`` is not an integer tensor.
        """
        mask = check_inputs(input_ids, attention_mask)
        B, N = input_ids.shape
        if N > self.config.max_len:
            raise ValueError(
                f"sequence length {N} exceeds max_len {self.config.max_len}; truncate the "
                "inputs or build the encoder with a larger EncoderConfig.max_len"
            )
        if positions is None:
            positions = torch.arange(N, device=input_ids.device)  # (N,)
        x = self.embed_tokens(input_ids, positions)  # (B, N, C)
        bias = self.position_bias(positions, positions)  # (B or 1, H, N, N) or None
        for block in self.layers:
            if bias is None:
                x = block(x, key_padding_mask=mask)  # (B, N, C)
            else:
                x = block(x, key_padding_mask=mask, attn_bias=bias)  # (B, N, C)
        return self.norm(x)  # (B, N, C)


@contextlib.contextmanager
def set_attention(
    model: nn.Module, attention: str | Callable[..., Tensor], **options: Any
) -> Iterator[nn.Module]:
    """Run the block with every attention layer of ``model`` calling another kernel.

    Attaches in place (no copy, no subclass): each ``MultiHeadAttention`` inside ``model``
    calls ``attention`` with ``options`` (plus its own ``layer_index`` when the kernel takes
    one), checked as ``EncoderConfig`` checks them, so a bad option fails before anything is
    swapped. The previous kernels and options come back when the block exits, also on an
    exception. The weights are untouched: this evaluates a trained model under an
    approximate kernel (arXiv 2007.04825 swaps clustered attention into a trained RoBERTa).

    Args:
        model: any module holding ``MultiHeadAttention`` layers (an encoder, a classifier).
        attention: an ``ATTENTION`` name or a kernel callable.
        **options: keyword options for the kernel, e.g. ``clusters=25``.

    Yields:
        ``model``.

    Raises:
        ValueError: for an unknown attention name, or a model without attention layers.
        TypeError: if the kernel does not accept ``options``.

    Example:
        >>> with set_attention(classifier, "clustered", clusters=25):
        ...     logits = classifier(ids)
    """
    layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no MultiHeadAttention layers to swap; "
            "pass a model built from takeaways.nn.TransformerEncoder"
        )
    swapped = [layer.resolve(attention, options) for layer in layers]  # check all first
    saved = [(layer.attention, layer.options) for layer in layers]
    try:
        for layer, (fn, opts) in zip(layers, swapped):
            layer.attention, layer.options = fn, opts
        yield model
    finally:
        for layer, (fn, opts) in zip(layers, saved):
            layer.attention, layer.options = fn, opts


def init_bert_weights(module: nn.Module) -> None:
    """BERT's init: normal(0, 0.02) weights, zero biases, unit LayerNorm (arXiv 1810.04805)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def check_inputs(input_ids: Tensor, attention_mask: Tensor | None) -> Tensor | None:
    """Validate ``(input_ids, attention_mask)`` and return the mask as bool ``(B, N)``.

    Every encoder here (and ``nn.minilm``'s wrapper) checks its inputs with it, so they all
    refuse bad input with the same one-line errors.

    Raises:
        TypeError: if ``input_ids`` is not an integer tensor.
        ValueError: for a wrong shape.
    """
    if not isinstance(input_ids, Tensor) or input_ids.dtype.is_floating_point:
        kind = input_ids.dtype if isinstance(input_ids, Tensor) else type(input_ids).__name__
        raise TypeError(f"input_ids must be an integer tensor (B, N), got {kind}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be 2-D (B, N), got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        return None
    if attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} must equal input_ids shape "
            f"{tuple(input_ids.shape)}"
        )
    return attention_mask != 0  # (B, N) bool, True = real token


def _token_embedding(encoder: nn.Module) -> nn.Embedding:
    """The encoder's token embedding: ``.embed`` (ours) or ``.embeddings`` (MiniLM wrapper)."""
    for name in ("embed", "embeddings"):
        emb = getattr(encoder, name, None)
        if isinstance(emb, nn.Embedding):
            return emb
    raise TypeError(
        f"{type(encoder).__name__} exposes no token embedding; give it an nn.Embedding "
        "attribute .embed or .embeddings, or pass vocab_size= and tie_weights=False"
    )


def _encoder_dim(encoder: nn.Module) -> int:
    dim = getattr(encoder, "dim", None)
    if not isinstance(dim, int):
        raise TypeError(
            f"{type(encoder).__name__} must expose its hidden width as an int attribute .dim"
        )
    return dim


class MaskedLM(nn.Module):
    """Masked-language-model head over any encoder: BERT's transform + a tied decoder.

    Args:
        encoder: a module called as ``encoder(input_ids, attention_mask=...) -> (B, N, C)``
            that exposes ``.dim`` and (for tying) an ``nn.Embedding`` at ``.embed`` or
            ``.embeddings``.
        tie_weights: share the decoder matrix with the token embedding (as BERT does).
        vocab_size: needed only when the encoder has no token embedding to read it from.
        init: ``"bert"`` draws the head's weights as BERT does (``init_bert_weights``);
            ``"torch"`` keeps PyTorch's default ``nn.Linear`` init of the transform (drawn
            as it is built, before the decoder) with a zero decoder bias.

    Raises:
        TypeError: if the encoder lacks ``.dim`` or (with tying) a token embedding.

    Example:
        >>> mlm = MaskedLM(TransformerEncoder(EncoderConfig(vocab_size=100, dim=32, heads=2)))
        >>> mlm(input_ids=torch.randint(0, 100, (2, 8))).shape
        torch.Size([2, 8, 100])
    """

    def __init__(
        self,
        encoder: nn.Module,
        *,
        tie_weights: bool = True,
        vocab_size: int | None = None,
        init: Literal["bert", "torch"] = "bert",
    ) -> None:
        super().__init__()
        if init not in ("bert", "torch"):
            raise ValueError(f"init must be 'bert' or 'torch'; got {init!r}")
        self.encoder = encoder
        dim = _encoder_dim(encoder)
        if tie_weights or vocab_size is None:
            vocab_size = _token_embedding(encoder).num_embeddings
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.decoder = nn.Linear(dim, vocab_size)
        if init == "bert":
            self.transform.apply(init_bert_weights)
            self.decoder.apply(init_bert_weights)
        else:
            nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            # The same Parameter object: the embedding learns from the output side too.
            self.decoder.weight = _token_embedding(encoder).weight

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Return vocabulary logits ``(B, N, V)`` for every position."""
        h = self.encoder(input_ids, attention_mask=attention_mask)  # (B, N, C)
        return self.decoder(self.transform(h))  # (B, N, V)


def mean_pool(h: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Mean of ``h (B, N, C)`` over each row's real positions (all of them without a mask).

    Padding positions carry values too; they get weight 0 so padding never moves the mean.
    """
    if attention_mask is None:
        return h.mean(dim=1)  # (B, C)
    w = (attention_mask != 0).to(h.dtype).unsqueeze(-1)  # (B, N, 1)
    return (h * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)  # (B, C)


class SequenceClassifier(nn.Module):
    """Classify whole sequences from a pooled encoder output.

    Args:
        encoder: a module called as ``encoder(input_ids, attention_mask=...) -> (B, N, C)``
            that exposes ``.dim`` (``TransformerEncoder`` or ``MiniLMEncoder``).
        num_classes: number of output logits ``C``.
        pooling: ``"cls"`` takes position 0; ``"mean"`` averages the real (unmasked) positions.
        dropout: dropout on the pooled vector.

    Raises:
        ValueError: for an unknown pooling or ``num_classes < 1``.
        TypeError: if the encoder lacks ``.dim``.

    Example:
        >>> clf = SequenceClassifier(TransformerEncoder(EncoderConfig(vocab_size=100)), 2)
        >>> clf(input_ids=torch.randint(0, 100, (4, 12))).shape
        torch.Size([4, 2])
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        *,
        pooling: str = "cls",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"unknown pooling {pooling!r}; known: cls, mean")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.encoder = encoder
        self.pooling = pooling
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(_encoder_dim(encoder), num_classes)
        self.head.apply(init_bert_weights)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Return class logits ``(B, num_classes)``."""
        h = self.encoder(input_ids, attention_mask=attention_mask)  # (B, N, C)
        if self.pooling == "cls":
            pooled = h[:, 0]  # (B, C)
        else:
            pooled = mean_pool(h, attention_mask)  # (B, C)
        return self.head(self.drop(pooled))  # (B, num_classes)
