"""CRUST: train on per-class coresets of the gradient space to resist noisy labels.

Paper: "Coresets for Robust Training of Neural Networks against Noisy Labels",
Mirzasoleiman, Cao & Leskovec, NeurIPS 2020, arXiv:2011.07451.

Clean samples of a class have similar gradients and form dense clusters in
gradient space; mislabeled ones scatter. So, once per epoch after a warm-up,
CRUST picks for every (noisy) class the medoids of its gradients with a
facility-location objective, weights each medoid, and trains that epoch on the
weighted medoids only, mixing each input with another selected input of the
same class (mixup) to dilute the few noisy medoids. The gradients are those at
the last layer, in closed form: for logits z = W h + b and cross-entropy, with
e = softmax(z) - onehot(y), dL/dh = W^T e, dL/dW = e h^T and dL/db = e, so one
forward pass gives all of them.

Facility location: F(S) = sum_i max_{j in S} s_ij with s_ij = d_max - ||g_i - g_j||.
It is monotone submodular, so greedy selection is within 1 - 1/e of the best.
``facility_location`` runs the *lazy* greedy on marginal gains (the official
code's heap holds totals F(S + e), which breaks the lazy-greedy argument),
with a stochastic-greedy option (Mirzasoleiman et al. 2015, arXiv:1409.7938)
for large classes, and keeps memory bounded by computing distances in blocks.

Two choices the paper and the official code (github.com/snap-stanford/crust)
make differently are options here; the defaults were picked by measuring how
clean the weighted coreset is (benchmarks/crust_purity.py):
  * the proxy: ``"input"``, dL/dh (the official code; default) or ``"weight"``,
    dL/dW and dL/db (the paper's "last-layer gradients");
  * the weights: ``"radius"``, the number of same-class points within a radius
    of the medoid (the official code; default) or ``"cluster"``, the size of the
    cluster the medoid serves (the paper). The official radius is an absolute
    2.0 on gradients of the batch-mean loss; ours defaults to ``RADIUS_SHARE``
    of each class's largest distance, which does not depend on the loss scale.
Other differences: mixup partners come from the selected set (the official code
draws from the whole class), and proxies are computed in eval mode.

Example:
    >>> crust = CRUST(x, noisy_y, fraction=0.5, warmup_epochs=3)  # doctest: +SKIP
    >>> crust.attach(model)  # mixup inside the selected set  # doctest: +SKIP
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
    f = f.detach().cpu().to(torch.float64 if f.dtype == torch.float64 else torch.float32)
    if not np.isfinite(f.numpy()).all():  # numpy's check: ~100x faster than torch's on CPU here
        raise ValueError("features contain NaN or inf; compute gradients from a finite model")
    return f


# ----------------------------------------------------------------------------- facility location

WEIGHTS = ("cluster", "radius")  # how a medoid is weighted (see facility_location)
RADIUS_SHARE = 0.1  # weights="radius" without a radius: this share of the class's largest distance
STALE_BATCH = 4  # stale heap tops re-evaluated together (one vectorized pass; same result)


def facility_location_reference(
    features: Any, budget: int, *, weights: str = "cluster", radius: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference: plain greedy over the full similarity matrix, every gain recomputed each step.

    Returns (selected, gains, weights): the medoids in selection order, the marginal gain of
    each and its weight under ``weights`` / ``radius`` as ``facility_location`` defines them.
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
    sel = np.asarray(chosen, dtype=np.int64)
    if weights == "radius":
        r = RADIUS_SHARE * d.max() if radius is None else radius
        w = (d[sel] <= r).sum(1)  # (budget,) points within r of each medoid, itself included
    else:
        nearest = np.empty(len(x), dtype=np.int64)
        for i in range(len(x)):  # the first medoid (in selection order) among the closest
            nearest[i] = int(np.argmin(d[i, sel]))
        w = np.bincount(nearest, minlength=budget)
    return sel, np.asarray(gains_taken), w.astype(np.int64)


def facility_location(
    features: Any,
    budget: int,
    *,
    weights: str = "cluster",
    radius: float | None = None,
    stochastic: bool = False,
    epsilon: float = 0.1,
    max_bytes: int = 1 << 28,
    block: int = 2048,
    seed: int = 0,
    return_gains: bool = False,
) -> tuple[np.ndarray, ...]:
    """Greedy facility-location medoids of ``features`` and a weight for each.

    Maximizes F(S) = sum_i max_{j in S} (d_max - ||x_i - x_j||) over |S| = budget.
    Lazy greedy keeps a heap of upper bounds on every element's *marginal gain*
    (gains only shrink as S grows, by submodularity); the top entries are
    recomputed (up to ``STALE_BATCH`` stale ones in one vectorized pass) and the
    top is taken once it is fresh, so the result is the plain greedy's (ties go
    to the lower index). Stochastic greedy instead evaluates
    (n / budget) ln(1 / epsilon) random candidates per step (expected
    1 - 1/e - epsilon of the optimum, far fewer evaluations).

    Weights: ``"cluster"`` (default) counts the points whose nearest medoid it
    is (the paper's cluster sizes; they sum to n, so the weighted coreset
    reproduces the mix of the data). ``"radius"`` counts the points at distance
    <= ``radius`` from the medoid, itself included (the official code counts
    those closer than 2.0 on its proxies; only exact ties differ); medoids of
    dense regions weigh more, and the counts need not sum to n. Without
    ``radius`` it is ``RADIUS_SHARE`` of the largest distance d_max, so a
    class of identical points gives every medoid the whole class.

    The n x n distance matrix is kept when it fits in ``max_bytes``;
    otherwise rows are recomputed whenever they are needed, ``block`` rows at
    a time, so the extra memory is O(block * n).

    Args:
        features: (n, d) points, e.g. gradient proxies of one class.
        budget: how many medoids to select, 1 <= budget <= n.
        weights: ``"cluster"`` or ``"radius"``, as above.
        radius: the distance for ``weights="radius"``, > 0 (None: ``RADIUS_SHARE * d_max``).
        stochastic: use stochastic greedy instead of exact lazy greedy.
        epsilon: stochastic greedy's accuracy parameter, in (0, 1).
        max_bytes: largest distance matrix to keep in memory.
        block: rows of the distance matrix computed at once when it is not kept.
        seed: seeds stochastic greedy's candidate draws.
        return_gains: also return the marginal gain of each selected medoid.

    Returns:
        (selected (budget,) int64 in selection order, weights (budget,) int64)
        and, with ``return_gains``, gains (budget,) float64.

    Raises:
        ValueError: features not a finite (n, d) matrix, budget outside [1, n],
            epsilon outside (0, 1), an unknown ``weights``, radius <= 0.

    Example:
        >>> pts = np.array([[0.0], [0.1], [5.0], [5.2], [5.1]])
        >>> facility_location(pts, 2)
        (array([2, 0]), array([3, 2]))
        >>> facility_location(pts, 2, weights="radius", radius=0.15)
        (array([2, 0]), array([2, 2]))
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
    _check_weights(weights, radius)
    sq = (x * x).sum(1)

    # One pass: distance row sums (= column sums), the largest distance, and the matrix
    # itself if it fits (then filled in one GEMM, no extra memory). With s = d_max - d the
    # marginal gain of e is sum_i max(0, cur_i - d_ie) where cur_i = min(d_max, distance to
    # the selection), so the loop works on distances and never forms s.
    keep = n * n * x.element_size() <= max_bytes
    dmat_t = torch.empty((n, n), dtype=x.dtype) if keep else None
    step = n if keep else max(1, block)
    rowsum = torch.zeros(n, dtype=torch.float64)
    d_max = 0.0
    for r in range(0, n, step):
        out = dmat_t[r : r + step] if dmat_t is not None else None
        dist = _distances(x[r : r + step], x, sq[r : r + step], sq, out=out)  # (b, n)
        rows = torch.arange(len(dist))
        dist[rows, rows + r] = 0.0  # exact zero self-distance (the GEMM leaves rounding noise)
        rowsum[r : r + step] = dist.sum(1).double()
        d_max = max(d_max, float(dist.max()))
    x_np, sq_np = x.numpy(), sq.numpy()
    dmat = dmat_t.numpy() if dmat_t is not None else None

    def columns(idx: Any) -> np.ndarray:
        """(k, n) distances of every point to the points ``idx`` (the matrix is symmetric)."""
        idx = np.asarray(idx, dtype=np.int64)
        if dmat is not None:
            return dmat[idx]
        d2 = sq_np[idx, None] + sq_np[None, :] - 2.0 * (x_np[idx] @ x_np.T)  # (k, n)
        np.maximum(d2, 0.0, out=d2)
        d2[np.arange(len(idx)), idx] = 0.0
        return np.sqrt(d2, out=d2)

    def column(e: int) -> np.ndarray:  # (n,) a view of the kept matrix when there is one
        return dmat[e] if dmat is not None else columns([e])[0]

    cur = np.full(n, d_max, dtype=x_np.dtype)  # distance to the selection, capped at d_max
    owner = np.full(n, -1, dtype=np.int64)  # position (in selection order) of its nearest medoid
    chosen: list[int] = []
    gains: list[float] = []

    def take(e: int, col: np.ndarray, gain: float) -> None:
        closer = (col < cur) | (owner < 0)  # ties keep the earlier medoid
        owner[closer] = len(chosen)
        np.minimum(cur, col, out=cur)
        chosen.append(e)
        gains.append(gain)

    def marginal(idx: Any, buf: np.ndarray | None = None) -> np.ndarray:
        """(k,) exact gains F(S + e) - F(S) = sum_i max(0, cur_i - d_ie) of the points ``idx``."""
        if dmat is not None and buf is not None:  # row by row into buf: no gathered copy
            diff = buf[: len(idx)]
            for i, e in enumerate(idx):
                np.subtract(cur, dmat[e], out=diff[i])
        else:
            diff = np.subtract(cur, columns(idx))
        np.maximum(diff, 0.0, out=diff)
        return diff.sum(1)

    if stochastic:
        rng = np.random.default_rng(seed)
        free = np.arange(n)  # unselected points; a taken one is swapped out of the prefix
        size = n
        r_size = max(1, math.ceil(n / budget * math.log(1.0 / epsilon)))
        for _ in range(budget):
            picks = rng.integers(0, size, size=min(r_size, size))  # repeats are harmless
            cand = free[picks]
            g = marginal(cand)  # (r,) exact marginal gains
            j = int(np.argmax(g))
            take(int(cand[j]), column(int(cand[j])), float(g[j]))
            size -= 1
            free[picks[j]], free[size] = free[size], free[picks[j]]
    else:
        # heap of (-upper bound on the marginal gain, index, step the bound was computed at)
        first = (n * d_max - rowsum).tolist()  # exact gains from the empty set
        heap = list(zip([-g for g in first], range(n), [0] * n))
        heapq.heapify(heap)
        buf = np.empty((min(STALE_BATCH, n), n), dtype=x_np.dtype)
        while len(chosen) < budget:
            neg, e, at = heap[0]  # the largest bound
            now = len(chosen)
            if at == now:  # fresh: no other bound beats it, so it is the greedy pick
                heapq.heappop(heap)
                take(e, column(e), -neg)
                continue
            # stale: replace it (and the stale entries right below it) by exact gains
            stale = [heapq.heappop(heap)[1]]
            while heap and len(stale) < len(buf) and heap[0][2] != now:
                stale.append(heapq.heappop(heap)[1])
            exact = marginal(stale, buf).tolist()
            for g, e in zip(exact, stale):
                heapq.heappush(heap, (-g, e, now))

    sel = np.asarray(chosen, dtype=np.int64)
    if weights == "radius":
        r = RADIUS_SHARE * d_max if radius is None else float(radius)
        w = np.concatenate(
            [
                np.count_nonzero(columns(sel[i : i + block]) <= r, axis=1)
                for i in range(0, budget, max(1, block))
            ]
        )
    else:
        w = np.bincount(owner, minlength=budget)
    out = (sel, w.astype(np.int64))
    return out + (np.asarray(gains),) if return_gains else out


def _subset_weights(
    features: Tensor, sel: np.ndarray, weights: str, radius: float | None, block: int = 2048
) -> np.ndarray:
    """``facility_location``'s weights for any chosen points ``sel`` of ``features``.

    Distances are computed ``block`` rows at a time (O(block * n) extra memory).
    """
    x, sq = features, (features * features).sum(1)
    pick = torch.as_tensor(sel)
    xs, sqs = x[pick], sq[pick]
    r = radius
    if weights == "radius" and r is None:  # a first pass for the class's largest distance
        d_max = max(
            float(_distances(x[i : i + block], x, sq[i : i + block], sq).max())
            for i in range(0, len(x), block)
        )
        r = RADIUS_SHARE * d_max
    w = torch.zeros(len(sel), dtype=torch.int64)
    for i in range(0, len(x), block):
        d = _distances(x[i : i + block], xs, sq[i : i + block], sqs)  # (b, k)
        d[pick[None, :] == torch.arange(i, i + len(d))[:, None]] = 0.0  # exact self-distance
        if weights == "radius":
            w += (d <= r).sum(0)
        else:  # the first (in selection order) of the nearest chosen points
            w += torch.bincount(d.argmin(1), minlength=len(sel))
    return w.numpy()


def _check_weights(weights: str, radius: float | None) -> None:
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(map(repr, WEIGHTS))}; got {weights!r}")
    if radius is not None and not radius > 0:
        raise ValueError(f"radius must be > 0 (a distance between gradient proxies), got {radius}")


# ----------------------------------------------------------------------------- coresets


def select_coreset(
    grad_proxies: Any,
    labels: Any,
    *,
    fraction: float,
    num_classes: int | None = None,
    weights: str = "radius",
    radius: float | None = None,
    stochastic: bool = False,
    random: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class facility-location coreset: round(fraction * n_c) medoids of every class c.

    The default weights, ``"radius"`` (the official code's), count the same-class points
    within ``radius`` of each medoid, which up-weights dense regions of gradient space,
    where clean samples gather; ``"cluster"`` (the paper's) are the sizes of the clusters
    the medoids serve, which keep each class's label mix. Measured on digits at 50%
    symmetric noise after warm-up (benchmarks/crust_purity.py), the weighted clean share
    of the coreset was 0.73 with ``"radius"`` vs 0.50 with ``"cluster"`` (input-gradient
    proxies), hence the default; a random subset weighted by the same rule (``random=True``)
    was cleaner still, 0.86, so the weights, not the medoids, do the cleaning there. See
    ``facility_location`` for both rules.

    Args:
        grad_proxies: (N, d) per-sample gradient proxies (``last_layer_gradients``).
        labels: (N,) the (noisy) labels in [0, C) that the classes are taken from.
        fraction: share of each class to keep, in (0, 1]; at least one per class.
        num_classes: C (default max(labels) + 1); absent classes are skipped.
        weights: ``"radius"`` (neighbours within ``radius``) or ``"cluster"`` (cluster sizes).
        radius: distance for ``weights="radius"`` in proxy units (None: ``RADIUS_SHARE``
            of each class's largest distance).
        stochastic: stochastic greedy instead of lazy greedy (large classes).
        random: the control instead of a coreset: a uniform random subset of the same size
            per class, weighted by the same rule, so a comparison isolates the choice.
        seed: seeds stochastic greedy and the random subsets.

    Returns:
        (indices (M,) int64 into the N samples, grouped by class, weights (M,) float32;
        with ``"cluster"`` weights they sum to N).

    Raises:
        ValueError: a fraction outside (0, 1], labels outside [0, C), a length
            mismatch between proxies and labels, an unknown ``weights``, radius <= 0.

    Example:
        >>> g = np.array([[0.0], [0.1], [5.0], [9.0], [9.1], [9.3]])
        >>> y = np.array([0, 0, 0, 1, 1, 1])
        >>> select_coreset(g, y, fraction=0.34, weights="cluster")
        (array([1, 4]), array([3., 3.], dtype=float32))
        >>> select_coreset(g, y, fraction=0.34)  # radii 0.5 and 0.03: 0.1 of 5.0 and of 0.3
        (array([1, 4]), array([2., 1.], dtype=float32))
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    _check_weights(weights, radius)
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
    indices, out_weights = [], []
    for k in range(c):
        members = np.flatnonzero(y == k)
        if len(members) == 0:
            continue
        budget = max(1, int(round(fraction * len(members))))
        if random:
            sel = np.random.default_rng((seed, k)).choice(len(members), budget, replace=False)
            w = _subset_weights(g[members], sel, weights, radius)
        else:
            sel, w = facility_location(
                g[members], budget, weights=weights, radius=radius, stochastic=stochastic,
                seed=seed + k,
            )  # fmt: skip
        indices.append(members[sel])
        out_weights.append(w)
    return (
        np.concatenate(indices).astype(np.int64),
        np.concatenate(out_weights).astype(np.float32),
    )


# ----------------------------------------------------------------------------- gradient proxies

PROXIES = ("weight", "input")  # which last-layer gradient stands for a sample (see below)


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
    proxy: str = "input",
    batch_size: int = 512,
) -> Tensor:
    """Per-sample cross-entropy gradients at the last linear layer, in closed form, in one pass.

    For logits z = W h + b, with e = softmax(z) - onehot(y): ``proxy="weight"`` gives
    the layer's parameter gradient, dL/dW = e h^T and dL/db = e (the paper's "last
    layer gradients"); ``proxy="input"`` gives the gradient at the layer's input,
    dL/dh = W^T e (the official code differentiates the batch-*mean* loss, so its
    proxies are these divided by its batch size, 128). The model runs in eval mode;
    ``h`` is captured by a forward hook on ``head``. Under ``torchrun`` each rank
    computes a shard and the rows are gathered, so every rank gets the full matrix.

    Args:
        model: maps inputs to logits (B, K).
        x: (N, ...) inputs (array or tensor).
        y: (N,) labels in [0, K).
        head: the final ``nn.Linear`` (default: the last one in ``model.modules()``).
        proxy: ``"weight"`` (dL/dW and dL/db) or ``"input"`` (dL/dh), as above.
        batch_size: samples per forward pass.

    Returns:
        ``"weight"``: (N, K * (D + 1)) float32, the flattened weight gradient (K, D), then
        the bias gradient (K,); ``"input"``: (N, D) float32.

    Raises:
        ValueError: an unknown ``proxy``, labels outside [0, K), logits that are not
            (B, K) or do not come from ``head``.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
        >>> last_layer_gradients(model, x, y).shape  # (N, D): dL/dh
        torch.Size([5, 8])
        >>> last_layer_gradients(model, x, y, proxy="weight").shape  # (N, K * (D + 1))
        torch.Size([5, 27])
    """
    if proxy not in PROXIES:
        raise ValueError(f"proxy must be one of {', '.join(map(repr, PROXIES))}; got {proxy!r}")
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
            if proxy == "input":
                rows.append((g @ head.weight.float()).cpu())  # (B, D) = e W
            else:
                rows.append(torch.cat([(g[:, :, None] * h[:, None, :]).flatten(1), g], 1).cpu())
    finally:
        handle.remove()
        model.train(was_training)
    width = head.in_features if proxy == "input" else k * (head.in_features + 1)
    local = torch.cat(rows) if rows else torch.zeros(0, width)
    if distributed.is_distributed():
        sums, _ = distributed.reduce_per_sample(local, mine, n)  # each row from exactly one rank
        return sums.float()
    return local


# ----------------------------------------------------------------------------- the fit() hook


class CRUST:
    """``fit()`` hook: after a warm-up, train every epoch on a fresh weighted per-class coreset.

    ``on_epoch_start`` computes ``last_layer_gradients(proxy=...)`` of the whole
    training set with the current model, selects ``select_coreset(fraction=...,
    weights=...)`` and returns the medoids with their weights (scaled to mean 1)
    as per-sample loss weights. ``attach(model)`` adds mixup inside the selected
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
        proxy: ``"input"`` (default) or ``"weight"``: the gradient proxy (``last_layer_gradients``).
        weights: ``"radius"`` (default) or ``"cluster"``: the medoid weights (``facility_location``).
        radius: the distance for ``weights="radius"`` (None: ``RADIUS_SHARE`` of each class's
            largest distance).
        stochastic: stochastic greedy in the selection.
        random: select uniform random per-class subsets instead (the control), weighted and
            mixed exactly as the coresets would be.
        batch_size: samples per forward pass when computing gradients.
        seed: seeds the selection and the mixup partners.

    The defaults, ``proxy="input"`` and ``weights="radius"``, are the official code's
    and were chosen by measurement (benchmarks/crust_purity.py, digits, 50% symmetric
    noise, after warm-up, 3 seeds): the weighted coreset held 0.73 clean labels with them
    vs 0.50 with the paper's cluster sizes (either proxy), which reproduce the data's mix.
    The radius rule does the cleaning, not the choice of medoids: the medoids themselves
    are mostly mislabeled (0.33 clean: scattered samples are their own medoids), and a
    random half weighted by the same rule was cleaner still (0.86). ``random=True`` is
    that control.

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
        proxy: str = "input",
        weights: str = "radius",
        radius: float | None = None,
        stochastic: bool = False,
        random: bool = False,
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if mixup is not None and (len(mixup) != 2 or min(mixup) <= 0):
            raise ValueError(f"mixup must be two positive Beta parameters or None, got {mixup}")
        if proxy not in PROXIES:
            raise ValueError(f"proxy must be one of {', '.join(map(repr, PROXIES))}; got {proxy!r}")
        _check_weights(weights, radius)
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
        self.proxy, self.weighting, self.radius = proxy, weights, radius
        self.stochastic, self.random = stochastic, random
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
            model, self.x, self.y, head=self.head, proxy=self.proxy, batch_size=self.batch_size
        )
        idx, w = select_coreset(
            grads,
            self.y,
            fraction=self.fraction,
            weights=self.weighting,
            radius=self.radius,
            stochastic=self.stochastic,
            random=self.random,
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
    """fit() hook: a plain control for CRUST, a fresh random per-class subset each epoch.

    Same warm-up and the same per-class share as a ``CRUST(fraction=...)`` run, unweighted
    and without mixup, so "fewer, different steps on the data each epoch" is separated from
    everything CRUST adds. ``CRUST(random=True)`` is the matched control: the same weights
    and mixup, so only the choice of samples differs. Pass it in ``fit(..., hooks=[RandomSubset(y, 0.5, warmup_epochs=3)])``.

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
