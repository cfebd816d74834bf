"""Attention for long sequences: BigBird block-sparse and clustered attention.

``bigbird_attention`` (arXiv 2007.14062) and ``clustered_attention`` /
``improved_clustered_attention`` (arXiv 2007.04825) take ``q, k, v`` shaped ``(B, H, N, D)``
and an optional bool ``key_padding_mask`` ``(B, N)`` and return ``(B, H, N, D)``. Importing
this package registers them with the encoder as ``attention="bigbird"``, ``"clustered"`` and
``"improved-clustered"`` (see ``takeaways.nn.attention``).

Example:
    >>> from takeaways import nn
    >>> cfg = nn.EncoderConfig(vocab_size=100, max_len=4096, attention="bigbird",
    ...                        attention_options={"block_size": 64})
"""

from takeaways.attention.bigbird import bigbird_attention, bigbird_attention_reference, bigbird_mask
from takeaways.attention.clustered import (
    clustered_attention,
    clustered_attention_reference,
    improved_clustered_attention,
)
from takeaways.nn.attention import ATTENTION, register_attention

__all__ = [
    "bigbird_attention",
    "bigbird_attention_reference",
    "bigbird_mask",
    "clustered_attention",
    "clustered_attention_reference",
    "improved_clustered_attention",
]

for _name, _fn in (
    ("bigbird", bigbird_attention),
    ("clustered", clustered_attention),
    ("improved-clustered", improved_clustered_attention),
):
    if ATTENTION.get(_name) is not _fn:
        register_attention(_name, _fn, overwrite=True)
