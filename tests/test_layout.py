"""The layers hold: recipes are leaves, and no module reaches into another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import takeaways.recipes as registry

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*ROOT.glob("src/**/*.py"), *ROOT.glob("benchmarks/*.py")]


def _imported(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from M import name`` and ``import M`` in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level and path.parent.name == "recipes":
                mod = f"takeaways.recipes.{mod}" if mod else "takeaways.recipes"
            out += [(mod, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names]
    return out


def test_only_the_registry_imports_a_recipe():
    registry_names = set(registry.__all__)
    offenders = []
    for path in [*SOURCES, *ROOT.glob("tests/*.py")]:
        if path == Path(registry.__file__).resolve():
            continue
        for mod, name in _imported(path):
            full = f"{mod}.{name}" if name else mod
            if mod == "takeaways.recipes" and name in registry_names:
                continue
            if full.startswith("takeaways.recipes."):
                offenders.append(f"{path.relative_to(ROOT)} imports {full}")
    assert not offenders, "\n".join(offenders)


def test_no_private_name_crosses_a_file():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name} from {mod}"
        for path in SOURCES
        for mod, name in _imported(path)
        if mod.startswith("takeaways") and name.startswith("_") and not name.startswith("__")
    ]
    assert not offenders, "\n".join(offenders)
