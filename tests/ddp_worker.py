"""Train an MLP on digits with fit(); run alone or under torchrun. Used by test_distributed.py.

Usage: python tests/ddp_worker.py OUT.pt   (or torchrun --nproc_per_node 2 tests/ddp_worker.py OUT.pt)
Writes (rank 0) the final state dict, the history and per-sample loss sums gathered over ranks.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from takeaways import data, distributed, nn, train


def main(out: str) -> None:
    torch.set_num_threads(1)
    digits = data.load("digits")
    sub = digits.train.subset(range(1280))  # divisible by the global batch: no padded samples
    train.seed_everything(0)
    model = nn.MLP(64, 10, hidden=(64,))
    n = len(sub)
    losses, indices = [], []

    def record(info: train.BatchInfo) -> None:
        if info.epoch == 1:
            losses.append(F.cross_entropy(info.logits, info.targets, reduction="none"))
            indices.append(info.indices)

    result = train.fit(
        model,
        sub,
        epochs=2,
        batch_size=64,
        lr=3e-3,
        hooks=[record],
        eval_data=digits.test,
        seed=5,
        progress=False,
    )
    sums, counts = distributed.reduce_per_sample(torch.cat(losses), torch.cat(indices), n)
    if distributed.is_main():
        torch.save(
            {
                "state": model.state_dict(),
                "history": result.history,
                "loss_sums": sums,
                "counts": counts,
                "world": distributed.world_size(),
            },
            out,
        )


if __name__ == "__main__":
    main(sys.argv[1])
