"""takeaways.nn.mlm: BERT's 80/10/10 masking and the gathered MLM logits."""

from __future__ import annotations

import math
import types

import pytest
import torch

from takeaways import data, nn
from takeaways.nn.mlm import (
    GatheredMLM,
    copies_for,
    gathered_logits,
    gathered_logits_reference,
    mask_tokens,
    masked_copies,
    mlm_sets,
    pack_rows,
    plateau_check,
    unigram_loss,
    wiki_rows,
)


def test_mask_tokens_plants_bert_masking():
    g = torch.Generator().manual_seed(0)
    R, N, V, MASK = 4000, 40, 50, 4
    ids = torch.randint(5, V, (R, N), generator=g)
    ids[:, 0] = 2  # a special token ([CLS]) in every row
    inputs, pos, tgt = mask_tokens(
        ids, vocab_size=V, mask_id=MASK, special_ids=(0, 1, 2, 3, 4), rate=0.15, generator=g
    )
    K = round(0.15 * N)
    assert pos.shape == tgt.shape == (R, K)
    assert (pos != 0).all()  # specials are never picked
    assert (pos.diff(dim=1) > 0).all()  # distinct, ascending
    assert torch.equal(tgt, ids.gather(1, pos))  # targets are the original tokens
    changed = inputs != ids
    picked = torch.zeros_like(changed).scatter_(1, pos, True)
    assert not (changed & ~picked).any()  # nothing outside the picked positions moves
    at = inputs.gather(1, pos)
    masked = (at == MASK).float().mean().item()
    kept = (at == tgt).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.01)
    # 10% kept + random draws that hit the same token (1/45 of 10%)
    assert kept == pytest.approx(0.1 + 0.1 / 45, abs=0.01)
    randoms = at[(at != MASK) & (at != tgt)]
    assert randoms.min() >= 5  # random replacements are never special


def test_mask_tokens_pads_short_rows_with_ignore():
    ids = torch.tensor([[2, 7, 3, 0, 0, 0, 0, 0, 0, 0]])  # one real token among specials
    inputs, pos, tgt = mask_tokens(
        ids, vocab_size=20, mask_id=4, special_ids=(0, 1, 2, 3, 4), rate=0.3
    )
    assert pos.shape == (1, 3)
    assert (tgt == 7).sum() == 1 and (tgt == -100).sum() == 2
    assert torch.equal(inputs[ids != 7], ids[ids != 7])  # padding picks leave specials alone


@pytest.mark.parametrize(("B", "N", "K"), [(2, 7, 3), (3, 16, 5), (1, 33, 1)])
def test_gathered_logits_match_the_all_positions_reference(B, N, K):
    torch.manual_seed(B * N)
    mlm = nn.MaskedLM(
        nn.TransformerEncoder(nn.EncoderConfig(vocab_size=41, dim=24, depth=2, heads=3))
    )
    mlm.eval()
    ids = torch.randint(0, 41, (B, N))
    pos = torch.stack([torch.randperm(N)[:K].sort().values for _ in range(B)])
    fast = gathered_logits(mlm, ids, pos)
    assert fast.shape == (B, K, 41)
    torch.testing.assert_close(fast, gathered_logits_reference(mlm, ids, pos), atol=1e-5, rtol=1e-5)
    att = torch.ones(B, N, dtype=torch.long)
    att[0, N // 2 + 1 :] = 0  # a padded row: both paths must see the same mask
    fast = GatheredMLM(mlm)(ids, pos, attention_mask=att)
    ref = gathered_logits_reference(mlm, ids, pos, attention_mask=att)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    if N > 2:  # and the mask matters: a padded key changes the first row's logits
        assert not torch.allclose(fast[0], gathered_logits(mlm, ids, pos)[0], atol=1e-4)


def test_unigram_loss_is_the_cross_entropy_of_training_frequencies():
    train_t = torch.tensor([[1, 1, 1, 2], [2, -100, 3, -100]])  # counts 1:3, 2:2, 3:1 of 6
    val_t = torch.tensor([[1, 3, -100]])
    V = 4
    p = {k: (c + 0.5) / (6 + 0.5 * V) for k, c in {1: 3, 3: 1}.items()}
    want = -(math.log(p[1]) + math.log(p[3])) / 2
    assert unigram_loss(train_t, val_t, V) == pytest.approx(want, abs=1e-12)


def test_pack_rows_joins_documents_with_sep_and_drops_the_short_tail():
    tok = data.train_wordpiece(["alpha beta gamma delta"] * 20, vocab_size=60)
    docs = ["alpha beta", "gamma delta alpha"]
    stream = []
    for d in docs:
        stream += tok.encode([d], max_len=32)["input_ids"][0][1:-1].tolist()  # no [CLS]/[SEP]
        stream.append(tok.sep_id)
    stream = [t for t in stream if t != tok.pad_id]
    rows = pack_rows(tok, docs, 3)
    assert rows.shape == (len(stream) // 3, 3)
    assert rows.flatten().tolist() == stream[: rows.numel()]


def test_masked_copies_are_independent_draws_of_the_same_rows():
    tok = types.SimpleNamespace(vocab_size=50, mask_id=4, special_ids=(0, 1, 2, 3, 4))
    rows = torch.randint(5, 50, (6, 20), generator=torch.Generator().manual_seed(0))
    x, y = masked_copies(tok, rows, 3, 0.15, seed=1)
    assert x["input_ids"].shape == (18, 20) and y.shape == x["positions"].shape == (18, 3)
    for c in range(3):  # every copy's targets are the rows' own tokens
        pos = x["positions"][6 * c : 6 * c + 6]
        assert torch.equal(y[6 * c : 6 * c + 6], rows.gather(1, pos))
    assert not torch.equal(x["positions"][:6], x["positions"][6:12])  # fresh draws
    again, _ = masked_copies(tok, rows, 3, 0.15, seed=1)
    assert torch.equal(again["input_ids"], x["input_ids"])  # seeded


def test_majority_accuracy_is_the_most_frequent_training_target_on_test():
    from takeaways.train import majority_accuracy

    assert majority_accuracy(torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1, 1])) == 0.75
    # masked-token targets: -100 is left out on both sides (the unigram solution's accuracy)
    train_t = torch.tensor([[7, 7, -100], [3, 7, -100]])
    test_t = torch.tensor([[7, -100], [3, -100]])
    assert majority_accuracy(train_t, test_t) == 0.5
    with pytest.raises(ValueError, match="at least one labelled target"):
        majority_accuracy(torch.tensor([-100]), torch.tensor([1]))


def test_mlm_sets_mask_train_copies_and_one_val_draw_with_their_unigram_loss():
    tok = types.SimpleNamespace(vocab_size=50, mask_id=4, special_ids=(0, 1, 2, 3, 4))
    g = torch.Generator().manual_seed(0)
    rows, val = (
        torch.randint(5, 50, (6, 20), generator=g),
        torch.randint(5, 50, (4, 20), generator=g),
    )
    assert copies_for(13, 6) == 3 and copies_for(2, 6) == 1
    train_set, val_set, unigram = mlm_sets(tok, rows, val, samples=13, rate=0.15, seed=1)
    want_train = masked_copies(tok, rows, 3, 0.15, 1)
    want_val = masked_copies(tok, val, 1, 0.15, 10_001)
    assert torch.equal(train_set[0]["input_ids"], want_train[0]["input_ids"])
    assert torch.equal(val_set[1], want_val[1])
    assert unigram == unigram_loss(want_train[1], want_val[1], 50)


def test_wiki_rows_packs_both_splits_with_one_tokenizer():
    tok, rows, val = wiki_rows(256, 16, eval_rows=5)
    wiki = data.load("wiki")
    assert torch.equal(rows, pack_rows(tok, wiki.train.x, 16))
    assert val.shape == (5, 16)
    assert tok.vocab_size == data.train_wordpiece(wiki.train.x, vocab_size=256).vocab_size


def test_plateau_check_needs_the_margin_below_the_unigram_loss():
    assert plateau_check("left", 3.8, 4.0, 0.1).passed
    assert not plateau_check("stuck", 3.95, 4.0, 0.1).passed
    assert not plateau_check("nan", math.nan, 4.0, 0.1).passed
    assert "vs unigram 4.0000" in plateau_check("left", 3.8, 4.0, 0.1).detail
