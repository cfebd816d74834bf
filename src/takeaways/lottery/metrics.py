"""Reading lottery-ticket results stored as one metric per sparsity.

The lottery recipes store accuracies under names like ``"IMP ticket accuracy at 48.8%"``
(one key per arm and sparsity, so the result JSON reads as a table). ``by_sparsity`` reads
one arm back as ``{sparsity %: value}``.

Example:
    >>> by_sparsity({"IMP ticket accuracy at 20%": 0.9, "dense": 0.91}, "IMP ticket accuracy")
    {20.0: 0.9}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["by_sparsity"]


def by_sparsity(metrics: Mapping[str, Any], prefix: str) -> dict[float, Any]:
    """``{sparsity %: value}`` of the metrics named ``"<prefix> at <s>%"``, in stored order.

    Args:
        metrics: a result's metrics (other keys are ignored).
        prefix: the arm's name, e.g. ``"random control accuracy"``.
    """
    head = f"{prefix} at "
    return {
        float(k[len(head) : -1]): v
        for k, v in metrics.items()
        if k.startswith(head) and k.endswith("%")
    }
