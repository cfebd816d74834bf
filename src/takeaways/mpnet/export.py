"""Export a trained encoder + MLM head to Hugging Face ``MPNetForMaskedLM`` (and back).

HF's MPNet (``transformers/models/mpnet/modeling_mpnet.py``) is a single-stream Post-LN
encoder: LayerNorm on the embeddings, LayerNorm after each residual add, no final LayerNorm,
separate q/k/v projections, and one T5 relative-bias table (32 buckets, max distance 128,
both hard-coded in ``compute_position_bias``) shared by all layers. Its position table is
offset by ``padding_idx + 1 = 2``: row ``p + 2`` holds position ``p``. So an exact export
needs our encoder built in that layout:

    EncoderConfig(..., norm="post", embed_norm=True, rel_buckets=32, rel_max_distance=128)

(``HF_LAYOUT`` holds these options). Everything else is a renaming: our fused ``qkv`` splits
into HF's ``q``, ``k``, ``v``; position rows shift by 2; LayerNorm eps is ours (1e-5).

Padding is the one thing to remap. HF MPNet fixes its padding id at 1 (``padding_idx = 1`` in
its embeddings, whatever the config says) and, called without ``position_ids``, numbers the
tokens ``!= 1`` from 2. Our tokenizers put [PAD] at 0 and [UNK] at 1, so on our ids every
[UNK] would be taken for padding and every token after it shifted one position. The export
therefore swaps token ids 1 and ``pad_id`` (rows of the embedding, the tied decoder and its
bias): in the exported vocabulary id 1 is our [PAD] (``config.pad_token_id = 1``) and
``pad_id`` is our id-1 token. ``hf_token_ids`` applies the swap (its own inverse) to inputs,
predicted ids and the logits' last dimension; ``from_hf_mpnet`` swaps back, reading ``pad_id``
from the exported config.

Example:
    >>> hf = to_hf_mpnet(pretrainer.mlm, pad_id=tok.pad_id)  # MaskedLM -> MPNetForMaskedLM
    >>> logits = hf(input_ids=hf_token_ids(ids), attention_mask=att).logits
    >>> logits = logits[..., hf_token_ids(torch.arange(logits.shape[-1]))]  # our vocab order
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from takeaways.nn.transformer import EncoderConfig, MaskedLM, TransformerEncoder

__all__ = [
    "HF_LAYOUT",
    "from_hf_mpnet",
    "hf_position_ids",
    "hf_token_ids",
    "to_hf_mpnet",
]

HF_LAYOUT = {"norm": "post", "embed_norm": True, "rel_buckets": 32, "rel_max_distance": 128}
_HF_PAD = 1  # HF MPNet's padding id, fixed in its embeddings (not read from the config)
_OFFSET = _HF_PAD + 1  # the first real position's row
_PAD_ID_KEY = "takeaways_pad_id"  # config key: our [PAD] id, swapped with id 1 on export


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ImportError(
            'MPNet export needs transformers; install it with pip install "takeaways[hf]"'
        ) from None
    return transformers


def _check_layout(cfg: EncoderConfig) -> None:
    wrong = {k: getattr(cfg, k) for k, v in HF_LAYOUT.items() if getattr(cfg, k) != v}
    if cfg.attention not in ("dense", "reference"):
        wrong["attention"] = cfg.attention
    if wrong:
        raise ValueError(
            f"encoder is not in HF MPNet's layout ({wrong}); build it with "
            f"EncoderConfig(..., **takeaways.mpnet.HF_LAYOUT) and attention='dense'"
        )


def _check_pad_id(pad_id: int, vocab_size: int) -> None:
    if not isinstance(pad_id, int) or not 0 <= pad_id < vocab_size:
        raise ValueError(
            f"pad_id must be a token id in [0, {vocab_size}), got {pad_id!r}; pass the "
            "tokenizer's pad_id (0 for takeaways.data tokenizers)"
        )


def hf_config(cfg: EncoderConfig, *, pad_id: int = 0) -> Any:
    """The ``transformers.MPNetConfig`` matching our encoder config (built locally, no hub).

    ``pad_token_id`` is HF's fixed padding id 1, which the export gives our [PAD] (``pad_id``,
    recorded as ``takeaways_pad_id`` for ``from_hf_mpnet``); bos/eos are left unset, since
    the encoder does not know which of its ids play those parts.
    """
    _check_layout(cfg)
    _check_pad_id(pad_id, cfg.vocab_size)
    return _transformers().MPNetConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.dim,
        num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.ffn_ratio * cfg.dim,
        hidden_act="gelu",
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=0.0,  # our attention has no dropout on the weights
        max_position_embeddings=cfg.max_len + _OFFSET,
        relative_attention_num_buckets=cfg.rel_buckets,
        layer_norm_eps=1e-5,  # torch's LayerNorm default, which ours use
        pad_token_id=_HF_PAD,  # our [PAD], after the swap
        bos_token_id=None,
        eos_token_id=None,
        **{_PAD_ID_KEY: pad_id},
    )


def _swap(pad_id: int, vocab_size: int) -> Tensor:
    """The permutation of ``range(vocab_size)`` that swaps ids 1 and ``pad_id`` (self-inverse)."""
    order = torch.arange(vocab_size)
    order[[_HF_PAD, pad_id]] = order[[pad_id, _HF_PAD]]
    return order


_VOCAB_ROWS = (  # HF weights with one row per token id
    "mpnet.embeddings.word_embeddings.weight",
    "lm_head.decoder.weight",
    "lm_head.bias",
    "lm_head.decoder.bias",
)


def _key_map(depth: int) -> list[tuple[str, str]]:
    """(our MaskedLM key, HF MPNetForMaskedLM key) for every one-to-one weight."""
    pairs = [
        ("encoder.embed.weight", "mpnet.embeddings.word_embeddings.weight"),
        ("encoder.embed_norm.weight", "mpnet.embeddings.LayerNorm.weight"),
        ("encoder.embed_norm.bias", "mpnet.embeddings.LayerNorm.bias"),
        ("encoder.rel_bias.weight", "mpnet.encoder.relative_attention_bias.weight"),
        ("transform.0.weight", "lm_head.dense.weight"),
        ("transform.0.bias", "lm_head.dense.bias"),
        ("transform.2.weight", "lm_head.layer_norm.weight"),
        ("transform.2.bias", "lm_head.layer_norm.bias"),
        ("decoder.weight", "lm_head.decoder.weight"),
        ("decoder.bias", "lm_head.bias"),
    ]
    for i in range(depth):
        ours, hf = f"encoder.layers.{i}", f"mpnet.encoder.layer.{i}"
        for w in ("weight", "bias"):
            pairs += [
                (f"{ours}.attn.proj.{w}", f"{hf}.attention.attn.o.{w}"),
                (f"{ours}.ln1.{w}", f"{hf}.attention.LayerNorm.{w}"),
                (f"{ours}.mlp.fc.{w}", f"{hf}.intermediate.dense.{w}"),
                (f"{ours}.mlp.proj.{w}", f"{hf}.output.dense.{w}"),
                (f"{ours}.ln2.{w}", f"{hf}.output.LayerNorm.{w}"),
            ]
    return pairs


def to_hf_mpnet(mlm: MaskedLM, *, pad_id: int = 0) -> Any:
    """Copy a ``MaskedLM`` over a HF-layout ``TransformerEncoder`` into ``MPNetForMaskedLM``.

    Token ids 1 and ``pad_id`` trade places in the exported vocabulary, so HF's fixed padding
    id 1 is our [PAD] and HF infers positions correctly without ``position_ids``.

    Args:
        mlm: e.g. ``MPNetPretrainer.mlm`` after pre-training.
        pad_id: the [PAD] id of the tokenizer the model was trained with (``tok.pad_id``).

    Returns:
        A ``transformers.MPNetForMaskedLM`` in eval mode. On right-padded ``(B, N)`` ids,
        ``hf(input_ids=hf_token_ids(ids, pad_id=pad_id), attention_mask=att).logits`` are ours
        at every real token, with the last dimension in the swapped order (index it with
        ``hf_token_ids(torch.arange(V), pad_id=pad_id)`` for ours).

    Raises:
        ImportError: without transformers (one line naming ``pip install "takeaways[hf]"``).
        ValueError: if the encoder is not in HF's layout (``HF_LAYOUT``), or ``pad_id`` is
            not a token id.
    """
    cfg = mlm.encoder.config
    hf = _transformers().MPNetForMaskedLM(hf_config(cfg, pad_id=pad_id)).eval()
    ours = mlm.state_dict()
    new: dict[str, Tensor] = {hf_key: ours[key] for key, hf_key in _key_map(cfg.depth)}
    C = cfg.dim
    for i in range(cfg.depth):
        for w in ("weight", "bias"):
            qkv = ours[f"encoder.layers.{i}.attn.qkv.{w}"]
            for j, name in enumerate("qkv"):
                new[f"mpnet.encoder.layer.{i}.attention.attn.{name}.{w}"] = qkv[j * C : (j + 1) * C]
    new["lm_head.decoder.bias"] = ours["decoder.bias"]  # HF ties it to lm_head.bias
    order = _swap(pad_id, cfg.vocab_size)
    for key in _VOCAB_ROWS:
        new[key] = new[key][order]  # (V, ...) rows in the exported vocabulary's order
    pos = ours["encoder.pos.weight"]  # (max_len, C)
    new["mpnet.embeddings.position_embeddings.weight"] = torch.cat(
        [torch.zeros(_OFFSET, C, dtype=pos.dtype), pos]
    )
    missing, unexpected = hf.load_state_dict(new, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:  # our map is incomplete for this transformers version
        raise RuntimeError(
            f"HF MPNet weights not mapped: missing {missing}, unexpected {unexpected}"
        )
    return hf


def from_hf_mpnet(hf: Any) -> MaskedLM:
    """The inverse of ``to_hf_mpnet``: an ``MPNetForMaskedLM`` -> our ``MaskedLM`` (HF layout).

    ``max_len`` is HF's ``max_position_embeddings - 2``; dropout is taken from the config.
    A model ``to_hf_mpnet`` exported gets its ids 1 and ``pad_id`` swapped back; any other
    keeps HF's vocabulary order (padding at 1: pass ``attention_mask`` as usual).
    """
    c = hf.config
    if c.relative_attention_num_buckets != 32:
        raise ValueError(
            "HF MPNet always buckets with 32; relative_attention_num_buckets must be 32"
        )
    cfg = EncoderConfig(
        vocab_size=c.vocab_size,
        dim=c.hidden_size,
        depth=c.num_hidden_layers,
        heads=c.num_attention_heads,
        ffn_ratio=c.intermediate_size // c.hidden_size,
        max_len=c.max_position_embeddings - _OFFSET,
        dropout=c.hidden_dropout_prob,
        **HF_LAYOUT,
    )
    if cfg.ffn_ratio * cfg.dim != c.intermediate_size:
        raise ValueError("intermediate_size must be a multiple of hidden_size to import")
    mlm = MaskedLM(TransformerEncoder(cfg))
    theirs = hf.state_dict()
    new = {key: theirs[hf_key] for key, hf_key in _key_map(cfg.depth)}
    for i in range(cfg.depth):
        for w in ("weight", "bias"):
            new[f"encoder.layers.{i}.attn.qkv.{w}"] = torch.cat(
                [theirs[f"mpnet.encoder.layer.{i}.attention.attn.{n}.{w}"] for n in "qkv"]
            )
    new["encoder.pos.weight"] = theirs["mpnet.embeddings.position_embeddings.weight"][_OFFSET:]
    order = _swap(getattr(c, _PAD_ID_KEY, _HF_PAD), cfg.vocab_size)
    for key in ("encoder.embed.weight", "decoder.weight", "decoder.bias"):
        new[key] = new[key][order]
    mlm.load_state_dict(new)
    return mlm.eval()


def hf_token_ids(ids: Tensor, *, pad_id: int = 0) -> Tensor:
    """Our token ids in ``to_hf_mpnet``'s exported vocabulary: ids 1 and ``pad_id`` swapped.

    The swap is its own inverse, so the same call maps the exported model's predicted ids back
    to ours, and ``logits[..., hf_token_ids(torch.arange(V))]`` reorders its logits to ours.

    Args:
        ids: integer tensor of any shape.
        pad_id: the ``pad_id`` given to ``to_hf_mpnet``.

    Returns:
        A new tensor shaped like ``ids``.
    """
    out = ids.clone()
    out[ids == _HF_PAD] = pad_id
    out[ids == pad_id] = _HF_PAD
    return out


def hf_position_ids(input_ids: Tensor) -> Tensor:
    """HF position ids ``arange(N) + 2``, as our encoder numbers ``(B, N)`` ids.

    Only needed where HF's inferred positions differ from ours: inputs padded on the left
    (HF skips padding when it counts) or ids not remapped with ``hf_token_ids``.
    """
    B, N = input_ids.shape
    return (torch.arange(N, device=input_ids.device) + _OFFSET).expand(B, N)
