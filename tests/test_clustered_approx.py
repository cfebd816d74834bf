"""The clustered-approx recipe: its passages, its retrieval score and its judge on made-up metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from takeaways import data
from takeaways.recipes import clustered_approx as ca
from takeaways.recipes import get_recipe, resolve_config


def _cfg(**over) -> ca.ClusteredConfig:
    return dataclasses.replace(resolve_config(get_recipe("clustered-approx"), "full"), **over)


def test_passages_are_disjoint_full_length_and_spread_through_their_article():
    tok = data.minilm_tokenizer()
    cfg = _cfg(length=40, docs=3, passages_per_doc=4)
    ids, doc = ca._passages(cfg, tok)
    assert ids.shape == (len(doc), 40) and doc.tolist() == sorted(doc.tolist())
    assert set(doc.tolist()) == {0, 1, 2} and np.bincount(doc).max() <= 4
    cls, sep = tok.backend.token_to_id("[CLS]"), tok.backend.token_to_id("[SEP]")
    assert (ids[:, 0] == cls).all() and (ids[:, -1] == sep).all()
    # The first article's passages are its own word pieces, cut at multiples of 38, first to last.
    text = str(data.load("wiki").train.x[0])
    tok.backend.no_truncation()
    pieces = tok.backend.encode(text, add_special_tokens=False).ids
    n = len(pieces) // 38
    starts = np.unique(np.linspace(0, n - 1, min(n, 4)).round()).astype(int) * 38
    expect = [pieces[s : s + 38] for s in starts]
    assert [r[1:-1] for r in ids[doc == 0].tolist()] == expect
    assert starts[-1] == (n - 1) * 38  # the last whole passage is used: spread, not a prefix


def test_hits_and_chance_on_planted_embeddings():
    doc = np.array([0, 0, 1, 1, 2, 2])
    emb = torch.eye(3)[doc] + 0.01 * torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    assert ca._hits(torch.nn.functional.normalize(emb, dim=-1), doc) == [1.0] * 6
    swapped = emb[[0, 2, 1, 3, 4, 5]]  # passages 1 and 2 trade places: their articles miss
    assert ca._hits(torch.nn.functional.normalize(swapped, dim=-1), doc) == [0, 0, 0, 0, 1, 1]
    assert ca._chance(doc) == pytest.approx(1 / 5)


def _diff(mean: float, half: float) -> dict:
    return dict(zip(ca.DIFF_KEYS, (mean, half / 1.96, mean - half, mean + half)))


def _metrics(improved: float, plain: float, dense: float = 0.9, short_gap: float = -0.2) -> dict:
    arm = lambda d: {  # noqa: E731
        "accuracy": [dense + d] * 3,
        **{k: [v] * 3 for k, v in _diff(d, 0.004).items()},
        "cosine_mean": [0.99] * 3,
        "cosine_min": [0.9] * 3,
    }
    return {
        "retrieval": {
            "dense": {"accuracy": dense},
            "dense_first_64_tokens": {"accuracy": dense + short_gap, **_diff(short_gap, 0.03)},
            "improved-clustered": arm(improved),
            "clustered": arm(plain),
        },
        "passages": 700,
        "tokens_per_passage_mean": 512.0,
        "chance_accuracy": 0.011,
        "speed": {"forward_speedup_vs_dense": {"improved-clustered C=25": 0.6}},
    }


def test_judge_meets_the_target_only_when_the_whole_interval_is_within_a_point():
    j = get_recipe("clustered-approx").judge(_metrics(0.0, -0.05), _cfg())
    assert all(c.passed for c in j.checks), [c.detail for c in j.checks if not c.passed]
    improved, plain = j.targets
    assert improved.met and improved.interval == pytest.approx([-0.004, 0.004])
    assert not plain.met and plain.measured == pytest.approx(-0.05)
    assert "1.67x dense SDPA's time" in j.advice
    near = get_recipe("clustered-approx").judge(_metrics(-0.008, -0.05), _cfg())
    assert not near.targets[0].met  # point -0.8 points, but the interval reaches -1.2


def test_judge_checks_fail_where_a_drop_could_not_show():
    m = _metrics(0.0, 0.0, dense=0.995, short_gap=-0.04)
    m["tokens_per_passage_mean"] = 256.0
    j = get_recipe("clustered-approx").judge(m, _cfg())
    failed = {c.name for c in j.checks if not c.passed}
    assert failed == {
        "inputs reach 512 tokens (MiniLM's position limit)",
        "queries per cluster at the largest C=100",  # 2.56 < 5
        "dense retrieval leaves room for a drop",
        "dense on 512 tokens beats dense on the first 64",
    }
