"""The ``takeaways`` command: list, run, report, rejudge, readme, data.

Bad input ends with one line on stderr and exit status 2, never a traceback
(set TAKEAWAYS_DEBUG=1 to see one); outputs are checked before any work. Ctrl-C
exits 130 saying what was kept; a closed pipe (``| head``) ends quietly with 141.
Runs unchanged under ``torchrun --nproc_per_node N -m takeaways run NAME``, where
only rank 0 prints an error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _print(*args: object) -> None:
    from takeaways import distributed

    if distributed.is_main():
        print(*args, flush=True)


# ----------------------------------------------------------------------------- commands


def _published(results_dir: str | Path, name: str):
    """The published result of recipe ``name`` in ``results_dir``, or None (unreadable: None)."""
    from takeaways.results import read_result

    path = Path(results_dir) / f"{name}.json"
    if not path.exists():
        return None
    try:
        return read_result(path)
    except ValueError:
        return None


def _verdict_line(result) -> str:
    """The verdict, saying how many met targets an inconclusive or demo result does not count."""
    from takeaways.report import display_verdict, target_status

    uncounted = sum(target_status(result, t) == "met (not counted)" for t in result.targets)
    more = (
        f" ({uncounted} met target{'s' if uncounted != 1 else ''} not counted)" if uncounted else ""
    )
    return display_verdict(result) + more


def cmd_list(args: argparse.Namespace) -> int:
    from takeaways.catalog import TAKEAWAYS
    from takeaways.recipes import list_recipes

    recipes = {r.name: r for r in list_recipes()}
    print(f"recipes (published verdict from {args.results}):")
    for r in recipes.values():
        tk = f"#{r.takeaway}" if r.takeaway else "foundation"
        pub = _published(args.results, r.name)
        verdict = _verdict_line(pub) if pub is not None else "no published result"
        print(f"  {r.name:<20} {tk:<11} {r.summary}")
        print(f"  {'':<20} {'':<11} published: {verdict}")
    print("\ntakeaways:")
    for tk in TAKEAWAYS:
        have = [n for n in tk.recipes if n in recipes]
        state = ", ".join(have) if have else "not yet implemented"
        print(f"  {tk.number:>2}. {tk.title:<48} arXiv {tk.arxiv:<11} {state}")
    return 0


def _print_result(result, path, published_dir: str | Path | None = None) -> None:
    from takeaways.report import fmt_num, target_status

    _print(f"\n{result.recipe} ({result.preset}) in {result.wall_s:.1f} s: {_verdict_line(result)}")
    for c in result.checks:
        _print(f"  [{'ok' if c.passed else 'FAILED':<6}] check {c.name}: {c.detail}")
    for t in result.targets:
        mark = {"met": "met", "missed": "MISS"}.get(target_status(result, t), "met, not counted")
        _print(f"  [{mark}] {t.name}: {fmt_num(t.measured)} (goal {t.op} {fmt_num(t.goal)})")
    if result.finding:
        _print(f"  found: {result.finding}")
    if result.advice:
        _print(f"  {result.advice}")
    if result.notes and not result.finding:
        _print(f"  {result.notes}")
    if published_dir is not None and result.preset != "full":
        pub = _published(published_dir, result.recipe)
        if pub is not None:
            _print(f"  published full run: {_verdict_line(pub)}")
            if pub.finding:
                _print(f"    {pub.finding}")
    if path is not None:
        _print(f"  written to {path}")


def cmd_run(args: argparse.Namespace) -> int:
    from takeaways.files import check_writable
    from takeaways.recipes import get_recipe, resolve_config, run_recipe

    resolve_config(get_recipe(args.name), args.preset, args.set)  # bad name or --set: say so now
    check_writable(Path(args.results) / args.preset, kind="dir")  # not after the run
    _print(f"{args.name}: running preset {args.preset} ...")
    result, path = run_recipe(
        args.name, preset=args.preset, overrides=args.set, out_dir=args.results
    )
    _print_result(result, path, Path(args.results) / "full")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from takeaways import distributed
    from takeaways.files import check_writable
    from takeaways.recipes import list_recipes, resolve_config, run_recipe
    from takeaways.report import write_report
    from takeaways.results import read_result

    results_dir = Path(args.results) / args.preset
    published = Path(args.published) if args.published else Path(args.results) / "full"
    known = [r.name for r in list_recipes()]
    unknown = [n for n in args.only or [] if n not in known]
    if unknown:
        raise ValueError(
            f"unknown recipe{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in --only; known recipes: {', '.join(known)}"
        )
    if args.no_run and not any(results_dir.glob("*.json")):
        raise ValueError(f"no results in {results_dir} to render; drop --no-run to run the recipes")
    check_writable(args.out)  # before an hour of recipes, not after
    if not args.no_run:
        check_writable(results_dir, kind="dir")
    names = args.only or known
    timings: dict[str, float] = {}
    chosen = [r for r in list_recipes() if r.name in names]
    for i, recipe in enumerate(chosen, 1):
        count = f"[{i}/{len(chosen)}]"
        path = results_dir / f"{recipe.name}.json"
        cfg = resolve_config(recipe, args.preset)
        if args.no_run:
            continue
        if not args.force and path.exists():
            try:
                fresh = read_result(path).code_hash == recipe.source_hash(cfg)
            except ValueError:
                fresh = False
            if fresh:
                _print(f"{count} {recipe.name}: up to date ({path}); --force to rerun")
                continue
        _print(f"{count} {recipe.name}: running preset {args.preset} ...")
        t0 = time.perf_counter()
        result, written = run_recipe(recipe.name, preset=args.preset, out_dir=args.results)
        timings[recipe.name] = time.perf_counter() - t0
        _print_result(result, written, published)
    if distributed.is_main():
        out = write_report(
            results_dir,
            args.out,
            preset=args.preset,
            timings=timings,
            published_dir=published if args.preset != "full" else None,
        )
        print(f"\nreport written to {out}")
    return 0


def cmd_readme(args: argparse.Namespace) -> int:
    from takeaways.report import update_readme

    changed = update_readme(args.readme, args.results)
    print(f"{args.readme}: {'table updated' if changed else 'already up to date'}")
    return 0


def cmd_rejudge(args: argparse.Namespace) -> int:
    from takeaways.recipes import rejudge

    folder = Path(args.results) / args.preset
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of results; pass --results ROOT --preset NAME")
    known = sorted(p.stem for p in folder.glob("*.json"))
    names = args.names or known
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(
            f"no result for {', '.join(missing)} in {folder}; known: {', '.join(known) or '(none)'}"
        )
    for name in names:
        result = rejudge(folder / f"{name}.json")
        _print_result(result, None)
    print(f"\nrejudged {len(names)} result(s) in {folder}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from takeaways import data

    if args.action == "list":
        infos = data.list_datasets()
        width = max(len(i.size) for i in infos)
        for info in infos:
            print(f"  {info.name:<9} {info.size:<{width}}  {info.description}")
        return 0
    if not args.name:
        raise ValueError("data show needs a dataset name, e.g. takeaways data show digits")
    b = data.load(args.name)
    print(f"{b.name} ({b.kind}): {b.description}")
    for split_name, split in (("train", b.train), ("test", b.test)):
        shape = getattr(split.x, "shape", (len(split),))
        line = f"  {split_name}: {len(split)} samples, x {tuple(shape)} {getattr(split.x, 'dtype', '')}"
        if split.y is not None and b.classes:
            import numpy as np

            counts = np.bincount(split.y, minlength=len(b.classes))
            line += "; per class " + ", ".join(f"{c}={n}" for c, n in zip(b.classes, counts))
        print(line)
    if b.kind in ("text", "corpus"):
        first = str(b.train.x[0]).replace("\n", " ")
        print(f"  first train text: {first[:200]!r}")
    return 0


def _benchmark_script(name: str) -> Path:
    """``benchmarks/<name>.py`` of the checkout this package runs from, or of the cwd."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        script = root / "benchmarks" / f"{name}.py"
        if script.is_file():
            return script
    raise FileNotFoundError(
        f"benchmarks/{name}.py not found: benchmarks ship with the source checkout, not the "
        "package; run this from a clone of the repository"
    )


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib.util

    # The harness lives in benchmarks/ (it is not part of the library): load it from there.
    script = _benchmark_script(args.topic)
    spec = importlib.util.spec_from_file_location(f"benchmarks_{args.topic}", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)  # sets OMP_WAIT_POLICY before torch loads
    argv = ["--runs", str(args.runs), "--out", args.out] + (["--quick"] if args.quick else [])
    return module.main(argv)


def _whole(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"--{name} takes a whole number, got {text!r}") from None


def cmd_depth(args: argparse.Namespace) -> int:
    import textwrap

    from takeaways.depth import save_regime_plot, suggest_architecture
    from takeaways.files import check_writable

    plot = check_writable(args.plot) if args.plot else None  # creates its folder, as --out does
    s = suggest_architecture(
        params=args.params,
        width=_whole("width", args.width),
        depth=_whole("depth", args.depth),
        model=args.model,
        vocab=_whole("vocab", args.vocab),
        heads=_whole("heads", args.heads),
        max_len=_whole("max-len", args.max_len),
    )
    print(f"{s.query}\n")
    print(s.table())
    print()
    print(textwrap.fill(s.verdict, width=100))
    print("\nsources:")
    for note in s.notes:
        print(textwrap.fill(note, width=100, initial_indent="  - ", subsequent_indent="    "))
    if plot is not None:
        print(f"\nplot written to {save_regime_plot(s, str(plot))}")
    return 0


def cmd_find_mislabeled(args: argparse.Namespace) -> int:
    import numpy as np

    from takeaways import data, nn
    from takeaways.aum import find_mislabeled
    from takeaways.files import check_writable

    path = Path(args.data).expanduser()
    out = check_writable(args.out) if args.out else None  # before any work
    rows = data.read_rows(path, label=args.label, text=args.text, encoding=args.encoding)
    x, y, classes = rows.x, rows.y, rows.classes
    if rows.kind == "text":
        from takeaways.nn.sentence import embed_texts

        if args.model == "cnn":
            raise ValueError("--model cnn needs images; texts are embedded: use linear or mlp")
        _print(f"{path}: embedding {len(x)} texts of column {args.text!r} with MiniLM ...")
        x = embed_texts(list(x), progress=True)
    if len(classes) < 2:
        raise ValueError(f"{path} has a single class ({classes[0]}); AUM needs at least two")
    # a linear probe on sentence embeddings: an MLP memorises labels planted wrong there
    model = args.model or {"image": "cnn", "text": "linear"}.get(rows.kind, "mlp")
    if model == "cnn" and rows.kind != "image":
        raise ValueError(
            "--model cnn needs images (an image folder or an .npz of (N, H, W)); use --model mlp"
        )
    if rows.kind == "signal":  # standardize each feature so one MLP setting fits any table
        x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    if model == "cnn":
        make = lambda n: nn.SmallCNN(x.shape[1], n, image_size=x.shape[2])  # noqa: E731
    else:
        d, hidden = int(np.prod(x.shape[1:])), ((256, 256) if model == "mlp" else ())
        make = lambda n: nn.MLP(d, n, hidden=hidden)  # noqa: E731
    opts = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    k = len(classes)
    _print(
        f"{path}: {len(y)} rows, {k} classes; training a {model} twice with "
        f"{'planted wrong labels' if args.rule == 'planted' else 'threshold samples'} (AUM) ..."
    )
    found = find_mislabeled(
        make, x, y, num_classes=k, rule=args.rule, fit_kwargs={"progress": True}, **opts
    )
    columns = ["rank", "row", "source", "given_label", "preferred_label", "aum", "flagged"]
    if rows.kind == "text":
        columns.append(args.text)
    issues = quality = None
    if args.compare == "cleanlab":
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_self_confidence_for_each_label

        from takeaways.train import cross_val_probs

        _print("cleanlab: 5-fold cross-validated probabilities of the same model ...")
        probs = cross_val_probs(
            make, x, y, folds=5, fit_kwargs={"progress": True, "desc": "cleanlab fold"}, **opts
        )
        issues = find_label_issues(y, probs, n_jobs=1)
        quality = get_self_confidence_for_each_label(y, probs)
        columns += ["cleanlab_flagged", "cleanlab_label_quality"]
    order = np.argsort(found.aum, kind="stable")  # every row, lowest AUM first
    table = []
    for rank, i in enumerate(order, 1):
        row = [
            rank,
            int(i),
            rows.source[i],
            classes[y[i]],
            classes[found.preferred[i]],
            f"{found.aum[i]:.4f}",
            bool(found.mask[i]),
        ]
        if rows.kind == "text":
            row.append(rows.x[i])
        if issues is not None:
            row += [bool(issues[i]), f"{quality[i]:.4f}"]
        table.append(row)
    flagged = int(found.mask.sum())
    estimate = (
        f"estimated noise rate {100 * found.noise_rate:.1f}%, " if args.rule == "planted" else ""
    )
    _print(
        f"AUM flags {flagged} of {len(y)} rows ({100 * flagged / len(y):.1f}%; "
        f"{estimate}rule {args.rule})"
    )
    for warning in _mislabeled_warnings(found, len(y), args.epochs):
        print(f"takeaways: warning: {warning}", file=sys.stderr)
    if issues is not None:
        both = int((issues & found.mask).sum())
        _print(f"cleanlab flags {int(issues.sum())}; both flag {both}")
    if out is not None:
        _write_csv(out, columns, table)
        _print(f"every row, ranked by AUM, written to {out}")
    else:
        _print("pass --out FILE.csv to write every row, ranked by AUM")
    for row in table[: min(args.top, flagged)]:
        cells = (
            f"{c}={str(v)[:60]!r}" if isinstance(v, str) and len(v) > 20 else f"{c}={v}"
            for c, v in zip(columns, row)
        )
        _print("  " + "  ".join(cells))
    return 0


def _mislabeled_warnings(found, n: int, epochs: int) -> list[str]:
    """What a person should know before trusting a find-mislabeled run."""
    said = []
    if found.mask.sum() > 0.5 * n:
        said.append(
            f"{100 * found.mask.mean():.0f}% of rows flagged; more than half of a data set is "
            "rarely mislabeled: check the label column, or the model cannot learn these features"
        )
    if found.fitted_control > 0.5:
        said.append(
            f"the model fit {100 * found.fitted_control:.0f}% of the labels planted wrong, so "
            f"it memorises and the ranking is unreliable; rerun with fewer --epochs than {epochs}"
        )
    return said


def _write_csv(path: Path, columns: list[str], table: list[list[Any]]) -> None:
    import csv
    import io

    from takeaways.files import atomic_write

    buf = io.StringIO()
    w = csv.writer(buf)  # "\r\n" rows: a text holding "\r" or "\n" is then quoted
    w.writerow(columns)
    w.writerows(table)
    atomic_write(path, buf.getvalue())


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from takeaways import __version__

    p = argparse.ArgumentParser(
        prog="takeaways",
        description="Ten NeurIPS 2020 results as PyTorch tools: recipes, report, data.",
    )
    p.add_argument("--version", action="version", version=f"takeaways {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        _results_commands,
        _report_commands,
        _data_commands,
        _depth_command,
        _find_mislabeled_command,
    ):
        add(sub)
    return p


def _results_commands(sub: Any) -> None:
    """list and run: the recipes."""
    s = sub.add_parser(
        "list",
        help="list recipes, their published verdicts and the ten takeaways",
        description="List recipes with their published verdicts, and the ten takeaways.",
    )
    s.add_argument(
        "--results",
        default="results/full",
        help="published results folder (default results/full)",
    )
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser(
        "run", help="run one recipe", description="Run one recipe and write its result JSON."
    )
    s.add_argument("name", help="recipe name (see `takeaways list`)")
    s.add_argument(
        "--preset", default="demo", choices=["smoke", "demo", "full"], help="scale (default demo)"
    )
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field; repeatable",
    )
    s.add_argument("--results", default="results", help="results root (default results/)")
    s.set_defaults(fn=cmd_run)


def _report_commands(sub: Any) -> None:
    """report, rejudge, readme: what is published from the results."""
    s = sub.add_parser(
        "report",
        help="run every recipe and write report/index.html",
        description="Run every registered recipe at a preset (skipping up-to-date results) and write the HTML report.",
    )
    s.add_argument(
        "--preset", default="demo", choices=["smoke", "demo", "full"], help="scale (default demo)"
    )
    s.add_argument(
        "--force", action="store_true", help="rerun recipes whose results are up to date"
    )
    s.add_argument(
        "--no-run",
        action="store_true",
        help="only render the results already written; run nothing",
    )
    s.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only these recipes (the report still shows every result in the folder)",
    )
    s.add_argument("--results", default="results", help="results root (default results/)")
    s.add_argument(
        "--out", default="report/index.html", help="report file (default report/index.html)"
    )
    s.add_argument(
        "--published",
        metavar="DIR",
        help="published full results shown beside smoke/demo results (default RESULTS/full)",
    )
    s.set_defaults(fn=cmd_report)

    s = sub.add_parser(
        "rejudge",
        help="re-apply the current checks and targets to stored results",
        description=(
            "Re-judge stored results with each recipe's current judge: only checks, targets, "
            "finding, advice and verdict change; metrics and plots stay as the run wrote them."
        ),
    )
    s.add_argument("names", nargs="*", metavar="NAME", help="recipes to re-judge (default: all)")
    s.add_argument(
        "--preset", default="full", choices=["smoke", "demo", "full"], help="scale (default full)"
    )
    s.add_argument("--results", default="results", help="results root (default results/)")
    s.set_defaults(fn=cmd_rejudge)

    s = sub.add_parser(
        "readme",
        help="regenerate the README results table",
        description="Regenerate the results table in the README from results/full/*.json.",
    )
    s.add_argument(
        "--results", default="results/full", help="results folder (default results/full)"
    )
    s.add_argument("--readme", default="README.md", help="README to update (default README.md)")
    s.set_defaults(fn=cmd_readme)


def _data_commands(sub: Any) -> None:
    """data and bench."""
    s = sub.add_parser(
        "data", help="list or show the embedded datasets", description="Embedded datasets."
    )
    s.add_argument("action", choices=["list", "show"], help="list all, or show one")
    s.add_argument("name", nargs="?", help="dataset name for show")
    s.set_defaults(fn=cmd_data)

    s = sub.add_parser(
        "bench",
        help="run a speed benchmark (attention) and write benchmarks/results/",
        description="Speed benchmarks against the peers: takeaways bench attention [--quick].",
    )
    s.add_argument("topic", choices=["attention"], help="what to benchmark")
    s.add_argument("--quick", action="store_true", help="a one-minute subset")
    s.add_argument("--runs", type=int, default=5, help="timed rounds per setting (median)")
    s.add_argument("--out", default="benchmarks/results", help="output folder")
    s.set_defaults(fn=cmd_bench)


def _depth_command(sub: Any) -> None:
    """depth: the depth/width advisor."""
    s = sub.add_parser(
        "depth",
        help="size a transformer: depth/width regimes and the paper's fitted optimum",
        description=(
            "Depth vs width of self-attention (Levine et al., arXiv 2006.12467): options near a "
            "budget, width or depth, the threshold log3(width) and the paper's fitted optimum. "
            "E.g. takeaways depth --width 768 | --params 350M | --model gpt3-175b"
        ),
    )
    s.add_argument("--params", metavar="N", help="parameter budget, e.g. 350M, 1.3B, 1T")
    s.add_argument("--width", metavar="D", help="hidden size d_x")
    s.add_argument("--depth", metavar="L", help="number of layers")
    s.add_argument(
        "--model", metavar="NAME", help="a known model, e.g. bert-base, gpt2, gpt3-175b, t5-base"
    )
    s.add_argument(
        "--vocab", default="30522", help="embedding rows counted in budgets (default 30522)"
    )
    s.add_argument("--heads", help="attention heads (default: head size 64)")
    s.add_argument(
        "--max-len", default="512", help="learned positions counted in budgets (default 512)"
    )
    s.add_argument(
        "--plot", metavar="PNG", help="also draw the regimes with the known models marked"
    )
    s.set_defaults(fn=cmd_depth)


def _find_mislabeled_command(sub: Any) -> None:
    """find-mislabeled: AUM on the user's own data."""
    s = sub.add_parser(
        "find-mislabeled",
        help="rank the rows of your data whose labels look wrong (AUM)",
        description=(
            "Train a model twice on your CSV, .npz or image folder, rank every row by its Area "
            "Under the Margin (Pleiss et al., arXiv 2001.10528), flag the likely mislabeled "
            "ones and write every row, lowest AUM first, with the label the model prefers. "
            "--compare cleanlab adds cleanlab's verdicts from 5-fold cross-validated "
            "probabilities of the same model."
        ),
    )
    s.add_argument(
        "data", help="a CSV file, an .npz (x, y) file or a folder with one sub-folder per class"
    )
    s.add_argument("--label", help="the label column (CSV only)")
    s.add_argument(
        "--text",
        metavar="COLUMN",
        help="a CSV column of texts: embed them with the packaged MiniLM (mean pooling, "
        "cached) and train on the embeddings instead of the numeric columns",
    )
    s.add_argument(
        "--encoding", default="utf-8-sig", help="the CSV's text encoding (default UTF-8)"
    )
    s.add_argument(
        "--model",
        choices=["mlp", "linear", "cnn"],
        help="default: cnn for images, linear for --text embeddings, mlp (256-256) for tables",
    )
    s.add_argument(
        "--rule",
        choices=["planted", "paper"],
        default="planted",
        help="where to cut the AUM ranking: 'planted' (default) estimates the noise rate from "
        "labels planted wrong; 'paper' flags AUM below the 99th percentile of a fake class",
    )
    s.add_argument("--out", help="write every row, ranked by AUM, to this CSV")
    s.add_argument("--compare", choices=["cleanlab"], help="also run cleanlab on the same model")
    s.add_argument("--epochs", type=int, default=20, help="epochs per training run (default 20)")
    s.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    s.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    s.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    s.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    s.set_defaults(fn=cmd_find_mislabeled)


# Size options of `takeaways depth`. A negative value such as "--params -5M" would be read by
# argparse as an unknown option (usage dump, no word about the sign); glued into
# "--params=-5M" it reaches the advisor, which says in one line that it must be positive.
_SIZE_OPTIONS = ("--params", "--width", "--depth", "--vocab", "--heads", "--max-len")


def _glue_signed_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if argv[i] in _SIZE_OPTIONS and len(nxt) > 1 and nxt[0] == "-" and nxt[1] in "0123456789.":
            out.append(f"{argv[i]}={nxt}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _first_rank() -> bool:
    """Rank 0 of a ``torchrun`` launch (or no launch); known before any process group exists."""
    return os.environ.get("RANK", "0") == "0"


def _kept_on_interrupt(args: argparse.Namespace) -> str:
    """What an interrupted command leaves behind, and whether a rerun picks it up."""
    if args.command == "report" and not args.no_run:
        done = Path(args.results) / args.preset
        return f"recipes that finished are saved in {done}, and the same command skips them"
    if args.command == "rejudge":
        return "results rejudged so far were rewritten; the others are as they were"
    return "nothing was written; a rerun starts over"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_glue_signed_values(sys.argv[1:] if argv is None else argv))
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:  # `takeaways depth | head -2`: the reader has gone, so stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE
    except KeyboardInterrupt:
        # An object the interrupt caught half-built (a zip archive being opened, say) complains
        # from its finalizer when the frames are freed; that noise is not the user's business.
        sys.unraisablehook = lambda _unraisable: None
        if _first_rank():
            print(f"takeaways: interrupted; {_kept_on_interrupt(args)}", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, FloatingPointError) as e:
        if os.environ.get("TAKEAWAYS_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if _first_rank():  # under torchrun every rank fails alike; say it once
            print(f"takeaways: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
