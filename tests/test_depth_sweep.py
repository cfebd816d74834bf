"""takeaways.depth.sweep: the LM task and model of a depth sweep, and reading a sweep."""

from __future__ import annotations

import torch

from takeaways.data import train_wordpiece
from takeaways.depth.sweep import best_deeper, frequent_ids, lm_task, shape_lm, summarise_sweep
from takeaways.train import IGNORE_INDEX

TEXTS = [f"the cat number {i} sat on the mat and looked at dog {i % 7}" for i in range(60)]


def _tok():
    return train_wordpiece(TEXTS, vocab_size=80, cache=False)


def test_clm_targets_are_the_next_tokens_and_max_rows_caps():
    tok = _tok()
    x, y = lm_task(tok, TEXTS, 9, objective="clm")
    assert x.shape == y.shape and x.shape[1] == 9
    assert torch.equal(x[:, 1:], y[:, :-1])  # shifted by one within a window
    assert lm_task(tok, TEXTS, 9, max_rows=3)[0].shape[0] == 3


def test_mlm_draws_enough_masked_copies_for_min_rows():
    tok = _tok()
    x, y = lm_task(tok, TEXTS, 8, objective="mlm", min_rows=1000, seed=1)
    rows = x["input_ids"].shape[0]
    assert rows >= 1000 and (y != IGNORE_INDEX).any()
    assert lm_task(tok, TEXTS, 8, objective="mlm")[0]["input_ids"].shape[0] < rows  # one copy


def test_shape_lm_is_causal_for_clm():
    torch.manual_seed(0)
    model = shape_lm(50, 16, 2, 2, max_len=10).eval()
    ids = torch.randint(5, 50, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = 7
    a, b = model(ids), model(changed)
    assert a.shape == (2, 10, 50)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-5)  # the future does not leak back
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def _row(loss: float, spread: float, width: int) -> dict:
    return {"val_loss": loss, "val_loss_range": spread, "width": width}


def test_summarise_sweep_finds_the_best_and_where_deeper_stops_helping():
    rows = {1: _row(5.0, 0.05, 90), 2: _row(4.8, 0.05, 64), 4: _row(4.78, 0.05, 45)}
    s = summarise_sweep(rows, 50_000)
    assert (s["best_depth"], s["best_width"], s["stop_depth"]) == (4, 45, 2)  # 4.8 -> 4.78: noise
    assert abs(s["gap_vs_depth1"] - 0.22) < 1e-9 and s["seed_range"] == 0.05
    assert s["threshold_depth"] > 1
    assert summarise_sweep({1: _row(5.0, 0, 9), 2: _row(4.0, 0, 7)}, 50_000)["stop_depth"] == 2
    assert best_deeper(rows) == 4 and best_deeper({1: rows[1]}) is None


def test_frequent_ids_keeps_the_most_frequent_and_folds_the_rest_into_unk():
    # planted frequencies: id 7 x5, id 9 x4, id 3 x3, id 5 x2, id 8 x1; [UNK] = 1 never occurs
    rows = torch.tensor([[7, 7, 7, 7, 7, 9, 9, 9, 9, 3, 3, 3, 5, 5, 8]])
    lookup = frequent_ids(rows, 4, unk_id=1)
    assert lookup.tolist() == [0, 0, 0, 3, 0, 0, 0, 1, 0, 2]  # [UNK] -> 0, then 7, 9, 3
    assert set(lookup[rows].flatten().tolist()) == {0, 1, 2, 3}
    assert (lookup[rows] == lookup[1]).sum() == 3  # the two 5s and the 8 became [UNK]
