"""Overall, balanced and tail-class accuracy for long-tailed problems (arXiv 2006.07529).

Yang & Xu report error on a balanced test set; on long-tailed training data the
number that moves is the accuracy of the rare (tail) classes, so the metrics
here split accuracy by class and by training frequency.

Example:
    >>> m = imbalance_metrics([0, 0, 1, 1], [0, 0, 1, 0], train_counts=[100, 1])
    >>> m["balanced_accuracy"], m["tail_classes"]
    (0.75, [1])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from takeaways import train as _train
from takeaways.imbalance.inputs import inputs_tensor, labels_array

__all__ = ["imbalance_metrics", "score_classifier"]


def imbalance_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    train_counts: Any,
    tail_fraction: float = 0.3,
) -> dict[str, Any]:
    """Overall, balanced (mean per-class) and tail-class accuracy of predictions.

    The tail is the ``ceil(tail_fraction * C)`` classes with the fewest
    training samples (ties broken towards the higher class id); the head is as
    many classes with the most. On a balanced test set, overall and balanced
    accuracy coincide up to rounding; on an imbalanced one they do not.

    Args:
        y_true: (N,) true class ids of the evaluation set.
        y_pred: (N,) predicted class ids.
        train_counts: (C,) training samples per class; defines C and the tail.
        tail_fraction: share of the classes that count as tail (and as head).

    Returns:
        ``{"accuracy", "balanced_accuracy", "tail_accuracy", "head_accuracy":
        float, "per_class": list of C recalls (NaN for a class absent from
        y_true), "tail_classes": list of class ids}``.

    Raises:
        ValueError: mismatched lengths, empty input, a bad ``tail_fraction``.
    """
    yt, yp = labels_array(y_true, "y_true"), labels_array(y_pred, "y_pred")
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} rows but y_pred has {len(yp)}; they must match")
    if len(yt) == 0:
        raise ValueError("y_true is empty; pass at least one evaluation sample")
    counts = np.asarray(train_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0:
        raise ValueError(f"train_counts must be (C,) per-class counts, got shape {counts.shape}")
    if not 0.0 < tail_fraction <= 1.0:
        raise ValueError(f"tail_fraction must be in (0, 1], got {tail_fraction}")
    c = len(counts)
    if yt.max() >= c or yt.min() < 0:
        raise ValueError(f"y_true holds ids outside 0..{c - 1}; train_counts defines {c} classes")
    per_class = np.full(c, np.nan)
    for k in range(c):
        mask = yt == k
        if mask.any():
            per_class[k] = float((yp[mask] == k).mean())
    m = max(1, math.ceil(tail_fraction * c))
    order = np.lexsort((-np.arange(c), counts))  # fewest first; ties: higher id first
    tail, head = np.sort(order[:m]), np.sort(order[::-1][:m])
    return {
        "accuracy": float((yt == yp).mean()),
        "balanced_accuracy": float(np.nanmean(per_class)),
        "tail_accuracy": float(np.nanmean(per_class[tail])),
        "head_accuracy": float(np.nanmean(per_class[head])),
        "per_class": per_class.tolist(),
        "tail_classes": tail.tolist(),
    }


@torch.no_grad()
def score_classifier(
    model: nn.Module, x: Any, y: Any, *, train_counts: Any, batch_size: int = 500
) -> dict[str, Any]:
    """:func:`imbalance_metrics` of ``model``'s argmax predictions on ``(x, y)``.

    Predicts in eval mode, ``batch_size`` rows at a time (the training mode is
    restored afterwards); ``train_counts`` defines the classes and the tail.

    Args:
        model: classifier, inputs (N, ...) -> logits (N, C).
        x: (N, ...) evaluation inputs; y: (N,) their class ids.
        train_counts: (C,) training samples per class.
        batch_size: rows per forward pass.

    Returns:
        the dict of :func:`imbalance_metrics`.
    """
    xt, device, was_training = inputs_tensor(x, "x"), _train._model_device(model), model.training
    model.eval()
    chunks = [
        _train._call(model, xt[i : i + batch_size].to(device)).argmax(-1).cpu()
        for i in range(0, len(xt), batch_size)
    ]
    model.train(was_training)
    return imbalance_metrics(y, torch.cat(chunks).numpy(), train_counts=train_counts)
