"""Pseudo-label self-training on an imbalanced labeled set plus an unlabeled pool (arXiv 2006.07529).

A base classifier trained on the long-tailed labels gives every unlabeled
sample its argmax as a pseudo-label (:func:`pseudo_label`); a fresh model is
trained on labeled + pseudo-labeled data (:func:`self_train`). The paper uses
no confidence threshold and no per-class cap; both are options here, off by
default. Shapes: inputs (N, ...), labels (N,), unlabeled pool (M, ...).

Example:
    >>> out = self_train(model, (x_lab, y_lab), x_unl, epochs=10)  # doctest: +SKIP
    >>> out.kept, out.pseudo_labels.shape                           # doctest: +SKIP
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from takeaways import distributed as dist
from takeaways import train as _train
from takeaways.imbalance.balanced import BALANCING, class_balanced, merge_fit_kwargs
from takeaways.imbalance.inputs import class_counts, inputs_tensor, labels_array

__all__ = ["pseudo_label", "self_train", "SelfTraining", "pseudo_label_quality"]


def _cap_per_class(labels: np.ndarray, confidence: np.ndarray, cap: int) -> np.ndarray:
    """Keep at most ``cap`` most confident samples per class (ties: lower index); others -> -1."""
    idx = np.arange(len(labels))
    order = np.lexsort((idx, -confidence, labels))  # by class, then confidence desc, then index
    sorted_labels = labels[order]
    first = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.arange(len(order)) - first  # position within its class
    out = labels.copy()
    out[order[(rank >= cap) & (sorted_labels >= 0)]] = -1
    return out


def _cap_per_class_ref(labels: np.ndarray, confidence: np.ndarray, cap: int) -> np.ndarray:
    """Reference for ``_cap_per_class``: one class at a time with a stable sort."""
    out = labels.copy()
    for k in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == k)
        ranked = members[np.argsort(-confidence[members], kind="stable")]
        out[ranked[cap:]] = -1
    return out


@torch.no_grad()
def pseudo_label(
    model: nn.Module,
    unlabeled: Any,
    *,
    threshold: float | None = None,
    balance: int | None = None,
    batch_size: int = 256,
    bf16: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's argmax class and softmax confidence for every unlabeled sample.

    As in the paper's ``gen_pseudolabels.py`` every sample gets its argmax by
    default; ``threshold`` and ``balance`` drop samples (label -1) instead.
    Under ``torchrun`` each rank predicts a shard and the probabilities are
    gathered, so every rank returns the same arrays.

    Args:
        model: a classifier mapping inputs (M, ...) to logits (M, C).
        unlabeled: (M, ...) inputs, tensor or array.
        threshold: keep only samples whose confidence is >= this (in [0, 1]).
        balance: keep at most this many samples per predicted class, the most
            confident ones (after the threshold).
        batch_size: inference batch.
        bf16: bf16 autocast for the forward pass.

    Returns:
        (labels (M,) int64 with -1 for dropped samples, confidence (M,) float32).

    Raises:
        ValueError: an empty pool, a threshold outside [0, 1], balance < 1.
    """
    x = inputs_tensor(unlabeled, "unlabeled")
    n = len(x)
    if n == 0:
        raise ValueError(
            "the unlabeled pool is empty; pass at least one unlabeled sample "
            "(with imbalance_ratio 1 and no spare data there is nothing to pseudo-label)"
        )
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a softmax confidence in [0, 1], got {threshold}")
    if balance is not None and balance < 1:
        raise ValueError(f"balance caps pseudo-labels per class and must be >= 1, got {balance}")
    dev = _train._model_device(model)
    was_training = model.training
    model.eval()
    mine = torch.arange(dist.rank(), n, dist.world_size())
    probs = []
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        with _train._autocast(dev, bf16):
            logits = _train._call(model, x[idx].to(dev))
        probs.append(logits.float().softmax(-1).cpu())  # (b, C)
    model.train(was_training)
    if probs:
        local = torch.cat(probs)
    else:  # more ranks than samples: this rank holds none
        c = _train._call(model.eval(), x[:1].to(dev)).shape[-1]
        model.train(was_training)
        local = torch.zeros(0, c)
    sums, counts = dist.reduce_per_sample(local, mine, n)
    p = sums / counts.clamp(min=1)[:, None]  # (M, C)
    confidence, labels = p.max(-1)
    labels_np, conf_np = labels.numpy().astype(np.int64), confidence.numpy().astype(np.float32)
    if threshold is not None:
        labels_np[conf_np < threshold] = -1
    if balance is not None:
        labels_np = _cap_per_class(labels_np, conf_np, balance)
    return labels_np, conf_np


@dataclass
class SelfTraining:
    """What :func:`self_train` returns; the retrained model is the one passed in."""

    base_model: nn.Module  # the classifier trained on the labeled set only
    pseudo_labels: np.ndarray  # (M,) int64 label per unlabeled sample, -1 where dropped
    confidence: np.ndarray  # (M,) float32 base-model softmax confidence
    kept: int  # pseudo-labeled samples added to the training set
    base_history: list[dict[str, float]]  # fit() history of the base model
    history: list[dict[str, float]]  # fit() history of the retrained model


def _split_xy(labeled: Any) -> tuple[Tensor, np.ndarray]:
    if hasattr(labeled, "x") and hasattr(labeled, "y"):
        x, y = labeled.x, labeled.y
    elif isinstance(labeled, (tuple, list)) and len(labeled) == 2:
        x, y = labeled
    else:
        raise TypeError(f"labeled must be an (x, y) pair or a Split, not {type(labeled).__name__}")
    if y is None:
        raise ValueError("the labeled set has no labels (y is None)")
    xt, yl = inputs_tensor(x, "labeled x"), labels_array(y, "labeled y")
    if len(xt) != len(yl):
        raise ValueError(f"labeled x has {len(xt)} rows but y has {len(yl)}; they must match")
    return xt, yl


@torch.no_grad()
def _num_outputs(model: nn.Module, x: Tensor) -> int:
    was_training = model.training
    out = _train._call(model.eval(), x[:1].to(_train._model_device(model)))
    model.train(was_training)
    return int(out.shape[-1])


def self_train(
    model: nn.Module,
    labeled: Any,
    unlabeled: Any,
    *,
    epochs: int,
    base_epochs: int | None = None,
    base_model: nn.Module | None = None,
    threshold: float | None = None,
    balance: int | None = None,
    balancing: str = "none",
    seed: int = 0,
    **fit_kwargs: Any,
) -> SelfTraining:
    """Pseudo-label self-training: base model on the labels, argmax labels on the pool, retrain.

    The paper's procedure (arXiv 2006.07529, Sec. 3; ``gen_pseudolabels.py``
    then ``train_semi.py``): a base classifier trained on the imbalanced
    labeled set labels the unlabeled pool with its argmax; a fresh model is
    trained on the concatenation. ``model`` should be freshly initialized: a
    deep copy of it (same initial weights) becomes the base model unless you
    pass a trained ``base_model``, and ``model`` itself is then trained in
    place on labeled + pseudo-labeled data.

    Args:
        model: fresh classifier, inputs (N, ...) -> logits (N, C).
        labeled: (x, y) pair or Split; x (N, ...), y (N,) with every class 0..C-1.
        unlabeled: (M, ...) inputs, M >= 1.
        epochs: epochs of the retraining on the N + kept samples.
        base_epochs: epochs of the base model (default ``epochs``).
        base_model: an already trained base classifier; skips its training.
        threshold, balance: confidence threshold and per-class cap for the
            pseudo-labels (see :func:`pseudo_label`); off in the paper.
        balancing: class-balanced rule for both fits, see :func:`class_balanced`
            (the paper pairs self-training with CE, re-weighting, DRW, LDAM).
        seed: seeds both fits and the re-sampling.
        **fit_kwargs: passed to both ``train.fit`` calls (lr, batch_size,
            eval_data, progress, ...).

    Returns:
        :class:`SelfTraining` (base model, pseudo-labels, confidences, counts, histories).

    Raises:
        ValueError: an empty pool, a class with no labeled sample, bad options.
    """
    x_l, y_l = _split_xy(labeled)
    x_u = inputs_tensor(unlabeled, "unlabeled")
    if len(x_u) == 0:
        raise ValueError(
            "the unlabeled pool is empty; self-training needs unlabeled samples to pseudo-label"
        )
    if tuple(x_u.shape[1:]) != tuple(x_l.shape[1:]):
        raise ValueError(
            f"unlabeled samples have shape {tuple(x_u.shape[1:])} but labeled ones "
            f"{tuple(x_l.shape[1:])}; they must match"
        )
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if balancing not in BALANCING:
        raise ValueError(f"unknown balancing {balancing!r}; choose one of {', '.join(BALANCING)}")
    num_classes = _num_outputs(model, x_l)
    class_counts(y_l, num_classes, "labeled set")  # every class needs a label

    base_history: list[dict[str, float]] = []
    if base_model is None:
        base_model = copy.deepcopy(model)  # same initial weights as the retrained model
        be = base_epochs or epochs
        out = _train.fit(
            base_model,
            (x_l, torch.as_tensor(y_l)),
            epochs=be,
            seed=seed,
            **merge_fit_kwargs(
                class_balanced(y_l, kind=balancing, epochs=be, num_classes=num_classes, seed=seed),
                {"desc": "self-train base", **fit_kwargs},
            ),
        )
        base_history = out.history

    labels, confidence = pseudo_label(
        base_model,
        x_u,
        threshold=threshold,
        balance=balance,
        bf16=fit_kwargs.get("bf16", False),
    )
    keep = labels >= 0
    x_all = torch.cat([x_l, x_u[torch.as_tensor(keep)]])
    y_all = np.concatenate([y_l, labels[keep]])
    out = _train.fit(
        model,
        (x_all, torch.as_tensor(y_all)),
        epochs=epochs,
        seed=seed,
        **merge_fit_kwargs(
            class_balanced(
                y_all, kind=balancing, epochs=epochs, num_classes=num_classes, seed=seed + 1
            ),
            {"desc": "self-train", **fit_kwargs},
        ),
    )
    return SelfTraining(
        base_model=base_model,
        pseudo_labels=labels,
        confidence=confidence,
        kept=int(keep.sum()),
        base_history=base_history,
        history=out.history,
    )


def pseudo_label_quality(pseudo_labels: Any, y_true: Any, tail_classes: Any) -> dict[str, float]:
    """How right the pseudo-labels of a pool are, given the pool's true labels.

    Args:
        pseudo_labels: (M,) pseudo-labels, -1 for a dropped sample (see :func:`pseudo_label`).
        y_true: (M,) the pool's true class ids.
        tail_classes: class ids that count as tail (e.g. ``imbalance_metrics``'s ``tail_classes``).

    Returns:
        ``pseudo_label_accuracy`` (over the kept samples; NaN if none is kept),
        ``pseudo_label_accuracy_tail`` (over the pool's tail-class samples, a dropped one
        counting as wrong; NaN if there are none) and ``pool_tail_share`` (the tail's share
        of the pool).
    """
    labels, y = labels_array(pseudo_labels, "pseudo_labels"), labels_array(y_true, "y_true")
    if len(labels) != len(y) or len(y) == 0:
        raise ValueError(
            f"pseudo_labels ({len(labels)}) and y_true ({len(y)}) must be equal, non-empty lengths"
        )
    kept, right = labels >= 0, labels == y
    tail = np.isin(y, np.asarray(tail_classes))
    return {
        "pseudo_label_accuracy": float(right[kept].mean()) if kept.any() else float("nan"),
        "pseudo_label_accuracy_tail": float(right[tail].mean()) if tail.any() else float("nan"),
        "pool_tail_share": float(tail.mean()),
    }
