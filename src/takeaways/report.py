"""results/*.json -> one self-contained report/index.html, and the README's results table.

The report reads results only; it never trains. Its top is one card per takeaway (the
paper's claim, what we found, the verdict, when to use it); below, per recipe, the checks,
the targets, the metrics as tables and the plots, drawn with matplotlib and inlined as PNG.

A target counts as met only in a conclusive result: a full-preset run (evidence) whose
checks all passed. A smoke or demo result shows its own numbers beside the published
``results/full`` verdict, finding and checks of the same recipe.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from takeaways.catalog import TAKEAWAYS
from takeaways.files import atomic_write
from takeaways.results import NOT_EVIDENCE, Result, Target, read_result, verdict_of

__all__ = [
    "load_results",
    "render_html",
    "write_report",
    "results_table",
    "update_readme",
    "display_verdict",
    "verdict_state",
    "target_status",
    "checks_summary",
    "metric_tables",
    "fmt_num",
    "fmt_value",
    "draw_plot",
    "plot_png",
]


def load_results(results_dir: str | Path) -> dict[str, Result]:
    """Every ``*.json`` result in ``results_dir`` keyed by recipe name ({} if there is none)."""
    out: dict[str, Result] = {}
    for p in sorted(Path(results_dir).glob("*.json")):
        r = read_result(p)
        out[r.recipe] = r
    return out


# ----------------------------------------------------------------------------- verdicts


def _is_evidence(r: Result) -> bool:
    """A full-preset run; smoke and demo results (old files lack the flag) never are."""
    return bool(r.evidence) and r.preset not in ("smoke", "demo")


def _conclusive(r: Result) -> bool:
    """Evidence whose checks all passed: only then does a met target count."""
    return r.conclusive and _is_evidence(r)


def display_verdict(r: Result) -> str:
    """The verdict recomputed from checks and targets, so a stale stored string never shows."""
    if not _is_evidence(r):
        return NOT_EVIDENCE
    return verdict_of(r.targets, r.checks)


def verdict_state(r: Result) -> str:
    """demo | inconclusive | met | partial | missed | none: the verdict's colour."""
    if not _is_evidence(r):
        return "demo"
    if not _conclusive(r):
        return "inconclusive"
    if not r.targets:
        return "none"
    met = sum(t.met for t in r.targets)
    return "met" if met == len(r.targets) else "missed" if met == 0 else "partial"


def target_status(r: Result, t: Target) -> str:
    """'met', 'missed', or 'met (not counted)' for a met target of an inconclusive/demo result."""
    if not t.met:
        return "missed"
    return "met" if r.counted_met(t) and _is_evidence(r) else "met (not counted)"


def checks_summary(r: Result) -> str:
    """'3/3 passed', 'failed: a, b' or 'none recorded' (results judged before checks existed)."""
    if not r.checks:
        return "none recorded"
    failed = [c.name for c in r.checks if not c.passed]
    if failed:
        return "failed: " + ", ".join(failed)
    return f"{len(r.checks)}/{len(r.checks)} passed"


def _checks_count(r: Result) -> str:
    """'3/3 checks passed', '2 of 7 checks failed' or 'no checks recorded'."""
    failed = sum(not c.passed for c in r.checks)
    if not r.checks:
        return "no checks recorded"
    if failed:
        return f"{failed} of {len(r.checks)} checks failed"
    return f"{len(r.checks)}/{len(r.checks)} checks passed"


def _finding(r: Result) -> str:
    """The Result's finding; for results written before findings existed, the first target."""
    if r.finding:
        return r.finding
    if r.targets:
        t = r.targets[0]
        return f"{t.name}: {fmt_num(t.measured)} (goal {t.op} {fmt_num(t.goal)})."
    return ""


# ----------------------------------------------------------------------------- numbers


def fmt_num(x: Any) -> str:
    """A number with 3-4 significant digits, without exponents where a reader does not need one."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    if isinstance(x, float):
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x == 0:
            return "0"
        if abs(x) < 1e-3 or abs(x) >= 1e7:
            return f"{x:.3g}"
        if abs(x) >= 1e4:
            return f"{x:,.0f}"
        return f"{x:.4g}"
    return str(x)


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _mean_se(values: list[float]) -> str:
    v = [float(x) for x in values if x is not None]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{fmt_num(v[0])} (n=1)"
    se = statistics.stdev(v) / math.sqrt(len(v))
    return f"{fmt_num(statistics.fmean(v))} ± {se:.2g} (n={len(v)})"


def fmt_value(key: str, v: Any) -> str:
    """A metric value as text: per-seed lists as mean ± s.e. (n) and their values; no dict text."""
    if isinstance(v, dict):  # only reached when a caller passes one; flatten it readably
        return "; ".join(f"{k}: {fmt_value(str(k), x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        if not v:
            return "(none)"
        if all(_is_number(x) for x in v):
            shown = ", ".join(fmt_num(x) for x in v[:10]) + (
                f", … ({len(v)} values)" if len(v) > 10 else ""
            )
            if "seed" in key.lower() and len(v) > 1:
                return f"{_mean_se(list(v))}: {shown}"
            return shown
        return "; ".join(fmt_value(key, x) for x in v[:10]) + (" …" if len(v) > 10 else "")
    return fmt_num(v)


# ----------------------------------------------------------------------------- metrics tables


def _leaf_dict(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and not any(isinstance(x, dict) for x in v.values())


def _similar_groups(children: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Sibling dicts grouped by their keys (Jaccard >= 0.5 with the group's first member)."""
    groups: list[list[str]] = []
    for name, d in children.items():
        keys = set(d)
        for g in groups:
            first = set(children[g[0]])
            if len(keys & first) >= 0.5 * len(keys | first):
                g.append(name)
                break
        else:
            groups.append([name])
    return groups


def _grid(title: str, members: list[str], children: dict[str, dict[str, Any]]) -> dict | None:
    """One table for similar siblings: members as rows (few keys) or as columns (few members)."""
    keys: list[str] = []
    for m in members:
        keys += [k for k in children[m] if k not in keys]

    def cell(m: str, k: str) -> str:  # the full name tells a per-seed list (e.g. x.per_seed.arm)
        return fmt_value(f"{title}.{m}.{k}", children[m][k]) if k in children[m] else ""

    if len(keys) <= 8:
        rows = [[m] + [cell(m, k) for k in keys] for m in members]
        return {"title": title, "header": ["", *keys], "rows": rows}
    if len(members) <= 12:
        rows = [[k] + [cell(m, k) for m in members] for k in keys]
        return {"title": title, "header": ["", *members], "rows": rows}
    return None


def metric_tables(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Metrics as tables ``{title, header, rows}``: one of name/value rows, plus one per group
    of similar nested dicts (e.g. one row per depth, one column per noise setting)."""
    flat: list[list[str]] = []
    grids: list[dict[str, Any]] = []

    def walk(prefix: tuple[str, ...], node: dict[str, Any]) -> None:
        children = {str(k): v for k, v in node.items() if _leaf_dict(v)}
        gridded: set[str] = set()
        for members in _similar_groups(children):
            if len(members) < 2:
                continue
            g = _grid(".".join(prefix) or "metrics", members, children)
            if g is not None:
                grids.append(g)
                gridded.update(members)
        for k, v in node.items():
            k = str(k)
            if k in gridded:
                continue
            if isinstance(v, dict):
                walk((*prefix, k), v)
            else:
                name = ".".join((*prefix, k))
                flat.append([name, fmt_value(name, v)])

    walk((), metrics)
    tables = [{"title": "", "header": ["metric", "value"], "rows": flat}] if flat else []
    return tables + grids


# ----------------------------------------------------------------------------- plots


def _floats(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        try:
            out.append(math.nan if v is None else float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _errs(err: Any, n: int) -> list[float]:
    """``err`` of a series as n floats (nan: none); old files store a scalar for one bar."""
    if err is None:
        return [math.nan] * n
    if not isinstance(err, (list, tuple)):
        err = [err]
    e = _floats(err)
    return (e + [math.nan] * n)[:n]


def _bars(plot: dict[str, Any]) -> tuple[list[str], list[float], list[float]]:
    """(names, values, errs) of a bar plot: new format (``categories``) or old (a series per bar)."""
    series = plot.get("series", [])
    if "categories" in plot and series:
        s = series[0]
        y = _floats(s.get("y", []))
        return [str(c) for c in plot["categories"]], y, _errs(s.get("err"), len(y))
    names, values, errs = [], [], []
    for s in series:
        y = s.get("y")
        y = y if isinstance(y, (list, tuple)) else [y]
        names.append(str(s.get("name", "")))
        values.append(_floats(y[:1])[0] if y else math.nan)
        errs.append(_errs(s.get("err"), 1)[0])
    return names, values, errs


def _zoom(
    values: list[float], errs: list[float], extra: Iterable[float] = ()
) -> tuple[float, float]:
    """y limits around min/max of value ± err with a margin: never a fixed 0-1 axis."""
    lo_hi = []
    for v, e in zip(values, errs):
        if math.isfinite(v):
            e = e if math.isfinite(e) else 0.0
            lo_hi += [v - abs(e), v + abs(e)]
    lo_hi += [v for v in extra if math.isfinite(v)]
    if not lo_hi:
        return 0.0, 1.0
    lo, hi = min(lo_hi), max(lo_hi)
    pad = 0.12 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-3)
    return lo - pad, hi + pad


def _tick(v: float, _pos: Any = None) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _draw_bars(ax: Any, plot: dict[str, Any]) -> None:
    names, values, errs = _bars(plot)
    pos = list(range(len(names)))
    has_err = any(math.isfinite(e) for e in errs)
    yerr = [e if math.isfinite(e) else 0.0 for e in errs] if has_err else None
    ax.bar(
        pos,
        [v if math.isfinite(v) else 0.0 for v in values],
        yerr=yerr,
        capsize=5,
        color="#6b8fb8",
        edgecolor="#34557a",
        error_kw={"elinewidth": 1.2},
    )
    for p, v, e in zip(pos, values, errs):
        if math.isfinite(v):  # the value above its error bar
            top = v + (abs(e) if math.isfinite(e) else 0.0)
            ax.annotate(
                _tick(v),
                (p, top),
                ha="center",
                va="bottom",
                fontsize=7.5,
                xytext=(0, 3),
                textcoords="offset points",
            )
    ref = plot.get("reference")
    extra = []
    if ref and ref.get("y") is not None:
        ax.axhline(ref["y"], color="#a11", ls="--", lw=1.2, label=ref.get("name", "reference"))
        ax.legend(fontsize=8)
        extra.append(float(ref["y"]))
    ax.set_xticks(pos)
    ax.set_xticklabels(
        names,
        rotation=20 if max(map(len, names), default=0) > 8 else 0,
        ha="right" if max(map(len, names), default=0) > 8 else "center",
    )
    ax.set_ylim(*_zoom(values, errs, extra))
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")


def _draw_lines(ax: Any, plot: dict[str, Any]) -> list[float]:
    """Draw each series (a band or error bars where it has ``err``); return every x drawn."""
    all_x, all_y, all_e = [], [], []
    caps = len(plot.get("series", [])) <= 3  # with more lines, bands alone stay readable
    names: list[str] = []  # x given as names (categories): drawn at 0, 1, 2, ...
    for s in plot.get("series", []):
        names += [v for v in s.get("x", []) if isinstance(v, str) and v not in names]
    for s in plot.get("series", []):
        raw_x = [names.index(v) if isinstance(v, str) else v for v in s.get("x", [])]
        x, y = _floats(raw_x), _floats(s.get("y", []))
        e = _errs(s.get("err"), len(y))
        n = min(len(x), len(y))
        x, y, e = x[:n], y[:n], e[:n]
        few = n <= 30
        (line,) = ax.plot(x, y, marker="o" if few else None, ms=3, lw=1.4, label=s.get("name", ""))
        if any(math.isfinite(v) for v in e):
            lo = [a - b if math.isfinite(b) else a for a, b in zip(y, e)]
            hi = [a + b if math.isfinite(b) else a for a, b in zip(y, e)]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, lw=0)
            if few and caps:
                ax.errorbar(
                    x,
                    y,
                    yerr=[
                        [max(a - b, 0) for a, b in zip(y, lo)],
                        [max(b - a, 0) for a, b in zip(y, hi)],
                    ],
                    fmt="none",
                    ecolor=line.get_color(),
                    capsize=3,
                    lw=1,
                )
        all_x += x
        all_y += y
        all_e += e
    if not plot.get("log_y"):
        ax.set_ylim(*_zoom(all_y, all_e))
    if len(plot.get("series", [])) > 1:
        ax.legend(fontsize=8)
    if names:
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names)
        return []
    return [v for v in all_x if math.isfinite(v)]


def _format_axes(ax: Any, plot: dict[str, Any], xs: list[float]) -> None:
    """Plain tick labels (no 2×10^0, no offsets); integer x ticks for epochs and steps."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    integer_x = bool(xs) and (plot.get("integer_x") or all(float(v).is_integer() for v in xs))
    distinct = sorted(set(xs))
    if plot.get("log_x") and all(v > 0 for v in xs):
        ax.set_xscale("log")
        if 0 < len(distinct) <= 12:
            ax.set_xticks(distinct)
        ax.xaxis.set_major_formatter(FuncFormatter(_tick))
        ax.xaxis.set_minor_formatter(NullFormatter())
    elif integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(_tick))
    if plot.get("log_y"):
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_tick))
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif plot.get("kind", "line") == "line":
        ax.yaxis.set_major_formatter(FuncFormatter(_tick))


def draw_plot(ax: Any, plot: dict[str, Any]) -> None:
    """Draw one plot's data (old or new format) onto matplotlib axes ``ax``."""
    if plot.get("kind", "line") == "bar":
        _draw_bars(ax, plot)
    else:
        _format_axes(ax, plot, _draw_lines(ax, plot))
    ax.set_title(plot.get("title", ""), fontsize=9.5)
    ax.set_xlabel(plot.get("x_label", ""))
    ax.set_ylabel(plot.get("y_label", ""))
    ax.grid(alpha=0.3)


def plot_png(plot: dict[str, Any]) -> str:
    """One plot (old or new format) as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.7), dpi=110)
    try:
        draw_plot(ax, plot)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


# ----------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.4em 0 1.2em}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top;font-size:0.88em}th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:0.85em;color:#fff}
.v-met{background:#1e7b34}.v-missed{background:#b3261e}.v-inconclusive{background:#c77700}
.v-partial{background:#2f6aa3}.v-demo,.v-none{background:#777}
.s-met{color:#1e7b34;font-weight:600}.s-missed,.s-failed{color:#b3261e;font-weight:600}
.s-notcounted{color:#c77700;font-weight:600}.s-passed{color:#1e7b34}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 12px;background:#fcfcfc}
.card h3{margin:0 0 4px;font-size:1em}.card .demo{font-size:0.9em}.card p{margin:5px 0;font-size:0.9em}
.card .recipe{border-top:1px dashed #ddd;margin-top:6px;padding-top:4px}
.demo{border-left:4px solid #777;background:#f6f6f6;padding:6px 10px;margin:8px 0}
.advice{font-style:italic}section{border-top:2px solid #eee;margin-top:2em}
img{max-width:100%}.plots{display:flex;flex-wrap:wrap;gap:8px}.plots img{width:calc(50% - 4px)}code{background:#f6f6f6;padding:0 3px}small,.muted{color:#666}
details summary{cursor:pointer;color:#345}
"""


def _esc(x: Any) -> str:
    return html.escape(x if isinstance(x, str) else fmt_num(x))


def _badge(r: Result) -> str:
    return f"<span class='badge v-{verdict_state(r)}'>{_esc(display_verdict(r))}</span>"


def _status_cell(r: Result, t: Target) -> str:
    s = target_status(r, t)
    cls = {"met": "s-met", "missed": "s-missed"}.get(s, "s-notcounted")
    return f"<td class={cls}>{_esc(s)}</td>"


def _table(header: list[str], rows: list[list[str]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped text unless ``raw`` (pre-built cells)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = row if raw else [f"<td>{_esc(c)}</td>" for c in row]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _checks_table(r: Result) -> str:
    if not r.checks:
        return "<p class=muted>No checks recorded: judged before checks existed (<code>takeaways rejudge</code>).</p>"
    rows = [
        [
            f"<td>{_esc(c.name)}</td>",
            f"<td class={'s-passed' if c.passed else 's-failed'}>{'passed' if c.passed else 'FAILED'}</td>",
            f"<td>{_esc(c.detail)}</td>",
        ]
        for c in r.checks
    ]
    return _table(["check", "", "detail"], rows, raw=True)


def _targets_table(r: Result) -> str:
    if not r.targets:
        return "<p class=muted>No targets.</p>"
    with_interval = any(t.interval or t.rule for t in r.targets)
    rows = []
    for t in r.targets:
        row = [
            f"<td>{_esc(t.name)}</td>",
            f"<td class=n>{_esc(fmt_num(t.measured))}</td>",
            f"<td>{_esc(t.op)} {_esc(fmt_num(t.goal))}</td>",
        ]
        if with_interval:
            iv = f"[{fmt_num(t.interval[0])}, {fmt_num(t.interval[1])}]" if t.interval else ""
            rule = f"<br><small>{_esc(t.rule)}</small>" if t.rule else ""
            row.append(f"<td>{_esc(iv)}{rule}</td>")
        rows.append(row + [_status_cell(r, t)])
    header = ["target", "measured", "goal"] + (["interval / rule"] if with_interval else [])
    return _table(header + ["status"], rows, raw=True)


def _metrics_html(r: Result) -> str:
    tables = metric_tables(r.metrics)
    n = sum(len(t["rows"]) for t in tables)
    parts = []
    for t in tables:
        title = f"<p><b>{_esc(t['title'])}</b></p>" if t["title"] else ""
        rows = [
            [f"<td>{_esc(row[0])}</td>"] + [f"<td class=n>{_esc(c)}</td>" for c in row[1:]]
            for row in t["rows"]
        ]
        parts.append(title + _table(t["header"], rows, raw=True))
    opened = " open" if n <= 40 else ""
    return f"<details{opened}><summary>metrics ({n} rows)</summary>{''.join(parts)}</details>"


def _published_html(pub: Result | None, *, full: bool) -> str:
    """Beside a demo/smoke result: what the published full run of the same recipe found."""
    if pub is None:
        return "<div class=demo>No published full result for this recipe.</div>"
    body = f"<b>Published full run:</b> {_badge(pub)} {_esc(_finding(pub))}"
    if pub.advice:
        body += f"<br><span class=advice>{_esc(pub.advice)}</span>"
    if full:
        body += f"<br><small>checks: {_esc(checks_summary(pub))}</small>" + _checks_table(pub)
    return f"<div class=demo>{body}</div>"


def _card_entry(r: Result, pub: Result | None) -> str:
    """One recipe in a takeaway card; a demo result leads with the published full run."""
    link = f"<a href='#{html.escape(r.recipe)}'><code>{_esc(r.recipe)}</code></a>"
    parts = [
        f"<div class=recipe><p>{link} {_badge(r)} <small>{_esc(_checks_count(r))}</small></p>",
        f"<p><b>Paper:</b> {_esc(r.claim.text)} <small>({_esc(r.claim.source)})</small></p>",
    ]
    found = _esc(_finding(r)) or "<span class=muted>(no finding recorded)</span>"
    if _is_evidence(r):
        parts.append(f"<p><b>We found:</b> {found}</p>")
        if r.advice:
            parts.append(f"<p class=advice>{_esc(r.advice)}</p>")
    else:
        parts.append(_published_html(pub, full=False))
        parts.append(f"<p><small><b>This {_esc(r.preset or 'demo')} run:</b> {found}</small></p>")
    return "".join(parts) + "</div>"


def _card(
    number: str,
    title: str,
    sub: str,
    rs: list[Result],
    pubs: dict[str, Result],
    names: Iterable[str],
) -> str:
    parts = [f"<div class=card><h3>{_esc(number)} {_esc(title)}</h3><small>{sub}</small>"]
    parts += [_card_entry(r, pubs.get(r.recipe)) for r in rs]
    have = {r.recipe for r in rs}
    for n in names:
        if n in have:
            continue
        pub = pubs.get(n)
        later = _published_html(pub, full=False) if pub is not None else ""
        parts.append(
            f"<div class=recipe><p><code>{_esc(n)}</code> <span class=muted>no result yet</span></p>{later}</div>"
        )
    return "".join(parts) + "</div>"


def _cards(results: dict[str, Result], pubs: dict[str, Result]) -> str:
    cards = []
    claimed: set[str] = set()
    for tk in TAKEAWAYS:
        rs = [results[n] for n in tk.recipes if n in results]
        claimed.update(tk.recipes)
        sub = f"{_esc(tk.paper)}, arXiv {_esc(tk.arxiv)}; tool <code>{_esc(tk.tool)}</code>"
        cards.append(_card(f"{tk.number}.", tk.title, sub, rs, pubs, tk.recipes))
    for name, r in sorted(results.items()):
        if name not in claimed:
            cards.append(_card("", name, "foundation (no paper)", [r], pubs, [name]))
    return f"<div class=cards>{''.join(cards)}</div>"


def _recipe_section(r: Result, pub: Result | None) -> str:
    parts = [f"<section id='{html.escape(r.recipe)}'><h2>{_esc(r.recipe)} {_badge(r)}</h2>"]
    parts.append(
        f"<p><b>Paper's claim:</b> {_esc(r.claim.text)} (value {_esc(fmt_num(r.claim.value))}; "
        f"source: {_esc(r.claim.source)})</p>"
    )
    if _finding(r):
        parts.append(f"<p><b>What we found:</b> {_esc(_finding(r))}</p>")
    if r.advice:
        parts.append(f"<p class=advice>{_esc(r.advice)}</p>")
    if not _is_evidence(r):
        parts.append(
            f"<p><b>{_esc(NOT_EVIDENCE.capitalize())}.</b> These numbers show the pipeline runs "
            "on this machine.</p>" + _published_html(pub, full=True)
        )
    if r.notes:
        parts.append(f"<p><b>Notes:</b> {_esc(r.notes)}</p>")
    parts.append(f"<h4>Checks <small>({_esc(_checks_count(r))})</small></h4>{_checks_table(r)}")
    parts.append(f"<h4>Targets</h4>{_targets_table(r)}")
    parts.append(_metrics_html(r))
    imgs = [
        f"<img alt='{html.escape(p.get('title', ''))}' src='data:image/png;base64,{plot_png(p)}'>"
        for p in r.plots
    ]
    if imgs:
        parts.append(f"<div class=plots>{''.join(imgs)}</div>")
    cfg = ", ".join(f"{k}={v}" for k, v in r.config.items())
    m = r.machine
    parts.append(
        f"<p><small>preset <code>{_esc(r.preset)}</code>; config <code>{html.escape(cfg)}</code><br>"
        f"machine: {_esc(m.get('cpu'))}, {_esc(m.get('threads'))} threads, torch {_esc(m.get('torch'))}, "
        f"GPU {_esc(m.get('gpu') or 'none')}, {_esc(m.get('world_size', 1))} process(es); "
        f"wall {r.wall_s:.1f} s; created {_esc(r.created)}"
        + (f"; judged {_esc(r.judged)}" if r.judged else "")
        + "</small></p></section>"
    )
    return "\n".join(parts)


def render_html(
    results: dict[str, Result],
    *,
    preset: str,
    timings: dict[str, float] | None = None,
    published: dict[str, Result] | None = None,
) -> str:
    """The whole report as one HTML string (CSS and plots inline).

    ``published``: the ``results/full`` results, shown beside smoke/demo results.
    """
    pubs = published or {}
    machine = next(iter(results.values())).machine if results else {}
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>takeaways report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>takeaways report <small>(preset {html.escape(preset)})</small></h1>",
        "<p>Ten NeurIPS 2020 results as tools. Each recipe compares the technique with a baseline "
        "on real data. A verdict is <span class='badge v-met'>met</span> / "
        "<span class='badge v-missed'>missed</span> only when every check passed; a failed check "
        "makes it <span class='badge v-inconclusive'>inconclusive</span> and no target counts. "
        "Smoke and demo runs are <span class='badge v-demo'>not evidence</span>: they show the "
        "published full-run verdict beside their own numbers.</p>",
    ]
    if any(not _is_evidence(r) for r in results.values()):
        body.append(
            f"<div class=demo><b>{html.escape(NOT_EVIDENCE.capitalize())}.</b> These runs take seconds "
            "to a minute: they show that the pipeline works on this machine. What the full runs "
            "found is the <b>published full run</b> beside each recipe (from "
            "<code>results/full</code>).</div>"
        )
    body.append(_cards(results, pubs))
    if machine:
        body.append(
            f"<p><small>Machine: {_esc(machine.get('cpu'))}, {_esc(machine.get('cores'))} cores, "
            f"torch {_esc(machine.get('torch'))}, GPU {_esc(machine.get('gpu') or 'none')}.</small></p>"
        )
    if timings:
        rows = [[k, f"{v:.1f} s"] for k, v in timings.items()]
        body.append(f"<h3>Timings of this report run</h3>{_table(['recipe', 'seconds'], rows)}")
    body += [_recipe_section(r, pubs.get(name)) for name, r in sorted(results.items())]
    body.append("</body></html>")
    return "\n".join(body)


def write_report(
    results_dir: str | Path,
    out: str | Path,
    *,
    preset: str,
    timings: dict[str, float] | None = None,
    published_dir: str | Path | None = None,
) -> Path:
    """Render ``results_dir`` into ``out`` atomically and return the path.

    ``published_dir`` (read only) holds the full results shown beside smoke/demo results.
    """
    out = Path(out)
    pubs = load_results(published_dir) if published_dir else {}
    text = render_html(load_results(results_dir), preset=preset, timings=timings, published=pubs)
    return atomic_write(out, text)


# ----------------------------------------------------------------------------- README

START, END = "<!-- results:start -->", "<!-- results:end -->"


def _measured(r: Result) -> str:
    parts = []
    for t in r.targets:
        iv = f" [{fmt_num(t.interval[0])}, {fmt_num(t.interval[1])}]" if t.interval else ""
        parts.append(
            f"{t.name} {fmt_num(t.measured)}{iv} ({t.op} {fmt_num(t.goal)}): {target_status(r, t)}"
        )
    return "; ".join(parts) or "n/a"


def results_table(results: dict[str, Result]) -> str:
    """Markdown table of published results (generated; never typed by hand)."""
    lines = [
        "| # | recipe | paper's claim (source) | checks | measured | verdict | wall |",
        "|---|---|---|---|---|---|---|",
    ]
    by_recipe = {n: tk.number for tk in TAKEAWAYS for n in tk.recipes}
    for name, r in sorted(results.items(), key=lambda kv: (by_recipe.get(kv[0], 0), kv[0])):
        cells = [
            str(by_recipe.get(name, "-")),
            f"`{name}`",
            f"{r.claim.text} ({r.claim.source})",
            checks_summary(r),
            _measured(r),
            f"**{display_verdict(r)}**",
            f"{r.wall_s:.0f} s",
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def update_readme(readme: str | Path, results_dir: str | Path) -> bool:
    """Replace the block between the results markers in ``readme``; True if it changed."""
    p = Path(readme)
    text = p.read_text()
    if START not in text or END not in text:
        raise ValueError(
            f"{p} has no {START} ... {END} block; add the two markers where the table goes"
        )
    table = results_table(load_results(results_dir))
    new = re.sub(
        re.escape(START) + r".*?" + re.escape(END),
        lambda _: f"{START}\n{table}\n{END}",
        text,
        flags=re.S,
    )
    if new != text:
        atomic_write(p, new)
    return new != text
