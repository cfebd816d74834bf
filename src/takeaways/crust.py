"""CRUST: train on per-class coresets of the gradient space to resist noisy labels.

Paper: "Coresets for Robust Training of Neural Networks against Noisy Labels",
Mirzasoleiman, Cao & Leskovec, NeurIPS 2020, arXiv:2011.07451.

Clean samples of a class have similar gradients and form dense clusters in
gradient space; mislabeled ones scatter. So, once per epoch after a warm-up,
CRUST picks for every (noisy) class the medoids of its gradients with a
facility-location objective, weights each medoid by the size of the cluster it
serves, and trains that epoch on the weighted medoids only, mixing each input
with another selected input of the same class (mixup) to dilute the few noisy
medoids. The gradients are those of the last layer, in closed form: for
logits z = W h + b and cross-entropy, dL/dW = (softmax(z) - onehot(y)) h^T and
dL/db = softmax(z) - onehot(y), so one forward pass gives all of them.

Facility location: F(S) = sum_i max_{j in S} s_ij with s_ij = d_max - ||g_i - g_j||.
It is monotone submodular, so greedy selection is within 1 - 1/e of the best.
``facility_location`` runs the *lazy* greedy on marginal gains (the official
code's heap holds totals F(S + e), which breaks the lazy-greedy argument),
with a stochastic-greedy option (Mirzasoleiman et al. 2015, arXiv:1409.7938)
for large classes, and keeps memory bounded by computing distances in blocks.

Other differences from the official code (github.com/snap-stanford/crust):
  * weights are the sizes of the clusters the medoids serve, as the paper states
    (the code counts the same-class points within a fixed radius 2.0 of each medoid);
  * the gradient proxy is the whole last-layer gradient (weight and bias), in closed
    form (the code differentiates w.r.t. the 64-d penultimate features);
  * mixup partners come from the selected set (the code draws from the whole class).

Example:
    >>> crust = CRUST(x, noisy_y, fraction=0.5, warmup_epochs=3)
    >>> crust.attach(model)                        # mixup inside the selected set
    >>> fit(model, crust.train_data, epochs=20, hooks=[crust])  # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from takeaways import distributed

__all__ = [
    "facility_location",
    "facility_location_reference",
    "select_coreset",
    "last_layer_gradients",
    "CRUST",
    "CoresetPurity",
    "RandomSubset",
]


# ----------------------------------------------------------------------------- distances


def _distances(
    a: Tensor, b: Tensor, sq_a: Tensor, sq_b: Tensor, out: Tensor | None = None
) -> Tensor:
    """Euclidean distances (len(a), len(b)) from ||a||^2 + ||b||^2 - 2 a.b (one GEMM, in place)."""
    d2 = torch.addmm(sq_b.expand(len(a), -1), a, b.T, beta=1.0, alpha=-2.0, out=out)  # (n_a, n_b)
    return d2.add_(sq_a[:, None]).clamp_(min=0.0).sqrt_()


def _as_features(features: Any) -> Tensor:
    f = torch.as_tensor(np.asarray(features) if not isinstance(features, Tensor) else features)
    if f.dim() != 2 or len(f) == 0:
        raise ValueError(f"features must be a non-empty (n, d) matrix, got shape {tuple(f.shape)}")
    if not f.is_floating_point():
        f = f.float()
    if not torch.isfinite(f).all():
        raise ValueError("features contain NaN or inf; compute gradients from a finite model")
    return f.detach().cpu().to(torch.float64 if f.dtype == torch.float64 else torch.float32)


# ----------------------------------------------------------------------------- facility location


def facility_location_reference(features: Any, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: plain greedy over the full similarity matrix, every gain recomputed each step.

    Returns (selected, gains): the medoids in selection order and the marginal gain of each.
    """
    x = np.asarray(features, dtype=np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))  # (n, n)
    s = d.max() - d
    cur = np.zeros(len(x))
    chosen: list[int] = []
    gains_taken: list[float] = []
    for _ in range(budget):
        gains = np.maximum(s - cur[:, None], 0.0).sum(0)  # (n,) gain of adding each column
        gains[chosen] = -np.inf
        j = int(np.argmax(gains))
        chosen.append(j)
        gains_taken.append(float(gains[j]))
        cur = np.maximum(cur, s[:, j])
    return np.asarray(chosen, dtype=np.int64), np.asarray(gains_taken)


def facility_location(
    features: Any,
    budget: int,
    *,
    stochastic: bool = False,
    epsilon: float = 0.1,
    max_bytes: int = 1 << 28,
    block: int = 2048,
    seed: int = 0,
    return_gains: bool = False,
) -> tuple[np.ndarray, ...]:
    """Greedy facility-location medoids of ``features`` and the size of the cluster each serves.

    Maximizes F(S) = sum_i max_{j in S} (d_max - ||x_i - x_j||) over |S| = budget.
    Lazy greedy keeps a heap of upper bounds on every element's *marginal gain*
    (gains only shrink as S grows, by submodularity); the top entry is
    recomputed and taken if it is still on top, so the result is the plain
    greedy's (ties go to the lower index). Stochastic greedy instead evaluates
    (n / budget) ln(1 / epsilon) random candidates per step (expected
    1 - 1/e - epsilon of the optimum, far fewer evaluations).

    The n x n distance matrix is kept when it fits in ``max_bytes``;
    otherwise a column is recomputed whenever it is needed. Distances are
    computed ``block`` rows at a time, so the extra memory is O(block * n).

    Args:
        features: (n, d) points, e.g. gradient proxies of one class.
        budget: how many medoids to select, 1 <= budget <= n.
        stochastic: use stochastic greedy instead of exact lazy greedy.
        epsilon: stochastic greedy's accuracy parameter, in (0, 1).
        max_bytes: largest distance matrix to keep in memory.
        block: rows of the distance matrix computed at once.
        seed: seeds stochastic greedy's candidate draws.
        return_gains: also return the marginal gain of each selected medoid.

    Returns:
        (selected (budget,) int64 in selection order, weights (budget,) int64:
        how many of the n points have each medoid as their nearest one; they
        sum to n) and, with ``return_gains``, gains (budget,) float64.

    Raises:
        ValueError: features not a finite (n, d) matrix, budget outside [1, n],
            epsilon outside (0, 1).

    Example:
        >>> pts = np.array([[0.0], [0.1], [5.0], [5.2], [5.1]])
        >>> facility_location(pts, 2)
        (array([4, 0]), array([3, 2]))
    """
    x = _as_features(features)
    n = len(x)
    if not 1 <= budget <= n:
        raise ValueError(
            f"budget must be in [1, {n}] (the number of points), got {budget}; "
            "a class has fewer samples than its budget"
        )
    if stochastic and not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon}")
    sq = (x * x).sum(1)

    # One blocked pass: distance row sums (= column sums), the largest distance, and the
    # matrix itself if it fits. With s = d_max - d the marginal gain of e is
    # sum_i max(0, cur_i - d_ie) where cur_i = min(d_max, distance to the selection), so
    # the loop works on distances and never forms s.
    keep = n * n * x.element_size() <= max_bytes
    dmat_t = torch.empty((n, n), dtype=x.dtype) if keep else None
    rowsum = torch.zeros(n, dtype=torch.float64)
    d_max = 0.0
    for r in range(0, n, block):
        out = dmat_t[r : r + block] if dmat_t is not None else None
        dist = _distances(x[r : r + block], x, sq[r : r + block], sq, out=out)  # (b, n)
        rows = torch.arange(len(dist))
        dist[rows, rows + r] = 0.0  # exact zero self-distance (the GEMM leaves rounding noise)
        rowsum[r : r + block] = dist.sum(1).double()
        d_max = max(d_max, float(dist.max()))
    x_np, sq_np = x.numpy(), sq.numpy()
    dmat = dmat_t.numpy() if dmat_t is not None else None

    def column(e: int) -> np.ndarray:  # (n,) distances of every point to point e (symmetric)
        if dmat is not None:
            return dmat[e]
        d2 = np.maximum(sq_np + sq_np[e] - 2.0 * (x_np @ x_np[e]), 0.0)
        d2[e] = 0.0
        return np.sqrt(d2).astype(x_np.dtype, copy=False)

    cur = np.full(n, d_max, dtype=x_np.dtype)  # distance to the selection, capped at d_max
    buf = np.empty(n, dtype=x_np.dtype)

    def gain(col: np.ndarray) -> float:  # F(S + e) - F(S) = sum_i max(0, cur_i - d_ie)
        np.subtract(cur, col, out=buf)
        np.maximum(buf, 0.0, out=buf)
        return float(buf.sum())

    owner = np.full(n, -1, dtype=np.int64)  # position (in selection order) of its nearest medoid
    chosen: list[int] = []
    gains: list[float] = []

    def take(e: int, col: np.ndarray, gain: float) -> None:
        closer = (col < cur) | (owner < 0)  # ties keep the earlier medoid
        owner[closer] = len(chosen)
        np.minimum(cur, col, out=cur)
        chosen.append(e)
        gains.append(gain)

    if stochastic:
        rng = np.random.default_rng(seed)
        free = np.arange(n)  # unselected points; a taken one is swapped out of the prefix
        size = n
        r_size = max(1, math.ceil(n / budget * math.log(1.0 / epsilon)))
        for _ in range(budget):
            picks = rng.integers(0, size, size=min(r_size, size))  # repeats are harmless
            cand = free[picks]
            cols = dmat[cand] if dmat is not None else np.stack([column(int(e)) for e in cand])
            g = np.maximum(cur - cols, 0.0).sum(1)  # (r,) exact marginal gains
            j = int(np.argmax(g))
            take(int(cand[j]), cols[j], float(g[j]))
            size -= 1
            free[picks[j]], free[size] = free[size], free[picks[j]]
    else:
        # heap of (-upper bound on the marginal gain, index, step the bound was computed at)
        first = (n * d_max - rowsum).numpy()  # exact gains from the empty set
        heap = [(-float(first[e]), e, 0) for e in range(n)]
        heapq.heapify(heap)
        while len(chosen) < budget:
            neg, e, step = heap[0]  # the largest bound
            col = column(e)
            if step == len(chosen):  # fresh: no other bound beats it, so it is the greedy pick
                heapq.heappop(heap)
                take(e, col, -neg)
            else:  # stale: replace it by its exact marginal gain and look again
                heapq.heapreplace(heap, (-gain(col), e, len(chosen)))
    out = (
        np.asarray(chosen, dtype=np.int64),
        np.bincount(owner, minlength=budget).astype(np.int64),
    )
    return out + (np.asarray(gains),) if return_gains else out


# ----------------------------------------------------------------------------- coresets


def select_coreset(
    grad_proxies: Any,
    labels: Any,
    *,
    fraction: float,
    num_classes: int | None = None,
    stochastic: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class facility-location coreset: round(fraction * n_c) medoids of every class c.

    Args:
        grad_proxies: (N, d) per-sample gradient proxies (``last_layer_gradients``).
        labels: (N,) the (noisy) labels in [0, C) that the classes are taken from.
        fraction: share of each class to keep, in (0, 1]; at least one per class.
        num_classes: C (default max(labels) + 1); absent classes are skipped.
        stochastic: stochastic greedy instead of lazy greedy (large classes).
        seed: seeds stochastic greedy.

    Returns:
        (indices (M,) int64 into the N samples, weights (M,) float32: the size
        of the cluster each medoid serves, summing to N).

    Raises:
        ValueError: a fraction outside (0, 1], labels outside [0, C), a length
            mismatch between proxies and labels.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    g = _as_features(grad_proxies)
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(g):
        raise ValueError(
            f"labels must be (N,) with N = {len(g)} rows of grad_proxies, got shape {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integer class ids, got dtype {y.dtype}")
    c = int(y.max()) + 1 if num_classes is None else int(num_classes)
    bad = np.flatnonzero((y < 0) | (y >= c))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"labels[{i}] = {y[i]} is outside [0, {c}); labels must be 0..{c - 1}")
    indices, weights = [], []
    for k in range(c):
        members = np.flatnonzero(y == k)
        if len(members) == 0:
            continue
        budget = max(1, int(round(fraction * len(members))))
        sel, w = facility_location(g[members], budget, stochastic=stochastic, seed=seed + k)
        indices.append(members[sel])
        weights.append(w)
    return (
        np.concatenate(indices).astype(np.int64),
        np.concatenate(weights).astype(np.float32),
    )


# ----------------------------------------------------------------------------- gradient proxies


def _last_linear(model: nn.Module) -> nn.Linear:
    last = None
    for mod in model.modules():
        if isinstance(mod, nn.Linear):
            last = mod
    if last is None:
        raise TypeError(
            f"{type(model).__name__} has no nn.Linear layer; pass head= the module that maps "
            "features to logits"
        )
    return last


@torch.no_grad()
def last_layer_gradients(
    model: nn.Module,
    x: Any,
    y: Any,
    *,
    head: nn.Linear | None = None,
    batch_size: int = 512,
) -> Tensor:
    """Per-sample cross-entropy gradients of the last linear layer, in closed form, in one pass.

    For logits z = W h + b: dL/dW = (softmax(z) - onehot(y)) h^T and dL/db =
    softmax(z) - onehot(y). The model runs in eval mode; ``h`` is captured by
    a forward hook on ``head``. Under ``torchrun`` each rank computes a shard
    and the rows are gathered, so every rank gets the full matrix.

    Args:
        model: maps inputs to logits (B, K).
        x: (N, ...) inputs (array or tensor).
        y: (N,) labels in [0, K).
        head: the final ``nn.Linear`` (default: the last one in ``model.modules()``).
        batch_size: samples per forward pass.

    Returns:
        (N, K * (D + 1)) float32: the flattened weight gradient (K, D), then the bias gradient (K,).

    Raises:
        ValueError: labels outside [0, K), logits that are not (B, K) or do not
            come from ``head``.
    """
    head = head if head is not None else _last_linear(model)
    xs = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if xs.is_floating_point():
        xs = xs.float()
    ys = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y).long()
    if ys.shape != (len(xs),):
        raise ValueError(f"y must be (N,) = ({len(xs)},), got shape {tuple(ys.shape)}")
    k = head.out_features
    if len(ys) and (int(ys.min()) < 0 or int(ys.max()) >= k):
        i = int(torch.nonzero((ys < 0) | (ys >= k))[0])
        raise ValueError(f"y[{i}] = {int(ys[i])} is outside [0, {k}) for a head with {k} outputs")
    captured: list[Tensor] = []
    handle = head.register_forward_hook(lambda m, inp, out: captured.append(inp[0]))
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    n = len(xs)
    mine = torch.arange(distributed.rank(), n, distributed.world_size())
    rows = []
    try:
        for s in range(0, len(mine), batch_size):
            idx = mine[s : s + batch_size]
            captured.clear()
            z = model(xs[idx].to(dev))
            if z.dim() != 2 or z.shape[1] != k or not captured:
                raise ValueError(
                    f"the model's logits {tuple(z.shape)} do not come from head {head}; pass head="
                )
            h = captured[-1].float().flatten(1)  # (B, D) penultimate features
            g = torch.softmax(z.float(), -1)
            g[torch.arange(len(idx)), ys[idx].to(dev)] -= 1.0  # (B, K) = softmax - onehot
            rows.append(torch.cat([(g[:, :, None] * h[:, None, :]).flatten(1), g], 1).cpu())
    finally:
        handle.remove()
        model.train(was_training)
    local = torch.cat(rows) if rows else torch.zeros(0, k * (head.in_features + 1))
    if distributed.is_distributed():
        sums, _ = distributed.reduce_per_sample(local, mine, n)  # each row from exactly one rank
        return sums.float()
    return local


# ----------------------------------------------------------------------------- the fit() hook


class CRUST:
    """``fit()`` hook: after a warm-up, train every epoch on a fresh weighted per-class coreset.

    ``on_epoch_start`` computes ``last_layer_gradients`` of the whole training
    set with the current model, selects ``select_coreset(fraction=...)`` and
    returns the medoids with their cluster sizes (scaled to mean 1) as
    per-sample loss weights. ``attach(model)`` adds mixup inside the selected
    set: each training input is mixed with a random selected input of the same
    label, lambda ~ Beta(*mixup) (official code: Beta(1, 0.1), mostly near 1).
    Mixup needs each batch's dataset indices, so train on ``crust.train_data``.

    Args:
        x: (N, ...) training inputs.
        y: (N,) their (noisy) labels in [0, C).
        fraction: share of each class selected per epoch, in (0, 1] (paper: 0.5).
        warmup_epochs: epochs on the full data before the first selection (paper: 5 of 120).
        mixup: Beta parameters for lambda, or None for no mixup.
        head: the model's final nn.Linear (default: the last one).
        stochastic: stochastic greedy in the selection.
        batch_size: samples per forward pass when computing gradients.
        seed: seeds the selection and the mixup partners.

    Attributes:
        selected, weights: the current coreset (None before the first selection).
        history: per selection, the epoch, seconds spent and coreset size.

    Raises:
        ValueError: bad fraction or labels; in training, an attached model
            called without dataset indices.
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        *,
        fraction: float = 0.5,
        warmup_epochs: int = 5,
        mixup: tuple[float, float] | None = (1.0, 0.1),
        head: nn.Linear | None = None,
        stochastic: bool = False,
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if mixup is not None and (len(mixup) != 2 or min(mixup) <= 0):
            raise ValueError(f"mixup must be two positive Beta parameters or None, got {mixup}")
        self.x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
        if self.x.is_floating_point():
            self.x = self.x.float()
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != len(self.x):
            raise ValueError(f"y must be (N,) = ({len(self.x)},), got shape {y_arr.shape}")
        if not np.issubdtype(y_arr.dtype, np.integer) or (y_arr < 0).any():
            raise ValueError("y must hold class ids >= 0")
        self.y = y_arr.astype(np.int64)
        self.fraction = fraction
        self.warmup_epochs = warmup_epochs
        self.mixup = mixup
        self.head = head
        self.stochastic = stochastic
        self.batch_size = batch_size
        self.seed = seed
        self.selected: np.ndarray | None = None
        self.weights: np.ndarray | None = None
        self.history: list[dict[str, float]] = []
        self._partners: tuple[Tensor, Tensor, Tensor] | None = None  # by class: order, start, count
        self._rng = np.random.default_rng(seed)  # mixup partners and lambdas

    @property
    def train_data(self) -> tuple[dict[str, Tensor], np.ndarray]:
        """(inputs, y) for ``fit()``: inputs carry the dataset index that mixup needs."""
        return {"inputs": self.x, "index": torch.arange(len(self.x))}, self.y

    # -- selection
    def on_epoch_start(self, epoch: int, model: nn.Module) -> tuple[np.ndarray, np.ndarray] | None:
        """Select this epoch's coreset (None during warm-up: train on everything)."""
        if epoch < self.warmup_epochs:
            return None
        import time

        t0 = time.perf_counter()
        grads = last_layer_gradients(
            model, self.x, self.y, head=self.head, batch_size=self.batch_size
        )
        idx, w = select_coreset(
            grads,
            self.y,
            fraction=self.fraction,
            stochastic=self.stochastic,
            seed=self.seed + epoch,
        )
        self.selected, self.weights = idx, w
        order = np.argsort(self.y[idx], kind="stable")
        counts = np.bincount(self.y[idx], minlength=int(self.y.max()) + 1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._partners = (
            torch.as_tensor(idx[order]),
            torch.as_tensor(starts),
            torch.as_tensor(counts),
        )
        self.history.append(
            {"epoch": epoch, "seconds": time.perf_counter() - t0, "size": float(len(idx))}
        )
        return idx, w / w.mean()

    # -- mixup
    def attach(self, model: nn.Module) -> torch.utils.hooks.RemovableHandle:
        """Mix each training input with a same-label input of the current coreset (a pre-hook).

        The model is then called as ``model(inputs=x, index=idx)`` by ``fit()``
        on ``train_data``; the hook removes ``index`` and passes the mixed ``x``
        on positionally, so the model's own forward is unchanged. Evaluation
        (eval mode, or no ``index``) passes straight through. Returns the
        handle; ``handle.remove()`` detaches.
        """

        def pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            kwargs = dict(kwargs)
            index = kwargs.pop("index", None)
            if not args and len(kwargs) == 1:
                args, kwargs = (next(iter(kwargs.values())),), {}
            if not module.training:
                return args, kwargs
            if index is None:
                if self._partners is not None and self.mixup is not None:
                    raise ValueError(
                        "CRUST mixup needs the dataset index of every training sample; "
                        "train on crust.train_data (inputs with an 'index' entry)"
                    )
                return args, kwargs
            if self._partners is None or self.mixup is None:
                return args, kwargs
            return (self._mix(args[0], index.cpu()),) + tuple(args[1:]), kwargs

        return model.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def _mix(self, xb: Tensor, index: Tensor) -> Tensor:
        order, starts, counts = self._partners  # type: ignore[misc]
        labels = torch.as_tensor(self.y)[index]  # (B,)
        cnt = counts[labels]
        u = torch.as_tensor(self._rng.random(len(index)))
        pick = order[starts[labels] + (u * cnt).long().clamp(max=cnt - 1)]  # same-label partner
        a, b = self.mixup  # type: ignore[misc]
        lam = torch.as_tensor(self._rng.beta(a, b, size=len(index)))  # (B,)
        lam = torch.where(cnt > 0, lam, torch.ones_like(lam)).to(xb.device, xb.dtype)
        partner = self.x[pick].to(xb.device, xb.dtype)
        shape = (-1,) + (1,) * (xb.dim() - 1)
        return lam.view(shape) * xb + (1 - lam.view(shape)) * partner


class RandomSubset:
    """fit() hook: the control CRUST must beat, a fresh random per-class subset each epoch.

    Same warm-up and the same per-class share as a ``CRUST(fraction=...)`` run, unweighted,
    so "fewer, different steps on the data each epoch" is separated from "the coreset chose
    well". Pass it in ``fit(..., hooks=[RandomSubset(y, 0.5, warmup_epochs=3)])``.

    Args:
        y: (N,) labels (the noisy ones, as CRUST sees them).
        fraction: share of each class kept per epoch, at least one sample per class.
        warmup_epochs: epochs trained on everything before subsets start.
        seed: seeds the subsets (one generator, drawn from in epoch order).
    """

    def __init__(self, y: np.ndarray, fraction: float, warmup_epochs: int, seed: int = 0) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
        self.y, self.fraction, self.warmup = np.asarray(y), fraction, warmup_epochs
        self.rng = np.random.default_rng(seed)

    def on_epoch_start(self, epoch: int, model: nn.Module) -> tuple[np.ndarray, None] | None:
        """This epoch's indices (None during warm-up: train on everything)."""
        if epoch < self.warmup:
            return None
        keep = []
        for k in np.unique(self.y):
            members = np.flatnonzero(self.y == k)
            size = max(1, int(round(self.fraction * len(members))))
            keep.append(self.rng.choice(members, size=size, replace=False))
        return np.concatenate(keep), None


class CoresetPurity:
    """fit() hook beside a ``CRUST`` hook: how clean its coresets are, where the noise is known.

    After every epoch that trained on a coreset it appends the share of selected samples
    whose labels are correct (``clean``) and the same share of the coreset's weight
    (``clean_weighted``). Pass it after the CRUST hook: ``hooks=[crust, CoresetPurity(...)]``.

    Args:
        crust: the ``CRUST`` hook whose selections are scored.
        flipped: (N,) bool, True where the training label is wrong (planted noise).
    """

    def __init__(self, crust: CRUST, flipped: np.ndarray) -> None:
        self.crust, self.flipped = crust, np.asarray(flipped, dtype=bool)
        self.clean: list[float] = []
        self.clean_weighted: list[float] = []

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        sel, w = self.crust.selected, self.crust.weights
        if sel is not None and epoch >= self.crust.warmup_epochs:
            ok = ~self.flipped[sel]
            self.clean.append(float(ok.mean()))
            self.clean_weighted.append(float((w * ok).sum() / w.sum()))
