"""Tests for the recall task: takeaways.data.recall_task / recall_window and takeaways.nn.recall."""

from __future__ import annotations

import pytest
import torch

from takeaways import data, nn, train
from takeaways.data.tasks import RECALL_KEY, RECALL_QUERY


def test_recall_task_plants_key_value_and_query_outside_the_edges():
    n, N, edge, values, filler = 400, 120, 16, 5, 3
    r = data.recall_task(n, N, values=values, filler=filler, value_rate=0.3, edge=edge, seed=3)
    ids = r.inputs["input_ids"]
    assert ids.shape == (n, N) and r.inputs["attention_mask"].all()
    assert int(ids.min()) >= 1 and int(ids.max()) < data.recall_vocab_size(values, filler)
    rows = torch.arange(n)
    assert ((ids == RECALL_KEY).sum(1) == 1).all() and ((ids == RECALL_QUERY).sum(1) == 1).all()
    assert torch.equal((ids == RECALL_KEY).int().argmax(1), r.key)
    assert torch.equal((ids == RECALL_QUERY).int().argmax(1), r.query)
    assert torch.equal(ids[rows, r.key + 1], 3 + r.labels)  # the value follows its key
    for pos in (r.key, r.key + 1, r.query):  # never in the first or last `edge` tokens
        assert (pos >= edge).all() and (pos < N - edge).all()
    # Positions are spread over the whole allowed span, the query on both sides of the key.
    assert r.key.min() == edge and r.query.max() == N - edge - 1
    assert (r.query < r.key).any() and (r.query > r.key + 1).any()
    assert set(r.labels.tolist()) == set(range(values))
    # Distractors: value tokens elsewhere in the haystack, at about value_rate.
    is_value = (ids >= 3) & (ids < 3 + values)
    is_value[rows, r.key + 1] = False
    assert 0.25 < is_value.float().mean() < 0.35
    same = (ids == (3 + r.labels)[:, None]).sum(1) - 1  # copies of the answer elsewhere
    assert (same > 0).float().mean() > 0.9
    again = data.recall_task(n, N, values=values, filler=filler, value_rate=0.3, edge=edge, seed=3)
    assert torch.equal(again.inputs["input_ids"], ids) and torch.equal(again.labels, r.labels)


def test_recall_task_value_is_unique_without_distractors():
    r = data.recall_task(64, 300, values=8, filler=4, edge=20, seed=0)  # value_rate 0
    ids = r.inputs["input_ids"]
    assert (((ids >= 3) & (ids < 11)).sum(1) == 1).all()


def test_recall_task_bad_sizes():
    with pytest.raises(ValueError, match="seq_len >= 35"):
        data.recall_task(4, 34, edge=16)
    with pytest.raises(ValueError, match="value_rate"):
        data.recall_task(4, 64, value_rate=1.5)


def test_recall_window_keeps_the_tokens_around_the_query_with_true_positions():
    r = data.recall_task(300, 200, values=4, edge=8, seed=1)
    x, y = data.recall_window(r, 64)
    pos, ids = x["positions"], x["input_ids"]
    assert ids.shape == pos.shape == (300, 64) and torch.equal(y, r.labels)
    assert torch.equal(ids, r.inputs["input_ids"].gather(1, pos))
    assert (pos[:, 1:] - pos[:, :-1] == 1).all() and (pos >= 0).all() and (pos < 200).all()
    assert ((ids == RECALL_QUERY).sum(1) == 1).all()  # the query is always kept
    centred = (r.query >= 32) & (r.query < 200 - 32)
    assert torch.equal(pos[centred, 0], r.query[centred] - 32)
    inside = (r.key >= pos[:, 0]) & (r.key + 1 <= pos[:, -1])
    assert 0.2 < inside.float().mean() < 0.55  # ~64/200 of keys, more near the ends
    with pytest.raises(ValueError, match="keep must be"):
        data.recall_window(r, 201)


def test_recall_reader_reads_at_the_query_marker():
    torch.manual_seed(0)
    model = nn.recall_reader(max_len=64, values=4, filler=3, dim=16, depth=2, heads=2).eval()
    r = data.recall_task(3, 40, values=4, filler=3, seed=2)
    h = model.encoder(r.inputs["input_ids"])
    expected = model.head(h[torch.arange(3), r.query])
    torch.testing.assert_close(model(**r.inputs), expected)
    ref = nn.recall_reader(max_len=64, values=4, filler=3, dim=16, depth=2, heads=2,
                           attention="reference")  # fmt: skip
    ref.load_state_dict(model.state_dict())
    torch.testing.assert_close(ref.eval()(**r.inputs), expected, atol=1e-5, rtol=1e-5)
    shifted = {**r.inputs, "positions": torch.arange(40) + 10}  # true positions move the output
    assert not torch.allclose(model(**shifted), expected)


def test_recall_warm_start_is_seeded_and_learns_at_random_offsets():
    kw = dict(length=32, size=512, epochs=3, values=4, filler=4, dim=32, depth=2, seed=1)
    a, seconds = nn.recall_warm_start(128, lr=3e-3, batch_size=32, **kw)
    b, _ = nn.recall_warm_start(128, lr=3e-3, batch_size=32, **kw)
    assert seconds > 0
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    test = data.recall_task(256, 32, values=4, filler=4, seed=9)
    far = {**test.inputs, "positions": (torch.arange(32) + 90).expand(256, 32)}
    acc = train.evaluate(a, (far, test.labels))["accuracy"]
    assert acc > 0.6  # chance is 0.25
    with pytest.raises(ValueError, match="length <= max_len"):
        nn.recall_warm_start(16, **kw)
