"""Registry-wide: every recipe runs at smoke and writes a complete Result; config overrides are checked."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import takeaways
import takeaways.recipes
from takeaways.recipes import (
    PRESETS,
    get_recipe,
    list_recipes,
    module_files,
    rejudge,
    resolve_config,
    run_recipe,
)
from takeaways.results import NOT_EVIDENCE

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
        assert set(t) == {"name", "measured", "goal", "op", "met", "interval", "rule"}
    assert raw["checks"], "a recipe must say under which conditions its targets mean anything"
    assert raw["evidence"] is False and raw["verdict"] == NOT_EVIDENCE
    assert raw["finding"] and raw["advice"]
    assert raw["machine"]["torch"] and raw["wall_s"] > 0 and raw["code_hash"]
    assert raw["plots"] and all(s["x"] and s["y"] for p in raw["plots"] for s in p["series"])
    recipe = get_recipe(name)
    if recipe.facts is not None:  # the data-only metrics are in the run's metrics, equal values
        facts = recipe.facts(resolve_config(recipe, "smoke"))
        _assert_contains(raw["metrics"], json.loads(json.dumps(facts)))


# What run() computed for these numbers at smoke before they moved into facts() (0.1003 =
# 36/359 digits test images; autoaugment's majority class is that of its first seed's 200
# training images, now also 36/359).
SMOKE_FACTS = {
    "baseline-digits": {"majority_class_test_accuracy": 0.10027855153203342},
    "autoaugment": {"digits": {"majority_class_test_accuracy": 0.10027855153203342}},
    "lottery-cnn": {"majority-class test accuracy": 0.1},
    "lottery-bert": {
        "majority-class reviews accuracy": 0.625,
        "MLM accuracy of the most frequent training token (unigram)": 0.05,
    },
    "mpnet": {"majority_class_accuracy": {"reviews": 0.65625, "tweets": 0.4375}},
    "clustered-approx": {  # 4 articles x 2 passages of 24 tokens: 1 same-article partner of 7
        "passages": 8,
        "articles": 4,
        "tokens_per_passage_mean": 24.0,
        "chance_accuracy": 1 / 7,
    },
}


@pytest.mark.parametrize("name", sorted(SMOKE_FACTS))
def test_data_only_facts_at_smoke_are_the_numbers_the_run_computed(name):
    recipe = get_recipe(name)
    assert recipe.facts is not None, f"{name} registers no facts="
    assert recipe.facts(resolve_config(recipe, "smoke")) == SMOKE_FACTS[name]


def _assert_contains(metrics: dict, facts: dict, where: str = "") -> None:
    for key, value in facts.items():
        assert key in metrics, f"fact {where}{key} not in the run's metrics"
        if isinstance(value, dict):
            _assert_contains(metrics[key], value, f"{where}{key}.")
        else:
            assert metrics[key] == value, f"fact {where}{key}: {value} vs run {metrics[key]}"


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


# ----------------------------------------------------------------------------- code hash


def test_code_hash_covers_every_imported_module(tmp_path):
    """Editing a module a recipe imports (even indirectly) changes its hash; others do not."""
    src = Path(takeaways.__file__).resolve().parent
    copy = tmp_path / "takeaways"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        "from takeaways.recipes import get_recipe, resolve_config, module_files;"
        "r = get_recipe('baseline-digits'); print(r.source_hash(resolve_config(r)))"
    )

    def hash_now() -> str:
        env = {**os.environ, "PYTHONPATH": str(tmp_path)}
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    files = {p.name for p in module_files("takeaways.recipes.baseline_digits")}
    assert {"baseline_digits.py", "train.py", "vision.py", "results.py"} <= files
    before = hash_now()
    # train.py is imported by the recipe; nn/vision.py only through `from takeaways import nn`
    for rel in ("train.py", "nn/vision.py"):
        with open(copy / rel, "a") as f:
            f.write("\n# an edit\n")
        after = hash_now()
        assert after != before, rel
        before = after
    # a module the recipe never reaches leaves the hash alone
    with open(copy / "recipes" / "mpnet.py", "a") as f:
        f.write("\n# an edit\n")
    assert hash_now() == before


# ----------------------------------------------------------------------------- judging


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_has_a_judge(name):
    assert get_recipe(name).judge is not None, f"{name} registers no judge="


def test_rejudge_recomputes_checks_from_stored_metrics(tmp_path):
    result, path = run_recipe("baseline-digits", preset="smoke", out_dir=tmp_path)
    assert result.verdict == NOT_EVIDENCE and not result.evidence
    raw = json.loads(path.read_text())
    raw.update(preset="full", evidence=True, checks=[], targets=[], verdict="stale")
    full = tmp_path / "full" / "baseline-digits.json"
    full.parent.mkdir()
    full.write_text(json.dumps(raw))
    again = rejudge(full)
    assert again.checks and again.targets and again.verdict != "stale"
    stored = json.loads(full.read_text())
    assert stored["metrics"] == raw["metrics"] and stored["code_hash"] == raw["code_hash"]
    assert [c["name"] for c in stored["checks"]] == [c.name for c in result.checks]


def test_rejudge_backfills_data_only_facts_and_says_so(tmp_path, monkeypatch):
    recipe = get_recipe("baseline-digits")
    result, path = run_recipe("baseline-digits", preset="smoke", out_dir=tmp_path)
    raw = json.loads(path.read_text())
    facts = {"a_data_only_number": 0.25, "per_split": {"stored": 0.1, "new": 0.75}}
    monkeypatch.setitem(
        takeaways.recipes._REGISTRY,
        "baseline-digits",
        dataclasses.replace(recipe, facts=lambda cfg: facts),
    )
    raw["metrics"]["logreg_test_accuracy"] = 0.5  # a stored number is never overwritten
    raw["metrics"]["per_split"] = {"stored": 0.5}  # a dict of facts merges into a stored dict
    path.write_text(json.dumps(raw))
    again = rejudge(path)
    assert again.metrics["a_data_only_number"] == 0.25
    assert again.backfilled == ["a_data_only_number", "per_split.new"]
    assert again.metrics["per_split"] == {"stored": 0.5, "new": 0.75}
    assert again.metrics["logreg_test_accuracy"] == 0.5
