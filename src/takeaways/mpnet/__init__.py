"""MPNet (Song et al., arXiv 2004.09297): masked and permuted pre-training for any of our encoders.

``MPNetCollator`` permutes and corrupts batches (``permute_and_mask`` is the pure function
under it), ``MPNetPretrainer`` runs two-stream attention with the encoder's own weights and
returns logits of the predicted tokens, and ``to_hf_mpnet`` exports a trained HF-layout
encoder to ``transformers.MPNetForMaskedLM`` (needs ``pip install "takeaways[hf]"``;
``hf_token_ids`` maps our ids to its vocabulary).
``objective="mpnet" | "plm" | "mlm"`` selects the objective in both, from the same code.

Example:
    >>> collate = MPNetCollator(tok, objective="mpnet")
    >>> model = MPNetPretrainer(TransformerEncoder(cfg), objective="mpnet")
    >>> fit(model, collate(ids), epochs=1)
"""

from takeaways.mpnet.collate import MPNetCollator, permute_and_mask
from takeaways.mpnet.export import (
    HF_LAYOUT,
    from_hf_mpnet,
    hf_position_ids,
    hf_token_ids,
    to_hf_mpnet,
)
from takeaways.mpnet.two_stream import MPNetPretrainer, two_stream_masks

__all__ = [
    "HF_LAYOUT",
    "MPNetCollator",
    "MPNetPretrainer",
    "from_hf_mpnet",
    "hf_position_ids",
    "hf_token_ids",
    "permute_and_mask",
    "to_hf_mpnet",
    "two_stream_masks",
]
