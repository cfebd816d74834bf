"""Train a small encoder with progressive layer dropping via fit(); alone or under torchrun.

Usage: python tests/ddp_layerdrop_worker.py OUT.pt (or torchrun --nproc_per_node 2 ...).
Writes (rank 0) the final state dict and the blocks' executed/dropped counts.
"""

from __future__ import annotations

import sys

import torch

from takeaways import distributed, nn, train
from takeaways.layerdrop import prepare_layer_drop


def main(out: str) -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 50, (128, 24), generator=g)
    y = x[:, 1] % 3
    train.seed_everything(0)
    cfg = nn.EncoderConfig(vocab_size=50, dim=32, depth=4, heads=2, max_len=24, dropout=0.0)
    model = nn.SequenceClassifier(nn.TransformerEncoder(cfg), 3, pooling="cls", dropout=0.0)
    pld = prepare_layer_drop(model.encoder.layers, theta_bar=0.3, gamma=0.05, seed=1)
    train.fit(
        model,
        (x, y),
        epochs=2,
        batch_size=32,
        lr=3e-3,
        hooks=[pld],
        seed=3,
        progress=False,
        find_unused_parameters=True,
    )
    if distributed.is_main():
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(
            {"state": state, "dropped": sum(pld.dropped), "world": distributed.world_size()}, out
        )


if __name__ == "__main__":
    main(sys.argv[1])
