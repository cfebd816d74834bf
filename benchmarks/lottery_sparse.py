"""Dense vs CSR linear inference at ticket sparsities, and the size of a sparse export.

Layers: MiniLM-shaped (attention 384x384, intermediate 384->1536, output 1536->384), the
weights magnitude-pruned to each sparsity; T tokens per call (a batch of 64 reviews of 40
tokens at the default). Per layer and sparsity, in one process: median seconds of
``F.linear`` (dense GEMM) and of ``SparseLinear`` (``torch.sparse.mm`` on CSR), their
ratio, and the safetensors file size of the layer exported dense vs CSR.

Whole model: the packaged pre-trained MiniLM (6 layers), its attention and feed-forward
weights globally magnitude-pruned to each sparsity (as a ticket prunes them), encoding a
batch of 64 reviews of 40 tokens: the pruned model run with dense kernels (the baseline of
every ratio) vs every pruned linear layer in CSR
(``to_sparse(min_sparsity=0)``) vs ``to_sparse``'s default policy (CSR only where a layer
is sparse enough for it to pay off), and the whole model's safetensors size dense vs
``export_sparse``. Skipped with the reason when the ``hf`` extra is missing.

Run: ``python benchmarks/lottery_sparse.py [--quick] [--threads 1]``. Writes
benchmarks/results/lottery_sparse.json (``--quick``: lottery_sparse-quick.json).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from takeaways.lottery import Ticket  # noqa: E402
from takeaways.lottery.sparse import SparseLinear, export_sparse, to_sparse  # noqa: E402
from takeaways.results import machine_info, now_iso, write_json_atomic  # noqa: E402

SHAPES = {
    "attention 384x384": (384, 384),
    "intermediate 384->1536": (384, 1536),
    "output 1536->384": (1536, 384),
}


def _median_s(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer tokens and runs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sparsities", default="0.5,0.7,0.9")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tokens, runs = (512, 5) if args.quick else (64 * 40, 15)
    rows = []
    for name, (d_in, d_out) in SHAPES.items():
        for s in (float(v) for v in args.sparsities.split(",")):
            torch.manual_seed(0)
            layer = nn.Linear(d_in, d_out)
            Ticket.magnitude(layer, s, prunable="weight").apply(layer).remove()
            sparse = SparseLinear.from_dense(layer)
            x = torch.randn(tokens, d_in)
            with torch.no_grad():
                dense_s = _median_s(
                    lambda x=x, m=layer: nn.functional.linear(x, m.weight, m.bias), runs
                )
                csr_s = _median_s(lambda x=x, m=sparse: m(x), runs)
            with tempfile.TemporaryDirectory() as tmp:
                a = (
                    export_sparse(layer, Path(tmp) / "d.safetensors", min_sparsity=1.1)
                    .stat()
                    .st_size
                )
                b = export_sparse(layer, Path(tmp) / "s.safetensors").stat().st_size
            rows.append(
                {"layer": name, "sparsity": s, "tokens": tokens, "dense_ms": 1e3 * dense_s,
                 "csr_ms": 1e3 * csr_s, "csr_over_dense_time": csr_s / dense_s,
                 "file_dense_bytes": a, "file_csr_bytes": b, "file_ratio": b / a}
            )  # fmt: skip
            r = rows[-1]
            print(
                f"{name:24s} {100 * s:4.0f}%  dense {r['dense_ms']:7.2f} ms  CSR {r['csr_ms']:7.2f} ms "
                f"(x{r['csr_over_dense_time']:.2f})  file {r['file_ratio']:.2f} of dense"
            )
    models = _whole_model(args, runs)
    out = Path(__file__).parent / "results" / f"lottery_sparse{'-quick' if args.quick else ''}.json"
    write_json_atomic(
        out,
        {
            "benchmark": "lottery_sparse",
            "created": now_iso(),
            "machine": machine_info(),
            "rows": rows,
            "model": models,
        },
    )
    print(f"written to {out}")


def _whole_model(args: argparse.Namespace, runs: int) -> dict:
    """MiniLM inference dense vs CSR at each sparsity, and the whole model's file sizes."""
    import copy

    try:
        from takeaways.nn import load_minilm

        encoder, _ = load_minilm()
    except ImportError as err:
        print(f"whole model: skipped ({err})")
        return {"skipped": str(err)}
    encoder.eval()
    batch, length = (16, 40) if args.quick else (64, 40)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (batch, length), generator=g)
    att = torch.ones(batch, length, dtype=torch.long)
    att[: batch // 2, length // 2 :] = 0  # half the rows padded, as real reviews are
    rows = []
    with torch.no_grad():
        dense_s = _median_s(lambda: encoder(ids, att), runs)
        ref = encoder(ids, att)
    for s in (float(v) for v in args.sparsities.split(",")):
        pruned = copy.deepcopy(encoder)
        Ticket.magnitude(pruned, s).apply(pruned).remove()
        with torch.no_grad():
            pruned_dense_s = _median_s(lambda m=pruned: m(ids, att), runs)
            want = pruned(ids, att)
        with tempfile.TemporaryDirectory() as tmp:
            size_dense = export_sparse(pruned, Path(tmp) / "d.safetensors", min_sparsity=1.1)
            size_csr = export_sparse(pruned, Path(tmp) / "s.safetensors")
            size_dense, size_csr = size_dense.stat().st_size, size_csr.stat().st_size
        policy = copy.deepcopy(pruned)
        swapped_policy = to_sparse(policy)
        swapped_all = to_sparse(pruned, min_sparsity=0.0)
        with torch.no_grad():
            all_s = _median_s(lambda m=pruned: m(ids, att), runs)
            policy_s = _median_s(lambda m=policy: m(ids, att), runs)
            err = float((pruned(ids, att) - want).abs().max())
        rows.append(
            {"sparsity": s, "batch": [batch, length], "dense_ms": 1e3 * dense_s,
             "pruned_dense_ms": 1e3 * pruned_dense_s, "all_csr_ms": 1e3 * all_s,
             "policy_csr_ms": 1e3 * policy_s, "policy_layers_csr": len(swapped_policy),
             "layers_csr_all": len(swapped_all), "all_csr_over_dense": all_s / pruned_dense_s,
             "policy_over_dense": policy_s / pruned_dense_s, "max_abs_diff_csr_vs_dense": err,
             "file_dense_mb": size_dense / 2**20, "file_csr_mb": size_csr / 2**20,
             "file_ratio": size_csr / size_dense}
        )  # fmt: skip
        r = rows[-1]
        print(
            f"MiniLM {100 * s:3.0f}%: dense {r['pruned_dense_ms']:7.1f} ms  all CSR "
            f"{r['all_csr_ms']:7.1f} ms (x{r['all_csr_over_dense']:.2f})  policy "
            f"{r['policy_csr_ms']:7.1f} ms (x{r['policy_over_dense']:.2f}, "
            f"{r['policy_layers_csr']} layers CSR)  file {r['file_csr_mb']:.1f} of "
            f"{r['file_dense_mb']:.1f} MB  max|diff| {err:.1e}"
        )
    del ref
    return {"rows": rows}


if __name__ == "__main__":
    main()
