"""Tests for the passkey task: takeaways.data.needle_task and takeaways.nn.passkey."""

from __future__ import annotations

import pytest
import torch

from takeaways import data, nn
from takeaways.data.tasks import NEEDLE_CLS, NEEDLE_MARK, NEEDLE_PAD


def test_needle_task_plants_one_marker_and_its_value():
    x, y = data.needle_task(64, 40, values=5, filler=3, min_len=10, seed=3)
    ids, mask = x["input_ids"], x["attention_mask"]
    assert ids.shape == mask.shape == (64, 40) and y.shape == (64,)
    assert (ids[:, 0] == NEEDLE_CLS).all() and ((y >= 0) & (y < 5)).all()
    assert int(ids.max()) < data.needle_vocab_size(5, 3)
    for row, label, real in zip(ids, y, mask.sum(1)):
        assert 10 <= real <= 40
        assert (row[real:] == NEEDLE_PAD).all() and (row[:real] != NEEDLE_PAD).all()
        (pos,) = (row == NEEDLE_MARK).nonzero()[:, 0].tolist()
        assert 1 <= pos <= real - 2 and row[pos + 1] == 3 + label
        values = (row >= 3) & (row < 8)
        assert values.sum() == 1  # value tokens appear nowhere else
    again, y2 = data.needle_task(64, 40, values=5, filler=3, min_len=10, seed=3)
    assert torch.equal(again["input_ids"], ids) and torch.equal(y2, y)


def test_needle_task_full_length_and_bad_sizes():
    x, _ = data.needle_task(8, 16, seed=0)
    assert x["attention_mask"].all()
    with pytest.raises(ValueError, match="seq_len >= 3"):
        data.needle_task(8, 2)


def test_passkey_classifier_shares_weights_across_kernels():
    torch.manual_seed(0)
    dense = nn.passkey_classifier(max_len=32, values=4, dim=16, heads=2).eval()
    ref = nn.passkey_classifier(max_len=32, values=4, dim=16, heads=2, attention="reference")
    ref.load_state_dict(dense.state_dict())
    x, _ = data.needle_task(3, 32, values=4, min_len=20, seed=1)
    out = dense(**x)
    assert out.shape == (3, 4)
    torch.testing.assert_close(ref.eval()(**x), out, atol=1e-5, rtol=1e-5)


def test_passkey_warm_start_is_seeded_and_learns_something():
    kw = dict(length=16, size=64, epochs=2, values=2, dim=16, batch_size=16, seed=4)
    a, seconds = nn.passkey_warm_start(32, **kw)
    b, _ = nn.passkey_warm_start(32, **kw)
    assert seconds > 0
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    untrained, zero = nn.passkey_warm_start(32, **{**kw, "epochs": 0})
    assert zero == 0.0
    assert not torch.equal(untrained.head.weight, a.head.weight)
    with pytest.raises(ValueError, match="length <= max_len"):
        nn.passkey_warm_start(8, **kw)
