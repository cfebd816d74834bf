"""results/*.json -> one self-contained report/index.html, and the README's results table.

The report reads results only; it never trains. Plots are drawn from each
Result's ``plots`` data with matplotlib and inlined as PNG.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from takeaways.catalog import TAKEAWAYS
from takeaways.results import Result, read_result

__all__ = ["load_results", "render_html", "write_report", "results_table", "update_readme"]


def load_results(results_dir: str | Path) -> dict[str, Result]:
    """Every ``*.json`` result in ``results_dir`` keyed by recipe name."""
    out: dict[str, Result] = {}
    for p in sorted(Path(results_dir).glob("*.json")):
        r = read_result(p)
        out[r.recipe] = r
    return out


# ----------------------------------------------------------------------------- formatting


def _fmt(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.3g}"
        return f"{x:.4g}"
    if isinstance(x, list):
        return ", ".join(_fmt(v) for v in x[:8]) + (" ..." if len(x) > 8 else "")
    return str(x)


def _headline(r: Result) -> str:
    """The first target's measurement, the recipe's headline number."""
    if not r.targets:
        return "n/a"
    t = r.targets[0]
    return f"{t.name}: {_fmt(t.measured)} (goal {t.op} {_fmt(t.goal)})"


def _plot_png(plot: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=110)
    kind = plot.get("kind", "line")
    series = plot.get("series", [])
    if kind == "bar":
        names = [s["name"] for s in series]
        values = [s["y"][0] if isinstance(s["y"], list) else s["y"] for s in series]
        errs = [s.get("err") for s in series]
        ax.bar(names, values, yerr=errs if any(e is not None for e in errs) else None, capsize=4)
        ax.tick_params(axis="x", rotation=20)
    else:
        for s in series:
            ax.plot(
                s["x"], s["y"], marker="o" if len(s["x"]) <= 30 else None, ms=3, label=s["name"]
            )
        if plot.get("log_x"):
            ax.set_xscale("log")
        if plot.get("log_y"):
            ax.set_yscale("log")
        if len(series) > 1:
            ax.legend(fontsize=8)
    ax.set_title(plot.get("title", ""), fontsize=10)
    ax.set_xlabel(plot.get("x_label", ""))
    ax.set_ylabel(plot.get("y_label", ""))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


# ----------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;margin:0.6em 0 1.4em}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top;font-size:0.92em}th{background:#f4f4f4}.met{color:#176b2c;font-weight:600}
.miss{color:#a11;font-weight:600}.todo{color:#888}section{border-top:2px solid #eee;margin-top:2em}
img{max-width:100%}code{background:#f6f6f6;padding:0 3px}small{color:#666}
"""


def _esc(x: Any) -> str:
    return html.escape(_fmt(x) if not isinstance(x, str) else x)


def _summary_rows(results: dict[str, Result]) -> list[str]:
    rows = []
    shown = set()
    for tk in TAKEAWAYS:
        done = [results[n] for n in tk.recipes if n in results]
        if not done:
            rows.append(
                f"<tr><td>{tk.number}</td><td>{_esc(tk.title)}<br><small>arXiv {tk.arxiv}</small></td>"
                f"<td class=todo>{_esc(', '.join(tk.recipes))}</td><td class=todo colspan=4>"
                "not yet implemented</td></tr>"
            )
        for r in done:
            shown.add(r.recipe)
            rows.append(
                _summary_row(str(tk.number), f"{tk.title}<br><small>arXiv {tk.arxiv}</small>", r)
            )
    for name, r in sorted(results.items()):
        if name not in shown:
            rows.insert(0, _summary_row("-", "foundation", r))
    return rows


def _summary_row(number: str, title: str, r: Result) -> str:
    cls = "met" if r.targets and all(t.met for t in r.targets) else "miss"
    claim = f"{_esc(r.claim.text)}<br><small>{_esc(r.claim.source)}</small>"
    return (
        f"<tr><td>{number}</td><td>{title}</td><td><a href='#{r.recipe}'>{_esc(r.recipe)}</a></td>"
        f"<td>{claim}</td><td>{_esc(_headline(r))}</td><td class={cls}>{_esc(r.verdict)}</td>"
        f"<td>{r.wall_s:.1f} s</td></tr>"
    )


def _recipe_section(r: Result) -> str:
    parts = [f"<section id='{html.escape(r.recipe)}'><h2>{_esc(r.recipe)}</h2>"]
    parts.append(
        f"<p><b>Paper's claim:</b> {_esc(r.claim.text)} (value {_esc(r.claim.value)}; "
        f"source: {_esc(r.claim.source)})</p>"
    )
    if r.notes:
        parts.append(f"<p><b>What we measured:</b> {_esc(r.notes)}</p>")
    if r.targets:
        parts.append("<table><tr><th>target</th><th>measured</th><th>goal</th><th>met</th></tr>")
        for t in r.targets:
            cls = "met" if t.met else "miss"
            parts.append(
                f"<tr><td>{_esc(t.name)}</td><td>{_esc(t.measured)}</td><td>{_esc(t.op)} {_esc(t.goal)}</td>"
                f"<td class={cls}>{'yes' if t.met else 'no'}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<table><tr><th>metric</th><th>value</th></tr>")
    for k, v in r.metrics.items():
        parts.append(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>")
    parts.append("</table>")
    for plot in r.plots:
        parts.append(
            f"<img alt='{html.escape(plot.get('title', ''))}' src='data:image/png;base64,{_plot_png(plot)}'>"
        )
    cfg = ", ".join(f"{k}={v}" for k, v in r.config.items())
    m = r.machine
    parts.append(
        f"<p><small>preset <code>{_esc(r.preset)}</code>; config <code>{html.escape(cfg)}</code><br>"
        f"machine: {_esc(m.get('cpu'))}, {_esc(m.get('threads'))} threads, torch {_esc(m.get('torch'))}, "
        f"GPU {_esc(m.get('gpu') or 'none')}, {_esc(m.get('world_size', 1))} process(es); "
        f"wall {r.wall_s:.1f} s; created {_esc(r.created)}</small></p></section>"
    )
    return "\n".join(parts)


def render_html(
    results: dict[str, Result], *, preset: str, timings: dict[str, float] | None = None
) -> str:
    """The whole report as one HTML string (CSS and plots inline)."""
    head = (
        "<tr><th>#</th><th>takeaway</th><th>recipe</th><th>paper's claim</th>"
        "<th>measured (headline)</th><th>verdict</th><th>wall</th></tr>"
    )
    machine = next(iter(results.values())).machine if results else {}
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>takeaways report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>takeaways report <small>(preset {html.escape(preset)})</small></h1>",
        "<p>Ten NeurIPS 2020 results as tools; each recipe compares the technique with a baseline "
        "on real data and sets the paper's claim beside what we measured at this scale.</p>",
        f"<table>{head}{''.join(_summary_rows(results))}</table>",
    ]
    if machine:
        body.append(
            f"<p><small>Machine: {_esc(machine.get('cpu'))}, {_esc(machine.get('cores'))} cores, "
            f"torch {_esc(machine.get('torch'))}, GPU {_esc(machine.get('gpu') or 'none')}.</small></p>"
        )
    if timings:
        rows = "".join(f"<tr><td>{_esc(k)}</td><td>{v:.1f} s</td></tr>" for k, v in timings.items())
        body.append(
            f"<h3>Timings of this report run</h3><table><tr><th>recipe</th><th>seconds</th></tr>{rows}</table>"
        )
    body += [_recipe_section(r) for _, r in sorted(results.items())]
    body.append("</body></html>")
    return "\n".join(body)


def write_report(
    results_dir: str | Path,
    out: str | Path,
    *,
    preset: str,
    timings: dict[str, float] | None = None,
) -> Path:
    """Render ``results_dir`` into ``out`` atomically and return the path."""
    out = Path(out)
    text = render_html(load_results(results_dir), preset=preset, timings=timings)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    return out


# ----------------------------------------------------------------------------- README

START, END = "<!-- results:start -->", "<!-- results:end -->"


def results_table(results: dict[str, Result]) -> str:
    """Markdown table of published results (generated; never typed by hand)."""
    lines = [
        "| # | recipe | paper's claim (source) | measured | verdict | wall |",
        "|---|---|---|---|---|---|",
    ]
    by_recipe = {n: tk.number for tk in TAKEAWAYS for n in tk.recipes}
    for name, r in sorted(results.items(), key=lambda kv: (by_recipe.get(kv[0], 0), kv[0])):
        claim = f"{r.claim.text} ({r.claim.source})".replace("|", "/")
        measured = "; ".join(
            f"{t.name} {_fmt(t.measured)} ({t.op} {_fmt(t.goal)})" for t in r.targets
        )
        lines.append(
            f"| {by_recipe.get(name, '-')} | `{name}` | {claim} | {measured or 'n/a'} | {r.verdict} | {r.wall_s:.0f} s |"
        )
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
        p.write_text(new)
    return new != text
