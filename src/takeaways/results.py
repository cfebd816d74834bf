"""Results are data: the Result record every recipe returns, written atomically as JSON.

Schema (``results/<preset>/<recipe>.json``)::

    recipe    str        registered recipe name
    preset    str        smoke | demo | full
    takeaway  int|null   1..10, the takeaway the recipe measures (null: foundation)
    claim     {text, value, source}   the paper's headline, with where it comes from
    metrics   {name: number | {name: number}}  what the recipe measured
    targets   [{name, measured, goal, op, met}]  computed by the recipe from its own numbers
    verdict   str        derived from the targets
    plots     [{title, kind, x_label, y_label, series: [{name, x, y}]}]
    config    {field: value}   the resolved recipe config
    machine   {cpu, threads, torch, cuda, gpu, python, platform, world_size}
    wall_s    float      wall-clock seconds of the run
    created   str        ISO-8601 UTC time
    code_hash str        hash of the recipe source + config, to skip up-to-date results
"""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

__all__ = ["Claim", "Target", "Result", "write_result", "read_result", "machine_info", "verdict_of"]

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Claim:
    """A paper's headline number and where it was published."""

    text: str  # the claim in one sentence, in our words
    value: float | None  # its number, in the unit the text names
    source: str  # paper, arXiv id and table/section


@dataclass(frozen=True)
class Target:
    """A goal a recipe checks against its own measurement: ``measured op goal``."""

    name: str
    measured: float
    goal: float
    op: str
    met: bool

    @classmethod
    def check(cls, name: str, measured: float, op: str, goal: float) -> Target:
        if op not in _OPS:
            raise ValueError(f"op must be one of {', '.join(_OPS)}; got {op!r}")
        met = bool(math.isfinite(measured) and _OPS[op](measured, goal))
        return cls(name=name, measured=float(measured), goal=float(goal), op=op, met=met)


def verdict_of(targets: list[Target]) -> str:
    """'all N targets met', 'K of N targets met' or 'no target met'; 'no targets' when empty."""
    if not targets:
        return "no targets"
    met = sum(t.met for t in targets)
    if met == len(targets):
        return f"all {met} targets met"
    if met == 0:
        return "no target met"
    return f"{met} of {len(targets)} targets met"


@dataclass
class Result:
    """One recipe run: what was measured, against what, on which machine."""

    recipe: str
    claim: Claim
    metrics: dict[str, Any]
    targets: list[Target] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""  # what the numbers do and do not show, in plain words
    preset: str = ""
    takeaway: int | None = None
    verdict: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    created: str = ""
    code_hash: str = ""

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = verdict_of(self.targets)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        d = dict(d)
        d["claim"] = Claim(**d["claim"])
        d["targets"] = [Target(**t) for t in d.get("targets", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN/inf
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy / torch scalars
        return _jsonable(x.item())
    if hasattr(x, "tolist"):
        return _jsonable(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to ``path`` via a temp file and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(data), f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_result(result: Result, root: str | Path = "results") -> Path:
    """Write ``root/<preset>/<recipe>.json`` atomically and return its path."""
    return write_json_atomic(Path(root) / result.preset / f"{result.recipe}.json", result.to_dict())


def read_result(path: str | Path) -> Result:
    p = Path(path)
    try:
        return Result.from_dict(json.loads(p.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(
            f"{p} is not a valid result file ({e}); rerun the recipe to rewrite it"
        ) from e


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU/GPU, threads and library versions, recorded beside every number."""
    from takeaways import distributed

    cuda = torch.cuda.is_available()
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "world_size": distributed.world_size(),
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
