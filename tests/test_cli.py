"""The CLI: commands work, bad input exits 2 with one line and no traceback."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from takeaways.cli import main
from takeaways.recipes import list_recipes
from takeaways.results import Check, Claim, Judgement, Result, Target, write_result

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TAKEAWAYS_PROGRESS="0")
    return subprocess.run(
        [sys.executable, "-m", "takeaways", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )


def test_list_shows_recipes_and_unimplemented_takeaways(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "baseline-digits" in out
    assert out.count("arXiv") == 10
    assert "2007.14062" in out  # BigBird
    assert out.count("published: ") == len(list_recipes())


def _write_judged(folder: Path, *, failing: bool) -> None:
    """A published baseline-digits result whose met target sits behind a failing check."""
    r = Result(
        recipe="baseline-digits",
        claim=Claim("digits >= 95%", 0.95, "foundation"),
        metrics={"acc": 0.98},
        targets=[Target.check("CNN test accuracy", 0.98, ">=", 0.95)],
        checks=[Check("baseline above chance", not failing, "0.98 vs 0.1")],
        preset="full",
    )
    write_result(r, folder.parent)


def test_list_shows_inconclusive_published_verdict(tmp_path, capsys):
    _write_judged(tmp_path / "full", failing=True)
    assert main(["list", "--results", str(tmp_path / "full")]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "published: inconclusive" in x)
    assert "baseline above chance" in line and "1 met target not counted" in line
    assert "no published result" in out  # the other recipes have none in this folder


def _judge(metrics, cfg):
    acc = metrics["cnn_test_accuracy"]
    return Judgement(
        checks=[Check.that("beats a bar no run reaches", acc, ">", 2.0)],
        targets=[Target.check("CNN test accuracy", acc, ">=", 0.95)],
        finding=f"accuracy {acc:.3f}",
        advice="Use it when testing rejudge.",
    )


def test_rejudge_rewrites_a_copy_and_keeps_metrics(tmp_path, capsys, monkeypatch):
    import takeaways.recipes as registry

    full = tmp_path / "full"
    full.mkdir()
    shutil.copy(ROOT / "results" / "full" / "baseline-digits.json", full)
    before = json.loads((full / "baseline-digits.json").read_text())
    real = registry.get_recipe
    monkeypatch.setattr(
        registry, "get_recipe", lambda name: dataclasses.replace(real(name), judge=_judge)
    )
    assert main(["rejudge", "--results", str(tmp_path), "baseline-digits"]) == 0
    out = capsys.readouterr().out
    assert "inconclusive: beats a bar no run reaches" in out and "met, not counted" in out
    after = json.loads((full / "baseline-digits.json").read_text())
    assert after["verdict"] == "inconclusive: beats a bar no run reaches"
    assert after["checks"][0]["passed"] is False and after["finding"].startswith("accuracy 0.98")
    assert after["metrics"] == before["metrics"] and after["plots"] == before["plots"]
    assert after["code_hash"] == before["code_hash"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["rejudge", "nope"], "no result for nope in"),
        (["rejudge", "--results", "/nonexistent"], "is not a folder of results"),
    ],
)
def test_rejudge_bad_input_exits_2_with_one_line(args, needle, capsys, tmp_path):
    if "nope" in args:
        _write_judged(tmp_path / "full", failing=False)
        args = [*args, "--results", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("takeaways: error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "nope"], "unknown recipe 'nope'"),
        (["run", "baseline-digits", "--set", "epoch=3"], "unknown key 'epoch'"),
        (["run", "baseline-digits", "--set", "epochs=x"], "epochs is an int"),
        (["data", "show", "imagenet"], "imagenet"),
        (["data", "show"], "needs a dataset name"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("takeaways: error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_subprocess_error_has_no_traceback():
    r = run_cli("run", "nope")
    assert r.returncode == 2
    assert (
        r.stderr.strip().startswith("takeaways: error: unknown recipe")
        and "Traceback" not in r.stderr
    )


def test_argparse_errors_exit_2():
    r = run_cli("run", "baseline-digits", "--preset", "huge")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr


def test_bench_runs_the_harness_in_benchmarks(capsys):
    # --runs 0 is refused by benchmarks/attention.py itself: the CLI found and loaded it.
    assert main(["bench", "attention", "--runs", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "takeaways: error: --runs must be >= 1, got 0\n"


def test_help_on_every_command():
    for cmd in ([], ["list"], ["run"], ["report"], ["rejudge"], ["readme"], ["data"]):
        r = run_cli(*cmd, "--help")
        assert r.returncode == 0 and "usage: takeaways" in r.stdout


def test_data_list_and_show(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "mnist", "mnist1d", "wiki", "pydoc", "reviews", "tweets"):
        assert name in out
    assert main(["data", "show", "digits"]) == 0
    out = capsys.readouterr().out
    assert "train: 1438 samples" in out and "test: 359 samples" in out and "8, 8)" in out


def test_run_then_report_skips_up_to_date_and_writes_html(tmp_path, capsys):
    res = tmp_path / "results"
    assert main(["run", "baseline-digits", "--preset", "smoke", "--results", str(res)]) == 0
    written = json.loads((res / "smoke" / "baseline-digits.json").read_text())
    assert written["preset"] == "smoke"
    out_html = tmp_path / "report" / "index.html"
    assert (
        main(
            [
                "report",
                "--preset",
                "smoke",
                "--only",
                "baseline-digits",
                "--results",
                str(res),
                "--out",
                str(out_html),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "up to date" in out  # the result just written is reused, not recomputed
    assert "demo scale — not evidence" in out
    html = out_html.read_text()
    assert "baseline-digits" in html and "data:image/png;base64," in html
    # only baseline-digits (foundation) has a result here: 11 recipe slots in the 10 cards are empty
    assert html.count("no result yet") == 11
    assert "No published full result for this recipe" in html  # no results/full in tmp_path


def test_report_no_run_renders_written_results_only(tmp_path, capsys):
    _write_judged(tmp_path / "results" / "full", failing=False)
    out_html = tmp_path / "index.html"
    args = ["report", "--preset", "full", "--no-run", "--results", str(tmp_path / "results")]
    assert main([*args, "--out", str(out_html)]) == 0
    assert "running" not in capsys.readouterr().out
    assert "all 1 targets met" in out_html.read_text()
    assert main(["report", "--no-run", "--results", str(tmp_path / "none")]) == 2
    assert "no results in" in capsys.readouterr().err


def test_demo_report_shows_published_full_verdict(tmp_path, capsys):
    res = tmp_path / "results"
    _write_judged(res / "full", failing=True)
    assert main(["run", "baseline-digits", "--preset", "smoke", "--results", str(res)]) == 0
    out = capsys.readouterr().out
    assert "published full run: inconclusive: baseline above chance" in out
    out_html = tmp_path / "index.html"
    args = ["report", "--preset", "smoke", "--only", "baseline-digits", "--results", str(res)]
    assert main([*args, "--out", str(out_html)]) == 0
    html = out_html.read_text()
    assert "Published full run" in html and "inconclusive: baseline above chance" in html
