"""Result records: targets compute 'met' from numbers, JSON is atomic and round-trips."""

from __future__ import annotations

import json

import pytest

from takeaways.results import Claim, Result, Target, read_result, verdict_of, write_result


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
