"""Tests for takeaways.data.marked_review_task: long documents of real reviews, one marked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from takeaways import data


@pytest.fixture(scope="module")
def pool():
    reviews = data.load("reviews")
    return reviews.train.x[:600], reviews.train.y[:600], data.minilm_tokenizer()


def test_documents_hold_one_marked_review_whose_label_is_the_label(pool):
    texts, labels, tok = pool
    docs = data.marked_review_task(texts, labels, tok, n=40, length=512, edge=64, seed=3)
    ids = docs.inputs["input_ids"]
    assert ids.shape == (40, 512) and docs.inputs["attention_mask"].all()
    assert (ids[:, 0] == tok.cls_id).all() and (ids[:, -1] == tok.sep_id).all()
    for row, s, e, r, y in zip(ids, docs.start, docs.end, docs.review, docs.labels):
        marks = (row == tok.mask_id).nonzero()[:, 0].tolist()
        assert marks == [s, e - 1]  # exactly one opening and one closing marker
        assert 64 <= s and e + 64 <= 512  # never inside the first or last 64 tokens
        inside = row[s + 1 : e - 1].tolist()
        assert inside == tok.encode(str(texts[r]), max_len=48 + 2)["input_ids"][0, 1:-1].tolist()
        assert y == labels[r] and row[e] == tok.sep_id
    again = data.marked_review_task(texts, labels, tok, n=40, length=512, edge=64, seed=3)
    assert torch.equal(again.inputs["input_ids"], ids) and torch.equal(again.labels, docs.labels)


def test_marker_position_is_uniform_and_labels_are_balanced(pool):
    texts, labels, tok = pool
    n, length, edge = 2000, 2048, 64
    docs = data.marked_review_task(texts, labels, tok, n=n, length=length, edge=edge, seed=0)
    s = docs.start.numpy()
    span = (docs.end - docs.start + 1).numpy()
    # uniform on [edge, length - edge - span]: the share past token 512 is what that predicts
    expected = np.mean((length - edge - span + 1 - 512) / (length - 2 * edge - span + 1))
    assert abs((s >= 512).mean() - expected) < 0.03 and expected > 0.7
    quarters = np.histogram(s, bins=4, range=(edge, length - edge - span.max()))[0]
    assert quarters.min() > 0.8 * n / 4  # no quarter of the document is starved
    assert abs(docs.labels.float().mean().item() - 0.5) < 0.04  # class-balanced by design
    assert len(set(docs.review.tolist())) > 300  # many different marked reviews


def test_bad_sizes_get_one_line_errors(pool):
    texts, labels, tok = pool
    with pytest.raises(ValueError, match="use length >= 180"):
        data.marked_review_task(texts, labels, tok, n=2, length=100, seed=0)
    with pytest.raises(ValueError, match="one label each"):
        data.marked_review_task(texts, labels[:5], tok, n=2, length=512, seed=0)
