"""Result records: targets compute 'met' from numbers, JSON is atomic and round-trips."""

from __future__ import annotations

import json
import math

import pytest

from takeaways.results import (
    NOT_EVIDENCE,
    Check,
    Claim,
    Result,
    Target,
    bar_plot,
    line_plot,
    mean_se,
    mean_std,
    paired_diff,
    read_result,
    series,
    stored_float,
    verdict_of,
    write_result,
)


def test_target_check_ops():
    assert Target.check("acc", 0.96, ">=", 0.95).met
    assert not Target.check("acc", 0.94, ">=", 0.95).met
    assert Target.check("time", 10.0, "<=", 30.0).met
    assert not Target.check("ratio", 2.0, ">", 2.0).met
    assert not Target.check("nan", float("nan"), "<=", 1.0).met
    with pytest.raises(ValueError, match="op must be one of"):
        Target.check("x", 1.0, "==", 1.0)


def test_verdict_counts_targets():
    t, f = Target.check("a", 1, ">=", 0), Target.check("b", 0, ">=", 1)
    assert verdict_of([t, t]) == "all 2 targets met"
    assert verdict_of([t, f]) == "1 of 2 targets met"
    assert verdict_of([f]) == "no target met"
    assert verdict_of([]) == "no targets"


def test_write_read_roundtrip_and_nan_becomes_null(tmp_path):
    r = Result(
        recipe="x",
        preset="smoke",
        claim=Claim("c", 1.0, "paper"),
        metrics={"acc": 0.5, "bad": float("nan"), "per_seed": [0.1, 0.2]},
        targets=[Target.check("acc", 0.5, ">=", 0.4)],
    )
    path = write_result(r, tmp_path)
    assert path == tmp_path / "smoke" / "x.json"
    raw = json.loads(path.read_text())
    assert raw["metrics"]["bad"] is None and raw["verdict"] == "all 1 targets met"
    assert set(raw) >= {
        "recipe",
        "preset",
        "claim",
        "metrics",
        "targets",
        "verdict",
        "config",
        "machine",
        "wall_s",
        "created",
    }
    back = read_result(path)
    assert back.targets[0].met and back.claim.source == "paper"
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp files left


def test_read_result_rejects_garbage(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid result file"):
        read_result(p)


# ----------------------------------------------------------------------------- checks and verdicts


def test_a_failing_check_turns_met_targets_inconclusive(tmp_path):
    met = Target.check("PLD faster", 1.4, ">=", 1.3)
    ok = Check.that("baseline above majority", 0.70 - 0.58, ">=", 0.02)
    bad = Check.that("baseline above majority", 0.578 - 0.578, ">=", 0.02, "0.578 vs 0.578")
    assert ok.passed and not bad.passed and "0.578 vs 0.578" in bad.detail
    assert verdict_of([met], [ok]) == "all 1 targets met"
    assert verdict_of([met], [ok, bad]) == "inconclusive: baseline above majority"
    r = Result("x", Claim("c", 1.0, "p"), {}, targets=[met], checks=[ok, bad], preset="full")
    assert r.verdict.startswith("inconclusive") and not r.conclusive
    assert met.met and not r.counted_met(met)  # the target's own test passed; it does not count
    back = read_result(write_result(r, tmp_path))
    assert back.checks == [ok, bad] and back.verdict == r.verdict


def test_demo_scale_is_never_evidence():
    met = Target.check("a", 1, ">=", 0)
    r = Result("x", Claim("c", 1.0, "p"), {}, targets=[met], evidence=False)
    assert r.verdict == NOT_EVIDENCE and not r.counted_met(met)


def test_check_with_missing_or_nan_measurement_fails():
    assert not Check.that("c", float("nan"), ">", 0).passed
    assert not Check.that("c", None, ">", 0).passed  # type: ignore[arg-type]
    assert Target.check("t", None, ">", 0).met is False  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- statistics


def test_mean_std_and_se():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([4.0]) == (4.0, 0.0)
    m, se = mean_se([1.0, 2.0, 3.0])
    assert m == 2.0 and se == pytest.approx(1 / 3**0.5)
    assert math.isnan(mean_se([1.0])[1])
    with pytest.raises(ValueError):
        mean_std([])


def test_paired_diff_matches_a_hand_t_interval():
    a, b = [0.80, 0.82, 0.83, 0.79], [0.78, 0.80, 0.80, 0.78]
    d = paired_diff(a, b)
    diffs = [0.02, 0.02, 0.03, 0.01]
    mean = sum(diffs) / 4
    sd = (sum((x - mean) ** 2 for x in diffs) / 3) ** 0.5
    half = 3.182446305284263 * sd / 2  # t_{0.975, 3}
    assert d.mean == pytest.approx(mean) and d.se == pytest.approx(sd / 2)
    assert (d.lo, d.hi) == pytest.approx((mean - half, mean + half))
    assert d.excludes(0.0)
    # a difference smaller than the seed noise: interval straddles zero
    noisy = paired_diff([0.80, 0.70, 0.90], [0.79, 0.75, 0.84])
    assert not noisy.excludes(0.0)
    one = paired_diff([0.9], [0.8])
    assert one.n == 1 and math.isinf(one.lo) and "no interval" in str(one)
    with pytest.raises(ValueError, match="one value per seed"):
        paired_diff([1.0, 2.0], [1.0])


def test_beats_needs_the_interval_past_the_goal():
    sure = Target.beats("AWS > none", paired_diff([0.9, 0.91, 0.92], [0.8, 0.8, 0.81]))
    assert sure.met and sure.interval is not None and "t-interval" in sure.rule
    # the same mean gain with seed spread larger than it is not a win
    shaky = Target.beats("SSP > CE", paired_diff([0.9, 0.7, 0.95], [0.8, 0.8, 0.81]))
    assert shaky.measured > 0 and not shaky.met
    assert not Target.beats("one seed", paired_diff([0.9], [0.1])).met
    slower = Target.beats("loss lower", paired_diff([1.0, 1.1, 1.05], [2.0, 2.1, 2.2]), op="<")
    assert slower.met


def test_beats_or_missing_pairs_when_it_can_and_fails_without_per_seed_values():
    a, b = [0.9, 0.91, 0.92], [0.8, 0.8, 0.81]
    paired = Target.beats_or_missing("gain", a, b, mean_diff=0.5, goal=0.05)
    assert paired == Target.beats("gain", paired_diff(a, b), goal=0.05)
    assert paired.measured_with_ci().startswith("+0.107 (95% CI +0.0")
    old = Target.beats_or_missing("gain", None, b, mean_diff=0.1, missing="rerun it")
    assert not old.met and old.measured == 0.1 and old.rule == "rerun it" and old.interval is None
    assert old.measured_with_ci() == "+0.100"
    assert math.isnan(stored_float(None)) and stored_float(1) == 1.0


# ----------------------------------------------------------------------------- plots


def test_plot_helpers_fail_when_built_not_when_rendered():
    s = series("a", [1, 2, 3], [0.1, None, 0.3], err=[0.01, 0.02, 0.03])
    p = line_plot("t", "epoch", "acc", [s], integer_x=True)
    assert p["kind"] == "line" and p["series"][0]["y"][1] is None and p["integer_x"]
    with pytest.raises(ValueError, match="x has 2 points, y has 3"):
        series("a", [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="err has 1 values"):
        series("a", [1, 2], [1, 2], err=[0.1])
    with pytest.raises(TypeError, match="must be numbers"):
        series("a", [1, 2], ["x", 2])
    with pytest.raises(ValueError, match="no series"):
        line_plot("t", "x", "y", [])
    with pytest.raises(ValueError, match="results.series"):
        line_plot("t", "x", "y", [{"name": "a", "x": [1], "y": [1], "colour": "red"}])
    b = bar_plot(
        "acc", "accuracy", [("none", 0.91, 0.01), ("AWS", 0.92, None)], reference=("majority", 0.5)
    )
    assert b["categories"] == ["none", "AWS"] and math.isnan(b["series"][0]["err"][1])
    assert b["reference"] == {"name": "majority", "y": 0.5}
