"""The report and README table are generated from result files, never typed."""

from __future__ import annotations

import pytest

from takeaways.report import END, START, render_html, results_table, update_readme
from takeaways.results import Claim, Result, Target, write_result


def make_result(name: str = "long-range", measured: float = 12.5, met_goal: float = 10.0) -> Result:
    return Result(
        recipe=name,
        preset="full",
        claim=Claim(
            "sparse attention handles 8x longer sequences", 8.0, "Zaheer et al., arXiv 2007.14062"
        ),
        metrics={"speedup": measured},
        targets=[Target.check("forward speed-up at N=16384", measured, ">=", met_goal)],
        plots=[
            {
                "title": "t",
                "kind": "line",
                "x_label": "N",
                "y_label": "ms",
                "series": [{"name": "dense", "x": [1, 2], "y": [3, 4]}],
            },
            {
                "title": "b",
                "kind": "bar",
                "series": [{"name": "a", "y": [1.0]}, {"name": "b", "y": [2.0]}],
            },
        ],
        wall_s=3.0,
        takeaway=7,
    )


def test_html_places_results_in_their_takeaway_rows():
    html = render_html({"long-range": make_result()}, preset="full")
    assert "12.5" in html and "Zaheer et al." in html
    assert html.count("data:image/png;base64,") == 2
    assert html.count("not yet implemented") == 9  # BigBird has a result, the other nine do not


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
    row = table.splitlines()[-1]
    assert row.startswith("| 7 | `long-range`") and "(>= 10)" in row and "no target met" in row
