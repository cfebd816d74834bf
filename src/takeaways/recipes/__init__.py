"""The recipe registry: one name per experiment, presets, config overrides, atomic results.

A recipe is a plain function ``run(cfg) -> Result`` whose whole experiment is
visible in its body. It registers with its config dataclass and presets::

    @register_recipe("baseline-digits", config=DigitsConfig,
                     presets={"smoke": {"epochs": 1}, "demo": {}, "full": {"epochs": 40}})
    def run(cfg: DigitsConfig) -> Result: ...

``smoke`` runs in seconds (tests), ``demo`` in at most 60 s on 2 CPU cores
(``make demo``), ``full`` at the scale that gives the clearest answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
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
from takeaways.results import Result, machine_info, now_iso, verdict_of, write_result

__all__ = [
    "Recipe",
    "register_recipe",
    "get_recipe",
    "list_recipes",
    "resolve_config",
    "run_recipe",
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

    def source_hash(self, cfg: Any) -> str:
        """Hash of the recipe's source file, its resolved config and the package version."""
        src = Path(inspect.getsourcefile(self.run) or "").read_bytes()
        blob = src + json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob + __version__.encode()).hexdigest()[:16]


_REGISTRY: dict[str, Recipe] = {}
_LOADED = False


def register_recipe(
    name: str,
    *,
    config: type,
    presets: dict[str, dict[str, Any]],
    takeaway: int | None,
    summary: str,
) -> Callable[[Callable[[Any], Result]], Callable[[Any], Result]]:
    """Register ``run(cfg) -> Result`` under ``name`` with its config class and presets."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"recipe {name!r}: config must be a dataclass, got {config!r}")
    missing = [p for p in PRESETS if p not in presets]
    if missing:
        raise ValueError(f"recipe {name!r} lacks presets {missing}; define smoke, demo and full")

    def deco(fn: Callable[[Any], Result]) -> Callable[[Any], Result]:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"recipe {name!r} is registered twice")
        _REGISTRY[name] = Recipe(name, fn, config, dict(presets), takeaway, summary)
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
    """Run a registered recipe, stamp config/machine/time on its Result and write it (rank 0).

    Returns the Result and the path written (None on other ranks or with write=False).
    """
    recipe = get_recipe(name)
    cfg = resolve_config(recipe, preset, overrides)
    distributed.init_distributed()
    t0 = time.perf_counter()
    result = recipe.run(cfg)
    result.wall_s = time.perf_counter() - t0
    result.recipe = recipe.name
    result.preset = preset
    result.takeaway = recipe.takeaway
    result.config = dataclasses.asdict(cfg)
    result.machine = machine_info()
    result.created = now_iso()
    result.code_hash = recipe.source_hash(cfg)
    if not result.verdict:
        result.verdict = verdict_of(result.targets)
    path = None
    if write and distributed.is_main():
        path = write_result(result, out_dir)
    return result, path
