"""MLM pre-training step speed: progressive layer dropping and bf16 against the plain step.

One MLM training step (forward, backward, AdamW) of a Pre-LN ``TransformerEncoder`` with a
gathered MLM head (15% of positions decoded), on random token batches, in one process:

* ``baseline``: every block runs (fp32);
* ``pld``: ``prepare_layer_drop`` at its steady state theta = theta_bar = 0.5 (the paper's
  schedule reaches it within its first 2.5% of steps), block l of L kept with probability
  ``1 - (l / L) * 0.5``; the gates follow one fixed seed, so every repeat runs the same
  blocks;
* ``bf16`` and ``pld + bf16``: the same under ``torch.autocast(bfloat16)``;
* peer ``HF BertForMaskedLM``: transformers' BERT of the same shape (Post-LN, logits at
  every position, as its MLM head computes them), fp32 and bf16, when transformers is
  installed.

Each mode runs ``--steps`` steps after two warm-up steps; a repeat's time per sample is its
total time over the samples, and the table reports the median of ``--repeats`` repeats,
with ratios to the baseline. On a CPU without bf16 matrix units autocast to bf16 is far
slower (a 2048x256x1024 bf16 matmul takes 40x the fp32 time on the AVX2-only EPYC here),
so on CPU the bf16 modes time one step of a 2-sample batch after one warm-up step. The paper (Zhang & He, arXiv 2010.13369, abstract) reports
24% less time per sample with PLD; the expected ratio from the keep probabilities alone
is ``L / sum(p_l)`` (block compute only; embeddings, head and optimizer do not shrink).

Run: ``python benchmarks/pretrain_speed.py [--size small|base] [--device cpu|cuda]``.
``small`` (the layer-drop recipe's shape: 8 x 256, seq 128, batch 16, vocab 4096) is the
CPU default; ``base`` is BERT-base (12 x 768, 12 heads, seq 128, batch 64, vocab 30522).
Writes benchmarks/results/pretrain_speed-<size>-<device>.json.
Target (the layer-drop issue): PLD time per sample >= 1.3x faster than the baseline.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from takeaways import nn  # noqa: E402
from takeaways.layerdrop import keep_probs, prepare_layer_drop  # noqa: E402
from takeaways.nn.mlm import GatheredMLM, mask_tokens  # noqa: E402
from takeaways.results import Target, machine_info, now_iso, write_json_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {  # width, depth, heads, seq, batch, vocab
    "small": (256, 8, 4, 128, 16, 4096),
    "base": (768, 12, 12, 128, 64, 30522),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _batches(vocab: int, seq: int, batch: int, n: int, device: torch.device):
    """``n`` masked random batches: (inputs dict, targets (B, K))."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(5, vocab, (batch, seq), generator=g)
        inputs, positions, targets = mask_tokens(
            ids, vocab_size=vocab, mask_id=4, special_ids=(0, 1, 2, 3, 4), generator=g
        )
        out.append(({"input_ids": inputs.to(device), "positions": positions.to(device)},
                    targets.to(device), ids.to(device)))  # fmt: skip
    return out


def _time_per_sample(
    step, batches, device, steps: int, repeats: int, batch: int, warmup: int = 2
) -> list[float]:
    """Seconds per sample of ``steps`` calls of ``step(batch)``, once per repeat."""
    for b in batches[:warmup]:  # warm-up: allocator, autotuning, first-call checks
        step(b)
    _sync(device)
    per_repeat = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for i in range(steps):
            step(batches[i % len(batches)])
        _sync(device)
        per_repeat.append((time.perf_counter() - t0) / (steps * batch))
    return per_repeat


def _ours(size: tuple, device: torch.device, pld: bool, bf16: bool):
    width, depth, heads, seq, _, vocab = size
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(
        nn.EncoderConfig(vocab_size=vocab, dim=width, depth=depth, heads=heads, max_len=seq)
    )
    model = GatheredMLM(nn.MaskedLM(enc)).to(device).train()
    handle = None
    if pld:
        handle = prepare_layer_drop(enc.layers, theta_bar=0.5, gamma=0.001, seed=0)
        handle.step(1_000_000)  # steady state: theta = theta_bar
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(b) -> None:
        x, y, _ = b
        with _autocast(device, bf16):
            logits = model(**x)  # (B, K, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, handle


def _hf(size: tuple, device: torch.device, bf16: bool):
    from transformers import BertConfig, BertForMaskedLM

    width, depth, heads, seq, _, vocab = size
    cfg = BertConfig(
        vocab_size=vocab, hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads,
        intermediate_size=4 * width, max_position_embeddings=seq, attn_implementation="sdpa",
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForMaskedLM(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(b) -> None:
        x, y, ids = b
        labels = torch.full_like(ids, -100).scatter_(1, x["positions"], y)
        with _autocast(device, bf16):
            logits = model(input_ids=x["input_ids"]).logits  # (B, N, V): every position
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 modes")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    width, depth, heads, seq, batch, vocab = size
    full_batches = _batches(vocab, seq, batch, max(4, args.steps), device)
    precisions = [False] if args.no_bf16 else [False, True]
    rows: list[dict] = []
    for bf16 in precisions:
        steps, repeats, warmup, batches, n = args.steps, args.repeats, 2, full_batches, batch
        if bf16 and device.type == "cpu":  # see the module docstring: one 2-sample step
            steps, repeats, warmup, n = 1, 1, 1, 2
            batches = _batches(vocab, seq, n, 2, device)
        for pld in (False, True):
            step, handle = _ours(size, device, pld, bf16)
            times = _time_per_sample(step, batches, device, steps, repeats, n, warmup)
            name = ("pld" if pld else "baseline") + (" + bf16" if bf16 else "")
            row = {"mode": name, "impl": "takeaways", "s_per_sample": statistics.median(times),
                   "repeats": times, "batch": n, "steps": steps}  # fmt: skip
            if handle is not None:
                ran = sum(handle.executed)
                row["blocks_run_share"] = ran / (ran + sum(handle.dropped))
            rows.append(row)
            print(f"{name:18s} {1e3 * row['s_per_sample']:8.3f} ms/sample", flush=True)
        try:
            step = _hf(size, device, bf16)
        except (ImportError, TypeError, ValueError) as err:  # no transformers, or an old one
            rows.append({"mode": f"HF BertForMaskedLM{' + bf16' if bf16 else ''}",
                         "impl": "transformers", "skipped": str(err)})  # fmt: skip
            continue
        times = _time_per_sample(step, batches, device, steps, repeats, n, warmup)
        name = "HF BertForMaskedLM" + (" + bf16" if bf16 else "")
        rows.append({"mode": name, "impl": "transformers",
                     "s_per_sample": statistics.median(times), "repeats": times, "batch": n,
                     "steps": steps})  # fmt: skip
        print(f"{name:18s} {1e3 * rows[-1]['s_per_sample']:8.3f} ms/sample", flush=True)
    base = next(r["s_per_sample"] for r in rows if r["mode"] == "baseline")
    for r in rows:
        if "s_per_sample" in r:
            r["speedup_vs_baseline"] = base / r["s_per_sample"]
    by = {r["mode"]: r for r in rows}
    expected = depth / sum(keep_probs(0.5, depth))
    targets = [
        Target.check(
            "PLD time-per-sample speed-up over the baseline (fp32)",
            by["pld"]["speedup_vs_baseline"], ">=", 1.3,
        )
    ]  # fmt: skip
    if "baseline + bf16" in by:
        bf = by["baseline + bf16"]["speedup_vs_baseline"]
        print(f"bf16 speed-up of the baseline step: x{bf:.2f}")
    print(
        f"PLD speed-up x{by['pld']['speedup_vs_baseline']:.2f} (blocks alone would give "
        f"x{expected:.2f}; paper: 24% less time per sample = x1.32)"
    )
    out = RESULTS / f"pretrain_speed-{args.size}-{device.type}.json"
    write_json_atomic(
        out,
        {
            "benchmark": "pretrain_speed",
            "created": now_iso(),
            "machine": machine_info(),
            "shape": dict(zip(("width", "depth", "heads", "seq", "batch", "vocab"), size)),
            "steps": args.steps,
            "repeats": args.repeats,
            "expected_pld_speedup_blocks_only": expected,
            "paper_pld_speedup": 1 / 0.76,
            "paper_source": "Zhang & He, arXiv 2010.13369, abstract: 24% less time per sample",
            "rows": rows,
            "targets": [t.__dict__ for t in targets],
        },
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
