"""CRUST: lazy greedy equals plain greedy, stochastic greedy is near it, both weight rules equal
their naive reference, closed-form gradients equal autograd's, and the fit() hook selects and mixes as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from takeaways import nn, train
from takeaways.crust import (
    CRUST,
    facility_location,
    facility_location_reference,
    last_layer_gradients,
    select_coreset,
)


def _objective(x: np.ndarray, chosen: np.ndarray) -> float:
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    return float((d.max() - d)[:, chosen].max(1).sum())


# ---------------------------------------------------------------------------- facility location


@pytest.mark.parametrize(
    ("n", "d", "budget"),
    [(1, 3, 1), (5, 2, 5), (37, 5, 9), (64, 16, 32), (101, 3, 50), (200, 7, 17)],
)
@pytest.mark.parametrize(
    "opts", [{}, {"max_bytes": 0}, {"max_bytes": 0, "block": 7}, {"block": 13}]
)
def test_lazy_greedy_takes_the_plain_greedy_gains(n, d, budget, opts):
    x = np.random.default_rng(n * d + budget).normal(size=(n, d))
    ref, ref_gains, ref_w = facility_location_reference(x, budget)
    sel, weights, gains = facility_location(x, budget, return_gains=True, **opts)
    # same marginal gain at every step (near-ties may swap two equally good medoids)
    np.testing.assert_allclose(gains, ref_gains, rtol=1e-9, atol=1e-9)
    assert _objective(x, sel) == pytest.approx(_objective(x, ref), rel=1e-12)
    assert len(set(sel.tolist())) == budget and weights.sum() == n


@pytest.mark.parametrize(("n", "d", "budget"), [(1, 3, 1), (7, 2, 3), (37, 5, 9), (101, 3, 50)])
@pytest.mark.parametrize("rule", [("cluster", None), ("radius", None), ("radius", 1.3)])
@pytest.mark.parametrize("opts", [{}, {"max_bytes": 0, "block": 5}])
def test_weights_equal_the_naive_reference(n, d, budget, rule, opts):
    x = np.random.default_rng(7 * n + d).normal(size=(n, d))
    weights, radius = rule
    ref, _, ref_w = facility_location_reference(x, budget, weights=weights, radius=radius)
    sel, w = facility_location(x, budget, weights=weights, radius=radius, **opts)
    assert sel.tolist() == ref.tolist() and w.tolist() == ref_w.tolist()
    if weights == "radius":  # every medoid counts itself; dense regions count more
        assert (w >= 1).all() and (w <= n).all()


def test_radius_weights_favour_the_dense_cluster_over_its_size():
    # a tight blob of 20 and a loose cloud of 20: same cluster sizes, different densities
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 0.05, (20, 2)), rng.normal(10, 1.5, (20, 2))])
    sel, w_cluster = facility_location(x, 10, weights="cluster")
    _, w_radius = facility_location(x, 10, weights="radius", radius=0.5)
    blob = sel < 20
    share = lambda w: w[blob].sum() / w.sum()  # noqa: E731
    assert share(w_cluster) == pytest.approx(0.5)  # cluster sizes keep the 50/50 mix
    assert w_radius[blob].sum() == 20 and w_radius[~blob].sum() < 20  # the loose cloud counts less
    assert share(w_radius) > 0.55


def test_radius_weights_of_identical_points_count_the_whole_class():
    sel, w = facility_location(np.ones((5, 3)), 2, weights="radius")
    assert w.tolist() == [5, 5]


def test_lazy_greedy_picks_the_same_medoids_when_gains_are_distinct():
    x = np.random.default_rng(3).normal(size=(60, 4))
    ref, _, _ = facility_location_reference(x, 6)
    assert facility_location(x, 6)[0].tolist() == ref.tolist()


def test_official_style_total_heap_is_not_greedy_but_ours_is():
    """The official heap stores F(S + e) totals, stale lower bounds; on this input it picks worse."""
    x = np.random.default_rng(11).normal(size=(80, 2))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    s = d.max() - d
    import heapq

    cur = np.zeros(len(x))
    heap = [(-s[:, e].sum(), e) for e in range(len(x))]  # totals F({e})
    heapq.heapify(heap)
    official: list[int] = []
    while len(official) < 20:
        _, e = heapq.heappop(heap)
        total = np.maximum(cur, s[:, e]).sum()  # F(S + e), not the gain
        if not heap or total >= -heap[0][0]:
            official.append(e)
            cur = np.maximum(cur, s[:, e])
        else:
            heapq.heappush(heap, (-total, e))
    ours, _ = facility_location(x, 20)
    assert _objective(x, ours) > _objective(x, np.asarray(official))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stochastic_greedy_is_close_to_greedy(seed):
    x = np.random.default_rng(seed).normal(size=(150, 6))
    greedy, _ = facility_location(x, 30)
    fast, w = facility_location(x, 30, stochastic=True, seed=seed)
    assert len(set(fast.tolist())) == 30 and w.sum() == 150
    assert _objective(x, fast) >= 0.97 * _objective(x, greedy)


def test_weights_are_the_sizes_of_the_clusters_each_medoid_serves():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (10, 2)), [[20.0, 20.0]]])
    sel, w = facility_location(x, 3)
    nearest = np.argmin(((x[:, None] - x[sel][None]) ** 2).sum(-1), 1)
    assert w.tolist() == np.bincount(nearest, minlength=3).tolist()
    assert sorted(w.tolist()) == [1, 10, 30]


def test_facility_location_bad_input():
    with pytest.raises(
        ValueError, match=r"budget must be in \[1, 3\].*fewer samples than its budget"
    ):
        facility_location(np.zeros((3, 2)), 4)
    with pytest.raises(ValueError, match=r"budget must be in \[1, 3\]"):
        facility_location(np.zeros((3, 2)), 0)
    with pytest.raises(ValueError, match=r"\(n, d\) matrix"):
        facility_location(np.zeros(3), 1)
    with pytest.raises(ValueError, match="NaN or inf"):
        facility_location(np.array([[0.0], [np.nan]]), 1)
    with pytest.raises(ValueError, match="epsilon"):
        facility_location(np.zeros((3, 2)), 1, stochastic=True, epsilon=1.0)


# ---------------------------------------------------------------------------- coresets


def test_select_coreset_is_per_class_and_finds_planted_clusters():
    # every class: a dense clean blob (40) and a few scattered points (8); half of each is kept
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for c in range(3):
        xs += [rng.normal(3 * c, 0.05, (40, 2)), rng.normal(0, 5, (8, 2))]
        ys += [c] * 48
    x, y = np.concatenate(xs), np.asarray(ys)
    idx, w = select_coreset(x, y, fraction=0.25, weights="cluster")
    assert len(idx) == 3 * 12 and w.sum() == len(y) and w.dtype == np.float32
    for c in range(3):
        mine = y[idx] == c
        assert mine.sum() == 12 and w[mine].sum() == 48
        blob = idx[mine] % 48 < 40  # positions 0..39 of each class block are the blob
        assert blob.any() and w[mine][blob].sum() >= 40 - 8  # the blob's medoids carry its mass


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_select_coreset_fraction_outside_0_1_is_an_error(fraction):
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        select_coreset(np.zeros((4, 2)), np.array([0, 0, 1, 1]), fraction=fraction)


def test_select_coreset_bad_labels():
    with pytest.raises(ValueError, match=r"labels\[1\] = 2 is outside \[0, 2\)"):
        select_coreset(np.zeros((3, 2)), np.array([0, 2, 1]), fraction=0.5, num_classes=2)
    with pytest.raises(ValueError, match="labels must be"):
        select_coreset(np.zeros((3, 2)), np.array([0, 1]), fraction=0.5)
    idx, w = select_coreset(np.eye(4), np.array([0, 0, 0, 1]), fraction=1.0)
    assert sorted(idx.tolist()) == [0, 1, 2, 3] and w.tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="weights must be one of 'cluster', 'radius'"):
        select_coreset(np.eye(4), np.array([0, 0, 0, 1]), fraction=0.5, weights="size")
    with pytest.raises(ValueError, match="radius must be > 0"):
        select_coreset(np.eye(4), np.array([0, 0, 0, 1]), fraction=0.5, radius=0.0)


@pytest.mark.parametrize("weights", ["cluster", "radius"])
def test_select_coreset_is_facility_location_per_class_on_odd_sizes(weights):
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(4), [13, 1, 29, 6])
    rng.shuffle(y)
    x = rng.normal(size=(len(y), 5))
    idx, w = select_coreset(x, y, fraction=0.4, weights=weights)
    at = 0
    for k in range(4):
        members = np.flatnonzero(y == k)
        budget = max(1, round(0.4 * len(members)))
        ref, _, ref_w = facility_location_reference(x[members], budget, weights=weights)
        assert idx[at : at + budget].tolist() == members[ref].tolist()
        assert w[at : at + budget].tolist() == ref_w.tolist()
        at += budget
    assert at == len(idx)


@pytest.mark.parametrize("weights", ["cluster", "radius"])
def test_random_subsets_are_weighted_by_the_same_rule(weights):
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), [11, 17, 4])
    x = rng.normal(size=(len(y), 3))
    idx, w = select_coreset(x, y, fraction=0.5, weights=weights, random=True, seed=5)
    again, _ = select_coreset(x, y, fraction=0.5, weights=weights, random=True, seed=5)
    other, _ = select_coreset(x, y, fraction=0.5, weights=weights, random=True, seed=6)
    assert idx.tolist() == again.tolist() and idx.tolist() != other.tolist()
    assert np.bincount(y[idx]).tolist() == [6, 8, 2]  # round(0.5 * n_c), banker's rounding
    for k in range(3):
        members = np.flatnonzero(y == k)
        mine = np.isin(idx, members)
        d = np.sqrt(((x[members][:, None] - x[idx[mine]][None]) ** 2).sum(-1))  # (n_c, k)
        if weights == "cluster":
            want = np.bincount(d.argmin(1), minlength=mine.sum())
        else:
            d_all = np.sqrt(((x[members][:, None] - x[members][None]) ** 2).sum(-1))
            want = (d <= 0.1 * d_all.max()).sum(0)
        assert w[mine].tolist() == want.tolist()


# ---------------------------------------------------------------------------- gradient proxies


@pytest.mark.parametrize(
    "model_fn", [lambda: nn.MLP(6, 4, hidden=(5,)), lambda: nn.MLP(6, 4, hidden=())]
)
def test_last_layer_gradients_equal_autograd(model_fn):
    torch.manual_seed(0)
    model = model_fn()
    x, y = torch.randn(9, 6), torch.randint(0, 4, (9,))
    got = last_layer_gradients(model, x, y, proxy="weight", batch_size=4)
    head = model.net[-1]
    for i in range(9):
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        want = torch.cat([head.weight.grad.flatten(), head.bias.grad])
        torch.testing.assert_close(got[i], want, rtol=1e-5, atol=1e-6)
    assert model.training  # mode restored


@pytest.mark.parametrize(
    "model_fn", [lambda: nn.MLP(6, 4, hidden=(5,)), lambda: nn.MLP(6, 4, hidden=())]
)
def test_input_gradients_equal_autograd(model_fn):
    torch.manual_seed(1)
    model = model_fn()
    x, y = torch.randn(9, 6), torch.randint(0, 4, (9,))
    got = last_layer_gradients(model, x, y, proxy="input", batch_size=4)
    head = model.net[-1]
    assert got.shape == (9, head.in_features)
    seen = []
    handle = head.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    for i in range(9):
        seen.clear()
        xi = x[i : i + 1].clone().requires_grad_()  # so h has a graph even with no hidden layer
        loss = F.cross_entropy(model(xi), y[i : i + 1])
        (want,) = torch.autograd.grad(loss, seen[0])  # dL/dh at the head's input
        torch.testing.assert_close(got[i], want[0], rtol=1e-5, atol=1e-6)
    handle.remove()
    with pytest.raises(ValueError, match="proxy must be one of 'weight', 'input'"):
        last_layer_gradients(model, x, y, proxy="logits")


def test_last_layer_gradients_bad_input():
    model = nn.MLP(3, 2, hidden=())
    with pytest.raises(ValueError, match=r"y\[1\] = 2 is outside \[0, 2\)"):
        last_layer_gradients(model, torch.zeros(2, 3), torch.tensor([0, 2]))
    with pytest.raises(TypeError, match="no nn.Linear"):
        last_layer_gradients(torch.nn.Conv1d(1, 1, 1), torch.zeros(2, 1, 3), torch.tensor([0, 0]))


# ---------------------------------------------------------------------------- the fit() hook


def test_crust_hook_warms_up_then_selects_weighted_coresets_each_epoch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.arange(60) % 3
    crust = CRUST(x, y, fraction=0.5, warmup_epochs=1, mixup=None, weights="cluster")
    model = nn.MLP(4, 3, hidden=(8,))
    assert crust.on_epoch_start(0, model) is None
    idx, w = crust.on_epoch_start(1, model)
    assert len(idx) == 30 and np.bincount(y[idx]).tolist() == [10, 10, 10]
    assert w.mean() == pytest.approx(1.0) and crust.weights.sum() == 60
    out = train.fit(model, (x, y), epochs=3, batch_size=10, hooks=[crust], progress=False)
    assert out.steps == 6 + 3 + 3  # one full epoch, then two epochs on 30 samples
    assert [h["epoch"] for h in crust.history] == [1, 1, 2]


def test_crust_mixup_mixes_only_with_same_label_coreset_members():
    n = 12
    x = torch.eye(n)  # each input names its sample
    y = np.arange(n) % 2
    crust = CRUST(x, y, fraction=0.5, warmup_epochs=0, mixup=(1.0, 1.0))
    seen = []
    model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(n, 2))
    model.register_forward_hook(lambda m, a, out: seen.append(a[0].detach().clone()))
    crust.attach(model)
    inputs, targets = crust.train_data
    train.fit(model, (inputs, targets), epochs=2, batch_size=4, hooks=[crust], progress=False)
    selected = set(crust.selected.tolist())
    for batch in seen:
        for row in batch:
            owners = torch.nonzero(row > 1e-6).squeeze(1).tolist()
            assert row.sum().item() == pytest.approx(1.0) and 1 <= len(owners) <= 2
            assert len({int(y[o]) for o in owners}) == 1  # same label
            if len(owners) == 2:
                assert set(owners) & selected  # the partner comes from the coreset
    model.eval()
    torch.testing.assert_close(model(torch.eye(n)[:2])[0], model[1](torch.eye(n)[0]))  # no mixing


def test_crust_mixup_without_indices_is_an_error():
    x, y = torch.randn(8, 3), np.arange(8) % 2
    crust = CRUST(x, y, fraction=0.5, warmup_epochs=0)
    model = nn.MLP(3, 2, hidden=())
    crust.attach(model)
    with pytest.raises(ValueError, match="needs the dataset index of every training sample"):
        train.fit(model, (x, y), epochs=1, batch_size=4, hooks=[crust], progress=False)


def test_crust_bad_config():
    with pytest.raises(ValueError, match="fraction"):
        CRUST(np.zeros((4, 2)), np.zeros(4, dtype=int), fraction=0.0)
    with pytest.raises(ValueError, match="mixup"):
        CRUST(np.zeros((4, 2)), np.zeros(4, dtype=int), mixup=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"y must be \(N,\)"):
        CRUST(np.zeros((4, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="proxy must be one of"):
        CRUST(np.zeros((4, 2)), np.zeros(4, dtype=int), proxy="bias")
    with pytest.raises(ValueError, match="weights must be one of"):
        CRUST(np.zeros((4, 2)), np.zeros(4, dtype=int), weights="uniform")


@pytest.mark.parametrize(("proxy", "weights"), [("input", "radius"), ("weight", "cluster")])
def test_crust_hook_passes_its_proxy_and_weights_to_the_selection(proxy, weights):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(45, 4)).astype(np.float32)
    y = np.arange(45) % 3
    model = nn.MLP(4, 3, hidden=(8,))
    for random in (False, True):
        crust = CRUST(x, y, warmup_epochs=0, proxy=proxy, weights=weights, random=random, seed=2)
        idx, w = crust.on_epoch_start(0, model)
        g = last_layer_gradients(model, x, y, proxy=proxy)
        want = select_coreset(g, y, fraction=0.5, weights=weights, random=random, seed=2)
        assert idx.tolist() == want[0].tolist() and crust.weights.tolist() == want[1].tolist()
        assert w.mean() == pytest.approx(1.0)


def test_random_subset_control_keeps_the_per_class_share_and_redraws_each_epoch():
    from takeaways.crust import RandomSubset

    y = np.repeat(np.arange(3), [10, 20, 1])
    rnd = RandomSubset(y, 0.5, warmup_epochs=2, seed=0)
    assert rnd.on_epoch_start(0, None) is None and rnd.on_epoch_start(1, None) is None
    a, w = rnd.on_epoch_start(2, None)
    b, _ = rnd.on_epoch_start(3, None)
    assert w is None and np.bincount(y[a]).tolist() == [5, 10, 1] and len(set(a)) == len(a)
    assert sorted(a.tolist()) != sorted(b.tolist())
    with pytest.raises(ValueError, match="fraction must be in"):
        RandomSubset(y, 0.0, warmup_epochs=0)


def test_coreset_purity_scores_each_selection_against_the_planted_mask():
    from takeaways.crust import CoresetPurity

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    flipped = np.arange(30) < 9
    crust = CRUST(x, y, fraction=0.5, warmup_epochs=1, mixup=None)
    purity = CoresetPurity(crust, flipped)
    model = nn.MLP(4, 3, hidden=(8,))
    crust.on_epoch_start(0, model)
    purity.on_epoch_end(0, model)  # warm-up: nothing selected, nothing scored
    idx, _ = crust.on_epoch_start(1, model)
    purity.on_epoch_end(1, model)
    ok = ~flipped[idx]
    w = crust.weights
    assert purity.clean == [pytest.approx(ok.mean())]
    assert purity.clean_weighted == [pytest.approx((w * ok).sum() / w.sum())]
