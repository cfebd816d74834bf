"""Results are data: the Result record every recipe returns, written atomically as JSON.

Schema (``results/<preset>/<recipe>.json``)::

    recipe    str        registered recipe name
    preset    str        smoke | demo | full
    takeaway  int|null   1..10, the takeaway the recipe measures (null: foundation)
    claim     {text, value, source}   the paper's headline, with where it comes from
    metrics   {name: number | {name: number}}  what the recipe measured
    checks    [{name, passed, detail}]  the conditions under which the targets mean anything
    targets   [{name, measured, goal, op, met, interval, rule}]  from the recipe's own numbers
    verdict   str        from checks and targets: ``inconclusive: <check>`` when a check
                         failed, ``demo scale — not evidence`` for smoke/demo runs
    evidence  bool       true only for a full-preset run without overrides
    finding   str        what the run found, one sentence
    advice    str        "use it when ...", written from the run's own evidence
    plots     [{title, kind, x_label, y_label, series: [{name, x, y, err}]}]
    config    {field: value}   the resolved recipe config
    machine   {cpu, threads, torch, cuda, gpu, python, platform, world_size}
    wall_s    float      wall-clock seconds of the run
    created   str        ISO-8601 UTC time
    code_hash str        hash of every project module the recipe imports + config, to skip
                         up-to-date results
    judged    str        when checks and targets were last computed from the metrics
    backfilled [str]     data-only metrics (the recipe's ``facts``) that a rejudge added to
                         a stored result
"""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from takeaways.files import atomic_write

__all__ = [
    "Claim",
    "Check",
    "Target",
    "Paired",
    "Judgement",
    "Result",
    "mean_std",
    "mean_se",
    "paired_diff",
    "stored_float",
    "series",
    "line_plot",
    "bar_plot",
    "write_result",
    "write_json_atomic",
    "to_jsonable",
    "read_result",
    "machine_info",
    "verdict_of",
    "NOT_EVIDENCE",
    "RERUN",
]

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
NOT_EVIDENCE = "demo scale — not evidence"
RERUN = "not in this result; rerun the full preset"  # why a check on a missing number fails


@dataclass(frozen=True)
class Claim:
    """A paper's headline number and where it was published."""

    text: str  # the claim in one sentence, in our words
    value: float | None  # its number, in the unit the text names
    source: str  # paper, arXiv id and table/section


# ----------------------------------------------------------------------------- statistics


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1); the deviation is 0.0 for one value."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_std needs at least one value")
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean; the error is nan for one value (unknown)."""
    m, sd = mean_std(values)
    return m, (sd / math.sqrt(len(values)) if len(values) > 1 else math.nan)


@dataclass(frozen=True)
class Paired:
    """The mean of paired differences ``a_i - b_i`` with its two-sided t-interval."""

    mean: float
    se: float  # standard error of the mean difference (nan for one pair)
    lo: float  # interval bounds at ``level`` (-inf, inf for one pair: nothing is known)
    hi: float
    n: int
    level: float

    def excludes(self, value: float = 0.0) -> bool:
        """True when the whole interval lies on one side of ``value``."""
        return self.lo > value or self.hi < value

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.4g} (1 pair: no interval)"
        return f"{self.mean:+.4g} ± {self.se:.2g} s.e., {self.level:.0%} CI [{self.lo:+.4g}, {self.hi:+.4g}], n={self.n}"


def paired_diff(a: Sequence[float], b: Sequence[float], *, level: float = 0.95) -> Paired:
    """Paired difference of two arms run on the same seeds: mean, s.e. and t-interval.

    Pairs share a seed (same data order, same initialisation where the arms allow), so
    the seed's own effect cancels and the interval is that of the difference alone.
    """
    if len(a) != len(b):
        raise ValueError(
            f"paired_diff needs one value per seed in each arm; got {len(a)} and {len(b)}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    m, se = mean_se(d)
    if len(d) < 2:
        return Paired(m, math.nan, -math.inf, math.inf, len(d), level)
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.5 + level / 2, len(d) - 1)) * se
    return Paired(m, se, m - half, m + half, len(d), level)


# ----------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class Check:
    """A condition under which a Result's targets mean anything (e.g. the baseline learned).

    When any check fails, the verdict is ``inconclusive: <name>`` and no target counts as met.
    """

    name: str
    passed: bool
    detail: str  # the numbers behind it, in words

    @classmethod
    def that(cls, name: str, measured: float, op: str, goal: float, detail: str = "") -> Check:
        """``measured op goal``; a nan or missing measurement fails."""
        if op not in _OPS:
            raise ValueError(f"op must be one of {', '.join(_OPS)}; got {op!r}")
        ok = measured is not None and math.isfinite(measured) and bool(_OPS[op](measured, goal))
        shown = "n/a" if measured is None else f"{measured:.4g}"
        text = f"{shown} {op} {goal:.4g}" + (f": {detail}" if detail else "")
        return cls(name=name, passed=ok, detail=text)

    @classmethod
    def missing(cls, name: str, what: str) -> Check:
        """A check that cannot be computed: ``what`` is not in a stored result (it fails)."""
        return cls(name=name, passed=False, detail=f"{what} {RERUN}")

    @classmethod
    def above(cls, name: str, value: float, floor: float | None, margin: float, what: str) -> Check:
        """``value >= floor + margin``, e.g. an arm beats the majority class by 10 points.

        ``what`` names the floor in the detail; a ``None`` floor (an older result that did not
        record it) fails with a note to rerun.
        """
        if floor is None:
            return cls.missing(name, f"the {what}")
        return cls.that(name, value, ">=", floor + margin, f"{what} {floor:.4g}")


@dataclass(frozen=True)
class Target:
    """A goal a recipe checks against its own measurement: ``measured op goal``.

    ``interval`` and ``rule`` are set for comparisons over seeds (``Target.beats``): the
    target is met only when the whole paired interval lies past the goal.
    """

    name: str
    measured: float
    goal: float
    op: str
    met: bool
    interval: list[float] | None = None  # [lo, hi] of the paired difference, when over seeds
    rule: str = ""  # how ``met`` was decided, when not simply ``measured op goal``

    @classmethod
    def check(cls, name: str, measured: float, op: str, goal: float) -> Target:
        if op not in _OPS:
            raise ValueError(f"op must be one of {', '.join(_OPS)}; got {op!r}")
        met = bool(measured is not None and math.isfinite(measured) and _OPS[op](measured, goal))
        value = math.nan if measured is None else float(measured)
        return cls(name=name, measured=value, goal=float(goal), op=op, met=met)

    @classmethod
    def beats(cls, name: str, diff: Paired, *, goal: float = 0.0, op: str = ">") -> Target:
        """A paired difference over seeds beats ``goal`` only if its whole interval does.

        ``op`` is ``">"`` (the technique is better by more than ``goal``) or ``"<"``.
        """
        if op not in (">", "<"):
            raise ValueError(f"beats takes op '>' or '<'; got {op!r}")
        bound = diff.lo if op == ">" else diff.hi
        met = bool(math.isfinite(bound) and _OPS[op](bound, goal))
        side = "lower" if op == ">" else "upper"
        rule = f"met when the {side} end of the paired {diff.level:.0%} t-interval is {op} {goal:g} (n={diff.n})"
        return cls(name, diff.mean, float(goal), op, met, [diff.lo, diff.hi], rule)

    @classmethod
    def beats_or_missing(
        cls,
        name: str,
        a: Sequence[float] | None,
        b: Sequence[float] | None,
        *,
        mean_diff: float,
        goal: float = 0.0,
        op: str = ">",
        missing: str = f"per-seed values {RERUN}",
    ) -> Target:
        """``Target.beats(name, paired_diff(a, b))``, or not met when per-seed values are absent.

        A stored result from before per-seed values were recorded has ``a`` or ``b`` None:
        the target then shows ``mean_diff`` (the difference of the stored means), is not met,
        and ``missing`` is its rule.
        """
        if a is not None and b is not None:
            return cls.beats(name, paired_diff(a, b), goal=goal, op=op)
        return cls(name, mean_diff, float(goal), op, False, None, missing)

    def measured_with_ci(self) -> str:
        """``+0.012 (95% CI -0.003 to +0.027)``; the value alone when there is no finite interval."""
        lo, hi = self.interval or (None, None)
        if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
            return f"{self.measured:+.3f}"
        return f"{self.measured:+.3f} (95% CI {lo:+.3f} to {hi:+.3f})"


def stored_float(x: Any) -> float:
    """A number read back from a stored result: ``None`` (how JSON stores nan, or absent) -> nan."""
    return math.nan if x is None else float(x)


def verdict_of(
    targets: list[Target], checks: list[Check] | None = None, *, evidence: bool = True
) -> str:
    """The verdict a reader sees first.

    ``demo scale — not evidence`` for smoke/demo runs; ``inconclusive: <check>`` when a check
    failed; otherwise 'all N targets met', 'K of N targets met', 'no target met' or 'no targets'.
    """
    if not evidence:
        return NOT_EVIDENCE
    failed = [c.name for c in checks or [] if not c.passed]
    if failed:
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"inconclusive: {failed[0]}{more}"
    if not targets:
        return "no targets"
    met = sum(t.met for t in targets)
    if met == len(targets):
        return f"all {met} targets met"
    if met == 0:
        return "no target met"
    return f"{met} of {len(targets)} targets met"


@dataclass(frozen=True)
class Judgement:
    """What a recipe's ``judge(metrics, cfg)`` returns: the verdict's inputs, from numbers alone.

    Judging is separate from running so that a published result can be re-judged from its
    stored metrics when the rules change, without rerunning the experiment.
    """

    checks: list[Check]
    targets: list[Target]
    finding: str = ""  # what the numbers show, one sentence
    advice: str = ""  # "use it when ...", from this evidence


# ----------------------------------------------------------------------------- plots


def _numbers(name: str, values: Sequence[Any], allow_none: bool = False) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        if v is None and allow_none:
            out.append(None)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "item"):
            raise TypeError(f"plot {name}: values must be numbers; got {type(v).__name__}")
        out.append(float(v))
    return out


def series(
    name: str, x: Sequence[float], y: Sequence[float | None], err: Sequence[float] | None = None
) -> dict[str, Any]:
    """One line or bar group: equal-length ``x``, ``y`` (None = gap) and optional ``err``."""
    if len(x) != len(y):
        raise ValueError(f"series {name!r}: x has {len(x)} points, y has {len(y)}")
    if err is not None and len(err) != len(y):
        raise ValueError(f"series {name!r}: err has {len(err)} values for {len(y)} points")
    out: dict[str, Any] = {"name": name, "x": _numbers(name, x), "y": _numbers(name, y, True)}
    if err is not None:
        out["err"] = _numbers(name, err, True)
    return out


def line_plot(
    title: str,
    x_label: str,
    y_label: str,
    lines: Sequence[dict[str, Any]],
    *,
    log_x: bool = False,
    log_y: bool = False,
    integer_x: bool = False,
) -> dict[str, Any]:
    """A line plot's data; ``lines`` are ``series(...)``; ``err`` draws a band of ±err."""
    if not lines:
        raise ValueError(f"plot {title!r} has no series")
    for s in lines:
        if set(s) - {"name", "x", "y", "err"} or not {"name", "x", "y"} <= set(s):
            raise ValueError(f"plot {title!r}: build each series with results.series()")
    return {
        "title": title,
        "kind": "line",
        "x_label": x_label,
        "y_label": y_label,
        "series": list(lines),
        "log_x": log_x,
        "log_y": log_y,
        "integer_x": integer_x,
    }


def bar_plot(
    title: str,
    y_label: str,
    bars: Sequence[tuple[str, float, float | None]],
    *,
    x_label: str = "",
    reference: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """A bar chart of ``(name, value, err)``; ``err`` is drawn as an error bar (None: none).

    ``reference`` draws a labelled horizontal line (e.g. the majority class or the paper).
    """
    if not bars:
        raise ValueError(f"plot {title!r} has no bars")
    names = [b[0] for b in bars]
    out: dict[str, Any] = {
        "title": title,
        "kind": "bar",
        "x_label": x_label,
        "y_label": y_label,
        "series": [
            series(
                y_label or "value",
                list(range(len(bars))),
                [b[1] for b in bars],
                [math.nan if b[2] is None else b[2] for b in bars],
            )
        ],
        "categories": names,
    }
    if reference is not None:
        out["reference"] = {"name": reference[0], "y": float(reference[1])}
    return out


# ----------------------------------------------------------------------------- the record


@dataclass
class Result:
    """One recipe run: what was measured, against what, on which machine."""

    recipe: str
    claim: Claim
    metrics: dict[str, Any]
    targets: list[Target] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""  # what the numbers do and do not show, in plain words
    checks: list[Check] = field(default_factory=list)
    finding: str = ""  # what the run found, one sentence
    advice: str = ""  # "use it when ...", from the run's own evidence
    evidence: bool = True  # False for smoke / demo runs and overridden configs
    preset: str = ""
    takeaway: int | None = None
    verdict: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    created: str = ""
    code_hash: str = ""
    judged: str = ""  # when the checks and targets were last computed from the metrics
    backfilled: list[str] = field(default_factory=list)  # data-only metrics added by rejudge

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = self.judge_verdict()

    def judge_verdict(self) -> str:
        return verdict_of(self.targets, self.checks, evidence=self.evidence)

    @property
    def conclusive(self) -> bool:
        """True when this is evidence and every check passed: only then do targets count."""
        return self.evidence and all(c.passed for c in self.checks)

    def counted_met(self, t: Target) -> bool:
        """Whether target ``t`` counts as met (never for inconclusive or demo-scale runs)."""
        return self.conclusive and t.met

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        d = dict(d)
        d["claim"] = Claim(**d["claim"])
        d["targets"] = [Target(**t) for t in d.get("targets", [])]
        d["checks"] = [Check(**c) for c in d.get("checks", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def to_jsonable(x: Any) -> Any:
    """``x`` as plain JSON values: nan/inf -> None, tensors and arrays -> lists, paths -> str."""
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN/inf
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy / torch scalars
        return to_jsonable(x.item())
    if hasattr(x, "tolist"):
        return to_jsonable(x.tolist())
    if isinstance(x, Path):
        return str(x)
    return x


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to ``path`` atomically (``files.atomic_write``): readers never see half a file."""
    text = json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"
    return atomic_write(Path(path), text)


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
