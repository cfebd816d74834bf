"""Planted label noise is exact; long-tail subsets follow the exponential profile exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeaways.data import ASYMMETRIC_MNIST, corrupt_labels, long_tail


def balanced(n_per_class: int, num_classes: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), n_per_class))


# ---------------------------------------------------------------------------- corrupt_labels


@pytest.mark.parametrize("kind", ["symmetric", "pairflip", "asymmetric"])
@pytest.mark.parametrize(
    ("n", "rate", "expected"),
    [
        (1000, 0.0, 0),
        (1000, 0.2, 200),
        (1000, 0.45, 450),
        (999, 0.25, 250),
        (10, 0.05, 1),
    ],
)
def test_exactly_round_rate_n_labels_flip(kind, n, rate, expected):
    y = np.arange(n) % 10
    noisy, flipped = corrupt_labels(y, rate=rate, kind=kind, seed=3)
    assert noisy.dtype == np.int64 and flipped.dtype == bool and flipped.shape == (n,)
    assert flipped.sum() == expected
    assert np.array_equal(flipped, noisy != y)
    assert np.array_equal(noisy[~flipped], y[~flipped])


def test_rate_one_flips_every_label_and_rate_zero_none():
    y = balanced(20)
    noisy, flipped = corrupt_labels(y, rate=1.0, kind="symmetric")
    assert flipped.all() and (noisy != y).all()
    noisy, flipped = corrupt_labels(y, rate=0.0)
    assert not flipped.any() and np.array_equal(noisy, y)


def test_symmetric_targets_are_uniform_over_the_other_classes():
    y = np.repeat(np.arange(4), 6000)
    noisy, _ = corrupt_labels(y, rate=1.0, kind="symmetric", seed=0)
    for c in range(4):
        share = np.bincount(noisy[y == c], minlength=4) / 6000
        assert share[c] == 0.0
        np.testing.assert_allclose(np.delete(share, c), 1 / 3, atol=0.025)


def test_pairflip_moves_each_class_to_the_next():
    y = balanced(50, num_classes=7)
    noisy, flipped = corrupt_labels(y, rate=0.3, kind="pairflip", seed=1)
    assert np.array_equal(noisy[flipped], (y[flipped] + 1) % 7)
    assert set(y[flipped].tolist()) == set(range(7))  # the wrap-around 6 -> 0 happens too


def test_asymmetric_uses_the_digit_map_and_only_its_classes():
    assert ASYMMETRIC_MNIST == {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}
    y = balanced(100)
    noisy, flipped = corrupt_labels(y, rate=0.4, kind="asymmetric", seed=2)
    assert flipped.sum() == 400
    assert set(y[flipped].tolist()) == {2, 3, 5, 6, 7}
    assert all(ASYMMETRIC_MNIST[a] == b for a, b in zip(y[flipped], noisy[flipped]))
    # all 500 samples of the five mapped classes is the most it can flip
    assert corrupt_labels(y, rate=0.5, kind="asymmetric")[1].sum() == 500
    with pytest.raises(ValueError, match="can flip only the 500 samples .* asks for 510"):
        corrupt_labels(y, rate=0.51, kind="asymmetric")
    with pytest.raises(ValueError, match="digit map .* with 4 classes use kind='pairflip'"):
        corrupt_labels(np.arange(8) % 4, rate=0.1, kind="asymmetric")


def test_seed_makes_it_reproducible():
    y = balanced(30)
    a = corrupt_labels(y, rate=0.4, seed=7)
    b = corrupt_labels(y, rate=0.4, seed=7)
    c = corrupt_labels(y, rate=0.4, seed=8)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])


def test_num_classes_allows_labels_beyond_the_largest_present():
    y = np.zeros(100, dtype=np.int64)  # only class 0 present, but 3 classes exist
    noisy, _ = corrupt_labels(y, rate=1.0, kind="symmetric", num_classes=3, seed=0)
    assert set(noisy.tolist()) == {1, 2}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"rate": 0.1, "kind": "uniform"},
            ValueError,
            "unknown noise kind 'uniform'; valid kinds: symmetric, pairflip, asymmetric",
        ),
        ({"rate": 1.5}, ValueError, r"rate must be in \[0, 1\], got 1.5"),
        ({"rate": -0.1}, ValueError, r"rate must be in \[0, 1\], got -0.1"),
        ({"rate": 0.1, "num_classes": 3}, ValueError, r"y\[3\] = 3 is out of range for 3 classes"),
    ],
)
def test_corrupt_labels_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        corrupt_labels(np.array([0, 1, 2, 3, 1]), **kwargs)


def test_corrupt_labels_rejects_negative_and_float_labels():
    with pytest.raises(ValueError, match=r"y\[1\] = -2 is out of range"):
        corrupt_labels(np.array([0, -2, 1]), rate=0.5)
    with pytest.raises(TypeError, match="integer class ids, got dtype float64"):
        corrupt_labels(np.array([0.0, 1.0]), rate=0.5)
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        corrupt_labels(np.zeros(5, dtype=int), rate=0.5)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    num_classes=st.integers(2, 12),
    rate=st.floats(0.0, 1.0),
    kind=st.sampled_from(["symmetric", "pairflip"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_flip_count_and_mask_property(n, num_classes, rate, kind, seed):
    y = np.random.default_rng(seed).integers(0, num_classes, size=n)
    noisy, flipped = corrupt_labels(y, rate=rate, kind=kind, num_classes=num_classes, seed=seed)
    assert flipped.sum() == int(np.floor(rate * n + 0.5))
    assert np.array_equal(flipped, noisy != y)
    assert noisy.min() >= 0 and noisy.max() < num_classes


# ---------------------------------------------------------------------------- long_tail


@pytest.mark.parametrize(
    ("ratio", "profile"),
    [
        (10, [500, 387, 299, 232, 179, 139, 107, 83, 64, 50]),
        (100, [500, 299, 179, 107, 64, 38, 23, 13, 8, 5]),
        (1, [500] * 10),
    ],
)
def test_long_tail_follows_the_exponential_profile(ratio, profile):
    y = balanced(500)
    labeled, unlabeled = long_tail(y, imbalance_ratio=ratio, seed=0)
    assert np.bincount(y[labeled], minlength=10).tolist() == profile
    assert np.array_equal(np.sort(np.concatenate([labeled, unlabeled])), np.arange(len(y)))
    assert np.all(np.diff(labeled) > 0) and np.all(np.diff(unlabeled) > 0)


def test_long_tail_uses_the_smallest_class_as_head_size():
    y = np.concatenate([np.full(300, 0), np.full(120, 1), np.full(200, 2)])
    labeled, _ = long_tail(y, imbalance_ratio=4, seed=0)
    assert np.bincount(y[labeled]).tolist() == [120, 60, 30]


def test_long_tail_is_seeded():
    y = balanced(100)
    a, _ = long_tail(y, imbalance_ratio=10, seed=1)
    b, _ = long_tail(y, imbalance_ratio=10, seed=1)
    c, _ = long_tail(y, imbalance_ratio=10, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(np.bincount(y[a]), np.bincount(y[c]))


def test_long_tail_errors():
    y = balanced(20)
    with pytest.raises(ValueError, match="imbalance_ratio must be >= 1"):
        long_tail(y, imbalance_ratio=0.5)
    with pytest.raises(ValueError, match="class 9 would keep 0 .* use imbalance_ratio <= 20"):
        long_tail(y, imbalance_ratio=21)
    with pytest.raises(ValueError, match="class 1 has no samples in y"):
        long_tail(np.array([0, 0, 2, 2]), imbalance_ratio=2)


# ---------------------------------------------------------------------------- Noise, detection_scores


def test_parse_noise_gives_a_typed_setting_once():
    from takeaways.data import Noise, parse_noise

    n = parse_noise("symmetric:0.50")
    assert n == Noise("symmetric", 0.5) == parse_noise(n) and str(n) == "symmetric:0.5"
    assert n.label == "symmetric 50%" and parse_noise(" pairflip:0.4").label == "pairflip 40%"
    assert len({parse_noise("symmetric:0.2"), parse_noise("symmetric:0.20")}) == 1
    y = np.repeat(np.arange(10), 20)
    noisy, flipped = parse_noise("pairflip:0.25").apply(y, seed=3)
    expect = corrupt_labels(y, rate=0.25, kind="pairflip", seed=3)
    assert np.array_equal(noisy, expect[0]) and np.array_equal(flipped, expect[1])


@pytest.mark.parametrize(
    "text", ["uniform:0.2", "symmetric", "symmetric:abc", "symmetric:0", "pairflip:1.0"]
)
def test_parse_noise_errors_are_one_line(text):
    from takeaways.data import Noise, parse_noise

    with pytest.raises(
        ValueError, match="must be kind:rate with kind symmetric, pairflip, asymmetric"
    ) as e:
        parse_noise(text)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="0 < rate < 1"):
        Noise("symmetric", 1.5)


def test_detection_scores_against_a_planted_mask():
    from takeaways.data import detection_scores

    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    flagged = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    p, r, f1 = detection_scores(flagged, truth)
    assert (p, r) == (0.75, 0.75) and f1 == pytest.approx(0.75)
    assert detection_scores(np.zeros(8, bool), truth) == (0.0, 0.0, 0.0)
    assert detection_scores(truth, truth) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="flagged has shape"):
        detection_scores(flagged[:3], truth)
