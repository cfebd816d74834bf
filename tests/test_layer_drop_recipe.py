"""The layer-drop recipe: its time-to-loss helper, gamma scaling, config errors and smoke numbers."""

from __future__ import annotations

import math

import pytest

from takeaways.layerdrop import pld_theta
from takeaways.recipes import get_recipe, resolve_config, run_recipe
from takeaways.recipes.layer_drop import scaled_gamma, time_to_loss


def test_time_to_loss_interpolates_between_evaluations():
    # 6.0 at 10 s, 5.0 at 20 s: 5.5 is halfway, 5.2 is 80% of the way
    assert time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.0], 5.5) == pytest.approx(15.0)
    assert time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.0], 5.2) == pytest.approx(18.0)
    # exactly at an evaluation
    assert time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.0], 6.0) == pytest.approx(10.0)


def test_time_to_loss_takes_the_first_crossing():
    # dips below 5.5 at 10-20 s, comes back up, dips again later: the first one counts
    secs, losses = [0.0, 10.0, 20.0, 30.0, 40.0], [6.0, 6.0, 5.0, 6.0, 4.0]
    assert time_to_loss(secs, losses, 5.5) == pytest.approx(15.0)


def test_time_to_loss_never_reached_is_nan():
    assert math.isnan(time_to_loss([0.0, 10.0, 20.0], [7.0, 6.0, 5.1], 5.0))


def test_time_to_loss_reached_at_the_first_point():
    assert time_to_loss([3.0, 10.0], [4.0, 3.0], 5.0) == 3.0


def test_time_to_loss_rejects_mismatched_curves():
    with pytest.raises(ValueError, match="equal, non-empty"):
        time_to_loss([0.0, 1.0], [1.0], 0.5)
    with pytest.raises(ValueError, match="equal, non-empty"):
        time_to_loss([], [], 0.5)


def test_scaled_gamma_saturates_at_the_papers_fraction():
    assert scaled_gamma(200_000) == pytest.approx(0.001)
    assert scaled_gamma(1000) == pytest.approx(0.2)
    # theta at 2.5% of the run is the same as the paper's at 5K of 200K steps
    paper = pld_theta(5000, theta_bar=0.5, gamma=0.001)
    ours = pld_theta(25, theta_bar=0.5, gamma=scaled_gamma(1000))
    assert ours == pytest.approx(paper) and paper == pytest.approx(0.5034, abs=1e-4)


def test_config_errors_are_one_line():
    recipe = get_recipe("layer-drop")
    assert resolve_config(recipe, "full").gamma_eff == pytest.approx(0.2)
    assert resolve_config(recipe, "demo", ["gamma=0.05"]).gamma_eff == 0.05
    for bad, match in (
        ("theta_bar=1.5", "theta_bar must be in"),
        ("theta_bar=0", "theta_bar must be in"),
        ("gamma=-1", "gamma must be >= 0"),
        ("heads=3", "not divisible"),
    ):
        with pytest.raises(ValueError, match=match) as err:
            resolve_config(recipe, "demo", [bad])
        assert "\n" not in str(err.value)


def test_smoke_preset_records_the_targets_with_finite_numbers(tmp_path):
    result, _ = run_recipe("layer-drop", preset="smoke", out_dir=tmp_path)
    names = [t.name for t in result.targets]
    assert names == [
        "PLD time per sample: baseline / PLD",
        "time to the baseline's final val loss: baseline / PLD",
        "reviews accuracy, PLD minus baseline (points)",
    ]
    m = result.metrics
    for key in ("baseline samples/s", "PLD samples/s", "time per sample, baseline / PLD",
                "baseline final val loss", "unigram val loss", "reviews accuracy, baseline",
                "reviews accuracy, PLD"):  # fmt: skip
        assert math.isfinite(m[key]) and m[key] > 0, key
    assert result.targets[0].measured == pytest.approx(m["time per sample, baseline / PLD"])
    # smoke: 6 steps, 4 layers, theta 1 -> 0.5; the top layer is dropped, the curves line up
    assert m["gamma (scaled)"] == pytest.approx(0.001 * 200_000 / 6)
    assert 0.5 < m["PLD share of layer calls run"] < 1.0
    c = m["curves"]
    assert c["baseline"]["steps"] == c["PLD"]["steps"] == [0, 2, 4, 6]
    assert c["baseline"]["val_loss"][0] == pytest.approx(c["PLD"]["val_loss"][0])  # same init
    assert all(b > a for a, b in zip(c["PLD"]["seconds"], c["PLD"]["seconds"][1:]))
    bf16 = m["bf16"]
    assert bf16["fp32 seconds per step"] > 0 and bf16["bf16 seconds per step"] > 0
    assert abs(bf16["val loss difference (bf16 - fp32)"]) < 0.05
