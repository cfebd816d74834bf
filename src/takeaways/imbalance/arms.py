"""Paired arms: every method of a long-tailed comparison from the same weights, data and seed.

Yang & Xu (arXiv 2006.07529) compare CE, class-balanced rules, self-training and
SSP; a difference between two such arms means something only when both saw the
same labeled set, started from the same initial weights and drew the same batches.
:class:`PairedArms` holds one such setting and records each arm's test scores
(:func:`score_classifier`) and optimizer steps under the arm's name, for plain or
class-balanced fits (:meth:`PairedArms.fit`) and for self-training's base and
retrained models (:meth:`PairedArms.self_train`); :func:`summarize_arms` turns one
``PairedArms`` per seed into mean, std, per-seed values and paired gains.

Example:
    >>> arms = PairedArms(make_model, x_lab, y_lab, test=(x_te, y_te),
    ...                   fit_kwargs={"lr": 1e-2, "seed": 0})  # doctest: +SKIP
    >>> arms.fit("CE", arms.fresh(), epochs=10)                # doctest: +SKIP
    >>> arms.fit("class-balanced", arms.fresh(), epochs=10, balanced=True)  # doctest: +SKIP
    >>> arms.scores["CE"]["balanced_accuracy"], arms.steps["CE"]  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from takeaways import train as _train
from takeaways.imbalance.balanced import class_balanced, merge_fit_kwargs
from takeaways.imbalance.metrics import score_classifier
from takeaways.imbalance.selftrain import SelfTraining, self_train
from takeaways.results import mean_std

__all__ = ["PairedArms", "arm_key", "summarize_arms"]


@dataclass
class PairedArms:
    """Arms trained on one labeled set from one set of initial weights, scored on one test set.

    Args:
        make_model: builds the (untrained) classifier; called once per :meth:`fresh`.
        x: (N, ...) labeled inputs; y: (N,) their class ids.
        test: (x, y) pair (or anything with ``.x`` and ``.y``) every arm is scored on.
        fit_kwargs: ``train.fit`` options shared by every arm (lr, batch_size, seed, ...);
            ``seed`` also seeds the class-balanced rule.
        balancing: the class-balanced rule of a ``balanced=True`` fit (see :func:`class_balanced`).
        num_classes: C, for the training counts that define the tail (default max(y) + 1).
        desc: progress-bar prefix.
        init: the shared initial weights (default: those of one ``make_model()``).

    ``scores[arm]`` and ``steps[arm]`` hold what :meth:`record` / :meth:`fit` measured.
    """

    make_model: Callable[[], nn.Module]
    x: Any
    y: np.ndarray
    test: Any
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    balancing: str = "resample"
    num_classes: int | None = None
    desc: str = ""
    init: dict[str, Any] | None = None
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    train_counts: np.ndarray = field(init=False, repr=False)  # (C,) labeled samples per class

    def __post_init__(self) -> None:
        if self.init is None:
            self.init = copy.deepcopy(self.make_model().state_dict())
        c = int(np.max(self.y)) + 1 if self.num_classes is None else self.num_classes
        self.train_counts = np.bincount(np.asarray(self.y), minlength=c)

    def fresh(self, state: dict[str, Any] | None = None) -> nn.Module:
        """A new model holding ``state`` (default: the shared initial weights)."""
        model = self.make_model()
        model.load_state_dict(self.init if state is None else state)
        return model

    def score(self, model: nn.Module, split: Any = None) -> dict[str, Any]:
        """:func:`score_classifier` on ``split`` ((x, y) or ``.x``/``.y``; default the test set)."""
        split = self.test if split is None else split
        x, y = (split.x, split.y) if hasattr(split, "x") else split
        return score_classifier(model, x, y, train_counts=self.train_counts)

    def record(self, arm: str, model: nn.Module, steps: int) -> None:
        """Score ``model`` on the test set as ``arm``, trained for ``steps`` optimizer steps."""
        self.scores[arm], self.steps[arm] = self.score(model), steps

    def fit(
        self, arm: str, model: nn.Module, epochs: int, *, balanced: bool = False, before: int = 0
    ) -> _train.FitResult:
        """Train ``model`` on the labeled set (``before``: steps it already had), then record it.

        ``balanced=False`` is plain cross-entropy; ``True`` adds the class-balanced rule.
        """
        kind = self.balancing if balanced else "none"
        seed = self.fit_kwargs.get("seed", 0)
        rule = class_balanced(self.y, kind=kind, epochs=epochs, seed=seed)
        kw = merge_fit_kwargs(rule, {"desc": f"{self.desc} {arm}".strip(), **self.fit_kwargs})
        out = _train.fit(model, (self.x, self.y), epochs=epochs, **kw)
        self.record(arm, model, before + out.steps)
        return out

    def self_train(
        self, base_arm: str, arm: str, model: nn.Module, unlabeled: Any, **kwargs: Any
    ) -> SelfTraining:
        """:func:`self_train` from ``model`` (a fresh model) on the labeled set and ``unlabeled``.

        Records the base model as ``base_arm`` and the retrained ``model`` as ``arm``; the
        latter's steps include the base model's, which its pseudo-labels cost. ``kwargs`` go
        to :func:`self_train` (epochs, base_epochs, threshold, ...) over ``fit_kwargs``.
        """
        st = self_train(model, (self.x, self.y), unlabeled, **{**self.fit_kwargs, **kwargs})
        base = st.base_history[-1]["step"] if st.base_history else 0
        self.record(base_arm, st.base_model, base)
        self.record(arm, model, base + st.history[-1]["step"])
        return st


def arm_key(arm: str) -> str:
    """An arm's name as part of a metric name: ``"CE + SSP"`` -> ``"ce_ssp"``."""
    return arm.replace(" + ", "_").replace("-", "_").replace(" ", "_").lower()


def summarize_arms(
    draws: Sequence[PairedArms],
    *,
    arms: Sequence[str] | None = None,
    scores: Sequence[str] = ("balanced_accuracy", "tail_accuracy", "accuracy"),
    pairs: Sequence[tuple[str, str]] = (),
    gain_in: str = "balanced_accuracy",
) -> dict[str, Any]:
    """Every arm's scores over paired draws (one per seed), its steps, and paired gains.

    Args:
        draws: one :class:`PairedArms` per seed, each holding the same arms.
        arms: the arms to summarize, in order (default: those of the first draw).
        scores: which :func:`imbalance_metrics` scores to summarize.
        pairs: (arm, baseline) pairs; the per-seed difference in ``gain_in``, in points
            (x100), is paired: both arms of a draw share its data, weights and seed.
        gain_in: the score the gains are measured in.

    Returns:
        for arm key ``a`` (:func:`arm_key`) and score ``s``: ``a_s`` (mean), ``a_s_std``
        (sample std, 0 for one seed), ``a_s_per_seed``, ``a_steps_per_seed``; for each pair
        ``a_vs_b_gain_points`` (mean) and ``a_vs_b_gain_points_std``.
    """
    if not draws:
        raise ValueError("summarize_arms needs at least one draw")
    out: dict[str, Any] = {}
    for arm in list(draws[0].scores) if arms is None else arms:
        a = arm_key(arm)
        for s in scores:
            values = [d.scores[arm][s] for d in draws]
            out[f"{a}_{s}"], out[f"{a}_{s}_std"] = mean_std(values)
            out[f"{a}_{s}_per_seed"] = values
        out[f"{a}_steps_per_seed"] = [d.steps[arm] for d in draws]
    for arm, ref in pairs:
        gain = f"{arm_key(arm)}_vs_{arm_key(ref)}_gain_points"
        diffs = [100 * (d.scores[arm][gain_in] - d.scores[ref][gain_in]) for d in draws]
        out[gain], out[f"{gain}_std"] = mean_std(diffs)
    return out
