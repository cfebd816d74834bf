"""The recipe registry: one name per experiment, presets, config overrides, atomic results.

A recipe is a plain function ``run(cfg) -> Result`` whose whole experiment is
visible in its body. It registers with its config dataclass and presets::

    @register_recipe("baseline-digits", config=DigitsConfig,
                     presets={"smoke": {"epochs": 1}, "demo": {}, "full": {"epochs": 40}})
    def run(cfg: DigitsConfig) -> Result: ...

``smoke`` runs in seconds (tests), ``demo`` in at most 60 s on 2 CPU cores
(``make demo``), ``full`` at the scale that gives the clearest answer.

Recipes are leaves: only this registry imports them (a test enforces it). The registry
owns the chores every recipe would otherwise repeat:

- ``threads=`` at registration (or a config field ``threads``) sets torch's thread count
  for the run and restores it afterwards, however the run ends;
- ``judge=`` turns the run's metrics into checks, targets, a finding and advice. It sees
  only the metrics (as stored in JSON) and the config, so ``rejudge`` can re-apply new
  rules to a published result without rerunning it;
- ``facts=`` computes the metrics that depend on the data and config alone (no training:
  e.g. the majority-class accuracy of the test split). A run merges them into its metrics
  (a dict of facts merges into the dict of metrics under the same key, e.g. per dataset);
  ``rejudge`` computes any that a stored result lacks, so a new check that needs only such
  a number does not force a rerun of the whole experiment;
- ``seed_range(cfg)`` is the one way to iterate a config's seeds;
- the code hash covers every project module the recipe imports, transitively, so a result
  is never marked up to date after a change in code it ran.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import pkgutil
import time
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from takeaways import __version__, distributed
from takeaways.measure import torch_threads
from takeaways.results import (
    Judgement,
    Result,
    machine_info,
    now_iso,
    read_result,
    to_jsonable,
    write_json_atomic,
    write_result,
)

__all__ = [
    "Recipe",
    "register_recipe",
    "get_recipe",
    "list_recipes",
    "resolve_config",
    "run_recipe",
    "rejudge",
    "seed_range",
    "module_files",
    "PRESETS",
]

PRESETS = ("smoke", "demo", "full")


@dataclass(frozen=True)
class Recipe:
    name: str
    run: Callable[[Any], Result]
    config: type  # frozen dataclass; its defaults are the demo preset
    presets: dict[str, dict[str, Any]]  # preset -> field overrides
    takeaway: int | None  # 1..10, or None for foundation recipes
    summary: str  # one line for `takeaways list`
    judge: Callable[[dict[str, Any], Any], Judgement] | None = None
    threads: int | None = None  # torch threads during the run (a config field wins)
    facts: Callable[[Any], dict[str, Any]] | None = None  # data-only metrics, no training

    def source_hash(self, cfg: Any) -> str:
        """Hash of every project module the recipe imports (transitively), its config and version."""
        h = hashlib.sha256()
        for path in module_files(self.run.__module__):
            h.update(str(path.relative_to(_PACKAGE_ROOT.parent)).encode() + b"\0")
            h.update(path.read_bytes())
        h.update(json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str).encode())
        return hashlib.sha256(h.digest() + __version__.encode()).hexdigest()[:16]

    def thread_count(self, cfg: Any) -> int | None:
        return getattr(cfg, "threads", None) or self.threads


_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # .../takeaways


def _module_path(name: str) -> Path | None:
    """The file of project module ``name`` (``__init__.py`` for a package); None if not ours."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin).resolve()
    return path if _PACKAGE_ROOT in path.parents or path.parent == _PACKAGE_ROOT else None


def _imports_of(path: Path, package: str) -> set[str]:
    """Project modules that ``path`` imports, with ``from pkg import sub`` resolved to modules."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # may be submodules
    out = set()
    for name in found:
        if name.split(".")[0] != "takeaways":
            continue
        parts = name.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__ too
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def module_files(module: str) -> list[Path]:
    """Files of ``module`` and of every project module it imports, transitively, sorted."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_path(name)
        if path is None:
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo.extend(_imports_of(path, package) - seen.keys())
    return sorted(set(seen.values()))


def seed_range(cfg: Any) -> range:
    """The seeds a config asks for: ``cfg.seeds`` consecutive seeds from ``cfg.seed``."""
    return range(cfg.seed, cfg.seed + cfg.seeds)


_REGISTRY: dict[str, Recipe] = {}
_LOADED = False


def register_recipe(
    name: str,
    *,
    config: type,
    presets: dict[str, dict[str, Any]],
    takeaway: int | None,
    summary: str,
    judge: Callable[[dict[str, Any], Any], Judgement] | None = None,
    threads: int | None = None,
    facts: Callable[[Any], dict[str, Any]] | None = None,
) -> Callable[[Callable[[Any], Result]], Callable[[Any], Result]]:
    """Register ``run(cfg) -> Result`` under ``name`` with its config class and presets.

    ``judge(metrics, cfg) -> Judgement`` computes the checks and targets from the run's
    metrics alone; ``threads`` pins torch's thread count for the run; ``facts(cfg) -> dict``
    gives the metrics that need the data and config but no training.
    """
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"recipe {name!r}: config must be a dataclass, got {config!r}")
    missing = [p for p in PRESETS if p not in presets]
    if missing:
        raise ValueError(f"recipe {name!r} lacks presets {missing}; define smoke, demo and full")

    def deco(fn: Callable[[Any], Result]) -> Callable[[Any], Result]:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"recipe {name!r} is registered twice")
        _REGISTRY[name] = Recipe(
            name,
            fn,
            config,
            dict(presets),
            takeaway,
            summary,
            judge=judge,
            threads=threads,
            facts=facts,
        )
        return fn

    return deco


def _load_all() -> None:
    """Import every module in this package so their decorators run."""
    global _LOADED
    if _LOADED:
        return
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _LOADED = True


def list_recipes() -> list[Recipe]:
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_recipe(name: str) -> Recipe:
    _load_all()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise ValueError(f"unknown recipe {name!r}; known recipes: {known}")
    return _REGISTRY[name]


# ----------------------------------------------------------------------------- config


def _parse_value(text: str, annotation: Any, key: str) -> Any:
    """Parse a command-line string into the field's annotated type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in {"none", "null"} and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _parse_value(text, a, key)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"{key}: cannot parse {text!r}")
    if origin is typing.Literal:
        if text not in args:
            raise ValueError(f"{key} must be one of {', '.join(map(str, args))}; got {text!r}")
        return text
    if origin in (tuple, list):
        items = [t for t in text.split(",") if t != ""]
        inner = args[0] if args else str
        return tuple(_parse_value(t, inner, key) for t in items)
    if annotation is bool:
        low = text.lower()
        if low in {"true", "1", "yes", "on"}:
            return True
        if low in {"false", "0", "no", "off"}:
            return False
        raise ValueError(f"{key} is a bool; use true or false, got {text!r}")
    if annotation is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"{key} is an int; got {text!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key} is a float; got {text!r}") from None
    return text


def resolve_config(recipe: Recipe, preset: str = "demo", overrides: Iterable[str] = ()) -> Any:
    """The recipe's config at ``preset`` with ``key=value`` overrides applied (type-checked)."""
    if preset not in recipe.presets:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(recipe.presets)}")
    hints = typing.get_type_hints(recipe.config)
    fields = {f.name for f in dataclasses.fields(recipe.config)}
    values = dict(recipe.presets[preset])
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value; e.g. --set epochs=3")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in fields:
            raise ValueError(
                f"unknown key {key!r} for recipe {recipe.name}; valid keys: {', '.join(sorted(fields))}"
            )
        values[key] = _parse_value(text.strip(), hints[key], key)
    cfg = recipe.config(**values)
    check = getattr(cfg, "validate", None)
    if callable(check):
        check()
    return cfg


# ----------------------------------------------------------------------------- run


def run_recipe(
    name: str,
    *,
    preset: str = "demo",
    overrides: Iterable[str] = (),
    out_dir: str | Path = "results",
    write: bool = True,
) -> tuple[Result, Path | None]:
    """Run a registered recipe, judge it, stamp config/machine/time and write it (rank 0).

    Only a ``full`` run without overrides is evidence; smoke and demo runs are judged too,
    but their verdict reads ``demo scale — not evidence``.
    Returns the Result and the path written (None on other ranks or with write=False).
    """
    recipe = get_recipe(name)
    overrides = list(overrides)
    cfg = resolve_config(recipe, preset, overrides)
    distributed.init_distributed()
    t0 = time.perf_counter()
    with torch_threads(recipe.thread_count(cfg)):
        result = recipe.run(cfg)
        if recipe.facts is not None:
            _merge_facts(result.metrics, recipe.facts(cfg))
    result.wall_s = time.perf_counter() - t0
    result.recipe = recipe.name
    result.preset = preset
    result.takeaway = recipe.takeaway
    result.config = dataclasses.asdict(cfg)
    result.machine = machine_info()
    result.created = now_iso()
    result.code_hash = recipe.source_hash(cfg)
    result.evidence = preset == "full" and not overrides
    _judge(recipe, result, cfg)
    path = None
    if write and distributed.is_main():
        path = write_result(result, out_dir)
    return result, path


def _merge_facts(
    metrics: dict[str, Any], facts: dict[str, Any], *, only_missing: bool = False, prefix: str = ""
) -> list[str]:
    """Merge ``facts`` into ``metrics`` in place; the dotted names of the metrics it set.

    A fact that is a dict merges into a dict the metrics already hold under its key (e.g.
    ``{"digits": {"majority_class_test_accuracy": 0.1}}`` adds one number to the per-dataset
    metrics of ``digits``). With ``only_missing`` a number already in the metrics is kept.
    """
    added: list[str] = []
    for key, value in facts.items():
        held = metrics.get(key)
        if isinstance(value, dict) and isinstance(held, dict):
            added += _merge_facts(held, value, only_missing=only_missing, prefix=f"{prefix}{key}.")
        elif not (only_missing and key in metrics):
            metrics[key] = value
            added.append(prefix + key)
    return sorted(added)


def _judge(recipe: Recipe, result: Result, cfg: Any) -> None:
    """Fill checks, targets, finding, advice and verdict from the metrics as stored in JSON."""
    if recipe.judge is not None:
        stored = json.loads(json.dumps(to_jsonable(result.metrics)))  # what rejudge will see
        j = recipe.judge(stored, cfg)
        result.checks, result.targets = list(j.checks), list(j.targets)
        result.finding, result.advice = j.finding, j.advice
    result.judged = now_iso()
    result.verdict = result.judge_verdict()


def _config_of(recipe: Recipe, stored: dict[str, Any]) -> Any:
    """The config a stored result ran with (JSON lists back to tuples; unknown keys dropped).

    Results written before ``None`` became the one "all/default" sentinel stored ``0`` for
    it; an optional int field read as ``0`` is taken as ``None``.
    """
    hints = typing.get_type_hints(recipe.config)
    values = {}
    for f in dataclasses.fields(recipe.config):
        if f.name in stored:
            v = stored[f.name]
            hint = hints[f.name]
            if isinstance(v, list) and typing.get_origin(hint) is tuple:
                v = tuple(v)
            optional = type(None) in typing.get_args(hint) and int in typing.get_args(hint)
            if optional and v == 0 and not isinstance(v, bool):
                v = None
            values[f.name] = v
    return recipe.config(**values)


def rejudge(path: str | Path) -> Result:
    """Re-apply the recipe's current ``judge`` to a stored result, rewriting it in place.

    The metrics, plots, config and code hash stay as the run wrote them; only checks,
    targets, finding, advice, verdict and ``judged`` change, plus the recipe's ``facts``
    (data-only metrics) that the stored result lacks, which are computed from its config
    and listed in ``backfilled``.
    """
    result = read_result(path)
    recipe = get_recipe(result.recipe)
    if recipe.judge is None:
        raise ValueError(f"recipe {recipe.name} has no judge; its result is left as written")
    cfg = _config_of(recipe, result.config)
    if recipe.facts is not None:
        with torch_threads(recipe.thread_count(cfg)):
            facts = recipe.facts(cfg)
        missing = _merge_facts(result.metrics, facts, only_missing=True)
        result.backfilled = sorted({*result.backfilled, *missing})
    result.evidence = result.evidence and result.preset == "full"
    _judge(recipe, result, cfg)
    write_json_atomic(Path(path), result.to_dict())
    return result
