"""The report and README table are generated from result files, never typed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from takeaways.report import (
    END,
    START,
    checks_summary,
    display_verdict,
    draw_plot,
    fmt_num,
    load_results,
    metric_tables,
    plot_png,
    render_html,
    results_table,
    target_status,
    update_readme,
    verdict_state,
    write_report,
)
from takeaways.results import (
    NOT_EVIDENCE,
    Check,
    Claim,
    Result,
    Target,
    bar_plot,
    line_plot,
    paired_diff,
    series,
    write_result,
)

ROOT = Path(__file__).resolve().parents[1]
OLD_LINE = {
    "title": "t",
    "kind": "line",
    "x_label": "N",
    "y_label": "ms",
    "series": [{"name": "dense", "x": [1, 2], "y": [3, 4]}],
}
OLD_BAR = {  # results written before results.bar_plot: one series per bar, a scalar err
    "title": "b",
    "kind": "bar",
    "series": [
        {"name": "a", "x": ["a"], "y": [0.979], "err": 0.0026},
        {"name": "b", "x": ["b"], "y": [0.977], "err": 0.0044},
    ],
}


def make_result(
    name: str = "long-range",
    measured: float = 12.5,
    met_goal: float = 10.0,
    *,
    checks: list[Check] | None = None,
    preset: str = "full",
    finding: str = "",
) -> Result:
    return Result(
        recipe=name,
        preset=preset,
        claim=Claim(
            "sparse attention handles 8x longer sequences", 8.0, "Zaheer et al., arXiv 2007.14062"
        ),
        metrics={"speedup": measured},
        targets=[Target.check("forward speed-up at N=16384", measured, ">=", met_goal)],
        checks=checks or [],
        plots=[OLD_LINE, OLD_BAR],
        wall_s=3.0,
        takeaway=7,
        evidence=preset == "full",
        finding=finding,
        advice="Use it when sequences are long.",
    )


FAILED = [Check("baseline above chance", True, "0.9 > 0.2"), Check("beat the unigram", False, "x")]


def test_html_places_results_in_their_takeaway_cards():
    html = render_html({"long-range": make_result()}, preset="full")
    assert "12.5" in html and "Zaheer et al." in html
    assert html.count("data:image/png;base64,") == 2
    assert html.count("no result yet") == 11  # 12 recipes in the catalog, one has a result
    assert "Use it when sequences are long." in html and "v-met" in html


def test_failing_check_is_inconclusive_and_its_met_target_not_counted():
    r = make_result(checks=FAILED)
    assert r.targets[0].met
    assert display_verdict(r) == "inconclusive: beat the unigram"
    assert verdict_state(r) == "inconclusive"
    assert target_status(r, r.targets[0]) == "met (not counted)"
    assert checks_summary(r) == "failed: beat the unigram"
    html = render_html({"long-range": r}, preset="full")
    assert "inconclusive: beat the unigram" in html and "met (not counted)" in html
    assert "v-inconclusive" in html and "FAILED" in html
    row = results_table({"long-range": r}).splitlines()[-1]
    assert "inconclusive: beat the unigram" in row and "failed: beat the unigram" in row
    assert "met (not counted)" in row and ": met;" not in row and not row.endswith(": met |")


def test_all_checks_passed_counts_met_targets():
    r = make_result(checks=[FAILED[0]])
    assert display_verdict(r) == "all 1 targets met" and verdict_state(r) == "met"
    assert target_status(r, r.targets[0]) == "met" and checks_summary(r) == "1/1 passed"


def test_stale_stored_verdict_is_recomputed():
    r = make_result(checks=FAILED)
    r.verdict = "all 1 targets met"  # e.g. a file edited by hand
    assert "inconclusive" in results_table({"long-range": r})


def test_targets_with_interval_show_interval_and_rule():
    r = make_result(checks=[FAILED[0]])
    r.targets.append(Target.beats("technique minus baseline", paired_diff([3, 4, 5], [1, 1, 2])))
    html = render_html({"long-range": r}, preset="full")
    assert "interval / rule" in html and "paired 95% t-interval" in html
    assert "[" in results_table({"long-range": r}).splitlines()[-1]


def test_demo_report_shows_the_published_verdict_beside_the_demo_numbers(tmp_path):
    write_result(make_result(checks=FAILED, finding="the full run found X."), tmp_path)
    write_result(make_result(measured=3.0, preset="demo", finding="demo found Y."), tmp_path)
    out = write_report(
        tmp_path / "demo", tmp_path / "r.html", preset="demo", published_dir=tmp_path / "full"
    )
    html = out.read_text()
    assert NOT_EVIDENCE in html and "Published full run" in html
    assert "inconclusive: beat the unigram" in html  # the published verdict
    assert "the full run found X." in html and "demo found Y." in html
    demo = load_results(tmp_path / "demo")["long-range"]
    assert verdict_state(demo) == "demo" and display_verdict(demo) == NOT_EVIDENCE


def test_old_demo_file_without_evidence_flag_is_not_evidence():
    r = make_result(preset="demo")
    r.evidence = True  # files written before the flag existed default to True
    assert (
        display_verdict(r) == NOT_EVIDENCE and target_status(r, r.targets[0]) == "met (not counted)"
    )


def test_metrics_are_tables_without_dict_text():
    metrics = {
        "acc_per_seed": [0.9, 0.92, 0.94],
        "big": 123456.789,
        "tiny": 0.000123,
        "nested": {"a": {"x": 1.23456, "y": 2}, "b": {"x": 3.0, "y": 4}, "c": {"deep": {"z": 1}}},
        "label": "text",
    }
    tables = metric_tables(metrics)
    text = json.dumps(tables)
    assert "{" not in "".join(c for t in tables for row in t["rows"] for c in row)
    flat = dict(tables[0]["rows"])
    assert flat["acc_per_seed"].startswith("0.92 ± 0.012 (n=3)")
    assert flat["big"] == "123,457" and flat["tiny"] == "0.000123"
    assert flat["nested.c.deep.z"] == "1"
    grid = next(t for t in tables if t["title"] == "nested")
    assert grid["header"] == ["", "x", "y"] and grid["rows"][0] == ["a", "1.235", "2"]
    assert "1.23456" not in text
    html = render_html({"long-range": make_result()}, preset="full")
    assert "{'" not in html and '{"' not in html


def test_published_results_render_without_dict_text():
    results = load_results(ROOT / "results" / "full")
    for r in results.values():
        for t in metric_tables(r.metrics):
            for row in t["rows"]:
                assert not any("{" in c for c in row), (r.recipe, row)


def test_fmt_num():
    assert fmt_num(0.98328) == "0.9833" and fmt_num(None) == "n/a" and fmt_num(50000) == "50,000"
    assert fmt_num(float("nan")) == "n/a" and fmt_num(1946.2) == "1946" and fmt_num(0) == "0"


@pytest.mark.parametrize(
    "plot",
    [
        OLD_LINE,
        OLD_BAR,
        {**OLD_LINE, "series": [{"name": "s", "x": ["a", "b"], "y": [1, 2], "err": [0.1, 0.2]}]},
        {**OLD_LINE, "log_x": True, "series": [{"name": "s", "x": [2, 5, 10], "y": [1, 2, 3]}]},
        line_plot(
            "loss",
            "epoch",
            "nats",
            [
                series("a", [1, 2, 3], [0.5, None, 0.4], [0.01, None, 0.02]),
                series("b", [1, 2], [1, 2]),
            ],
            integer_x=True,
        ),
        line_plot(
            "t", "N", "s", [series("d", [512, 1024, 2048], [0.1, 0.4, 1.6])], log_x=True, log_y=True
        ),
        bar_plot(
            "acc", "accuracy", [("x", 0.61, 0.01), ("y", 0.6, None)], reference=("majority", 0.58)
        ),
    ],
)
def test_plots_render_old_and_new_formats(plot):
    assert len(plot_png(plot)) > 1000


def _tick_labels(plot):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_plot(ax, plot)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    xs = [t.get_text() for t in ax.get_xticklabels()]
    plt.close(fig)
    return labels, xs


def test_ticks_are_plain_and_integer_where_x_is_integer():
    labels, xs = _tick_labels(
        line_plot(
            "t",
            "N",
            "s",
            [series("d", [2, 5, 10, 25], [0.1, 0.4, 1.6, 3.0])],
            log_x=True,
            log_y=True,
        )
    )
    assert not any("times" in t or "$" in t for t in labels)  # no 2×10^0
    assert {"2", "5", "10", "25"} <= set(xs)
    _, xs = _tick_labels(line_plot("t", "epoch", "acc", [series("a", [1, 2, 3], [0.5, 0.6, 0.7])]))
    assert xs and all(t.lstrip("−-").isdigit() for t in xs if t)  # no epoch 1.5


def test_bar_axis_zooms_to_the_data():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    draw_plot(ax, bar_plot("a", "acc", [("x", 0.975, 0.002), ("y", 0.98, 0.001)]))
    lo, hi = ax.get_ylim()
    plt.close(fig)
    assert 0.96 < lo < 0.973 and 0.981 < hi < 0.99  # a 0.5-point difference is visible


def test_readme_table_comes_from_result_files(tmp_path):
    results = tmp_path / "results"
    write_result(make_result(measured=11.0), results)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\nold\n{END}\ntail\n")
    assert update_readme(readme, results / "full")
    text = readme.read_text()
    assert "old" not in text and "`long-range`" in text and "11" in text and text.endswith("tail\n")
    assert not update_readme(readme, results / "full")  # idempotent


def test_readme_without_markers_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="has no"):
        update_readme(readme, tmp_path)


def test_results_table_rows():
    table = results_table({"long-range": make_result(measured=9.0)})
    assert "| checks |" in table.splitlines()[0]
    row = table.splitlines()[-1]
    assert row.startswith("| 7 | `long-range`") and "(>= 10)" in row and "no target met" in row
    assert "none recorded" in row and ": missed" in row


def test_full_report_from_published_results(tmp_path):
    shutil.copytree(ROOT / "results" / "full", tmp_path / "full")
    html = write_report(tmp_path / "full", tmp_path / "index.html", preset="full").read_text()
    assert html.count("<section") == len(list((tmp_path / "full").glob("*.json")))
