"""Reading lottery-ticket results stored as one metric per sparsity.

The lottery recipes store accuracies under names like ``"IMP ticket accuracy at 48.8%"``
(one key per arm and sparsity, so the result JSON reads as a table). ``ticket_metrics``
writes that layout from a ticket's IMP history and its controls; ``by_sparsity`` reads one arm
back as ``{sparsity %: value}``; ``compared_sparsity`` picks where a ticket and a control that
ran at only some sparsities are compared.

Example:
    >>> by_sparsity({"IMP ticket accuracy at 20%": 0.9, "dense": 0.91}, "IMP ticket accuracy")
    {20.0: 0.9}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["by_sparsity", "compared_sparsity", "ticket_metrics"]


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


def ticket_metrics(
    history: Sequence[Mapping[str, float]],
    controls: Mapping[str, Mapping[int, float]],
    *,
    dense: str = "dense accuracy",
    tolerance: float = 0.01,
) -> dict[str, Any]:
    """Accuracies of an IMP run and its controls, one metric per arm and sparsity.

    Args:
        history: ``Ticket.history``: per round ``{"sparsity": s, "score": accuracy}``; round 0
            is the dense model.
        controls: per control arm (its metric prefix, e.g. ``"random control accuracy"``),
            ``{round: accuracy}`` for the rounds it ran.
        dense: the dense accuracy's metric name.
        tolerance: a round "matches" when its score is at least dense - tolerance.

    Returns:
        ``{dense: ..., "IMP ticket accuracy at <s>%": ..., "<control> at <s>%": ..., ...,
        "highest sparsity within 1 point of dense": s}`` (sparsity as a fraction, 0 when no
        round matches), the tag ``<s>`` rounded to whole percents.
    """
    sparsity, imp = [h["sparsity"] for h in history], [h["score"] for h in history]
    metrics: dict[str, Any] = {dense: imp[0]}
    for r in range(1, len(imp)):
        tag = f"{100 * sparsity[r]:.0f}%"
        metrics[f"IMP ticket accuracy at {tag}"] = imp[r]
        metrics.update({f"{arm} at {tag}": acc[r] for arm, acc in controls.items() if r in acc})
    matching = [r for r in range(1, len(imp)) if imp[r] >= imp[0] - tolerance]
    metrics["highest sparsity within 1 point of dense"] = sparsity[max(matching, default=0)]
    return metrics


def compared_sparsity(
    imp: Mapping[float, float],
    control: Mapping[float, float],
    dense: float,
    *,
    tolerance: float = 0.01,
) -> float:
    """The sparsity (%) at which to compare the IMP ticket with a control that ran at some rounds.

    The highest controlled sparsity at or below the highest matching one (a ticket within
    ``tolerance`` of ``dense``; at least the first round's), else the lowest controlled one.

    Args:
        imp: ``{sparsity %: ticket accuracy}`` per IMP round in order (``by_sparsity``).
        control: ``{sparsity %: control accuracy}`` at the controlled rounds.
        dense: the dense accuracy.
    """
    pcts = [0.0, *imp]
    best = max((i for i in range(1, len(pcts)) if imp[pcts[i]] >= dense - tolerance), default=0)
    controlled = [i for i in range(1, len(pcts)) if pcts[i] in control]
    below = [i for i in controlled if i <= max(best, 1)]
    return pcts[max(below) if below else min(controlled)]
