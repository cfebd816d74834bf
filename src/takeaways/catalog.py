"""The ten takeaways: which paper each comes from and which recipes measure it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Takeaway", "TAKEAWAYS"]


@dataclass(frozen=True)
class Takeaway:
    number: int
    title: str  # the tool, in a few words
    paper: str  # title, first authors
    arxiv: str
    recipes: tuple[str, ...]  # recipe names that measure it (registered or planned)
    tool: str  # what a user calls


TAKEAWAYS: tuple[Takeaway, ...] = (
    Takeaway(
        1,
        "Progressive layer dropping",
        "Accelerating Training of Transformer-Based Language Models with Progressive Layer Dropping (Zhang & He)",
        "2010.13369",
        ("layer-drop",),
        "prepare_layer_drop(layers, ...)",
    ),
    Takeaway(
        2,
        "CRUST coresets for noisy labels",
        "Coresets for Robust Training of Neural Networks against Noisy Labels (Mirzasoleiman, Cao & Leskovec)",
        "2011.07451",
        ("noisy-labels",),
        "select_coreset(grad_proxies, labels, ...)",
    ),
    Takeaway(
        3,
        "Lottery tickets in pre-trained BERT",
        "The Lottery Ticket Hypothesis for Pre-trained BERT Networks (Chen et al.)",
        "2007.12223",
        ("lottery-bert", "lottery-cnn"),
        "find_ticket(model, ...)",
    ),
    Takeaway(
        4,
        "MPNet pre-training",
        "MPNet: Masked and Permuted Pre-training for Language Understanding (Song et al.)",
        "2004.09297",
        ("mpnet",),
        "MPNetCollator + two-stream objective",
    ),
    Takeaway(
        5,
        "AUM mislabeled-data detection",
        "Identifying Mislabeled Data using the Area Under the Margin Ranking (Pleiss et al.)",
        "2001.10528",
        ("noisy-labels", "noisy-text"),
        "find_mislabeled(...)",
    ),
    Takeaway(
        6,
        "Self-training and self-supervision for imbalance",
        "Rethinking the Value of Labels for Improving Class-Imbalanced Learning (Yang & Xu)",
        "2006.07529",
        ("imbalance",),
        "self_train(...), self_supervised_pretrain(...)",
    ),
    Takeaway(
        7,
        "BigBird block-sparse attention",
        "Big Bird: Transformers for Longer Sequences (Zaheer et al.)",
        "2007.14062",
        ("long-range", "long-doc"),
        "bigbird_attention(q, k, v, ...)",
    ),
    Takeaway(
        8,
        "AWS AutoAugment policy search",
        "Improving Auto-Augment via Augmentation-Wise Weight Sharing (Tian et al.)",
        "2009.14737",
        ("autoaugment",),
        "aws_search(...)",
    ),
    Takeaway(
        9,
        "Clustered attention",
        "Fast Transformers with Clustered Attention (Vyas, Katharopoulos & Fleuret)",
        "2007.04825",
        ("clustered-approx",),
        "clustered_attention(q, k, v, ...)",
    ),
    Takeaway(
        10,
        "Depth vs width of self-attention",
        "Limits to Depth Efficiencies of Self-Attention (Levine et al.)",
        "2006.12467",
        ("depth",),
        "suggest_architecture(...)",
    ),
)
