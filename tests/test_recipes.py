"""Registry-wide: every recipe runs at smoke and writes a complete Result; config overrides are checked."""

from __future__ import annotations

import dataclasses
import json

import pytest

from takeaways.recipes import PRESETS, get_recipe, list_recipes, resolve_config, run_recipe

RECIPES = [r.name for r in list_recipes()]


def test_registry_has_the_foundation_recipe():
    assert "baseline-digits" in RECIPES


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_has_presets_and_documented_config(name):
    recipe = get_recipe(name)
    assert set(PRESETS) <= set(recipe.presets)
    for preset in PRESETS:
        cfg = resolve_config(recipe, preset)
        assert dataclasses.is_dataclass(cfg)
    assert recipe.summary


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_runs_at_smoke_and_writes_its_result(name, tmp_path):
    result, path = run_recipe(name, preset="smoke", out_dir=tmp_path)
    raw = json.loads(path.read_text())
    assert raw["recipe"] == name and raw["preset"] == "smoke"
    assert raw["claim"]["text"] and raw["claim"]["source"]
    assert raw["targets"], "a recipe must check at least one target"
    for t in raw["targets"]:
        assert set(t) == {"name", "measured", "goal", "op", "met"}
    assert raw["machine"]["torch"] and raw["wall_s"] > 0 and raw["code_hash"]
    assert raw["plots"] and all(s["x"] and s["y"] for p in raw["plots"] for s in p["series"])


def test_baseline_digits_smoke_numbers_are_sane(tmp_path):
    result, _ = run_recipe("baseline-digits", preset="smoke", out_dir=tmp_path)
    assert result.metrics["logreg_test_accuracy"] > 0.9
    assert 0.5 < result.metrics["cnn_test_accuracy"] <= 1.0
    assert result.config["epochs"] == 2


def test_overrides_are_typed_and_unknown_keys_rejected():
    recipe = get_recipe("baseline-digits")
    cfg = resolve_config(recipe, "demo", ["epochs=3", "lr=0.01", "bf16=true"])
    assert (cfg.epochs, cfg.lr, cfg.bf16) == (3, 0.01, True)
    with pytest.raises(ValueError, match="unknown key 'epoch'.*valid keys: .*epochs"):
        resolve_config(recipe, "demo", ["epoch=3"])
    with pytest.raises(ValueError, match="epochs is an int"):
        resolve_config(recipe, "demo", ["epochs=three"])
    with pytest.raises(ValueError, match="bf16 is a bool"):
        resolve_config(recipe, "demo", ["bf16=maybe"])
    with pytest.raises(ValueError, match="not key=value"):
        resolve_config(recipe, "demo", ["epochs"])
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_config(recipe, "huge")
    with pytest.raises(ValueError, match="must be >= 1"):
        resolve_config(recipe, "demo", ["epochs=0"])


def test_unknown_recipe_lists_known():
    with pytest.raises(ValueError, match="unknown recipe 'nope'; known recipes: .*baseline-digits"):
        get_recipe("nope")
