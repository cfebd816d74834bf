"""Long inputs for a pre-trained HF encoder: the packaged MiniLM on our BigBird vs HF BigBird.

Run ``python benchmarks/hf_long.py [--quick] [--runs 5] [--out DIR]``. Writes
benchmarks/results/hf_long.json and hf_long.md (``--quick``: hf_long-quick.*).

What is timed, batch 1, random token ids of length N (no padding), fp32 on CPU:

- ``ours``: the packaged MiniLM (``takeaways.nn.load_minilm()``: HF ``BertModel``, hidden
  384, 6 layers, 12 heads) after ``takeaways.hf.extend_attention(bert, "bigbird",
  max_length=4096)``: block 64, window 3, global 2, 3 random blocks (the paper's ITC
  setting, arXiv 2007.14062 Table 8), positions copied past 512.
- ``hf-bigbird``: transformers' ``BigBirdModel`` of the same shape (hidden 384, 6 layers,
  12 heads, FFN 1536, vocabulary 30522, ``attention_type="block_sparse"``, block 64,
  3 random blocks; HF's window is fixed at 3 blocks and its global blocks at 2), randomly
  initialised: only its time matters.
- ``dense``: the same MiniLM with HF's own attention (SDPA), positions extended the same way
  (``extend_attention(bert, None, max_length=4096)``).

Dropout is set to 0 in all three so that they compute the same arithmetic. ``fwd`` runs the
model in eval mode under ``torch.no_grad()``; ``fwdbwd`` runs it in train mode (HF BigBird
draws its random blocks only in train mode) and calls ``hidden.sum().backward()``; gradients
are cleared outside the timing. Each (N, mode) makes one warm-up call per model, profiled for
memory (the CPU allocator's peak tensor bytes above the start, ``takeaways.measure.
peak_bytes``), then ``runs`` rounds that call every model once (interleaved, so load drift
hits all alike); the median is reported, with ratios from the same run. A model whose warm-up
call takes longer than ``max_call_s`` is not timed at that or any larger N.

Target (the issue "Meet users where their models are"): ours faster than HF BigBird at every
length, forward and forward+backward.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Before torch loads OpenMP: idle threads sleep instead of spinning (see attention.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from takeaways.files import atomic_write  # noqa: E402
from takeaways.hf import extend_attention  # noqa: E402
from takeaways.measure import peak_bytes  # noqa: E402
from takeaways.results import Target, machine_info, write_json_atomic  # noqa: E402

__all__ = ["main", "run_benchmark"]

BLOCK, WINDOW, GLOBAL, RANDOM = 64, 3, 2, 3
FULL_N = (1024, 2048, 4096)
QUICK_N = (1024,)
MAX_LENGTH = 4096
MODELS = ("ours", "hf-bigbird", "dense")


def _no_dropout(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


def build_models(max_length: int = MAX_LENGTH) -> dict[str, nn.Module] | str:
    """The three models, or why they cannot be built (transformers or MiniLM missing)."""
    try:
        from transformers import BigBirdConfig, BigBirdModel

        from takeaways.nn import load_minilm

        ours = load_minilm()[0].bert
        dense = load_minilm()[0].bert
    except ImportError as e:
        return f"needs the hf extra ({e}); pip install 'takeaways[hf]'"
    extend_attention(
        ours,
        "bigbird",
        max_length=max_length,
        block_size=BLOCK,
        window_blocks=WINDOW,
        global_blocks=GLOBAL,
        random_blocks=RANDOM,
        seed=0,
    )
    extend_attention(dense, None, max_length=max_length)
    c = ours.config
    torch.manual_seed(0)
    hf = BigBirdModel(
        BigBirdConfig(
            vocab_size=c.vocab_size,
            hidden_size=c.hidden_size,
            num_hidden_layers=c.num_hidden_layers,
            num_attention_heads=c.num_attention_heads,
            intermediate_size=c.intermediate_size,
            max_position_embeddings=max_length,
            attention_type="block_sparse",
            block_size=BLOCK,
            num_random_blocks=RANDOM,
        ),
        add_pooling_layer=False,
    )
    return {name: _no_dropout(m) for name, m in zip(MODELS, (ours, hf, dense))}


def _call(model: nn.Module, ids: torch.Tensor, mode: str) -> Callable[[], None]:
    mask = torch.ones_like(ids)
    if mode == "fwd":
        model.eval()

        def run() -> None:
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask)

    else:
        model.train()

        def run() -> None:
            model(input_ids=ids, attention_mask=mask).last_hidden_state.sum().backward()

    return run


def _setting(
    models: dict[str, nn.Module],
    n: int,
    mode: str,
    runs: int,
    too_slow: set[tuple[str, str]],
    max_call_s: float,
) -> list[dict[str, Any]]:
    """One (N, mode): a profiled warm-up call per model, then ``runs`` interleaved rounds."""
    ids = torch.randint(1000, 30000, (1, n), generator=torch.Generator().manual_seed(n))
    rows, active = [], []
    for name, model in models.items():
        row: dict[str, Any] = {"model": name, "N": n, "mode": mode}
        if (name, mode) in too_slow:
            rows.append({**row, "status": "skipped", "reason": "too slow at a smaller N"})
            continue
        call = _call(model, ids, mode)
        model.zero_grad(set_to_none=True)
        try:
            first_s, peak = peak_bytes(call)
        except Exception as e:  # a model that cannot run this setting is a result
            rows.append({**row, "status": "error", "reason": f"{type(e).__name__}: {e}"[:200]})
            continue
        row.update(first_call_s=first_s, peak_mb=peak / 2**20, times=[])
        active.append((name, model, call, row))
        if first_s > max_call_s:
            too_slow.add((name, mode))
    for _ in range(runs):
        for _name, model, call, row in active:
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            call()
            row["times"].append(time.perf_counter() - t0)
    for _name, model, _, row in active:
        model.zero_grad(set_to_none=True)
        row.update(status="ok", median_s=statistics.median(row["times"]))
        rows.append(row)
    return rows


def _median(rows: list[dict[str, Any]], model: str, n: int, mode: str) -> float | None:
    for r in rows:
        if (r["model"], r["N"], r["mode"]) == (model, n, mode) and r["status"] == "ok":
            return r["median_s"]
    return None


def targets(rows: list[dict[str, Any]], sizes: tuple[int, ...]) -> list[Target]:
    """Ours faster than HF BigBird (time ratio HF / ours > 1) at every length and mode."""
    out = []
    for mode in ("fwd", "fwdbwd"):
        for n in sizes:
            ours, hf = _median(rows, "ours", n, mode), _median(rows, "hf-bigbird", n, mode)
            if ours and hf:
                out.append(Target.check(f"{mode} N={n}: HF BigBird time / ours", hf / ours, ">", 1))
    return out


def run_benchmark(
    *,
    quick: bool = False,
    sizes: tuple[int, ...] | None = None,
    runs: int = 5,
    max_call_s: float = 120.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time the three models; return the JSON-able record (rows, targets, machine).

    Args:
        quick: N = 1024 only (about half a minute); else N in {1024, 2048, 4096}.
        sizes: override the lengths (each <= 4096).
        runs: timed rounds per setting (median reported).
        max_call_s: a model whose warm-up call takes longer is not timed at larger N.
        log: where progress lines go.
    """
    t_start = time.perf_counter()
    load_start = list(os.getloadavg())
    sizes = tuple(sizes or (QUICK_N if quick else FULL_N))
    models = build_models(max(MAX_LENGTH, *sizes))
    record: dict[str, Any] = {
        "benchmark": "hf_long",
        "quick": quick,
        "config": {
            "B": 1,
            "model": "MiniLM-L6 (hidden 384, 6 layers, 12 heads, FFN 1536)",
            "block_size": BLOCK,
            "window_blocks": WINDOW,
            "global_blocks": GLOBAL,
            "random_blocks": RANDOM,
            "max_length": MAX_LENGTH,
            "runs": runs,
            "sizes": list(sizes),
            "dtype": "fp32",
            "threads": torch.get_num_threads(),
        },
        "machine": machine_info(),
    }
    if isinstance(models, str):
        log(f"skipped: {models}")
        return {**record, "skipped": models, "rows": [], "targets": []}
    rows: list[dict[str, Any]] = []
    too_slow: set[tuple[str, str]] = set()
    for n in sizes:
        for mode in ("fwd", "fwdbwd"):
            rows += _setting(models, n, mode, runs, too_slow, max_call_s)
            log(_progress(rows, n, mode))
    record.update(
        rows=rows,
        targets=[vars(t) for t in targets(rows, sizes)],
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        loadavg_start=load_start,
        loadavg_end=list(os.getloadavg()),
        wall_s=time.perf_counter() - t_start,
    )
    return record


def _progress(rows: list[dict[str, Any]], n: int, mode: str) -> str:
    done = [r for r in rows if r["N"] == n and r["mode"] == mode]
    parts = [
        f"{r['model']} {r['median_s'] * 1e3:.0f} ms" if r["status"] == "ok" else r["status"]
        for r in done
    ]
    return f"N={n} {mode} (load {os.getloadavg()[0]:.1f}): " + ", ".join(parts)


def table(record: dict[str, Any]) -> str:
    """Markdown: ms per call, peak MB and the ratios, one row per (N, mode)."""
    if not record["rows"]:
        return f"skipped: {record.get('skipped', 'nothing measured')}"
    lines = [
        "| N | mode | ours (ms) | HF BigBird (ms) | dense SDPA (ms) | HF / ours | dense / ours "
        "| peak MB ours / HF / dense |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    rows = record["rows"]
    for n in record["config"]["sizes"]:
        for mode in ("fwd", "fwdbwd"):
            t = {m: _median(rows, m, n, mode) for m in MODELS}
            peaks = [
                next(
                    (
                        f"{r['peak_mb']:.0f}"
                        for r in rows
                        if (r["model"], r["N"], r["mode"]) == (m, n, mode) and "peak_mb" in r
                    ),
                    "-",
                )
                for m in MODELS
            ]
            ms = [f"{t[m] * 1e3:.0f}" if t[m] else "-" for m in MODELS]
            ratio = [f"{t[m] / t['ours']:.2f}x" if t[m] and t["ours"] else "-" for m in MODELS[1:]]
            mode_name = "forward" if mode == "fwd" else "forward+backward"
            lines.append(
                f"| {n:,} | {mode_name} | {' | '.join(ms)} | {' | '.join(ratio)} | "
                f"{' / '.join(peaks)} |"
            )
    lines.append("")
    for tgt in record["targets"]:
        mark = "met" if tgt["met"] else "MISSED"
        lines.append(
            f"- {tgt['name']}: {tgt['measured']:.2f} (goal {tgt['op']} {tgt['goal']:g}): {mark}"
        )
    m = record["machine"]
    lines.append("")
    load = [record[k][0] for k in ("loadavg_start", "loadavg_end") if k in record]
    shared = f", load average {min(load):.1f}-{max(load):.1f} (shared machine)" if load else ""
    lines.append(
        f"fp32, batch 1, medians of {record['config']['runs']} interleaved runs, "
        f"{record['config']['threads']} threads; {m.get('cpu', 'CPU')}, "
        f"{m.get('cores', '?')} cores{shared}; {record['wall_s']:.0f} s in all. "
        "Peak MB: the CPU allocator's peak tensor bytes during one call."
    )
    return "\n".join(lines)


def main(
    argv: list[str] | None = None, *, out_dir: str | Path = Path(__file__).parent / "results"
) -> int:
    """``python benchmarks/hf_long.py [--quick]``: run, print the table, write JSON + markdown."""
    import argparse

    parser = argparse.ArgumentParser(prog="hf_long", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1024 only")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds (median)")
    parser.add_argument("--out", default=str(out_dir), help="folder for hf_long.json/.md")
    args = parser.parse_args(argv)
    if args.runs < 1:
        raise ValueError(f"--runs must be >= 1, got {args.runs}")
    record = run_benchmark(quick=args.quick, runs=args.runs, log=lambda s: print(s, flush=True))
    out = Path(args.out)
    name = "hf_long-quick" if args.quick else "hf_long"
    write_json_atomic(out / f"{name}.json", record)
    text = table(record)
    atomic_write(out / f"{name}.md", text + "\n")
    print(text)
    print(f"\nwrote {out / (name + '.json')} and {out / (name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
