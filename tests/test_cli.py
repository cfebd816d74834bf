"""The CLI: commands work, bad input exits 2 with one line and no traceback."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
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
    assert "[1/1] baseline-digits: up to date" in out  # reused, not recomputed
    assert "demo scale — not evidence" in out
    html = out_html.read_text()
    assert "baseline-digits" in html and "data:image/png;base64," in html
    # only baseline-digits (foundation) has a result here: every recipe slot of the cards is empty
    from takeaways.catalog import TAKEAWAYS

    assert html.count("no result yet") == sum(len(t.recipes) for t in TAKEAWAYS)
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


# ----------------------------------------------------------------------------- outputs, signals


def _one_line_error(r: subprocess.CompletedProcess, needle: str) -> None:
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("takeaways: error: ") and needle in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "baseline-digits", "--results", "{afile}/r"], "{afile} is a file, not a folder"),
        (["report", "--results", "{afile}/r"], "{afile} is a file, not a folder"),
        (["report", "--out", "{tmp}"], "cannot write {tmp}: it is a folder; pass a file path"),
        (["report", "--out", "{afile}/x.html"], "cannot write {afile}/x.html: {afile} is a file"),
        (["depth", "--width", "768", "--plot", "{afile}/p.png"], "{afile} is a file"),
        (["bench", "attention", "--out", "{afile}/b"], "{afile} is a file, not a folder"),
        (
            ["find-mislabeled", "{tmp}/nope.csv", "--label", "y", "--out", "{afile}/x.csv"],
            "cannot write {afile}/x.csv: {afile} is a file",
        ),
    ],
)
def test_outputs_are_checked_before_any_work(tmp_path, args, needle):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    fill = dict(afile=afile, tmp=tmp_path)
    args = [a.format(**fill) for a in args]
    if args[0] == "report":
        args += ["--preset", "smoke", "--only", "baseline-digits"]
        args += [] if "--results" in args else ["--results", str(tmp_path / "res")]
        args += [] if "--out" in args else ["--out", str(tmp_path / "index.html")]
    r = run_cli(*args)
    _one_line_error(r, needle.format(**fill))
    assert "running" not in r.stdout  # failed before any recipe ran
    assert [p.name for p in tmp_path.rglob("*")] == [
        "afile"
    ]  # and left nothing, temp files included


def test_run_checks_its_results_folder_before_running(tmp_path, monkeypatch, capsys):
    import takeaways.recipes as registry

    def never(*args, **kwargs):
        raise AssertionError("the recipe ran before its output was checked")

    monkeypatch.setattr(registry, "run_recipe", never)
    (tmp_path / "afile").write_text("")
    assert main(["run", "baseline-digits", "--results", str(tmp_path / "afile" / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("takeaways: error: cannot write ") and "is a file, not a folder" in err


def test_depth_plot_creates_its_folder(tmp_path):
    plot = tmp_path / "plots" / "depth" / "regimes.png"
    r = run_cli("depth", "--width", "768", "--plot", str(plot))
    assert r.returncode == 0, r.stderr
    assert plot.stat().st_size > 1000 and f"plot written to {plot}" in r.stdout


def test_report_only_an_unknown_name_exits_2_listing_the_known(tmp_path):
    out = tmp_path / "index.html"
    r = run_cli("report", "--only", "nosuch", "baseline-digits", "--out", str(out))
    _one_line_error(
        r, "unknown recipe 'nosuch' in --only; known recipes: autoaugment, baseline-digits"
    )
    assert not out.exists()


def _interrupt_once_running(args: list[str], line: str) -> subprocess.CompletedProcess:
    """Start the CLI, wait for ``line`` on stdout (the work has begun), then press Ctrl-C.

    The child gets the default SIGINT action back: a test run started in the background of a
    non-interactive shell inherits SIGINT ignored, and Python then installs no handler."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TAKEAWAYS_PROGRESS="0")
    p = subprocess.Popen(
        [sys.executable, "-m", "takeaways", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = p.stdout.readline()
    assert line in seen, seen
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, seen + out, err)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="POSIX signals")
def test_ctrl_c_says_what_was_kept(tmp_path):
    res = tmp_path / "res"
    run = ["run", "baseline-digits", "--preset", "smoke", "--set", "epochs=50"]
    r = _interrupt_once_running([*run, "--results", str(res)], "running preset smoke")
    assert r.returncode == 130
    assert r.stderr == "takeaways: interrupted; nothing was written; a rerun starts over\n"
    report = ["report", "--preset", "smoke", "--only", "baseline-digits", "--results", str(res)]
    r = _interrupt_once_running(
        [*report, "--out", str(tmp_path / "i.html")], "[1/1] baseline-digits: running preset smoke"
    )
    assert r.returncode == 130
    assert r.stderr == (
        f"takeaways: interrupted; recipes that finished are saved in {res / 'smoke'}, "
        "and the same command skips them\n"
    )
    assert not list(res.glob("**/*.json")) and not (tmp_path / "i.html").exists()


def test_ctrl_c_inside_a_half_opened_archive_prints_one_line():
    """Ctrl-C can land inside ``zipfile.ZipFile.__init__`` (loading a checkpoint or a dataset);
    the half-built archive's finalizer must not add "Exception ignored" noise to the one line."""
    code = (
        "import sys, zipfile\n"
        "from takeaways import cli\n"
        "def half_open(args):\n"
        "    def stop(*a, **k):\n"
        "        raise KeyboardInterrupt\n"
        "    zipfile.threading = type('T', (), {'RLock': stop})\n"
        "    zipfile.ZipFile(sys.executable)\n"
        "orig = cli.build_parser\n"
        "def patched():\n"
        "    p = orig()\n"
        "    p.set_defaults(fn=half_open)\n"
        "    for a in p._subparsers._group_actions[0].choices.values():\n"
        "        a.set_defaults(fn=half_open)\n"
        "    return p\n"
        "cli.build_parser = patched\n"
        "sys.exit(cli.main(['depth', '--width', '64']))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 130
    assert r.stderr == "takeaways: interrupted; nothing was written; a rerun starts over\n"


@pytest.mark.skipif(os.name == "nt", reason="POSIX pipes")
def test_a_closed_pipe_ends_quietly():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line, as `| head -0` would be
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    try:
        r = subprocess.run(
            [sys.executable, "-m", "takeaways", "depth", "--width", "768"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            cwd=ROOT,
        )
    finally:
        os.close(write)
    assert r.returncode == 141 and r.stderr == ""


def test_under_torchrun_a_bad_recipe_name_is_reported_once():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        + ["-m", "takeaways", "run", "nosuch"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode != 0
    assert r.stderr.count("takeaways: error: unknown recipe 'nosuch'") == 1, r.stderr
    assert "takeaways/cli.py" not in r.stderr  # no traceback of ours (torchrun adds its own)
