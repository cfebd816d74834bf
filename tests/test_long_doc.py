"""The long-doc recipe's judge on hand-made metrics: what passes, what fails and why."""

from __future__ import annotations

import dataclasses

from takeaways.recipes import get_recipe, resolve_config


def _judge(m: dict, **over):
    recipe = get_recipe("long-doc")
    cfg = dataclasses.replace(resolve_config(recipe, "full"), **over)
    return recipe.judge(m, cfg)


def _metrics(bigbird: list[float], cut: list[float], oracle: list[float], **over) -> dict:
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    m = {
        "accuracy": {"bigbird": mean(bigbird), "cut": mean(cut), "oracle": mean(oracle)},
        "accuracy_per_seed": {"bigbird": bigbird, "cut": cut, "oracle": oracle},
        "majority_class_test_accuracy": 0.5,
        "fraction_marker_past_cut": 0.76,
        "cut_accuracy_marker_past_cut": 0.51,
        "bigbird_accuracy_marker_past_cut": 0.74,
        "test_docs_marker_past_cut": 450,
        "cut_accuracy_marker_inside_cut": 0.8,
        "test_docs_marker_inside_cut": 150,
        "seconds_per_step": {"bigbird": 6.0, "cut": 1.5, "oracle": 0.2},
    }
    m.update(over)
    return m


def test_a_clear_gain_passes_every_check_and_meets_the_paired_target():
    j = _judge(_metrics([0.75, 0.78, 0.74], [0.58, 0.57, 0.6], [0.8, 0.82, 0.79]))
    assert all(c.passed for c in j.checks), [c.detail for c in j.checks if not c.passed]
    gain, vs_oracle = j.targets
    assert gain.met and gain.interval[0] > 0 and abs(gain.measured - 0.1733) < 1e-3
    assert vs_oracle.met and abs(vs_oracle.measured + 0.0467) < 1e-3  # 0.757 vs 0.803
    assert "extend_attention" in j.advice


def test_no_gain_misses_the_target_with_the_checks_still_holding():
    j = _judge(_metrics([0.58, 0.6, 0.57], [0.58, 0.57, 0.6], [0.8, 0.82, 0.79]))
    assert all(c.passed for c in j.checks)
    assert not j.targets[0].met and j.advice.startswith("Do not expect")


def test_failing_checks_name_what_makes_the_targets_meaningless():
    m = _metrics([0.75, 0.78], [0.58, 0.57], [0.55, 0.56], fraction_marker_past_cut=0.4)
    m["cut_accuracy_marker_past_cut"] = 0.7  # the cut model reads what it cannot see: a leak
    m["cut_accuracy_marker_inside_cut"] = 0.55  # ... and does not find the marker it can see
    j = _judge(m, seeds=2)
    failed = {c.name for c in j.checks if not c.passed}
    assert any("oracle" in n for n in failed)  # 0.555 < 0.5 + 0.10
    assert any("3 seeds" in n for n in failed)
    assert any("half the marked reviews" in n for n in failed)
    assert any("at chance" in n for n in failed)  # 0.7 > 0.5 + 3 * sqrt(0.25 / 450)
    assert any("where it sees it" in n for n in failed)  # 0.55 < 0.5 + 3 * sqrt(0.25 / 150)
    assert len(failed) == 5


def test_a_result_without_the_data_facts_fails_the_checks_that_need_them():
    m = _metrics([0.75, 0.78, 0.74], [0.58, 0.57, 0.6], [0.8, 0.82, 0.79])
    del m["majority_class_test_accuracy"], m["fraction_marker_past_cut"]
    j = _judge(m)
    assert sum(not c.passed for c in j.checks) == 2
    assert all("rerun" in c.detail for c in j.checks if not c.passed)
