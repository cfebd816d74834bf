"""CUDA check of the augmentation ops and lottery masks: same results as on CPU, training works.

Run on a GPU machine: ``python benchmarks/gpu_check.py [--device cuda]`` (``--device cpu``
runs the same checks on CPU, for a dry run). Prints one JSON line per check and exits 1 if
any fails.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from takeaways import nn, train
from takeaways.autoaugment import AUTOAUGMENT_CIFAR10, PolicyAugment, apply_policy
from takeaways.lottery import Ticket


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    failed = 0
    for check in (check_ops, check_ticket):
        try:
            row = check(args.device)
        except Exception as e:  # noqa: BLE001 - report and go on
            row = {"check": check.__name__, "ok": False, "error": f"{type(e).__name__}: {e}"}
        failed += not row["ok"]
        print(json.dumps(row), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
