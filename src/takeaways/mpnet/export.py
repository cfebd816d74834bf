"""Export a trained encoder + MLM head to Hugging Face ``MPNetForMaskedLM`` (and back).

HF's MPNet (``transformers/models/mpnet/modeling_mpnet.py``) is a single-stream Post-LN
encoder: LayerNorm on the embeddings, LayerNorm after each residual add, no final LayerNorm,
separate q/k/v projections, and one T5 relative-bias table (32 buckets, max distance 128,
both hard-coded in ``compute_position_bias``) shared by all layers. Its position table is
offset by ``padding_idx + 1 = 2``: row ``p + 2`` holds position ``p``, and HF infers positions
from ``input_ids != 1``. So an exact export needs our encoder built in that layout:

    EncoderConfig(..., norm="post", embed_norm=True, rel_buckets=32, rel_max_distance=128)

(``HF_LAYOUT`` holds these options). Everything else is a renaming: our fused ``qkv`` splits
into HF's ``q``, ``k``, ``v``; position rows shift by 2; LayerNorm eps is ours (1e-5).

Our WordPiece ids do not put padding at id 1, so pass HF ``position_ids = arange(N) + 2``
(``hf_position_ids``) when calling the exported model on our ids.

Example:
    >>> hf = to_hf_mpnet(pretrainer.mlm)           # MaskedLM -> MPNetForMaskedLM
    >>> hf(input_ids=ids, attention_mask=att, position_ids=hf_position_ids(ids)).logits
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from takeaways.nn.transformer import EncoderConfig, MaskedLM, TransformerEncoder

__all__ = ["HF_LAYOUT", "from_hf_mpnet", "hf_position_ids", "to_hf_mpnet"]

HF_LAYOUT = {"norm": "post", "embed_norm": True, "rel_buckets": 32, "rel_max_distance": 128}
_OFFSET = 2  # HF's padding_idx (1) + 1: the first real position's row


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


def hf_config(cfg: EncoderConfig) -> Any:
    """The ``transformers.MPNetConfig`` matching our encoder config (built locally, no hub)."""
    _check_layout(cfg)
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


def to_hf_mpnet(mlm: MaskedLM) -> Any:
    """Copy a ``MaskedLM`` over a HF-layout ``TransformerEncoder`` into ``MPNetForMaskedLM``.

    Args:
        mlm: e.g. ``MPNetPretrainer.mlm`` after pre-training.

    Returns:
        A ``transformers.MPNetForMaskedLM`` in eval mode whose logits equal ours.

    Raises:
        ImportError: without transformers (one line naming ``pip install "takeaways[hf]"``).
        ValueError: if the encoder is not in HF's layout (``HF_LAYOUT``).
    """
    cfg = mlm.encoder.config
    hf = _transformers().MPNetForMaskedLM(hf_config(cfg)).eval()
    ours = mlm.state_dict()
    new: dict[str, Tensor] = {hf_key: ours[key] for key, hf_key in _key_map(cfg.depth)}
    C = cfg.dim
    for i in range(cfg.depth):
        for w in ("weight", "bias"):
            qkv = ours[f"encoder.layers.{i}.attn.qkv.{w}"]
            for j, name in enumerate("qkv"):
                new[f"mpnet.encoder.layer.{i}.attention.attn.{name}.{w}"] = qkv[j * C : (j + 1) * C]
    new["lm_head.decoder.bias"] = ours["decoder.bias"]  # HF ties it to lm_head.bias
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
    mlm.load_state_dict(new)
    return mlm.eval()


def hf_position_ids(input_ids: Tensor) -> Tensor:
    """HF position ids ``arange(N) + 2`` for ``(B, N)`` ids whose padding is not id 1."""
    B, N = input_ids.shape
    return (torch.arange(N, device=input_ids.device) + _OFFSET).expand(B, N)
