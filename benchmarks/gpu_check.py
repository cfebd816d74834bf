"""CUDA check of augmentation ops, lottery masks, MPNet's two streams and layer dropping.

Each check compares the device against CPU on the same inputs, or trains a few steps on the
device and checks the technique's invariant holds there.

Run on a GPU machine: ``python benchmarks/gpu_check.py [--device cuda]`` (``--device cpu``
runs the same checks on CPU, for a dry run). Prints one JSON line per check and exits 1 if
any fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys

import torch

from takeaways import nn, train
from takeaways.autoaugment import AUTOAUGMENT_CIFAR10, PolicyAugment, apply_policy
from takeaways.layerdrop import prepare_layer_drop
from takeaways.lottery import Ticket
from takeaways.mpnet import MPNetPretrainer, permute_and_mask


def check_ops(dev: str) -> dict:
    """Every sub-policy of the CIFAR-10 policy on CUDA equals the same draw on CPU."""
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a = apply_policy(x, AUTOAUGMENT_CIFAR10, torch.Generator().manual_seed(1))
    b = apply_policy(x.to(dev), AUTOAUGMENT_CIFAR10, torch.Generator().manual_seed(1)).cpu()
    err = (a - b).abs().max().item()
    return {"check": "apply_policy cpu vs " + dev, "max_abs_err": err, "ok": err < 1e-4}


def check_ticket(dev: str) -> dict:
    """A ticket applied to a model on the device keeps pruned weights zero through training."""
    torch.manual_seed(0)
    model = nn.SmallCNN(in_channels=1, num_classes=10, image_size=28)
    ticket = Ticket.magnitude(model, 0.7)
    model = model.to(dev)
    ticket.apply(model)
    x, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    aug = torch.nn.Sequential(PolicyAugment("rotate:6, invert; shear_x:3, cutout:5"), model)
    out = train.fit(aug, (x, y), epochs=2, batch_size=64, lr=1e-2, device=dev, progress=False)
    params = dict(model.named_parameters())
    alive = [(params[n] != 0).float().mean().item() for n in ticket.masks]
    kept = [ticket.masks[n].float().mean().item() for n in ticket.masks]
    ok = all(a <= k + 1e-6 for a, k in zip(alive, kept)) and all(
        r["loss"] == r["loss"] for r in out.history
    )
    return {"check": "ticket stays applied while training on " + dev, "alive": alive, "ok": ok}


def check_mpnet(dev: str) -> dict:
    """Two-stream logits and gradients of each objective on the device equal those on CPU."""
    errs = {}
    for objective in ("mpnet", "plm", "mlm"):
        torch.manual_seed(0)
        enc = nn.TransformerEncoder(
            nn.EncoderConfig(vocab_size=300, dim=64, depth=2, heads=4, rel_buckets=32, dropout=0.0)
        )
        cpu = MPNetPretrainer(enc, objective=objective)
        ids = torch.randint(5, 300, (6, 37), generator=torch.Generator().manual_seed(1))
        ids[0, 30:] = 0  # padding in one row
        x, y = permute_and_mask(
            ids, objective=objective, vocab_size=300, mask_id=4, special_ids=(0, 1, 2, 3, 4),
            pad_id=0, generator=torch.Generator().manual_seed(2),
        )  # fmt: skip
        gpu = copy.deepcopy(cpu).to(dev)
        outs = []
        for model, inputs in ((cpu, x), (gpu, {k: v.to(dev) for k, v in x.items()})):
            logits = model(**inputs)
            loss = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), y.to(logits.device).flatten(), ignore_index=-100
            )
            loss.backward()
            grad = model.encoder.layers[0].attn.qkv.weight.grad
            outs.append((logits.detach().cpu(), grad.cpu()))
        errs[objective] = max(
            (outs[0][0] - outs[1][0]).abs().max().item(),
            (outs[0][1] - outs[1][1]).abs().max().item(),
        )
    return {"check": f"two-stream logits and grads cpu vs {dev}", "max_abs_err": errs,
            "ok": all(e < 1e-4 for e in errs.values())}  # fmt: skip


def check_layer_drop(dev: str) -> dict:
    """PLD gates on the device: fit() trains, blocks are skipped, eval runs every block."""
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.EncoderConfig(vocab_size=200, dim=64, depth=6, heads=4))
    clf = nn.SequenceClassifier(enc, 2).to(dev)
    pld = prepare_layer_drop(enc.layers, theta_bar=0.5, gamma=0.1, seed=0)
    x, y = torch.randint(5, 200, (256, 24)), torch.randint(0, 2, (256,))
    out = train.fit(clf, (x, y), epochs=3, batch_size=32, lr=1e-3, device=dev, hooks=[pld],
                    progress=False)  # fmt: skip
    clf.eval()
    with torch.no_grad():
        a = clf(x[:8].to(dev))
        pld.remove()
        b = clf(x[:8].to(dev))
    err = (a - b).abs().max().item()
    dropped = sum(pld.dropped)
    ok = dropped > 0 and err < 1e-5 and all(r["loss"] == r["loss"] for r in out.history)
    return {"check": f"layer drop trains on {dev}", "dropped_calls": dropped,
            "eval_equals_plain_encoder": err, "ok": ok}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    failed = 0
    for check in (check_ops, check_ticket, check_mpnet, check_layer_drop):
        try:
            row = check(args.device)
        except Exception as e:  # noqa: BLE001 - report and go on
            row = {"check": check.__name__, "ok": False, "error": f"{type(e).__name__}: {e}"}
        failed += not row["ok"]
        print(json.dumps(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
