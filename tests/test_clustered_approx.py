"""The clustered-approx recipe through the registry: its passages (facts) and its judge on made-up metrics."""

from __future__ import annotations

import dataclasses

import pytest

from takeaways import data
from takeaways.recipes import get_recipe, resolve_config

DIFF_KEYS = ("diff_vs_dense", "diff_se", "diff_ci_lo", "diff_ci_hi")  # a stored paired diff


def _cfg(**over):
    return dataclasses.replace(resolve_config(get_recipe("clustered-approx"), "full"), **over)


def test_facts_count_the_passages_each_article_gives():
    # Counted here from the word pieces: an article of n whole 38-piece passages (40 tokens
    # with [CLS] and [SEP]) gives min(n, 4); articles with fewer than 2 are skipped.
    tok = data.minilm_tokenizer()
    tok.backend.no_truncation()
    wiki = data.load("wiki")
    counts = []
    for text in [*wiki.train.x, *wiki.test.x]:
        n = len(tok.backend.encode(str(text), add_special_tokens=False).ids) // 38
        if n >= 2:
            counts.append(min(n, 4))
        if len(counts) == 3:
            break
    facts = get_recipe("clustered-approx").facts(_cfg(length=40, docs=3, passages_per_doc=4))
    total = sum(counts)
    chance = sum(c * (c - 1) for c in counts) / total / (total - 1)
    assert facts == {
        "passages": total,
        "articles": 3,
        "tokens_per_passage_mean": 40.0,
        "chance_accuracy": pytest.approx(chance),
    }


def _diff(mean: float, half: float) -> dict:
    return dict(zip(DIFF_KEYS, (mean, half / 1.96, mean - half, mean + half)))


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
