"""Labels and imbalance: pseudo-label self-training and self-supervised pre-training.

Yang & Xu, "Rethinking the Value of Labels for Improving Class-Imbalanced
Learning" (NeurIPS 2020, arXiv 2006.07529) make two points about a long-tailed
labeled set:

1. *Semi-supervised*: the imbalanced labels are still worth using. Train a base
   classifier on them, give every unlabeled sample the base model's argmax as a
   pseudo-label, and retrain on labeled + pseudo-labeled data
   (:func:`pseudo_label`, :func:`self_train`). The paper uses no confidence
   threshold and no per-class cap; both are options here, off by default.
2. *Self-supervised*: the labels are not always needed first. Pre-train the
   network on a pretext task over the *same* imbalanced images with labels
   ignored (4-way rotation prediction), then fine-tune the whole network with a
   fresh head (:class:`RotationPretext`, :func:`self_supervised_pretrain`). For
   1-D signals, :class:`FlipPretext` predicts which of time reversal / sign flip
   was applied.

Both combine with the class-balanced training rules the paper pairs them with:
re-weighting, class-balanced re-sampling and LDAM with deferred re-weighting
(:func:`class_balanced`, whose output plugs straight into ``train.fit``), and
are scored by overall, balanced (mean per-class) and tail-class accuracy
(:func:`imbalance_metrics`).

Read top to bottom: metrics, class-balanced rules, pseudo-labels and
self-training, pretexts and self-supervised pre-training.

Example:
    >>> import torch
    >>> from takeaways import data, nn, train
    >>> from takeaways.imbalance import class_balanced, self_supervised_pretrain, self_train
    >>> mnist = data.load("mnist")
    >>> lab, unl = data.long_tail(mnist.train.y, imbalance_ratio=100)
    >>> model = nn.SmallCNN(width=16)
    >>> out = self_train(model, (mnist.train.x[lab], mnist.train.y[lab]),
    ...                  mnist.train.x[unl], epochs=10)          # doctest: +SKIP
    >>> cnn = nn.SmallCNN(width=16)                               # SSP instead:
    >>> encoder = torch.nn.Sequential(cnn.features, cnn.pool, torch.nn.Flatten())
    >>> self_supervised_pretrain(encoder, mnist.train.x[lab], feature_dim=128,
    ...                          epochs=10)                       # doctest: +SKIP
    >>> train.fit(cnn, (mnist.train.x[lab], mnist.train.y[lab]), epochs=10,
    ...           **class_balanced(mnist.train.y[lab], kind="resample"))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from takeaways import distributed as dist
from takeaways import train as _train

__all__ = [
    "pseudo_label",
    "self_train",
    "RotationPretext",
    "FlipPretext",
    "self_supervised_pretrain",
    "class_balanced",
    "imbalance_metrics",
]


# ----------------------------------------------------------------------------- helpers


def _labels_array(y: Any, name: str = "y") -> np.ndarray:
    """(N,) int64 numpy labels from a tensor / array / list; one-line errors otherwise."""
    arr = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class ids (N,), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise TypeError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _class_counts(y: np.ndarray, num_classes: int | None, name: str = "labeled set") -> np.ndarray:
    """Per-class counts (C,); every class must occur (a class-balanced rule divides by them)."""
    if len(y) == 0:
        raise ValueError(f"the {name} is empty; pass at least one labeled sample per class")
    if y.min() < 0:
        row = int(np.flatnonzero(y < 0)[0])
        raise ValueError(f"label {int(y[row])} at row {row} is negative; class ids are 0..C-1")
    c = int(y.max()) + 1 if num_classes is None else num_classes
    if y.max() >= c:
        row = int(np.flatnonzero(y >= c)[0])
        raise ValueError(
            f"label {int(y[row])} at row {row} is out of range for {c} classes; set num_classes"
        )
    counts = np.bincount(y, minlength=c)
    if (counts == 0).any():
        k = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(
            f"class {k} has no samples in the {name}; every class needs at least one "
            "(lower the imbalance ratio or label a few samples of that class)"
        )
    return counts


def _inputs_tensor(x: Any, name: str) -> Tensor:
    try:
        t = torch.as_tensor(x)
    except (TypeError, RuntimeError, ValueError):
        raise TypeError(
            f"{name} must be a numeric tensor or array (N, ...), not {type(x).__name__}; "
            "tokenize text first"
        ) from None
    if t.is_floating_point() and t.dtype == torch.float64:
        t = t.float()
    return t


# ----------------------------------------------------------------------------- metrics


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
    yt, yp = _labels_array(y_true, "y_true"), _labels_array(y_pred, "y_pred")
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


# ----------------------------------------------------------------------------- class-balanced rules


BALANCING = ("none", "reweight", "resample", "ldam-drw")


def class_weights(counts: np.ndarray, *, beta: float = 0.9999) -> np.ndarray:
    """Per-class weights from the effective number of samples (Cui et al., arXiv 1901.05555).

    w_c is proportional to (1 - beta) / (1 - beta ** n_c); beta -> 1 gives inverse
    frequency (0.9999 is the LDAM-DRW code's choice and, for a few hundred
    samples per class, is inverse frequency to within 2%). Normalized so that
    the mean weight over the *samples* is 1: sum_c n_c w_c = N, which keeps the
    loss scale, and so the learning rate, of plain CE.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    effective = (1.0 - np.power(beta, counts)) / (1.0 - beta)
    w = 1.0 / effective
    return w * counts.sum() / (counts * w).sum()


def ldam_margins(counts: np.ndarray, *, max_margin: float = 0.5) -> Tensor:
    """LDAM margins m_c proportional to n_c ** (-1/4), the largest = ``max_margin`` (arXiv 1906.07413)."""
    m = 1.0 / np.power(np.asarray(counts, dtype=np.float64), 0.25)
    return torch.as_tensor(m * (max_margin / m.max()), dtype=torch.float32)


def ldam_loss(logits: Tensor, targets: Tensor, *, margins: Tensor, scale: float = 1.0) -> Tensor:
    """Per-sample LDAM loss: cross-entropy after subtracting m_y from the true-class logit.

    Shapes: logits (B, C), targets (B,), margins (C,) -> (B,).

    ``scale`` multiplies the logits after the margin. The LDAM paper uses 30
    with a cosine classifier (normalized features and weights, logits in
    [-1, 1]); with an ordinary linear head, whose logits are already large,
    keep 1.
    """
    z = logits.float()  # (B, C)
    m = margins.to(z.device)[targets]  # (B,)
    z = z - F.one_hot(targets, z.shape[1]).to(z.dtype) * m[:, None]
    return F.cross_entropy(scale * z, targets, reduction="none")  # (B,)


def _ldam_loss_ref(logits: Tensor, targets: Tensor, *, margins: Tensor, scale: float) -> Tensor:
    """Reference for ``ldam_loss``: one sample at a time, log-sum-exp written out."""
    out = []
    for z, t in zip(logits.float(), targets.tolist()):
        z = z.clone()
        z[t] = z[t] - margins[t]
        z = scale * z
        out.append(torch.logsumexp(z, 0) - z[t])
    return torch.stack(out)


class _LDAM:
    """``loss_fn`` for fit(): LDAM with fixed per-class margins."""

    def __init__(self, margins: Tensor, scale: float) -> None:
        self.margins, self.scale = margins, scale

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        return ldam_loss(logits, targets, margins=self.margins, scale=self.scale)


@dataclass
class _DeferredReweight:
    """fit() hook: plain weights until ``start_epoch``, then per-class weights (DRW)."""

    weights: np.ndarray  # (N,) per-sample weight once re-weighting starts
    start_epoch: int  # first epoch (0-based) that uses the weights

    def on_epoch_start(self, epoch: int, model: nn.Module):
        if epoch < self.start_epoch:
            return None
        return np.arange(len(self.weights)), self.weights


@dataclass
class _ClassBalancedSampler:
    """fit() hook: each epoch draws N indices with replacement, every class equally likely."""

    y: np.ndarray  # (N,) labels of the training set
    seed: int  # with the epoch, seeds the draw (identical on every rank)
    _p: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = np.bincount(self.y)
        self._p = 1.0 / counts[self.y]
        self._p /= self._p.sum()

    def on_epoch_start(self, epoch: int, model: nn.Module):
        rng = np.random.default_rng([self.seed, epoch])
        return rng.choice(len(self.y), size=len(self.y), replace=True, p=self._p), None


def class_balanced(
    y: Any,
    *,
    kind: str = "reweight",
    epochs: int | None = None,
    num_classes: int | None = None,
    beta: float = 0.9999,
    defer: float = 0.8,
    max_margin: float = 0.5,
    scale: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Keyword arguments for ``train.fit`` that apply a class-balanced training rule.

    Use as ``fit(model, (x, y), epochs=E, **class_balanced(y, kind=..., epochs=E))``.

    Kinds:
        ``"none"``: plain instance-balanced CE (returns ``{}``).
        ``"reweight"``: per-sample loss weights w_{y_i} from :func:`class_weights`.
        ``"resample"``: every epoch draws N samples with replacement, each class
            equally likely (the paper's "CE (Balanced)" / Resample rule).
        ``"ldam-drw"``: LDAM loss (Cao et al., arXiv 1906.07413) with margins
            proportional to n_c^(-1/4), plain weights for the first ``defer`` of
            the epochs, then class weights (deferred re-weighting).

    Args:
        y: (N,) labels of the training set that ``fit`` will see (the same order).
        kind: one of the kinds above.
        epochs: the run's epochs; required for ``"ldam-drw"``.
        num_classes: C; default ``max(y) + 1``. Every class must occur.
        beta: effective-number beta for the weights.
        defer: fraction of the epochs before DRW switches the weights on.
        max_margin: LDAM's largest margin.
        scale: LDAM logit scale (see :func:`ldam_loss`).
        seed: seeds the re-sampling.

    Returns:
        a dict with some of ``sample_weights``, ``loss_fn``, ``hooks``. If you
        pass your own hooks too, concatenate the lists.

    Raises:
        ValueError: unknown kind, a class with no samples, missing ``epochs``.
    """
    if kind not in BALANCING:
        raise ValueError(
            f"unknown class-balancing kind {kind!r}; choose one of {', '.join(BALANCING)}"
        )
    labels = _labels_array(y)
    counts = _class_counts(labels, num_classes, "training set")
    if kind == "none":
        return {}
    if kind == "reweight":
        return {"sample_weights": torch.as_tensor(class_weights(counts, beta=beta)[labels])}
    if kind == "resample":
        return {"hooks": [_ClassBalancedSampler(labels, seed)]}
    if epochs is None or epochs < 1:
        raise ValueError("kind='ldam-drw' needs epochs= (the run's epochs) to place the DRW switch")
    if not 0.0 <= defer <= 1.0:
        raise ValueError(f"defer must be in [0, 1], got {defer}")
    weights = class_weights(counts, beta=beta)[labels].astype(np.float32)
    return {
        "loss_fn": _LDAM(ldam_margins(counts, max_margin=max_margin), scale),
        "hooks": [_DeferredReweight(weights, start_epoch=int(defer * epochs))],
    }


def _merge_fit_kwargs(extra: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """The class-balanced kwargs plus the user's, with hooks concatenated."""
    clash = sorted(k for k in ("sample_weights", "loss_fn") if k in extra and k in user)
    if clash:
        raise TypeError(
            f"{', '.join(clash)} is set by balancing=; drop it from the fit() options or use balancing='none'"
        )
    out = {**user, **extra}
    if "hooks" in extra and "hooks" in user:
        out["hooks"] = [*user["hooks"], *extra["hooks"]]
    return out


# ----------------------------------------------------------------------------- pseudo-labels


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
    x = _inputs_tensor(unlabeled, "unlabeled")
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
    xt, yl = _inputs_tensor(x, "labeled x"), _labels_array(y, "labeled y")
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
    x_u = _inputs_tensor(unlabeled, "unlabeled")
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
    _class_counts(y_l, num_classes, "labeled set")  # every class needs a label

    base_history: list[dict[str, float]] = []
    if base_model is None:
        base_model = copy.deepcopy(model)  # same initial weights as the retrained model
        be = base_epochs or epochs
        out = _train.fit(
            base_model,
            (x_l, torch.as_tensor(y_l)),
            epochs=be,
            seed=seed,
            **_merge_fit_kwargs(
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
        **_merge_fit_kwargs(
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


# ----------------------------------------------------------------------------- pretexts


def rotate_images(x: Tensor, k: Tensor) -> Tensor:
    """Rotate image i by k_i * 90 degrees counter-clockwise.

    Shapes: x (B, C, H, H), k (B,) in 0..3 -> (B, C, H, H). One ``rot90`` per
    rotation class rather than per image.
    """
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"rotation needs square images (B, C, H, H), got shape {tuple(x.shape)}; "
            "pad or crop to a square first"
        )
    out = torch.empty_like(x)
    for r in range(4):
        sel = (k == r).nonzero().squeeze(1)
        if len(sel):
            out[sel] = torch.rot90(x[sel], r, dims=(-2, -1))
    return out


def _rotate_images_ref(x: Tensor, k: Tensor) -> Tensor:
    """Reference for ``rotate_images``: one image at a time."""
    return torch.stack([torch.rot90(xi, int(ki), dims=(-2, -1)) for xi, ki in zip(x, k)])


def flip_signals(x: Tensor, k: Tensor) -> Tensor:
    """Apply transform k_i to signal i: bit 0 reverses time, bit 1 flips the sign.

    Shapes: x (B, L) or (B, C, L), k (B,) in 0..3 -> same shape as x. The four
    transforms are the symmetries of the signal's plot (identity, mirror in
    time, mirror in amplitude, and both = a 180-degree rotation of the plot),
    the 1-D counterpart of rotating an image.
    """
    if x.dim() not in (2, 3):
        raise ValueError(f"signals must be (B, L) or (B, C, L), got shape {tuple(x.shape)}")
    shape = (-1,) + (1,) * (x.dim() - 1)
    reverse = (k & 1).bool().view(shape)
    sign = (1 - 2 * ((k >> 1) & 1)).to(x.dtype).view(shape)
    return torch.where(reverse, x.flip(-1), x) * sign


def _flip_signals_ref(x: Tensor, k: Tensor) -> Tensor:
    """Reference for ``flip_signals``: one signal at a time."""
    out = []
    for xi, ki in zip(x, k.tolist()):
        if ki & 1:
            xi = xi.flip(-1)
        if ki & 2:
            xi = -xi
        out.append(xi)
    return torch.stack(out)


def _balanced_transforms(n: int, generator: torch.Generator | None = None) -> Tensor:
    """(n,) transform ids 0..3 in random order, each used n/4 times (up to one)."""
    return torch.randperm(n, generator=generator) % 4


def _check_features(encoder: nn.Module, x: Tensor, feature_dim: int) -> None:
    with torch.no_grad():
        was_training = encoder.training
        f = encoder.eval()(x[:2].to(_train._model_device(encoder)))
        encoder.train(was_training)
    if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[1] != feature_dim:
        got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise ValueError(
            f"the encoder must return features (B, {feature_dim}), got {got}; pass the part of "
            "your model before its classifier (e.g. nn.Sequential(cnn.features, cnn.pool, "
            "nn.Flatten())) and its output width as feature_dim"
        )


class RotationPretext(nn.Module):
    """4-way rotation prediction around any image encoder; ``forward(x)`` returns the loss.

    Gidaris et al. (arXiv 1803.07728), as used for SSP by Yang & Xu (arXiv
    2006.07529, ``pretrain_rot.py``): each image in the batch is rotated by 0, 90,
    180 or 270 degrees, the counts balanced within the batch, and a linear head
    on the encoder's features predicts which. Wraps the encoder, does not copy
    it: training this module trains your encoder in place.

    Args:
        encoder: maps images (B, C, H, H) to features (B, F).
        feature_dim: F.

    Example:
        >>> cnn = SmallCNN(width=16)
        >>> pretext = RotationPretext(nn.Sequential(cnn.features, cnn.pool, nn.Flatten()),
        ...                           feature_dim=128)
        >>> loss = pretext(torch.rand(8, 1, 28, 28)); loss.backward()  # doctest: +SKIP
    """

    num_transforms = 4

    def __init__(self, encoder: nn.Module, *, feature_dim: int) -> None:
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be positive, got {feature_dim}")
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, self.num_transforms)

    @staticmethod
    def transform(x: Tensor, k: Tensor) -> Tensor:
        return rotate_images(x, k)

    def forward(self, x: Tensor) -> Tensor:
        """Images (B, C, H, H) -> scalar rotation-prediction cross-entropy."""
        k = _balanced_transforms(len(x)).to(x.device)  # (B,)
        logits = self.head(self.encoder(self.transform(x, k)))  # (B, 4)
        return F.cross_entropy(logits.float(), k)


class FlipPretext(nn.Module):
    """4-way time-reversal / sign-flip prediction for 1-D signals; ``forward(x)`` returns the loss.

    Why this pretext for signals such as MNIST-1D (Greydanus, arXiv 2011.14439):
    its generator already applies random shifts, scales, shear and noise to
    each digit template, so predicting any of those is either hopeless or
    answerable from low-level statistics. Time reversal and sign flip are not
    in the data: telling a reversed or negated digit from an upright one
    requires knowing what the digits look like, which is exactly what rotation
    prediction asks of an image encoder. The four classes (identity, reverse,
    negate, both) are the symmetries of the signal's plot, so the task is the
    1-D analogue of 4-way rotation.

    Args:
        encoder: maps signals (B, L) or (B, C, L) to features (B, F).
        feature_dim: F.
    """

    num_transforms = 4

    def __init__(self, encoder: nn.Module, *, feature_dim: int) -> None:
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be positive, got {feature_dim}")
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, self.num_transforms)

    @staticmethod
    def transform(x: Tensor, k: Tensor) -> Tensor:
        return flip_signals(x, k)

    def forward(self, x: Tensor) -> Tensor:
        """Signals (B, L) or (B, C, L) -> scalar transform-prediction cross-entropy."""
        k = _balanced_transforms(len(x)).to(x.device)  # (B,)
        logits = self.head(self.encoder(self.transform(x, k)))  # (B, 4)
        return F.cross_entropy(logits.float(), k)


PRETEXTS: dict[str, type[RotationPretext] | type[FlipPretext]] = {
    "rotation": RotationPretext,
    "flip": FlipPretext,
}


def _all_transforms(x: Tensor, transform: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """(N, ...) -> (4N, ...): row 4i + k is sample i under transform k."""
    n = len(x)
    rep = x.repeat_interleave(4, dim=0)  # (4N, ...)
    return transform(rep, torch.arange(4).repeat(n))


@dataclass
class _OneTransformPerSample:
    """fit() hook: each epoch trains on one transform per sample, balanced (pretrain_rot.py)."""

    n: int  # original samples; the pretext dataset has 4n rows
    seed: int

    def on_epoch_start(self, epoch: int, model: nn.Module):
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        k = _balanced_transforms(self.n, g)
        return (torch.arange(self.n) * 4 + k).numpy(), None


def self_supervised_pretrain(
    encoder: nn.Module,
    x: Any,
    *,
    feature_dim: int,
    epochs: int,
    pretext: str = "rotation",
    all_transforms: bool = False,
    eval_x: Any = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> tuple[nn.Module, _train.FitResult]:
    """Self-supervised pre-training (SSP) of ``encoder`` on unlabeled inputs, in place.

    Yang & Xu (arXiv 2006.07529, Sec. 4): pre-train on the *same* imbalanced
    training images with labels ignored, then fine-tune the *whole* network
    (encoder included) with a fresh classifier, with any loss or rule; the
    paper's code does not freeze the backbone. This function does the first
    half through ``train.fit`` (so bf16, checkpoints and ``torchrun`` work);
    fine-tune afterwards with ``fit`` on your full model.

    Each epoch sees every sample once under one transform, the four transforms
    balanced over the epoch, as in ``pretrain_rot.py``; ``all_transforms=True``
    shows all four every epoch instead (RotNet; 4x the cost per epoch).

    Args:
        encoder: maps inputs to features (B, feature_dim); trained in place.
        x: (N, C, H, H) images for ``"rotation"``, (N, L) or (N, C, L) signals for ``"flip"``.
        feature_dim: width of the encoder's features.
        epochs: passes over ``x``.
        pretext: ``"rotation"`` or ``"flip"`` (see :class:`RotationPretext`, :class:`FlipPretext`).
        all_transforms: train on all four transforms of every sample each epoch.
        eval_x: held-out inputs; their pretext accuracy (all four transforms)
            lands in the history as ``eval_accuracy``.
        seed: seeds fit and the per-epoch transform draw.
        **fit_kwargs: passed to ``train.fit`` (lr, batch_size, bf16, progress, ...).

    Returns:
        (the pretext module holding the encoder and its 4-way head, fit's FitResult).

    Raises:
        ValueError: unknown pretext, empty ``x``, an encoder that does not return (B, feature_dim).
    """
    if pretext not in PRETEXTS:
        raise ValueError(f"unknown pretext {pretext!r}; choose one of {', '.join(PRETEXTS)}")
    xt = _inputs_tensor(x, "x")
    if len(xt) == 0:
        raise ValueError("x is empty; self-supervised pre-training needs at least one sample")
    module = PRETEXTS[pretext](encoder, feature_dim=feature_dim)
    probe = module.transform(xt[:2], torch.zeros(min(2, len(xt)), dtype=torch.long))
    _check_features(encoder, probe, feature_dim)
    module.head.to(_train._model_device(encoder))
    inputs = _all_transforms(xt, module.transform)  # (4N, ...)
    targets = torch.arange(4).repeat(len(xt))  # (4N,)
    hooks = list(fit_kwargs.pop("hooks", []))
    if not all_transforms:
        hooks.append(_OneTransformPerSample(len(xt), seed))
    eval_data = None
    if eval_x is not None:
        ex = _inputs_tensor(eval_x, "eval_x")
        eval_data = (_all_transforms(ex, module.transform), torch.arange(4).repeat(len(ex)))
    classifier = nn.Sequential(module.encoder, module.head)  # shares the weights
    out = _train.fit(
        classifier,
        (inputs, targets),
        epochs=epochs,
        seed=seed,
        hooks=hooks,
        eval_data=eval_data,
        **{"desc": f"SSP {pretext}", **fit_kwargs},
    )
    return module, out
