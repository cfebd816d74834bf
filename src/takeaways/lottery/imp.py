"""Iterative magnitude pruning (IMP) with rewinding: train, prune the smallest weights, rewind, repeat.

Paper: Chen et al., "The Lottery Ticket Hypothesis for Pre-trained BERT Networks",
NeurIPS 2020, arXiv:2007.12223. Their schedule prunes 10% of the *original* weights
per round (linear: 10%, 20%, ... 90%), globally over all prunable matrices, and
rewinds the survivors to the pre-trained weights after every round.

Differences from the paper's code (VITA-Group/BERT-Tickets):
  * the starting weights are deep-copied before any training; the official script
    keeps a state dict that aliases the live parameters and rewinds correctly only
    because moving the model to the GPU happens to reallocate them;
  * every parameter and buffer is rewound, the task head included (the official
    code keeps the trained classifier);
  * the loop stops at the last requested sparsity; the official one prunes once
    more, to 100%, in its final round.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import torch
from torch import nn

from takeaways.lottery.ticket import (
    SCOPES,
    Prunable,
    Ticket,
    attach_masks,
    prunable_weights,
    prune_smallest,
)

__all__ = ["find_ticket", "sparsity_schedule", "train_controls"]

SCHEDULES = ("linear", "geometric")
CONTROLS = ("random", "one-shot")  # the paper's two controls of a ticket


def sparsity_schedule(schedule: str, rate: float, rounds: int) -> list[float]:
    """Sparsity after each of the ``rounds`` pruning rounds.

    ``linear`` prunes ``rate`` of the original weights per round (the paper: 0.1 ->
    10%, 20%, ...); ``geometric`` prunes ``rate`` of the remaining ones (1 - (1 - rate)^k).

    Raises:
        ValueError: rate outside (0, 1), rounds < 1, an unknown schedule, or a linear
            schedule that would reach 100%.
    """
    if not (isinstance(rate, (int, float)) and 0.0 < rate < 1.0):
        raise ValueError(f"rate must be in (0, 1), got {rate}; the paper prunes 0.1 per round")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    if rounds > 255:
        raise ValueError(
            f"rounds must be <= 255 (a ticket stores the round in a uint8), got {rounds}"
        )
    if schedule == "linear":
        out = [rate * k for k in range(1, rounds + 1)]
        if out[-1] >= 1.0 - 1e-9:
            raise ValueError(
                f"a linear schedule at rate {rate} prunes everything by round {rounds}; "
                f"use rounds < {round(1 / rate)} or a smaller rate"
            )
        return out
    if schedule == "geometric":
        return [1.0 - (1.0 - rate) ** k for k in range(1, rounds + 1)]
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")


class _StepSnapshot:
    """Deep-copies the model's state after its ``step``-th optimizer step (any optimizer)."""

    def __init__(self, model: nn.Module, step: int) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.model, self.step, self.count, self.state = model, step, 0, None
        ids = {id(p) for p in model.parameters()}
        self._owns = lambda opt: any(id(p) in ids for g in opt.param_groups for p in g["params"])
        self._handle = register_optimizer_step_post_hook(self._hook)

    def _hook(self, opt: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        if self.state is None and self._owns(opt):
            self.count += 1
            if self.count == self.step:
                self.state = copy.deepcopy(self.model.state_dict())

    def close(self) -> None:
        self._handle.remove()


def find_ticket(
    model: nn.Module,
    train: Callable[[nn.Module], Any],
    evaluate: Callable[[nn.Module], float] | None = None,
    *,
    prunable: Prunable = None,
    schedule: Literal["linear", "geometric"] = "linear",
    rate: float = 0.1,
    rounds: int = 9,
    rewind: Literal["init"] | int = "init",
    scope: Literal["global", "layer"] = "global",
    train_last: bool = True,
) -> Ticket:
    """Find a lottery ticket by iterative magnitude pruning with rewinding.

    Round 0 trains the dense model. Each later round prunes the smallest-magnitude
    surviving weights of the prunable tensors (of the weights just trained) up to the
    schedule's next sparsity, rewinds every weight to the starting point, and trains
    the masked model again (pruned weights stay zero). ``train`` is called
    ``rounds + 1`` times, so the last call trains the final ticket (``train_last``); ``evaluate`` after
    each call scores the ticket at every sparsity on the way.

    Args:
        model: the network, e.g. a pre-trained BERT with a task head; trained in place.
        train: ``train(model)`` trains it in place with the user's own loop, building its
            own optimizer each call (each round starts fresh, as in the paper).
        evaluate: optional ``evaluate(model) -> float`` after each training run; the
            scores land in ``ticket.history``.
        prunable: which weights to prune (see ``prunable_weights``; default BERT-like layers).
        schedule: ``"linear"`` (``rate`` of the original weights per round, the paper's)
            or ``"geometric"`` (``rate`` of the remaining ones).
        rate: in (0, 1); the paper uses 0.1.
        rounds: pruning rounds (>= 1); linear at 0.1 with 9 rounds reaches 90%.
        rewind: ``"init"`` rewinds to a deep copy of the weights at the call (the
            pre-trained ones for BERT); an int k rewinds to the weights after k optimizer
            steps of round 0.
        scope: ``"global"`` ranks all prunable weights together (the paper); ``"layer"``
            prunes every tensor to the same sparsity.
        train_last: train (and evaluate) the final ticket too; ``False`` stops after the
            last prune and rewind when only the masks are wanted (one run fewer).

    Returns:
        The ``Ticket`` after the last round; ``ticket.at_round(k)`` gives round k's, and
        ``ticket.history`` one row per training run: ``round``, ``sparsity``, ``score``.
        The model is left holding the last round's trained ticket (or, with
        ``train_last=False``, the rewound one), pruned weights zero and no hooks attached:
        ``ticket.apply(model)`` before training it further.

    Raises:
        ValueError: rate outside (0, 1), rounds < 1, an unknown schedule, scope or
            rewind, a ``prunable`` filter matching nothing, or a rewind step that round 0
            never reached.

    Example:
        >>> ticket = find_ticket(model, lambda m: fit(m, data, epochs=3),
        ...                      lambda m: evaluate(m, test)["accuracy"], rounds=9)  # doctest: +SKIP
        >>> [round(h["sparsity"], 1) for h in ticket.history]                        # doctest: +SKIP
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    """
    targets = sparsity_schedule(schedule, rate, rounds)
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    if rewind != "init" and not (
        isinstance(rewind, int) and not isinstance(rewind, bool) and rewind >= 0
    ):
        raise ValueError(f"rewind must be 'init' or a step count >= 0, got {rewind!r}")
    names = prunable_weights(model, prunable)
    params = dict(model.named_parameters())
    levels = {n: torch.zeros(params[n].shape, dtype=torch.uint8) for n in names}

    start = copy.deepcopy(model.state_dict())  # a copy, never an alias of the live weights
    snap = _StepSnapshot(model, rewind) if isinstance(rewind, int) and rewind > 0 else None
    history: list[dict[str, Any]] = []
    handle = None
    try:
        for r in range(rounds + 1):
            if r == rounds and not train_last:
                break
            train(model)
            if snap is not None:
                snap.close()
                if snap.state is None:
                    raise ValueError(
                        f"rewind={rewind} but round 0 took only {snap.count} optimizer steps; "
                        "rewind to an earlier step or train longer"
                    )
                start, snap = snap.state, None
            score = float(evaluate(model)) if evaluate is not None else None
            history.append({"round": r, "sparsity": Ticket(levels).sparsity, "score": score})
            if r == rounds:
                break
            prune_smallest({n: params[n] for n in names}, levels, targets[r], scope, r + 1)
            if handle is not None:
                handle.remove()
            model.load_state_dict(start)  # rewind every weight and buffer
            handle = attach_masks(model, Ticket(levels).masks)
    finally:
        if snap is not None:
            snap.close()
        if handle is not None:
            handle.remove()
    return Ticket(levels, history)


def train_controls(
    model: nn.Module,
    ticket: Ticket,
    rounds: Iterable[int],
    train: Callable[[nn.Module], Any],
    evaluate: Callable[[nn.Module], float],
    *,
    start: Mapping[str, Any],
    trained: Mapping[str, Any] | None,
    seed: Callable[[int], int],
    scope: Literal["global", "layer"] = "global",
    arms: Iterable[str] = CONTROLS,
) -> dict[str, dict[int, float]]:
    """The paper's two controls for the tickets of ``rounds``, each trained like a ticket.

    For round k, in this order: ``random``, the starting weights under a mask with round
    k's per-layer sparsity at random places (``ticket.at_round(k).random_like(seed(k))``);
    ``one-shot``, the trained dense weights pruned once by magnitude to round k's sparsity
    and trained on without rewinding. Masks come off after each run.

    Args:
        model: the network ``find_ticket`` ran on; loaded with ``start`` / ``trained`` here.
        ticket: what ``find_ticket`` returned.
        rounds: the rounds to control (1..len(ticket.history) - 1).
        train, evaluate: as for ``find_ticket``.
        start: the state IMP rewinds to (e.g. the pre-trained weights).
        trained: the state after round 0's training (the dense fine-tune); None when
            ``arms`` leaves out ``"one-shot"``.
        seed: the random control's mask seed for round k.
        scope: of the one-shot pruning (``"global"`` or ``"layer"``).
        arms: which controls to train, a subset of ``("random", "one-shot")``.

    Returns:
        ``{arm: {k: score}}`` for each requested arm.

    Raises:
        ValueError: an unknown arm, or ``"one-shot"`` without ``trained``.
    """
    arms = tuple(arms)
    unknown = [a for a in arms if a not in CONTROLS]
    if unknown or not arms:
        raise ValueError(f"arms must be a non-empty subset of {CONTROLS}; got {arms}")
    if "one-shot" in arms and trained is None:
        raise ValueError("the one-shot control needs the trained dense state (trained=)")
    out: dict[str, dict[int, float]] = {a: {} for a in arms}
    for k in rounds:
        if "random" in arms:
            model.load_state_dict(start)
            handle = ticket.at_round(k).random_like(seed=seed(k)).apply(model)
            train(model)
            out["random"][k] = float(evaluate(model))
            handle.remove()
        if "one-shot" not in arms:
            continue
        model.load_state_dict(trained)
        sparsity = ticket.at_round(k).sparsity
        handle = Ticket.magnitude(model, sparsity, scope=scope).apply(model)
        train(model)
        out["one-shot"][k] = float(evaluate(model))
        handle.remove()
    return out
