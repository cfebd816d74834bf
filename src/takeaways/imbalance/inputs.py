"""Input checks shared by the imbalance modules: labels, class counts, input tensors.

Each turns what a user passes (tensor, array, list) into the one type the techniques
compute with, or raises a one-line error that says what was wrong and how to fix it.

Example:
    >>> labels_array([2, 0, 1, 1]).tolist()
    [2, 0, 1, 1]
    >>> class_counts(labels_array([2, 0, 1, 1]), None).tolist()
    [1, 2, 1]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["labels_array", "class_counts", "inputs_tensor"]


def labels_array(y: Any, name: str = "y") -> np.ndarray:
    """(N,) int64 numpy labels from a tensor / array / list; one-line errors otherwise."""
    arr = y.detach().cpu().numpy() if isinstance(y, Tensor) else np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D class ids (N,), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise TypeError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def class_counts(y: np.ndarray, num_classes: int | None, name: str = "labeled set") -> np.ndarray:
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


def inputs_tensor(x: Any, name: str) -> Tensor:
    """``x`` as a tensor (float64 becomes float32); a non-numeric input is a one-line TypeError."""
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
