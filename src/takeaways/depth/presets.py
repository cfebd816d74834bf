"""Known models (BERT, GPT-2, GPT-3, T5) with their shapes and the source of each number.

``KNOWN_MODELS[name]`` holds depth, width, heads, vocabulary, positions and the
published parameter count; ``suggest_architecture(model=name)`` gives the
verdict for each. ``_Model.count()`` recounts the parameters with
``parameter_count``; tests check it against the published headline.
"""

from __future__ import annotations

from dataclasses import dataclass

from takeaways.depth.counting import Head, parameter_count

__all__ = ["KNOWN_MODELS"]


@dataclass(frozen=True)
class _Model:
    depth: int  # layers (per stack for encoder-decoders)
    width: int  # hidden size
    heads: int  # attention heads
    vocab: int  # embedding rows of the released checkpoint
    max_len: int  # learned positions (0: relative)
    published: float  # the paper's headline parameter count
    source: str  # where the shape and the headline come from
    type_vocab: int = 0
    decoder_depth: int = 0
    bias: bool = True
    head: Head = "none"
    ffn_ratio: int = 4

    def count(self) -> int:
        return parameter_count(
            self.depth,
            self.width,
            vocab=self.vocab,
            ffn_ratio=self.ffn_ratio,
            max_len=self.max_len,
            type_vocab=self.type_vocab,
            decoder_depth=self.decoder_depth,
            bias=self.bias,
            head=self.head,
        )


_BERT = "Devlin et al., arXiv 1810.04805, section 3 (L, H, A, total parameters); vocab 30522 and 512 positions from the released uncased checkpoints"
_GPT2 = "Radford et al. 2019, 'Language Models are Unsupervised Multitask Learners', Table 2 (parameters, layers, d_model) and section 2.3 (vocab 50,257, context 1024); heads from the released checkpoints. Table 2's counts are 5-6% below the released checkpoints"
_GPT3 = "Brown et al., arXiv 2005.14165, Table 2.1 (n_params, n_layers, d_model, n_heads); context 2048 and GPT-2's 50,257-token BPE (section 2)"
_T5 = "Raffel et al., arXiv 1910.10683, sections 3.1.1 (Base: 12+12 blocks, d_model 768, d_ff 3072, 12 heads, ~220M) and 3.7 (Small: 6+6 blocks, d_model 512, d_ff 2048, 8 heads, ~60M; Large: 24+24 blocks, d_model 1024, d_ff 4096, 16 heads, ~770M); 32,128 embedding rows in the released checkpoints"

# Known models. The verdict for each comes from suggest_architecture(model=name).
KNOWN_MODELS: dict[str, _Model] = {
    # Devlin et al. sec. 3: BASE L=12, H=768, A=12, 110M; LARGE L=24, H=1024, A=16, 340M.
    "bert-base": _Model(12, 768, 12, 30522, 512, 110e6, _BERT, type_vocab=2, head="pooler"),
    "bert-large": _Model(24, 1024, 16, 30522, 512, 340e6, _BERT, type_vocab=2, head="pooler"),
    # Radford et al. 2019, Table 2: 117M/12/768, 345M/24/1024, 762M/36/1280, 1542M/48/1600;
    # heads 12/16/20/25 from the released checkpoints' configs (the paper does not list them).
    "gpt2": _Model(12, 768, 12, 50257, 1024, 117e6, _GPT2),
    "gpt2-medium": _Model(24, 1024, 16, 50257, 1024, 345e6, _GPT2),
    "gpt2-large": _Model(36, 1280, 20, 50257, 1024, 762e6, _GPT2),
    "gpt2-xl": _Model(48, 1600, 25, 50257, 1024, 1542e6, _GPT2),
    # Brown et al. Table 2.1 (n_params, n_layers, d_model, n_heads), row by row.
    "gpt3-125m": _Model(12, 768, 12, 50257, 2048, 125e6, _GPT3),
    "gpt3-350m": _Model(24, 1024, 16, 50257, 2048, 350e6, _GPT3),
    "gpt3-760m": _Model(24, 1536, 16, 50257, 2048, 760e6, _GPT3),
    # Table 2.1 prints 24 heads of d_head 128 for d_model 2048 (24 x 128 = 3072); kept as printed.
    "gpt3-1.3b": _Model(24, 2048, 24, 50257, 2048, 1.3e9, _GPT3),
    "gpt3-2.7b": _Model(32, 2560, 32, 50257, 2048, 2.7e9, _GPT3),
    "gpt3-6.7b": _Model(32, 4096, 32, 50257, 2048, 6.7e9, _GPT3),
    # Table 2.1 prints d_model = 5140 for 13B; 40 heads x d_head 128 make it 5120.
    "gpt3-13b": _Model(40, 5120, 40, 50257, 2048, 13e9, _GPT3),
    "gpt3-175b": _Model(96, 12288, 96, 50257, 2048, 175e9, _GPT3),
    # Raffel et al. sec. 3.1.1 (Base) and 3.7 (Small, Large); depth is per stack, d_ff = 4 x d_model.
    "t5-small": _Model(6, 512, 8, 32128, 0, 60e6, _T5, decoder_depth=6, bias=False),
    "t5-base": _Model(12, 768, 12, 32128, 0, 220e6, _T5, decoder_depth=12, bias=False),
    "t5-large": _Model(24, 1024, 16, 32128, 0, 770e6, _T5, decoder_depth=24, bias=False),
}
