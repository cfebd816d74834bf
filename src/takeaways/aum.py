"""AUM: find mislabeled training samples by the Area Under the Margin (Pleiss et al. 2020).

Paper: "Identifying Mislabeled Data using the Area Under the Margin Ranking",
Pleiss, Zhang, Elenberg & Weinberger, NeurIPS 2020, arXiv:2001.10528.

While a network trains, a correctly labelled sample's assigned logit soon beats
every other logit; a mislabeled one is pulled towards its true class and its
assigned logit keeps losing. The margin of sample i at epoch t is

    M_t(i) = z_assigned(i) - max_{k != assigned} z_k(i)

and its AUM is the average of M_t(i) over the epochs t (the first epoch is
skipped: random initialization). Where to cut? The paper relabels N / (C + 1)
random samples into a fake class C that no input belongs to ("threshold
samples"), assumes they behave like the worst mislabeled data, and flags a
sample whose AUM is below the 99th percentile of theirs. That holds with many
classes; with two or three, the fake class holds a third or a quarter of the
data, a model fits much of it, and the rule flags most of a table. So the
default cut here plants wrong real labels on 10% of the data instead, reads
from their AUMs what a mislabeled sample looks like in this run, estimates the
noise rate from it and flags that many of the lowest AUMs (``noise_share``);
the paper's rule stays available as ``rule="paper"``. Two training passes with
disjoint control sets score every sample at least once.

Differences from the official code (github.com/asappresearch/aum):
  * the margin is averaged per epoch, then over epochs (the official
    ``AUMCalculator`` averages over update() calls, the same only when each
    sample is seen once per epoch);
  * N / (C + 1) threshold samples, as in the paper (the code uses N / C);
  * margins are gathered over ``torchrun`` ranks at each epoch end;
  * a batch of one sample works (the package's ``squeeze()`` turns it into a float).

Example:
    >>> from takeaways import data, nn
    >>> d = data.load("digits")
    >>> noisy, flipped = data.corrupt_labels(d.train.y, rate=0.2, seed=0)
    >>> found = find_mislabeled(lambda k: nn.MLP(64, k, hidden=(128,)), d.train.x, noisy,
    ...                         num_classes=10, epochs=15)
    >>> (found.mask & flipped).sum() / found.mask.sum()  # precision  # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from takeaways import distributed

__all__ = [
    "AUMTracker",
    "add_threshold_samples",
    "aum_scores",
    "find_mislabeled",
    "noise_share",
    "plant_wrong_labels",
    "tracking_overhead",
]


# ----------------------------------------------------------------------------- margins


def margins(logits: Tensor, targets: Tensor) -> Tensor:
    """Assigned logit minus the largest other logit, per row.

    Args:
        logits: (B, K) raw logits (not softmax).
        targets: (B,) assigned class ids in [0, K).

    Returns:
        (B,) float32 margins; negative when another class wins.

    Raises:
        ValueError: logits not 2-D, a length mismatch, a target outside [0, K).
    """
    if logits.dim() != 2:
        raise ValueError(
            f"logits must be (B, K) class scores, got shape {tuple(logits.shape)}; "
            "AUM needs one row of logits per sample"
        )
    if targets.dim() != 1 or len(targets) != len(logits):
        raise ValueError(
            f"targets must be (B,) with B = {len(logits)} rows of logits, got shape {tuple(targets.shape)}"
        )
    k = logits.shape[1]
    t = targets.long()
    if len(t):
        lo, hi = (v.item() for v in torch.aminmax(t))
        if lo < 0 or hi >= k:
            raise ValueError(
                f"target {lo if lo < 0 else hi} is outside [0, {k}) for logits of width {k}"
            )
    z = logits.float()
    assigned = z.gather(1, t[:, None]).squeeze(1)  # (B,)
    others = z.scatter(1, t[:, None], float("-inf"))  # (B, K) with the assigned entry masked
    return assigned - others.max(1).values  # (B,)


# ----------------------------------------------------------------------------- tracker


class AUMTracker:
    """Per-sample margins averaged per epoch, then over epochs: a ``fit()`` hook.

    Pass it in ``fit(..., hooks=[tracker])``: every batch hands it this rank's
    logits, targets and dataset indices; at every epoch end the epoch's margins
    (and logits) are gathered over ranks and averaged per sample. Epochs before
    ``skip_epochs`` are ignored (random initialization). Outside ``fit()`` call
    ``update(logits, targets, indices)`` per batch and ``end_epoch()`` per epoch.

    A batch only queues references to its tensors; every ``flush_every``
    batches one vectorized pass computes their margins and adds them to
    per-sample sums, so the tracker costs a few tensor ops per many steps.
    Memory: N x (2 + K) floats (N x 2 with ``track_logits=False``), plus the queue.

    Args:
        num_samples: N, the size of the training set (indices lie in [0, N)).
        num_classes: K, the width of the logits (C + 1 with threshold samples).
        skip_epochs: leading epochs whose margins are not recorded (default 1).
        track_logits: also average each sample's logits (for ``mean_logits``).
        flush_every: batches queued before their margins are computed.

    Attributes:
        aum: (N,) float64 tensor, the AUM of each sample; NaN where never scored.
        mean_logits: (N, K) float32 tensor, each sample's logits averaged like the margins.
        epochs_scored: (N,) int64 tensor, how many epochs scored each sample.

    Raises:
        ValueError: logits of the wrong width, labels outside [0, K), missing
            or out-of-range dataset indices.
    """

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        *,
        skip_epochs: int = 1,
        track_logits: bool = True,
        flush_every: int = 32,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 for a margin, got {num_classes}")
        if skip_epochs < 0 or flush_every < 1:
            raise ValueError(
                f"skip_epochs must be >= 0 and flush_every >= 1, got {skip_epochs}, {flush_every}"
            )
        self.num_samples = num_samples
        self.num_classes = num_classes
        self.skip_epochs = skip_epochs
        self.track_logits = track_logits
        self.flush_every = flush_every
        width = 2 + (num_classes if track_logits else 0)  # count, margin, logits
        self._epoch = torch.zeros(num_samples, width, dtype=torch.float64)  # this epoch, this rank
        self._total = torch.zeros(num_samples, width - 1, dtype=torch.float64)  # sum of epoch means
        self.epochs_scored = torch.zeros(num_samples, dtype=torch.int64)
        self._queue: list[tuple[Tensor, Tensor, Tensor]] = []  # (logits, targets, indices)

    # -- per batch
    def update(self, logits: Tensor, targets: Tensor, indices: Tensor | None) -> None:
        """Queue one batch: logits (B, K), targets (B,), dataset indices (B,)."""
        if indices is None:
            raise ValueError(
                "AUM needs the dataset index of every sample in the batch; train with "
                "takeaways.train.fit (it passes indices) or pass indices to update()"
            )
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits must be (B, {self.num_classes}), got {tuple(logits.shape)}; "
                "num_classes must equal the model's number of outputs"
            )
        if len(indices) != len(logits) or len(targets) != len(logits):
            raise ValueError(
                f"a batch of {len(logits)} logits needs as many targets and indices, got "
                f"{len(targets)} and {len(indices)}"
            )
        self._queue.append((logits.detach(), targets.detach(), torch.as_tensor(indices)))
        if len(self._queue) >= self.flush_every:
            self._flush()

    def _flush(self) -> None:
        """Margins of every queued batch in one pass, added to this epoch's per-sample sums."""
        if not self._queue:
            return
        z = torch.cat([q[0] for q in self._queue])  # (M, K)
        t = torch.cat([q[1] for q in self._queue])  # (M,)
        idx = torch.cat([q[2].to(z.device) for q in self._queue]).long()  # (M,)
        self._queue = []
        lo, hi = (v.item() for v in torch.aminmax(idx))
        if lo < 0 or hi >= self.num_samples:
            raise ValueError(f"dataset indices must lie in [0, {self.num_samples}); got {lo}..{hi}")
        parts = [torch.ones(len(z), 1, device=z.device), margins(z, t)[:, None]]
        if self.track_logits:
            parts.append(z.float())
        self._epoch.index_add_(0, idx.cpu(), torch.cat(parts, 1).cpu().double())

    def on_batch(self, info: Any) -> None:
        """``fit()`` hook: record ``info.logits``, ``info.targets``, ``info.indices``."""
        if info.epoch >= self.skip_epochs:
            self.update(info.logits, info.targets, getattr(info, "indices", None))

    # -- per epoch
    def end_epoch(self) -> None:
        """Average this epoch's margins per sample (gathered over ranks) into the AUM."""
        self._flush()
        seen = torch.nonzero(self._epoch[:, 0] > 0).squeeze(1)
        # every rank joins the collective, even one that saw no sample
        sums, _ = distributed.reduce_per_sample(self._epoch[seen], seen, self.num_samples)
        self._epoch.zero_()
        got = sums[:, 0] > 0
        # a sample seen twice in an epoch (padding under torchrun) counts once
        self._total[got] += sums[got, 1:] / sums[got, :1]
        self.epochs_scored[got] += 1

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """``fit()`` hook: close the epoch (skipped epochs record nothing)."""
        if epoch >= self.skip_epochs:
            self.end_epoch()

    # -- results
    @property
    def aum(self) -> Tensor:
        n = self.epochs_scored.double()
        return torch.where(n > 0, self._total[:, 0] / n.clamp(min=1), torch.full_like(n, math.nan))

    @property
    def mean_logits(self) -> Tensor:
        if not self.track_logits:
            raise ValueError("this tracker was built with track_logits=False; it kept no logits")
        n = self.epochs_scored.double().clamp(min=1)[:, None]
        return (self._total[:, 1:] / n).float()


# ----------------------------------------------------------------------------- threshold samples


def _check_labels(y: Any, num_classes: int | None) -> tuple[np.ndarray, int]:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y must be a non-empty 1-D array of class ids, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y must hold integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    c = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if c < 2:
        raise ValueError(f"need at least 2 classes, got num_classes={c}")
    bad = np.flatnonzero((y < 0) | (y >= c))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"y[{i}] = {y[i]} is outside [0, {c}); labels must be 0..{c - 1}")
    return y, c


def add_threshold_samples(
    y: Any,
    *,
    num_classes: int,
    fraction: float | None = None,
    exclude: Any = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Relabel a random N / (C + 1) samples into a fake class C (the paper's threshold samples).

    Args:
        y: (N,) integer labels in [0, C).
        num_classes: C; the model then needs C + 1 outputs.
        fraction: share of the N samples to relabel; default 1 / (C + 1).
        exclude: optional (N,) bool mask of samples that must not be chosen
            (the previous pass's threshold samples).
        seed: seeds the choice.

    Returns:
        (y_new (N,) int64 with the chosen samples set to C, chosen (N,) bool).

    Raises:
        ValueError: labels outside [0, C), a fraction outside (0, 1), too few
            samples left outside ``exclude``.
    """
    y, c = _check_labels(y, num_classes)
    f = 1.0 / (c + 1) if fraction is None else float(fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}; the paper uses 1/(C+1)")
    n = len(y)
    k = max(1, int(round(f * n)))
    pool = np.arange(n)
    if exclude is not None:
        ex = np.asarray(exclude, dtype=bool)
        if ex.shape != (n,):
            raise ValueError(f"exclude must be an (N,) = ({n},) bool mask, got shape {ex.shape}")
        pool = np.flatnonzero(~ex)
    if k > len(pool):
        raise ValueError(
            f"need {k} threshold samples but only {len(pool)} are not excluded; lower fraction"
        )
    chosen = np.zeros(n, dtype=bool)
    chosen[np.random.default_rng(seed).choice(pool, size=k, replace=False)] = True
    y_new = y.copy()
    y_new[chosen] = c
    return y_new, chosen


# ----------------------------------------------------------------------------- training passes


def aum_scores(
    make_model: Callable[[int], nn.Module],
    x: Any,
    y: Any,
    *,
    num_outputs: int | None = None,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    skip_epochs: int = 1,
    seed: int = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train a fresh model once on (x, y) and return every sample's AUM (one pass, no threshold).

    Args:
        make_model: ``k -> nn.Module`` returning a fresh model with k outputs.
        x: (N, ...) inputs (array or tensor; a dict of tensors for text).
        y: (N,) integer labels in [0, num_outputs).
        num_outputs: K, the model's number of outputs (default max(y) + 1).
        epochs, batch_size, lr: the training run (``takeaways.train.fit``).
        skip_epochs: leading epochs left out of the average.
        seed: seeds the model's initialization and the data order.
        fit_kwargs: any other ``fit()`` options (optimizer, weight_decay,
            schedule, bf16, device, progress, ...); schedule defaults to
            "constant", as the paper measures AUM before any learning-rate drop.

    Returns:
        (aum (N,) float64, mean_logits (N, K) float32).

    Raises:
        ValueError: labels outside [0, K), epochs <= skip_epochs, a model whose
            logits are not (B, K).
    """
    from takeaways import train  # the training loop; the tracker itself needs only torch

    y, k = _check_labels(y, num_outputs)
    if epochs <= skip_epochs:
        raise ValueError(f"epochs ({epochs}) must exceed skip_epochs ({skip_epochs}) to score")
    train.seed_everything(seed)
    model = make_model(k)
    tracker = AUMTracker(len(y), k, skip_epochs=skip_epochs)
    opts: dict[str, Any] = {"schedule": "constant", "progress": False, "desc": "aum"}
    opts.update(fit_kwargs or {})
    train.fit(
        model,
        (x, y),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        hooks=[tracker],
        seed=seed,
        **opts,
    )
    return tracker.aum.numpy(), tracker.mean_logits.numpy()


def plant_wrong_labels(
    y: Any,
    *,
    num_classes: int,
    fraction: float,
    exclude: Any = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Give a random share of the samples a label known to differ from the given one.

    Each chosen sample moves to a uniformly random class other than its given label, so
    the chosen set is mislabeled by construction (except a sample whose given label was
    already wrong and lands on its true class; ``noise_share`` corrects for that).

    Args:
        y: (N,) integer labels in [0, C).
        num_classes: C (at least 2).
        fraction: share of the N samples to relabel, in (0, 1).
        exclude: optional (N,) bool mask of samples that must not be chosen.
        seed: seeds the choice and the new labels.

    Returns:
        (y_new (N,) int64, chosen (N,) bool).

    Raises:
        ValueError: labels outside [0, C), a fraction outside (0, 1), too few samples
            left outside ``exclude``.
    """
    y, c = _check_labels(y, num_classes)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    n = len(y)
    pool = np.arange(n) if exclude is None else np.flatnonzero(~np.asarray(exclude, dtype=bool))
    k = max(1, int(round(fraction * n)))
    if k > len(pool):
        raise ValueError(f"need {k} planted samples but only {len(pool)} are free; lower fraction")
    rng = np.random.default_rng(seed)
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(pool, size=k, replace=False)] = True
    y_new = y.copy()
    y_new[chosen] = (y[chosen] + rng.integers(1, c, size=k)) % c  # never the given label
    return y_new, chosen


def noise_share(aum_rest: Any, aum_planted: Any, num_classes: int) -> float:
    """Estimated share of mislabeled samples among ``aum_rest``, from planted wrong labels.

    The rest is a mixture: a share pi of mislabeled samples whose AUMs follow the planted
    samples' distribution F, and clean samples whose AUMs lie above F's median (the
    assumption; on planted noise over 2, 3 and 10 classes a few percent of clean samples
    fall below it). With m the median of the planted AUMs and R the share of the rest
    below m, R = pi F(m). The planted set itself holds a share pi / (C - 1) of samples
    whose new label happens to be their true class (all of them when C = 2, since a
    wrong label can only move back), so F(m) = 0.5 / (1 - pi / (C - 1)) and

        pi = 2 R / (1 + 2 R / (C - 1)).

    Returns:
        pi in [0, 1].
    """
    rest, planted = np.asarray(aum_rest, dtype=float), np.asarray(aum_planted, dtype=float)
    if len(rest) == 0 or len(planted) == 0:
        raise ValueError("noise_share needs AUMs of both planted and other samples")
    r = float(np.mean(rest < np.median(planted)))
    return min(1.0, 2 * r / (1 + 2 * r / (num_classes - 1)))


class Mislabeled(NamedTuple):
    """What ``find_mislabeled`` returns."""

    mask: np.ndarray  # (N,) bool, True for samples flagged as mislabeled
    ranked: np.ndarray  # (F,) int64 indices of the flagged samples, lowest AUM first
    aum: np.ndarray  # (N,) float64 AUM averaged over the passes that scored the sample
    preferred: np.ndarray  # (N,) int64 the real class with the highest mean logit
    thresholds: np.ndarray  # (passes,) each pass's AUM cut
    noise_rate: (
        float  # estimated share of mislabeled samples ("planted"); the flagged share ("paper")
    )
    fitted_control: float  # share of control samples (planted or threshold) the model fit: AUM > 0


RULES = ("planted", "paper")


def find_mislabeled(
    make_model: Callable[[int], nn.Module],
    x: Any,
    y: Any,
    *,
    num_classes: int | None = None,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    rule: str = "planted",
    passes: int = 2,
    percentile: float = 99.0,
    threshold_fraction: float | None = None,
    skip_epochs: int = 1,
    seed: int = 0,
    embed: Callable[[Sequence[str]], Any] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
) -> Mislabeled:
    """Rank samples by AUM and flag the likely mislabeled ones.

    Each pass sets aside a fresh, disjoint share of the data as a control, trains a
    fresh model and records every sample's AUM; the samples outside the control are
    scored. Two passes score every sample at least once. The ranking is AUM (lowest
    first) under either rule; the rules differ in where they cut:

    * ``"planted"`` (default): the control samples get a wrong real label (10% of the
      data per pass). Their AUMs show what a mislabeled sample looks like in this very
      run, and ``noise_share`` estimates how many of the others look like that; the
      lowest-AUM ``noise_rate * N`` samples are flagged. On planted symmetric noise at
      2, 3 and 10 classes, 5-40% noise and 5, 20 or 100 epochs (breast_cancer, wine,
      digits tables, two seeds) the flagged count was within 0.5-2x of the planted
      count in 68 of 72 cells (benchmarks/aum_cut.py).
    * ``"paper"``: the paper's rule. The control samples (N / (C + 1)) move into a fake
      class C; a sample is flagged when its AUM lies below the ``percentile`` of the
      control's AUMs in every pass that scored it. It assumes the fake class behaves
      like the worst mislabeled data. On those tables it does for 10 classes, but with
      2 or 3 classes a third or a quarter of the data sits in the fake class, a model
      fits much of it, and the rule flagged 1.5-27x the planted count at 20 epochs
      (benchmarks/aum_cut.py).

    Training longer than needed to fit the clean data lets a model memorise wrong
    labels: both rules then lose precision. ``fitted_control`` (the share of control
    samples with a positive AUM) measures it; above 0.5 the ranking is unreliable.

    Args:
        make_model: ``k -> nn.Module`` returning a fresh model with k outputs (C, or
            C + 1 under the paper's rule).
        x: (N, ...) inputs (array or tensor; a dict of tensors for text).
        y: (N,) integer labels in [0, C), the possibly noisy ones.
        num_classes: C (default max(y) + 1).
        epochs, batch_size, lr: each pass's training run.
        rule: "planted" or "paper" (above).
        passes: 2 (every sample scored) or 1 (control samples stay unscored, never flagged).
        percentile: the paper rule's cut among the control AUMs (paper: 99).
        threshold_fraction: the control's share of the data per pass; default 0.1 under
            "planted", 1 / (C + 1) under "paper".
        skip_epochs: leading epochs left out of the AUM (paper: 1).
        seed: seeds the control sets, the models and the data order.
        embed: turns x (e.g. N texts) into (N, D) features once, before both passes;
            ``takeaways.nn.sentence.embed_texts`` embeds texts with the packaged MiniLM.
            Without it, x is used as it is (precomputed features, images, token ids).
        fit_kwargs: other ``takeaways.train.fit`` options (optimizer, bf16, device,
            progress, ...); the run has no learning-rate drop unless they say otherwise.

    Returns:
        ``Mislabeled``: ``mask`` (N,) bool and ``ranked`` the flagged indices, lowest AUM
        first, as cleanlab's ``find_label_issues`` returns them; ``aum`` for every
        sample; ``preferred`` the class the model favours (the likely true label);
        ``thresholds`` each pass's AUM cut; ``noise_rate``; ``fitted_control``.

    Raises:
        ValueError: labels outside [0, C), an unknown rule, passes not 1 or 2, a
            percentile outside (0, 100], control sets that do not fit in the data.
    """
    y, c = _check_labels(y, num_classes)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if passes not in (1, 2):
        raise ValueError(f"passes must be 1 or 2, got {passes}")
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    default = 0.1 if rule == "planted" else 1.0 / (c + 1)
    f = default if threshold_fraction is None else float(threshold_fraction)
    if not 0.0 < f * passes < 1.0:
        raise ValueError(
            f"threshold_fraction {f} x {passes} passes must be in (0, 1); lower threshold_fraction"
        )
    n = len(y)
    if embed is not None:
        x = np.asarray(embed(list(x)), dtype=np.float32)
        if x.ndim != 2 or len(x) != n:
            raise ValueError(f"embed must return (N, D) = ({n}, D) features, got shape {x.shape}")
    aum_sum, scored = np.zeros(n), np.zeros(n, dtype=np.int64)
    flagged_in_all = np.ones(n, dtype=bool)
    logit_sum = np.zeros((n, c))
    used, thresholds, shares, fitted = np.zeros(n, dtype=bool), [], [], []
    for p in range(passes):
        if rule == "planted":
            y_p, control = plant_wrong_labels(
                y, num_classes=c, fraction=f, exclude=used, seed=seed + 7919 * p
            )
        else:
            y_p, control = add_threshold_samples(
                y, num_classes=c, fraction=f, exclude=used, seed=seed + 7919 * p
            )
        used |= control
        opts = {"desc": f"AUM pass {p + 1}/{passes}", **(fit_kwargs or {})}
        aum, logits = aum_scores(
            make_model,
            x,
            y_p,
            num_outputs=c + (rule == "paper"),
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            skip_epochs=skip_epochs,
            seed=seed + p,
            fit_kwargs=opts,
        )
        real = ~control
        fitted.append(float(np.mean(aum[control] > 0)))
        if rule == "planted":
            share = noise_share(aum[real], aum[control], c)
            shares.append(share)
            thresholds.append(float(np.quantile(aum[real], share)) if share > 0 else -math.inf)
        else:
            thresholds.append(float(np.percentile(aum[control], percentile)))
            flagged_in_all[real] &= aum[real] < thresholds[-1]
        aum_sum[real] += aum[real]
        logit_sum[real] += logits[real, :c]
        scored[real] += 1
    mean_aum = np.where(scored > 0, aum_sum / np.maximum(scored, 1), np.nan)
    if rule == "planted":
        order = np.argsort(np.where(scored > 0, mean_aum, np.inf), kind="stable")
        mask = np.zeros(n, dtype=bool)
        mask[order[: int(round(float(np.mean(shares)) * int((scored > 0).sum())))]] = True
    else:
        mask = flagged_in_all & (scored > 0)
    ranked = np.flatnonzero(mask)
    ranked = ranked[np.argsort(mean_aum[ranked], kind="stable")]
    return Mislabeled(
        mask=mask,
        ranked=ranked.astype(np.int64),
        aum=mean_aum,
        preferred=logit_sum.argmax(1).astype(np.int64),
        thresholds=np.asarray(thresholds),
        noise_rate=float(np.mean(shares)) if rule == "planted" else float(mask.mean()),
        fitted_control=float(np.mean(fitted)),
    )


# ----------------------------------------------------------------------------- cost of tracking


class _TimedTracker:
    """An ``AUMTracker`` with a stopwatch around its two ``fit()`` hooks."""

    def __init__(self, n: int, num_classes: int) -> None:
        self.tracker, self.seconds = AUMTracker(n, num_classes, skip_epochs=0), 0.0

    def on_batch(self, info: Any) -> None:
        t = time.perf_counter()
        self.tracker.on_batch(info)
        self.seconds += time.perf_counter() - t

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        t = time.perf_counter()
        self.tracker.on_epoch_end(epoch, model)
        self.seconds += time.perf_counter() - t


def tracking_overhead(
    make_model: Callable[[], nn.Module],
    x: Any,
    y: Any,
    *,
    num_classes: int,
    epochs: int,
    pairs: int,
    **fit_kwargs: Any,
) -> dict[str, float]:
    """What an ``AUMTracker`` adds to a training epoch: runs with and without it, interleaved.

    After one untimed warm-up run, ``pairs`` pairs of ``epochs``-epoch runs alternate which
    goes first (ABBA), each from ``train.seed_everything(0)`` and a fresh ``make_model()``;
    ``fit_kwargs`` (batch_size, lr, ...) go to ``train.fit``.
    Both wall-clock and process CPU time are measured; on shared cores the CPU time is the
    steadier (other processes stretch the wall clock). A stopwatch inside the tracker's hooks
    gives its own share of the epoch as a cross-check.

    Returns:
        ``epoch_s_with_aum`` / ``epoch_s_without_aum`` (median wall seconds per epoch), the
        same in CPU seconds (``epoch_cpu_s_*``), ``overhead_wall`` and ``overhead_cpu`` (median
        over pairs of with / without, minus 1), ``in_tracker_share`` (median seconds inside the
        hooks over median epoch seconds without) and ``pairs``.
    """
    from takeaways import train

    if pairs < 1 or epochs < 1:
        raise ValueError(f"pairs and epochs must be >= 1; got pairs={pairs}, epochs={epochs}")
    inside: list[float] = []  # seconds per epoch spent inside the tracker's hooks, per run

    def timed(track: bool) -> tuple[float, float]:
        train.seed_everything(0)
        model = make_model()
        hooks = [_TimedTracker(len(y), num_classes)] if track else []
        t0, c0 = time.perf_counter(), time.process_time()
        train.fit(model, (x, y), epochs=epochs, hooks=hooks, progress=False, **fit_kwargs)
        if track:
            inside.append(hooks[0].seconds / epochs)
        return (time.perf_counter() - t0) / epochs, (time.process_time() - c0) / epochs

    timed(False)  # warm-up: allocator, kernels
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for i in range(pairs):
        got = {track: timed(track) for track in ((True, False) if i % 2 == 0 else (False, True))}
        for track in (True, False):
            wall[track].append(got[track][0])
            cpu[track].append(got[track][1])

    def ratio(t: dict[bool, list[float]]) -> float:
        return statistics.median(a / b for a, b in zip(t[True], t[False]))

    return {
        "epoch_s_with_aum": statistics.median(wall[True]),
        "epoch_s_without_aum": statistics.median(wall[False]),
        "epoch_cpu_s_with_aum": statistics.median(cpu[True]),
        "epoch_cpu_s_without_aum": statistics.median(cpu[False]),
        "overhead_wall": ratio(wall) - 1.0,
        "overhead_cpu": ratio(cpu) - 1.0,
        "in_tracker_share": statistics.median(inside) / statistics.median(wall[False]),
        "pairs": pairs,
    }
