"""The ``takeaways`` command: list, run, report, readme, data.

Bad input ends with one line on stderr and exit status 2, never a traceback
(set TAKEAWAYS_DEBUG=1 to see one). Runs unchanged under
``torchrun --nproc_per_node N -m takeaways run NAME``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _print(*args: object) -> None:
    from takeaways import distributed

    if distributed.is_main():
        print(*args, flush=True)


# ----------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    from takeaways.catalog import TAKEAWAYS
    from takeaways.recipes import list_recipes

    recipes = {r.name: r for r in list_recipes()}
    print("recipes:")
    for r in recipes.values():
        tk = f"#{r.takeaway}" if r.takeaway else "foundation"
        print(f"  {r.name:<20} {tk:<11} {r.summary}")
    print("\ntakeaways:")
    for tk in TAKEAWAYS:
        have = [n for n in tk.recipes if n in recipes]
        state = ", ".join(have) if have else "not yet implemented"
        print(f"  {tk.number:>2}. {tk.title:<48} arXiv {tk.arxiv:<11} {state}")
    return 0


def _print_result(result, path) -> None:
    _print(f"\n{result.recipe} ({result.preset}) in {result.wall_s:.1f} s: {result.verdict}")
    for t in result.targets:
        mark = "met " if t.met else "MISS"
        _print(f"  [{mark}] {t.name}: {t.measured:.4g} (goal {t.op} {t.goal:.4g})")
    if result.notes:
        _print(f"  {result.notes}")
    if path is not None:
        _print(f"  written to {path}")


def cmd_run(args: argparse.Namespace) -> int:
    from takeaways.recipes import run_recipe

    result, path = run_recipe(
        args.name, preset=args.preset, overrides=args.set, out_dir=args.results
    )
    _print_result(result, path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from takeaways import distributed
    from takeaways.recipes import list_recipes, resolve_config, run_recipe
    from takeaways.report import write_report
    from takeaways.results import read_result

    results_dir = Path(args.results) / args.preset
    names = args.only or [r.name for r in list_recipes()]
    timings: dict[str, float] = {}
    for recipe in (r for r in list_recipes() if r.name in names):
        path = results_dir / f"{recipe.name}.json"
        cfg = resolve_config(recipe, args.preset)
        if not args.force and path.exists():
            try:
                fresh = read_result(path).code_hash == recipe.source_hash(cfg)
            except ValueError:
                fresh = False
            if fresh:
                _print(f"{recipe.name}: up to date ({path}); --force to rerun")
                continue
        _print(f"{recipe.name}: running preset {args.preset} ...")
        t0 = time.perf_counter()
        result, written = run_recipe(recipe.name, preset=args.preset, out_dir=args.results)
        timings[recipe.name] = time.perf_counter() - t0
        _print_result(result, written)
    if distributed.is_main():
        out = write_report(results_dir, args.out, preset=args.preset, timings=timings)
        print(f"\nreport written to {out}")
    return 0


def cmd_readme(args: argparse.Namespace) -> int:
    from takeaways.report import update_readme

    changed = update_readme(args.readme, args.results)
    print(f"{args.readme}: {'table updated' if changed else 'already up to date'}")
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


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from takeaways import __version__

    p = argparse.ArgumentParser(
        prog="takeaways",
        description="Ten NeurIPS 2020 results as PyTorch tools: recipes, report, data.",
    )
    p.add_argument("--version", action="version", version=f"takeaways {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser(
        "list", help="list recipes and the ten takeaways", description="List recipes and takeaways."
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
    s.add_argument("--only", nargs="+", metavar="NAME", help="only these recipes")
    s.add_argument("--results", default="results", help="results root (default results/)")
    s.add_argument(
        "--out", default="report/index.html", help="report file (default report/index.html)"
    )
    s.set_defaults(fn=cmd_report)

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

    s = sub.add_parser(
        "data", help="list or show the embedded datasets", description="Embedded datasets."
    )
    s.add_argument("action", choices=["list", "show"], help="list all, or show one")
    s.add_argument("name", nargs="?", help="dataset name for show")
    s.set_defaults(fn=cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("takeaways: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, FloatingPointError) as e:
        if os.environ.get("TAKEAWAYS_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"takeaways: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
