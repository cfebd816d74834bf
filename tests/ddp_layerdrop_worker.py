"""Train a small encoder with progressive layer dropping via fit(); alone or under torchrun.

Usage: python tests/ddp_layerdrop_worker.py OUT.pt [ours|hf] (or torchrun --nproc_per_node 2 ...).
``ours`` (the default) trains our TransformerEncoder classifier, ``hf`` a tiny random
transformers ``RobertaPreLayerNormForSequenceClassification`` on (input_ids, attention_mask).
Rank 0 writes the final state dict and the blocks' dropped count to OUT.pt, rank r > 0 to
OUT.pt.rank<r>.
"""

from __future__ import annotations

import sys

import torch

from takeaways import distributed, nn, train
from takeaways.layerdrop import prepare_layer_drop


def ours() -> tuple[torch.nn.Module, torch.nn.ModuleList, tuple]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 50, (128, 24), generator=g)
    y = x[:, 1] % 3
    train.seed_everything(0)
    cfg = nn.EncoderConfig(vocab_size=50, dim=32, depth=4, heads=2, max_len=24, dropout=0.0)
    model = nn.SequenceClassifier(nn.TransformerEncoder(cfg), 3, pooling="cls", dropout=0.0)
    return model, model.encoder.layers, (x, y)


def hf() -> tuple[torch.nn.Module, torch.nn.ModuleList, tuple]:
    import transformers

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 24, (128, 8), generator=g)
    mask = (torch.arange(8) < torch.randint(4, 9, (128, 1), generator=g)).long()
    ids = ids.masked_fill(mask == 0, 1)  # HF's pad id
    train.seed_everything(0)
    cfg = transformers.RobertaPreLayerNormConfig(
        vocab_size=24, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    model = transformers.RobertaPreLayerNormForSequenceClassification(cfg)
    data = ({"input_ids": ids, "attention_mask": mask}, ids[:, 0] % 2)
    return model, model.roberta_prelayernorm.encoder.layer, data


def main(out: str, kind: str = "ours") -> None:
    torch.set_num_threads(1)
    model, layers, data = {"ours": ours, "hf": hf}[kind]()
    pld = prepare_layer_drop(layers, theta_bar=0.3, gamma=0.05, seed=1)
    train.fit(
        model,
        data,
        epochs=2,
        batch_size=32,
        lr=3e-3,
        hooks=[pld],
        seed=3,
        progress=False,
        find_unused_parameters=True,
    )
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    path = out if distributed.is_main() else f"{out}.rank{distributed.rank()}"
    torch.save(
        {"state": state, "dropped": sum(pld.dropped), "world": distributed.world_size()}, path
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
