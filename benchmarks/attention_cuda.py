"""CUDA check and timing of the attention kernels: correctness on the GPU, then speed.

Run on a machine with a CUDA device: ``python benchmarks/attention_cuda.py [--out DIR]``.
Writes ``attention-cuda.json`` (+ a table on stdout). Three parts, each recorded even if
another fails:

1. ``checks``: every fast path on CUDA against its naive reference (forward and gradients),
   fp32 and bf16, N in {1000, 257, 4096}, no padding / right / left padding: BigBird's flex
   and gather backends, clustered attention with C = N (exact) and improved clustered with
   top-k = N (exact), and clustered attention on CUDA against the same call on CPU (the
   hyperplanes are drawn on CPU, so the clusters must agree).
2. ``timing``: B=1, H=8, D=64, N in 1k..32k, fp32 and bf16, forward and forward+backward,
   CUDA events, median of 10 calls after 3 warm-ups, peak memory above the inputs
   (``torch.cuda.max_memory_allocated``): dense SDPA, BigBird flex, BigBird gather,
   clustered and improved clustered (C=100).
3. ``training``: one 2-layer BigBird encoder's loss and parameter gradients on a batch, on
   CPU (gather) and on CUDA (gather and flex) from the same weights: they must agree; then
   ``takeaways.train.fit`` trains it 32 steps on CUDA in bf16 autocast (losses finite).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch._dynamo
import torch.nn.functional as F

from takeaways.attention import (
    bigbird_attention,
    bigbird_attention_reference,
    clustered_attention,
    improved_clustered_attention,
)
from takeaways.nn.attention import attention_reference as reference_attention

H, D = 8, 64
SIZES = (1024, 2048, 4096, 8192, 16384, 32768)
BB = {"block_size": 64, "window_blocks": 3, "global_blocks": 2, "random_blocks": 3, "seed": 0}


def _mask(kind: str | None, B: int, N: int, dev: str) -> torch.Tensor | None:
    pos = torch.arange(N, device=dev)[None].expand(B, N)
    if kind == "right":
        return pos < torch.tensor([[N], [N - 37]], device=dev)
    if kind == "left":
        return pos >= torch.tensor([[0], [41]], device=dev)
    return None


def _compare(fast, ref, inputs, dtype, real=None) -> dict:
    """Max abs error of the output and of the q, k, v gradients, fast vs reference.

    ``real`` (B, N) keeps only real query rows (clustered attention leaves padded queries
    out of the clustering, so their rows are don't-care).
    """
    out, want = fast(*inputs), ref(*inputs)
    if real is not None:
        keep = real[:, None, :, None].to(out.dtype)
        out, want = out * keep, want * keep
    g = torch.randn_like(out)
    ga = torch.autograd.grad(out, inputs, g, allow_unused=True)
    gb = torch.autograd.grad(want, inputs, g, allow_unused=True)
    err = {"out": (out - want).abs().max().item()}
    for name, a, b in zip("qkv", ga, gb):
        err[f"grad_{name}"] = 0.0 if a is None and b is None else (a - b).abs().max().item()
    tol = 2e-3 if dtype == torch.float32 else 6e-2
    scale = max(want.abs().max().item(), 1.0)
    err["ok"] = all(v <= tol * scale * (10 if k.startswith("grad") else 1) for k, v in err.items())
    return err


def checks() -> list[dict]:
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for N in (1000, 257, 4096):
            for pad in (None, "right", "left"):
                g = torch.Generator(device="cuda").manual_seed(N)
                q, k, v = (
                    torch.randn(
                        2, 4, N, D, device="cuda", generator=g, dtype=dtype
                    ).requires_grad_()
                    for _ in "qkv"
                )
                m = _mask(pad, 2, N, "cuda")

                def ref_bb(q, k, v, m=m):
                    return bigbird_attention_reference(q, k, v, key_padding_mask=m, **BB)

                cases = {
                    f"bigbird-{b}": (
                        lambda q, k, v, b=b, m=m: bigbird_attention(
                            q, k, v, key_padding_mask=m, backend=b, **BB
                        ),
                        ref_bb,
                    )
                    for b in ("flex", "gather")
                }
                if N <= 1000:  # C = N and top-k = N make the approximations exact
                    cases["clustered C=N"] = (
                        lambda q, k, v, N=N, m=m: clustered_attention(
                            q, k, v, clusters=N, key_padding_mask=m, bits=63
                        ),
                        lambda q, k, v, m=m: reference_attention(q, k, v, key_padding_mask=m),
                    )
                    cases["improved-clustered topk=N"] = (
                        lambda q, k, v, N=N, m=m: improved_clustered_attention(
                            q, k, v, clusters=10, topk=N, key_padding_mask=m
                        ),
                        lambda q, k, v, m=m: reference_attention(q, k, v, key_padding_mask=m),
                    )
                    cases["clustered cuda vs cpu"] = (
                        lambda q, k, v, m=m: clustered_attention(
                            q, k, v, clusters=25, key_padding_mask=m
                        ),
                        lambda q, k, v, m=m: (
                            clustered_attention(
                                q.cpu().float(),
                                k.cpu().float(),
                                v.cpu().float(),
                                clusters=25,
                                key_padding_mask=None if m is None else m.cpu(),
                            )
                            .to("cuda")
                            .to(q.dtype)
                        ),
                    )
                for name, (fast, ref) in cases.items():
                    row = {"case": name, "dtype": str(dtype)[6:], "N": N, "pad": pad}
                    try:
                        real = m if name == "clustered C=N" else None
                        row.update(_compare(fast, ref, (q, k, v), dtype, real))
                    except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                        row.update(ok=False, error=f"{type(e).__name__}: {e}"[:300])
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def _time(fn, runs: int = 10) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return statistics.median(times)


def timing() -> list[dict]:
    impls = {
        "dense-sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
        "bigbird-flex": lambda q, k, v: bigbird_attention(q, k, v, backend="flex", **BB),
        "bigbird-gather": lambda q, k, v: bigbird_attention(q, k, v, backend="gather", **BB),
        "clustered": lambda q, k, v: clustered_attention(q, k, v, clusters=100),
        "improved-clustered": lambda q, k, v: improved_clustered_attention(
            q, k, v, clusters=100, topk=32
        ),
    }
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for N in SIZES:
            for mode in ("fwd", "fwd+bwd"):
                grad = mode != "fwd"
                q, k, v = (
                    torch.randn(1, H, N, D, device="cuda", dtype=dtype).requires_grad_(grad)
                    for _ in "qkv"
                )
                for name, make in impls.items():
                    row = {"impl": name, "dtype": str(dtype)[6:], "N": N, "mode": mode}
                    try:
                        if grad:

                            def call(make=make, q=q, k=k, v=v):
                                out = make(q, k, v)
                                out.backward(torch.ones_like(out))
                        else:

                            def call(make=make, q=q, k=k, v=v):
                                with torch.no_grad():
                                    make(q, k, v)

                        call()
                        torch.cuda.synchronize()
                        base = torch.cuda.memory_allocated()
                        torch.cuda.reset_peak_memory_stats()
                        call()
                        torch.cuda.synchronize()
                        row["peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                        row["median_ms"] = _time(call) * 1e3
                    except Exception as e:  # noqa: BLE001
                        row["error"] = f"{type(e).__name__}: {e}"[:300]
                    q.grad = k.grad = v.grad = None
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                del q, k, v
                torch.cuda.empty_cache()
    return rows


def training() -> dict:
    """One BigBird encoder's loss and gradients on CPU vs CUDA, then fit() on CUDA in bf16."""
    from takeaways import nn, train

    N, vocab = 1024, 32
    g = torch.Generator().manual_seed(0)
    x = torch.randint(3, vocab, (256, N), generator=g)
    y = x[:, 1] % 4

    def model(backend: str) -> torch.nn.Module:
        cfg = nn.EncoderConfig(
            vocab_size=vocab,
            max_len=N,
            dim=64,
            heads=4,
            depth=2,
            attention="bigbird",
            attention_options={"block_size": 64, "backend": backend},
            dropout=0.0,  # no dropout: CPU and CUDA draw different masks
        )
        train.seed_everything(0)  # the same weights whatever the backend
        return nn.SequenceClassifier(nn.TransformerEncoder(cfg), 4, pooling="cls", dropout=0.0)

    def step(m: torch.nn.Module, device: str) -> tuple[float, list[torch.Tensor]]:
        m = m.to(device)
        loss = F.cross_entropy(m(x[:16].to(device)), y[:16].to(device))
        loss.backward()
        return loss.item(), [p.grad.detach().cpu() for p in m.parameters()]

    record: dict = {}
    want_loss, want_grads = step(model("gather"), "cpu")
    for backend in ("gather", "flex"):
        loss, grads = step(model(backend), "cuda")
        rel = max(((a - b).norm() / b.norm()).item() for a, b in zip(grads, want_grads))
        record[f"cuda-{backend}"] = {
            "loss_rel_diff": abs(loss - want_loss) / want_loss,
            "max_grad_rel_diff": rel,
        }
    losses: list[float] = []

    class Steps:
        def on_batch(self, info, losses=losses) -> None:
            losses.append(info.loss)

    t0 = time.perf_counter()
    train.fit(
        model("auto"),
        (x, y),
        epochs=2,
        batch_size=16,
        lr=3e-3,
        bf16=True,
        device="cuda",
        progress=False,
        warmup=0.1,
        hooks=[Steps()],
    )
    record["fit_bf16_cuda"] = {"seconds": time.perf_counter() - t0, "step_losses": losses}
    record["ok"] = all(
        record[f"cuda-{b}"]["loss_rel_diff"] < 1e-4
        and record[f"cuda-{b}"]["max_grad_rel_diff"] < 1e-3
        for b in ("gather", "flex")
    ) and all(math.isfinite(v) for v in losses)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--parts", default="checks,training,timing", help="comma-separated")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("attention_cuda: error: no CUDA device; run this on a GPU machine", file=sys.stderr)
        return 2
    record = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
    }
    for knob in ("cache_size_limit", "recompile_limit"):  # flex recompiles per N and dtype
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 64)
    parts = {"checks": checks, "training": training, "timing": timing}
    for part in (parts[name] for name in args.parts.split(",")):
        try:
            record[part.__name__] = part()
        except Exception:  # noqa: BLE001 - the other parts still run and are written
            record[part.__name__] = {"error": traceback.format_exc()[-2000:]}
    path = Path(args.out) / "attention-cuda.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
