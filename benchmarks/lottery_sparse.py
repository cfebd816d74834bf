"""Dense vs CSR linear inference at ticket sparsities, and the size of a sparse export.

MiniLM-shaped layers (attention 384x384, intermediate 384->1536, output 1536->384), the
weights magnitude-pruned to each sparsity; T tokens per call (a batch of 64 reviews of 40
tokens at the default). Per layer and sparsity, in one process: median seconds of
``F.linear`` (dense GEMM) and of ``SparseLinear`` (``torch.sparse.mm`` on CSR), their
ratio, and the safetensors file size of the layer exported dense vs CSR.

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
from takeaways.lottery.sparse import SparseLinear, export_sparse  # noqa: E402
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
    out = Path(__file__).parent / "results" / f"lottery_sparse{'-quick' if args.quick else ''}.json"
    write_json_atomic(
        out,
        {
            "benchmark": "lottery_sparse",
            "created": now_iso(),
            "machine": machine_info(),
            "rows": rows,
        },
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
