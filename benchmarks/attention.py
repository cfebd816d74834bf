"""Attention benchmark: our BigBird and clustered kernels against dense SDPA and the peers.

Run ``python benchmarks/attention.py [--quick] [--runs 5] [--out DIR]`` (or
``takeaways bench attention [--quick]`` from a checkout). Writes
benchmarks/results/attention.json (+ .png); ``--quick`` writes attention-quick.*.

What is timed, for q, k, v of shape (B=1, H=8, N, D=64) made once per N and dtype:

- ``dense-sdpa``: ``F.scaled_dot_product_attention(q, k, v)`` (torch's CPU flash kernel).
- ``bigbird``: ``bigbird_attention(q, k, v)`` with block 64, window 3, global 2, random 3,
  default backend (the blocked gather on CPU). ``bigbird-flex``: ``backend="flex"``, compiled
  FlexAttention, forward only (no CPU backward in torch), full run only (it compiles per N).
- ``clustered`` / ``improved-clustered``: ours with C=100, 32 bits, 10 iterations, top-k 32.
- ``hf-block-sparse``: Hugging Face ``BigBirdBlockSparseAttention.bigbird_block_sparse_attention``
  on the same q, k, v (block 64, 3 random blocks, train mode so that random blocks are drawn;
  its projections are not timed; it returns (B, N, H, D)). Needs the ``hf`` extra.
- ``ft-clustered`` / ``ft-improved-clustered``: pytorch-fast-transformers' ``ClusteredAttention``
  / ``ImprovedClusteredAttention`` (same C, bits, iterations, top-k) on the same numbers laid out
  (B, N, H, D) beforehand; its CPU build is described in the research note.

Forward runs under ``torch.no_grad()``; forward+backward calls ``out.backward(ones)`` on inputs
that require grad. Each (N, dtype, mode) makes one warm-up call per implementation, profiled
for memory, then ``runs`` rounds that call every implementation once (interleaved, so load
drift hits all alike); the median is reported. Peak memory = the highest total of tensor bytes
allocated during the warm-up call above what was allocated before it (torch.profiler memory
events; the CPU allocator's bytes, not RSS). The arithmetic floor = the pattern's matmul FLOPs
(4 N_pairs D forward, 3x that for forward+backward) over the best GEMM rate measured in this
run (a 1024^3 fp32 GEMM timed in every round beside the kernels, so it sees the same load;
the bf16 rate is used instead where it is higher). A peer that is not installed, or would
take minutes (bf16 matmul on a CPU without bf16 units), is recorded as skipped with the
reason.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before torch loads OpenMP: idle threads sleep instead of spinning. On a shared machine,
# spinning threads steal the core their partner needs, and every parallel op then waits a
# scheduler slice (10 ms and more per op at load 3 on 2 cores); sleeping costs microseconds.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from takeaways.attention import bigbird_attention  # noqa: E402
from takeaways.attention.bigbird import block_pattern  # noqa: E402
from takeaways.attention.clustered import (  # noqa: E402
    clustered_attention,
    improved_clustered_attention,
)
from takeaways.files import check_writable  # noqa: E402
from takeaways.measure import gemm_rate, peak_bytes  # noqa: E402
from takeaways.results import Target, machine_info, write_json_atomic  # noqa: E402

__all__ = ["main", "run_benchmark"]

H, D, BLOCK, RANDOM, CLUSTERS, BITS, ITERS, TOPK = 8, 64, 64, 3, 100, 32, 10, 32
FULL_N = (1024, 2048, 4096, 8192, 16384)
GEMM = 1024  # square fp32 GEMM whose rate, timed in every round, sets the arithmetic floor
QUICK_N = (1024, 4096)


@dataclass
class Impl:
    name: str
    make: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Callable[[], torch.Tensor]]
    backward: bool = True  # has a backward on CPU
    compiles: bool = False  # first call compiles: one extra, unprofiled warm-up call
    flops: Callable[[int], float] = lambda n: float("nan")  # forward matmul FLOPs at N


# ----------------------------------------------------------------------------- FLOPs


def dense_flops(n: int) -> float:
    return 4.0 * H * n * n * D  # QK^T and PV, 2 FLOPs per multiply-add


def bigbird_flops(n: int) -> float:
    p = block_pattern(math.ceil(n / BLOCK), 3, 2, RANDOM, 0, H, "cpu")
    return 4.0 * float(p.adjacency.sum()) * BLOCK * BLOCK * D


def clustered_flops(n: int, topk: int = 0) -> float:
    kmeans = 2.0 * H * n * BITS * (D + CLUSTERS * (ITERS + 1))  # hashing + assignments
    return kmeans + 4.0 * H * CLUSTERS * n * D + 4.0 * H * n * topk * D


# ----------------------------------------------------------------------------- implementations


def _ours() -> list[Impl]:
    return [
        Impl(
            "dense-sdpa",
            lambda q, k, v: lambda: F.scaled_dot_product_attention(q, k, v),
            flops=dense_flops,
        ),
        Impl(
            "bigbird",
            lambda q, k, v: lambda: bigbird_attention(q, k, v, block_size=BLOCK),
            flops=bigbird_flops,
        ),
        Impl(
            "clustered",
            lambda q, k, v: (
                lambda: clustered_attention(q, k, v, clusters=CLUSTERS, bits=BITS, iterations=ITERS)
            ),
            flops=clustered_flops,
        ),
        Impl(
            "improved-clustered",
            lambda q, k, v: (
                lambda: improved_clustered_attention(
                    q, k, v, clusters=CLUSTERS, bits=BITS, iterations=ITERS, topk=TOPK
                )
            ),
            flops=lambda n: clustered_flops(n, TOPK),
        ),
    ]


def _flex() -> Impl:
    def make(q, k, v):
        return lambda: bigbird_attention(q, k, v, block_size=BLOCK, backend="flex")

    return Impl("bigbird-flex", make, backward=False, compiles=True, flops=bigbird_flops)


def _hf() -> Impl | str:
    try:
        from transformers import BigBirdConfig
        from transformers.models.big_bird.modeling_big_bird import (
            BigBirdBlockSparseAttention,
            BigBirdModel,
        )
    except ImportError as e:
        return f"transformers not installed ({e}); pip install 'takeaways[hf]'"

    def make(q, k, v):
        B, _, n, _ = q.shape
        cfg = BigBirdConfig(
            hidden_size=H * D,
            num_attention_heads=H,
            block_size=BLOCK,
            num_random_blocks=RANDOM,
            attention_type="block_sparse",
            max_position_embeddings=max(n, 4096),
        )
        layer = BigBirdBlockSparseAttention(cfg, seed=0).train()  # eval would zero random blocks
        blocked, band, from_m, to_m = BigBirdModel.create_masks_for_block_sparse_attn(
            torch.ones(B, n, dtype=q.dtype), BLOCK
        )

        def call():
            out, _ = layer.bigbird_block_sparse_attention(
                q,
                k,
                v,
                band,
                from_m,
                to_m,
                blocked,
                blocked,
                H,
                RANDOM,
                D,
                BLOCK,
                BLOCK,
                B,
                n,
                n,
                seed=0,
                plan_from_length=None,
                plan_num_rand_blocks=None,
            )
            return out

        return call

    return Impl("hf-block-sparse", make, flops=bigbird_flops)


def _ft() -> list[Impl] | str:
    try:
        from fast_transformers.attention import ClusteredAttention, ImprovedClusteredAttention
        from fast_transformers.masking import FullMask, LengthMask
    except ImportError as e:
        return (
            f"pytorch-fast-transformers not installed ({e}); see the research note: "
            "PATH=<venv>/bin:/usr/bin:/bin pip install --no-build-isolation pytorch-fast-transformers"
        )

    def maker(cls, **kw):
        def make(q, k, v):
            n = q.shape[2]
            module = cls(clusters=CLUSTERS, iterations=ITERS, bits=BITS, **kw)
            # (B, N, H, D) leaves that share q, k, v's values; made once, outside the timing
            qt, kt, vt = (t.detach().transpose(1, 2).contiguous() for t in (q, k, v))
            for a, b in zip((qt, kt, vt), (q, k, v)):
                a.requires_grad_(b.requires_grad)
            full = FullMask(n, device=q.device)
            lengths = LengthMask(torch.tensor([n] * q.shape[0]), max_len=n)
            return lambda: module(qt, kt, vt, full, lengths, lengths)

        return make

    return [
        Impl("ft-clustered", maker(ClusteredAttention), flops=clustered_flops),
        Impl(
            "ft-improved-clustered",
            maker(ImprovedClusteredAttention, topk=TOPK),
            flops=lambda n: clustered_flops(n, TOPK),
        ),
    ]


# ----------------------------------------------------------------------------- measuring


def _call(make_call: Callable[[], torch.Tensor], mode: str) -> Callable[[], None]:
    if mode == "fwd":

        def run() -> None:
            with torch.no_grad():
                make_call()

    else:

        def run() -> None:
            out = make_call()
            out.backward(torch.ones_like(out))

    return run


def _inputs(n: int, dtype: torch.dtype, grad: bool) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return [torch.randn(1, H, n, D, generator=g).to(dtype).requires_grad_(grad) for _ in "qkv"]


_DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16"}
_PEERS = {"hf-block-sparse", "ft-clustered", "ft-improved-clustered"}


def _skip_reason(impl: Impl, key: tuple[str, str, str], rates: dict) -> str | None:
    """Why ``impl`` is not timed at this (impl, dtype, mode), or None."""
    _, dname, mode = key
    if mode == "fwdbwd" and not impl.backward:
        return "no backward on CPU"
    if dname == "bf16" and impl.name in _PEERS and rates["bf16"] < 0.25 * rates["fp32"]:
        return (
            f"computes in bf16; this CPU's bf16 GEMM runs {rates['bf16']:.2f} "
            f"GFLOP/s vs {rates['fp32']:.0f} fp32, a call would take minutes"
        )
    return None


def _setting(
    impls: list[Impl],
    dtype: torch.dtype,
    n: int,
    mode: str,
    rates: dict[str, float],
    gemm: tuple[torch.Tensor, torch.Tensor],
    too_slow: set[tuple[str, str, str]],
    runs: int,
    max_call_s: float,
) -> list[dict[str, Any]]:
    """One (dtype, N, mode): a profiled warm-up call per implementation, then ``runs``
    interleaved rounds (each also times the GEMM that sets the floor). Adds to ``too_slow``."""
    dname = _DTYPE_NAMES[dtype]
    rows, active = [], []
    for impl in impls:
        key = (impl.name, dname, mode)
        row = {"impl": impl.name, "dtype": dname, "N": n, "mode": mode}
        reason = _skip_reason(impl, key, rates)
        if reason is None and key in too_slow:
            reason = f"a call took more than {max_call_s:.0f} s at a smaller N"
        if reason is not None:
            rows.append({**row, "status": "skipped", "reason": reason})
            continue
        q, k, v = _inputs(n, dtype, grad=mode == "fwdbwd")
        try:
            call = _call(impl.make(q, k, v), mode)
            if impl.compiles:
                call()
            first_s, peak = peak_bytes(call)
        except Exception as e:  # a peer that cannot run this setting is a result
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            rows.append({**row, "status": "error", "reason": msg[:200]})
            continue
        row.update(first_call_s=first_s, peak_mb=peak / 2**20, times=[])
        active.append((impl, call, row))
        if first_s > max_call_s:
            too_slow.add(key)
    gemm_times = []
    for _ in range(runs):
        for impl, call, row in active:
            if (impl.name, dname, mode) in too_slow:
                continue
            t0 = time.perf_counter()
            call()
            row["times"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()  # the GEMM rate, under the same load as the rest
        gemm[0] @ gemm[1]
        gemm_times.append(time.perf_counter() - t0)
    best_rate = max(rates["bf16"], 0.0) * 1e9  # bf16 wins only on CPUs with bf16 units
    rate = max(2.0 * GEMM**3 / statistics.median(gemm_times), best_rate)
    for impl, _, row in active:
        flops = impl.flops(n) * (1.0 if mode == "fwd" else 3.0)
        row.update(flops=flops, gemm_gflops=rate / 1e9, floor_s=flops / rate)
        if row["times"]:
            row["median_s"] = statistics.median(row["times"])
            row["status"] = "ok"
        else:
            row["status"] = "skipped"
            row["reason"] = f"one call took {row['first_call_s']:.0f} s"
        rows.append(row)
    return rows


def run_benchmark(
    *,
    quick: bool = False,
    sizes: tuple[int, ...] | None = None,
    runs: int = 5,
    max_call_s: float = 60.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time every implementation; return the JSON-able record (rows, targets, machine).

    Args:
        quick: N in {1024, 4096}, fp32 only, no flex (about a minute); else the full sweep.
        sizes: override the lengths.
        runs: timed rounds per setting (median reported).
        max_call_s: an implementation whose warm-up call takes longer is not timed at this
            or larger N (recorded as skipped).
        log: where progress lines go.
    """
    t_start = time.perf_counter()
    load_start = list(os.getloadavg())
    sizes = sizes or (QUICK_N if quick else FULL_N)
    dtypes = (torch.float32,) if quick else (torch.float32, torch.bfloat16)
    rates = {"fp32": gemm_rate(torch.float32, GEMM), "bf16": gemm_rate(torch.bfloat16, 128)}
    ga, gb = torch.randn(GEMM, GEMM), torch.randn(GEMM, GEMM)
    log(f"GEMM GFLOP/s: fp32 {rates['fp32']:.1f}, bf16 {rates['bf16']:.2f}")
    impls = _ours() + ([] if quick else [_flex()])
    skipped: dict[str, str] = {}
    for peer in (_hf(), _ft()):
        if isinstance(peer, str):
            skipped["hf-block-sparse" if "transformers not" in peer else "ft"] = peer
        else:
            impls += peer if isinstance(peer, list) else [peer]
    rows: list[dict[str, Any]] = []
    too_slow: set[tuple[str, str, str]] = set()
    for dtype in dtypes:
        for n in sizes:
            for mode in ("fwd", "fwdbwd"):
                rows += _setting(impls, dtype, n, mode, rates, (ga, gb), too_slow, runs, max_call_s)
                log(_progress(rows, _DTYPE_NAMES[dtype], n, mode))
    record = {
        "benchmark": "attention",
        "quick": quick,
        "config": {
            "B": 1,
            "H": H,
            "D": D,
            "block_size": BLOCK,
            "window_blocks": 3,
            "global_blocks": 2,
            "random_blocks": RANDOM,
            "clusters": CLUSTERS,
            "bits": BITS,
            "iterations": ITERS,
            "topk": TOPK,
            "runs": runs,
            "sizes": list(sizes),
        },
        "gemm_gflops": rates,
        "impls": [impl.name for impl in impls],
        "skipped_peers": skipped,
        "rows": rows,
        "machine": machine_info(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_start": load_start,
        "loadavg_end": list(os.getloadavg()),
        "wall_s": time.perf_counter() - t_start,
    }
    record["targets"] = [vars(t) for t in targets(rows)]
    record["memory_exponent"] = memory_exponents(rows)
    return record


def _progress(rows: list[dict[str, Any]], dtype: str, n: int, mode: str) -> str:
    done = [r for r in rows if r["dtype"] == dtype and r["N"] == n and r["mode"] == mode]
    parts = []
    for r in done:
        if r["status"] == "ok":
            parts.append(f"{r['impl']} {r['median_s'] * 1e3:.0f} ms")
        else:
            parts.append(f"{r['impl']} {r['status']}")
    load = os.getloadavg()[0]
    return f"{dtype} N={n} {mode} (load {load:.1f}): " + ", ".join(parts)


# ----------------------------------------------------------------------------- targets


def _median(rows: list[dict[str, Any]], impl: str, n: int, mode: str, dtype: str = "fp32"):
    for r in rows:
        if (r["impl"], r["N"], r["mode"], r["dtype"]) == (impl, n, mode, dtype):
            return r.get("median_s"), r
    return None, None


def memory_exponents(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Least-squares slope of log(peak memory) over log(N), N >= 2048, fp32 fwd+bwd."""
    out = {}
    for impl in sorted({r["impl"] for r in rows}):
        pts = [
            (math.log(r["N"]), math.log(r["peak_mb"]))
            for r in rows
            if r["impl"] == impl
            and r["dtype"] == "fp32"
            and r["mode"] == "fwdbwd"
            and r["N"] >= 2048
            and r.get("peak_mb", 0) > 0
        ]
        if len(pts) >= 2:
            mx = statistics.fmean(x for x, _ in pts)
            my = statistics.fmean(y for _, y in pts)
            sxx = sum((x - mx) ** 2 for x, _ in pts)
            out[impl] = sum((x - mx) * (y - my) for x, y in pts) / sxx
    return out


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """The issue's targets, from whatever settings this run measured (fp32)."""
    out = []
    dense16, _ = _median(rows, "dense-sdpa", 16384, "fwd")
    bb16, bb16_row = _median(rows, "bigbird", 16384, "fwd")
    if dense16 and bb16:
        out.append(
            Target.check("BigBird fwd N=16384: speedup over dense SDPA", dense16 / bb16, ">=", 10)
        )
        out.append(
            Target.check(
                "BigBird fwd N=16384: time / arithmetic floor", bb16 / bb16_row["floor_s"], "<=", 3
            )
        )
    hf4, _ = _median(rows, "hf-block-sparse", 4096, "fwdbwd")
    bb4, _ = _median(rows, "bigbird", 4096, "fwdbwd")
    if hf4 and bb4:
        out.append(
            Target.check("BigBird fwd+bwd N=4096: speedup over HF block_sparse", hf4 / bb4, ">=", 2)
        )
    exps = memory_exponents(rows)
    if "bigbird" in exps:
        out.append(
            Target.check(
                "BigBird fwd+bwd peak memory: log-log slope in N (1 = linear)",
                exps["bigbird"],
                "<=",
                1.1,
            )
        )
    ft4, _ = _median(rows, "ft-clustered", 4096, "fwd")
    cl4, _ = _median(rows, "clustered", 4096, "fwd")
    if ft4 and cl4:
        out.append(
            Target.check(
                "clustered C=100 fwd N=4096: speedup over fast-transformers", ft4 / cl4, ">=", 1.5
            )
        )
    cl16, _ = _median(rows, "clustered", 16384, "fwd")
    if dense16 and cl16:
        out.append(
            Target.check(
                "clustered C=100 fwd N=16384: speedup over dense SDPA", dense16 / cl16, ">=", 5
            )
        )
    return out


# ----------------------------------------------------------------------------- report


def table(record: dict[str, Any]) -> str:
    """Milliseconds per call and speedup over dense SDPA, one block per dtype and mode."""
    rows = record["rows"]
    sizes = record["config"]["sizes"]
    lines = []
    for dtype in ("fp32", "bf16"):
        for mode in ("fwd", "fwdbwd"):
            sel = [r for r in rows if r["dtype"] == dtype and r["mode"] == mode]
            if not sel:
                continue
            lines.append(f"\n{dtype} {mode}: ms per call (x speedup over dense-sdpa), peak MB")
            lines.append(f"{'':<22}" + "".join(f"{n:>22}" for n in sizes))
            for impl in [i for i in record["impls"] if any(r["impl"] == i for r in sel)]:
                cells = []
                for n in sizes:
                    r = next((x for x in sel if x["impl"] == impl and x["N"] == n), None)
                    dense, _ = _median(rows, "dense-sdpa", n, mode, dtype)
                    if r is None or r["status"] != "ok":
                        cells.append(f"{(r or {}).get('status', '-'):>22}")
                        continue
                    ratio = f"x{dense / r['median_s']:.1f}" if dense else ""
                    cell = f"{r['median_s'] * 1e3:.0f} ({ratio}) {r['peak_mb']:.0f}MB"
                    cells.append(f"{cell:>22}")
                lines.append(f"{impl:<22}" + "".join(cells))
    lines.append("\ntargets:")
    for t in record["targets"]:
        mark = "met " if t["met"] else "MISS"
        lines.append(f"  [{mark}] {t['name']}: {t['measured']:.3g} (goal {t['op']} {t['goal']:g})")
    return "\n".join(lines)


def plot(record: dict[str, Any], path: Path) -> Path:
    """Time per call vs N (fp32 fwd, fp32 fwd+bwd) and peak memory vs N, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    panels = [
        ("fwd", "median_s", "fp32 forward: seconds per call"),
        ("fwdbwd", "median_s", "fp32 forward+backward: seconds per call"),
        ("fwdbwd", "peak_mb", "fp32 forward+backward: peak MB"),
    ]
    for ax, (mode, key, title) in zip(axes, panels):
        sel = [r for r in record["rows"] if r["dtype"] == "fp32" and r["mode"] == mode]
        for impl in dict.fromkeys(r["impl"] for r in sel):
            pts = [(r["N"], r[key]) for r in sel if r["impl"] == impl and r["status"] == "ok"]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=impl)
        if key == "median_s":
            floor = [
                (r["N"], r["floor_s"]) for r in sel if r["impl"] == "bigbird" and "floor_s" in r
            ]
            if floor:
                ax.plot(*zip(*floor), "k--", label="BigBird arithmetic floor")
        ax.set(xscale="log", yscale="log", title=title, xlabel="N")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(
    argv: list[str] | None = None, *, out_dir: str | Path = Path(__file__).parent / "results"
) -> int:
    """``python benchmarks/attention.py [--quick]``: run, print the table, write JSON + PNG."""
    import argparse

    parser = argparse.ArgumentParser(prog="attention", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N in {1024, 4096}, fp32 only")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds (median; >= 5)")
    parser.add_argument("--out", default=str(out_dir), help="folder for attention.json/.png")
    args = parser.parse_args(argv)
    if args.runs < 1:
        raise ValueError(f"--runs must be >= 1, got {args.runs}")
    check_writable(args.out, kind="dir")  # a bad --out fails now, not after the sweep
    record = run_benchmark(quick=args.quick, runs=args.runs, log=lambda s: print(s, flush=True))
    out = Path(args.out)
    name = "attention-quick" if args.quick else "attention"
    write_json_atomic(out / f"{name}.json", record)
    plot(record, out / f"{name}.png")
    print(table(record))
    print(
        f"\nwrote {out / (name + '.json')} and {out / (name + '.png')} in {record['wall_s']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
