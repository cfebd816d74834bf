"""The CLI: commands work, bad input exits 2 with one line and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from takeaways.cli import main

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
    for cmd in ([], ["list"], ["run"], ["report"], ["readme"], ["data"]):
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
    html = out_html.read_text()
    assert "baseline-digits" in html and "data:image/png;base64," in html
    # only baseline-digits has a result in this folder: every takeaway row says not yet implemented
    assert html.count("not yet implemented") == 10
