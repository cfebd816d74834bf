"""Plant label noise and class imbalance in a labelled set, exactly and reproducibly.

`corrupt_labels` flips exactly round(rate * N) labels (rounding half up), so a
detector's precision and recall can be measured against a known mask.
`Noise` is a noise setting as a typed value, parsed once from text such as
"symmetric:0.2"; `detection_scores` rates a detector's flags against the mask.
`long_tail` keeps an exponentially decaying number of samples per class, the
long-tailed profile of Cui et al. 2019 (arXiv:1901.05555) used by Yang & Xu
2020 (arXiv:2006.07529); the rest becomes an unlabeled pool. `unlabeled_pool`
draws the paper's unlabeled set instead: a given size (5x the labeled set in the
paper), balanced or following the labeled imbalance, from samples the labeled set
never touches.

Example:
    >>> y = np.repeat(np.arange(10), 100)
    >>> noisy, flipped = corrupt_labels(y, rate=0.4, kind="symmetric", seed=0)
    >>> int(flipped.sum()), bool((flipped == (noisy != y)).all())
    (400, True)
    >>> labeled, unlabeled = long_tail(y, imbalance_ratio=10)
    >>> np.bincount(y[labeled]).tolist()
    [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]
    >>> more = np.tile(y, 2)  # rows 1000.. are data the labeled set never saw
    >>> pool = unlabeled_pool(more, labeled, size=200, imbalance_ratio=1)
    >>> np.bincount(more[pool]).tolist(), bool(np.intersect1d(pool, labeled).size)
    ([20, 20, 20, 20, 20, 20, 20, 20, 20, 20], False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "corrupt_labels",
    "Noise",
    "parse_noise",
    "detection_scores",
    "long_tail",
    "unlabeled_pool",
    "pool_counts",
    "ASYMMETRIC_MNIST",
]

# Class-dependent noise for 10 digit classes (Patrini et al. 2017, arXiv:1609.03683):
# visually similar digits, 2 -> 7, 3 -> 8, 5 <-> 6, 7 -> 1. Other classes never flip.
ASYMMETRIC_MNIST: dict[int, int] = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}


# ---------------------------------------------------------------------------- helpers


def _labels(y: np.ndarray, num_classes: int | None, what: str = "y") -> tuple[np.ndarray, int]:
    """y as int64 (N,) checked against 0..num_classes-1 (default: max(y) + 1)."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array of class ids, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{what} must hold integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    c = int(y.max()) + 1 if num_classes is None else int(num_classes)
    bad = np.flatnonzero((y < 0) | (y >= c))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{what}[{i}] = {y[i]} is out of range for {c} classes (0..{c - 1})")
    return y, c


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


# ---------------------------------------------------------------------------- noise kinds
# Each kind: (y, n_flip, num_classes, rng) -> noisy copy of y with exactly n_flip changes.


def _symmetric(y: np.ndarray, n: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """Pick n samples; move each to one of the other c - 1 classes, uniformly."""
    if c < 2:
        raise ValueError("symmetric noise needs at least 2 classes")
    idx = rng.choice(len(y), size=n, replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, c, size=n)) % c  # offset 1..c-1 never lands on y
    return noisy


def _pairflip(y: np.ndarray, n: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """Pick n samples; class k becomes k + 1 (mod c)."""
    if c < 2:
        raise ValueError("pairflip noise needs at least 2 classes")
    idx = rng.choice(len(y), size=n, replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + 1) % c
    return noisy


def _asymmetric(y: np.ndarray, n: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """Pick n samples among classes 2, 3, 5, 6, 7 and apply ASYMMETRIC_MNIST."""
    if c != 10:
        raise ValueError(
            f"asymmetric noise uses the 10-class digit map {ASYMMETRIC_MNIST}; "
            f"with {c} classes use kind='pairflip' or 'symmetric'"
        )
    eligible = np.flatnonzero(np.isin(y, list(ASYMMETRIC_MNIST)))
    if n > len(eligible):
        raise ValueError(
            f"asymmetric noise can flip only the {len(eligible)} samples of classes "
            f"{sorted(ASYMMETRIC_MNIST)}, but rate asks for {n}; lower the rate"
        )
    idx = rng.choice(eligible, size=n, replace=False)
    noisy = y.copy()
    noisy[idx] = [ASYMMETRIC_MNIST[int(k)] for k in y[idx]]
    return noisy


_KINDS: dict[str, Callable[[np.ndarray, int, int, np.random.Generator], np.ndarray]] = {
    "symmetric": _symmetric,
    "pairflip": _pairflip,
    "asymmetric": _asymmetric,
}


# ---------------------------------------------------------------------------- public API


def corrupt_labels(
    y: np.ndarray,
    *,
    rate: float,
    kind: str = "symmetric",
    num_classes: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly round(rate * N) labels, chosen at random, to a different class.

    Kinds:
        symmetric   the new class is uniform over the other C - 1 classes.
        pairflip    class k becomes (k + 1) mod C.
        asymmetric  10 classes only: `ASYMMETRIC_MNIST` (2->7, 3->8, 5<->6, 7->1);
                    the flipped samples are drawn from those five classes, so
                    rate * N may not exceed how many samples they hold.

    Args:
        y: (N,) integer class ids in 0..C-1.
        rate: fraction of all N samples to flip, in [0, 1].
        kind: one of "symmetric", "pairflip", "asymmetric".
        num_classes: C (default: max(y) + 1).
        seed: seeds which samples flip and where to.

    Returns:
        (noisy_y (N,) int64, flipped (N,) bool) with flipped == (noisy_y != y).

    Raises:
        ValueError: unknown kind (lists the valid ones), rate outside [0, 1],
            a label outside 0..C-1 (index and value), too few eligible samples.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; valid kinds: {', '.join(_KINDS)}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    y, c = _labels(y, num_classes)
    noisy = _KINDS[kind](y, _round_half_up(rate * len(y)), c, np.random.default_rng(seed))
    return noisy, noisy != y


@dataclass(frozen=True)
class Noise:
    """A label-noise setting: ``kind`` (a `corrupt_labels` kind) and ``rate`` in (0, 1).

    Equal settings compare equal whatever their text was ("symmetric:0.50" == "symmetric:0.5").
    """

    kind: str  # symmetric | pairflip | asymmetric
    rate: float  # fraction of all samples flipped

    def __post_init__(self) -> None:
        if self.kind not in _KINDS or not 0.0 < self.rate < 1.0:
            raise ValueError(
                f"noise {self.kind}:{self.rate:g} must have kind {', '.join(_KINDS)} and 0 < rate < 1, "
                "e.g. symmetric:0.2"
            )

    def __str__(self) -> str:  # the text form parse_noise reads back
        return f"{self.kind}:{self.rate:g}"

    @property
    def label(self) -> str:
        """For people: ``symmetric 20%``."""
        return f"{self.kind} {round(100 * self.rate)}%"

    def apply(
        self, y: np.ndarray, *, num_classes: int | None = None, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``corrupt_labels(y, rate=self.rate, kind=self.kind, ...)``: (noisy_y, flipped)."""
        return corrupt_labels(y, rate=self.rate, kind=self.kind, num_classes=num_classes, seed=seed)


def parse_noise(text: str | Noise) -> Noise:
    """``"kind:rate"`` -> `Noise` (a `Noise` passes through).

    Raises:
        ValueError: one line naming the text, the valid kinds and the rate range.
    """
    if isinstance(text, Noise):
        return text
    kind, _, rate = str(text).strip().partition(":")
    try:
        r = float(rate)
    except ValueError:
        r = -1.0
    if kind not in _KINDS or not 0.0 < r < 1.0:
        raise ValueError(
            f"noise {text!r} must be kind:rate with kind {', '.join(_KINDS)} "
            "and 0 < rate < 1, e.g. symmetric:0.2"
        )
    return Noise(kind, r)


def detection_scores(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of boolean ``flagged`` (N,) against the planted mask ``truth`` (N,).

    Empty sets score 0 (nothing flagged: precision 0; nothing planted: recall 0).

    Example:
        >>> detection_scores(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
        (0.5, 0.5, 0.5)
    """
    flagged, truth = np.asarray(flagged, dtype=bool), np.asarray(truth, dtype=bool)
    if flagged.shape != truth.shape:
        raise ValueError(f"flagged has shape {flagged.shape}, truth {truth.shape}; they must match")
    tp = float((flagged & truth).sum())
    p = tp / max(1.0, float(flagged.sum()))
    r = tp / max(1.0, float(truth.sum()))
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def long_tail(
    y: np.ndarray, *, imbalance_ratio: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into a long-tailed labeled set and the unlabeled rest.

    Class c keeps n_c = floor(n_max * imbalance_ratio ** (-c / (C - 1))) samples,
    chosen at random, so class 0 is the head and class C-1 holds n_max / ratio.
    n_max is the size of the smallest class in `y`, which every class can supply,
    so the profile is exact whatever the input's own balance. (A 1e-9 slack in the
    floor keeps float error from dropping a sample, e.g. 500 / 100 stays 5.)

    Args:
        y: (N,) integer class ids; every class 0..max(y) must occur.
        imbalance_ratio: n_0 / n_{C-1}, >= 1 (1 gives a balanced subset).
        seed: seeds which samples of each class are kept.

    Returns:
        (labeled_idx, unlabeled_idx), both sorted int64 arrays that partition 0..N-1.

    Raises:
        ValueError: ratio < 1, a class absent from y, a class left with 0 samples.
    """
    if not imbalance_ratio >= 1.0:
        raise ValueError(f"imbalance_ratio must be >= 1 (head / tail size), got {imbalance_ratio}")
    y, c = _labels(y, None)
    counts = np.bincount(y, minlength=c)
    if (counts == 0).any():
        raise ValueError(
            f"class {int(np.flatnonzero(counts == 0)[0])} has no samples in y; "
            "every class 0..max(y) must occur"
        )
    n_max = int(counts.min())
    exponents = np.arange(c) / (c - 1) if c > 1 else np.zeros(1)
    keep = np.floor(n_max * float(imbalance_ratio) ** -exponents + 1e-9).astype(np.int64)
    if (keep == 0).any():
        k = int(np.flatnonzero(keep == 0)[0])
        raise ValueError(
            f"class {k} would keep 0 samples (smallest class has {n_max}); "
            f"use imbalance_ratio <= {n_max}"
        )
    rng = np.random.default_rng(seed)
    labeled = np.concatenate(
        [rng.choice(np.flatnonzero(y == k), size=int(keep[k]), replace=False) for k in range(c)]
    )
    mask = np.zeros(len(y), dtype=bool)
    mask[labeled] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def pool_counts(size: int, num_classes: int, imbalance_ratio: float) -> np.ndarray:
    """Per-class counts (C,) that sum to ``size`` and fall as ratio^(-c / (C - 1)) from class 0.

    Largest-remainder rounding of size * p_c, p_c proportional to ratio^(-c / (C - 1)); ratio 1
    gives a balanced split (the first size % C classes get one more).
    """
    if size < 0 or num_classes < 1 or not imbalance_ratio >= 1.0:
        raise ValueError(
            f"need size >= 0, num_classes >= 1, imbalance_ratio >= 1; "
            f"got {size}, {num_classes}, {imbalance_ratio}"
        )
    c = np.arange(num_classes)
    p = float(imbalance_ratio) ** -(c / (num_classes - 1) if num_classes > 1 else c * 0.0)
    exact = size * p / p.sum()
    counts = np.floor(exact + 1e-9).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")  # largest remainders first
    counts[order[: size - int(counts.sum())]] += 1
    return counts


def unlabeled_pool(
    y: np.ndarray,
    labeled: np.ndarray,
    *,
    size: int,
    imbalance_ratio: float = 1.0,
    num_classes: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of an unlabeled pool of ``size`` samples, disjoint from ``labeled``.

    Yang & Xu (arXiv 2006.07529, Sec. 3; ``unlabel_size_factor=5`` in their code) add 5x as
    many unlabeled samples as labeled ones, drawn from a separate source, with per-class
    counts following imbalance ratio rho_U: 1 (balanced) or the labeled set's own ratio.
    Here class c gets ``pool_counts(size, C, imbalance_ratio)[c]`` samples drawn at random
    from the rows of class c that are not in ``labeled``. ``y`` holds the true classes of
    every candidate row (the pool's labels are hidden from the technique, not from the
    experimenter who builds it).

    Args:
        y: (N,) class ids of every row the pool and the labeled set are indices into.
        labeled: indices of the labeled set; none of them enters the pool.
        size: the pool's size (e.g. ``5 * len(labeled)``).
        imbalance_ratio: rho_U = n_0 / n_{C-1} of the pool; 1 is balanced.
        num_classes: C (default max(y) + 1).
        seed: seeds which rows of each class are drawn.

    Returns:
        sorted int64 indices into ``y``, ``size`` of them, none in ``labeled``.

    Raises:
        ValueError: a class without enough rows outside the labeled set (the message says
            how many it needs and has), ratio < 1, indices out of range.
    """
    y, c = _labels(y, num_classes)
    labeled = np.asarray(labeled, dtype=np.int64)
    if labeled.size and (labeled.min() < 0 or labeled.max() >= len(y)):
        raise ValueError(f"labeled indices must lie in 0..{len(y) - 1}")
    counts = pool_counts(int(size), c, imbalance_ratio)
    free = np.ones(len(y), dtype=bool)
    free[labeled] = False
    rng = np.random.default_rng(seed)
    picks = []
    for k in range(c):
        rows = np.flatnonzero(free & (y == k))
        if len(rows) < counts[k]:
            raise ValueError(
                f"class {k} needs {counts[k]} pool samples but has {len(rows)} outside the "
                f"labeled set; add unlabeled data or lower the pool size or imbalance_ratio"
            )
        picks.append(rng.choice(rows, size=int(counts[k]), replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)
