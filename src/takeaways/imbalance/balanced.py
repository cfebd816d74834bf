"""Class-balanced training rules for ``train.fit``: re-weighting, re-sampling, LDAM-DRW.

Yang & Xu (arXiv 2006.07529) pair self-training and self-supervised
pre-training with these rules (their Tables 2-5): re-weighting by the effective
number of samples (Cui et al., arXiv 1901.05555), class-balanced re-sampling,
and LDAM with deferred re-weighting (Cao et al., arXiv 1906.07413).
:func:`class_balanced` returns keyword arguments that plug straight into
``train.fit``.

Example:
    >>> import numpy as np
    >>> kw = class_balanced(np.array([0, 0, 0, 1]), kind="reweight")
    >>> [round(float(w), 2) for w in kw["sample_weights"]]
    [0.67, 0.67, 0.67, 2.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from takeaways.imbalance.inputs import class_counts, labels_array

__all__ = ["class_balanced", "class_weights", "ldam_loss"]


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
    labels = labels_array(y)
    counts = class_counts(labels, num_classes, "training set")
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


def merge_fit_kwargs(extra: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """``fit()`` kwargs from :func:`class_balanced` (``extra``) merged with the user's own.

    Hooks are concatenated (the user's first); ``sample_weights`` or ``loss_fn`` set by
    both is a TypeError, since the balancing rule would silently override the user's.
    """
    clash = sorted(k for k in ("sample_weights", "loss_fn") if k in extra and k in user)
    if clash:
        raise TypeError(
            f"{', '.join(clash)} is set by balancing=; drop it from the fit() options or use balancing='none'"
        )
    out = {**user, **extra}
    if "hooks" in extra and "hooks" in user:
        out["hooks"] = [*user["hooks"], *extra["hooks"]]
    return out
