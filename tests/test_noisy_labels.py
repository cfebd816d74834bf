"""The noisy-labels recipe's pieces and `takeaways find-mislabeled` on a user's own files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from takeaways import nn
from takeaways.cli import _rows_in_file_order, main
from takeaways.train import cross_val_probs


def _blobs(n_per_class: int = 50, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, 6)) * 4
    y = np.repeat(np.arange(classes), n_per_class)
    return (centers[y] + rng.normal(size=(len(y), 6))).astype(np.float32), y


def _write_csv(path: Path, x: np.ndarray, labels: list[str]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f"f{j}" for j in range(x.shape[1])] + ["kind"])
        for row, lab in zip(x, labels):
            w.writerow([f"{v:.5f}" for v in row] + [lab])


def test_cross_val_probs_are_out_of_sample_probabilities():
    x, y = _blobs(20, 2)
    probs = cross_val_probs(
        lambda k: nn.MLP(6, k, hidden=(8,)), x, y, folds=4, epochs=2, batch_size=16, lr=1e-2
    )
    assert probs.shape == (40, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="class 1 has 2 samples, fewer than 4 folds"):
        cross_val_probs(
            lambda k: nn.MLP(6, k), x[:22], y[:22], folds=4, epochs=1, batch_size=8, lr=1e-3
        )


def test_rows_come_back_in_file_order(tmp_path):
    x, y = _blobs(7, 3)
    names = ["ant", "bee", "cat"]
    _write_csv(tmp_path / "t.csv", x, [names[c] for c in y])
    got_x, got_y, classes, kind, rows = _rows_in_file_order(tmp_path / "t.csv", "kind")
    assert classes == names and kind == "signal" and rows[0] == "line 2" and rows[-1] == "line 22"
    np.testing.assert_allclose(got_x, x, atol=1e-5)
    assert np.array_equal(got_y, y)
    np.savez(tmp_path / "t.npz", x=x, y=y)
    got_x, got_y, *_, rows = _rows_in_file_order(tmp_path / "t.npz", None)
    assert np.array_equal(got_x, x) and np.array_equal(got_y, y) and rows[3] == "index 3"
    from PIL import Image

    for c, name in enumerate(names):
        (tmp_path / "img" / name).mkdir(parents=True)
        for j in range(3):
            Image.fromarray(np.full((4, 4), 20 * c + j, dtype=np.uint8)).save(
                tmp_path / "img" / name / f"{j}.png"
            )
    got_x, got_y, classes, kind, rows = _rows_in_file_order(tmp_path / "img", None)
    assert (
        kind == "image"
        and classes == names
        and rows[4] == "bee/1.png"
        and got_y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    )
    np.testing.assert_allclose(
        got_x[:, 0, 0, 0] * 255, [20 * c + j for c in range(3) for j in range(3)], atol=1e-3
    )


def test_find_mislabeled_cli_flags_the_planted_rows(tmp_path, capsys):
    x, y = _blobs(50, 3, seed=2)
    rng = np.random.default_rng(0)
    planted = rng.choice(len(y), size=12, replace=False)
    noisy = y.copy()
    noisy[planted] = (y[planted] + 1) % 3
    names = ["ant", "bee", "cat"]
    _write_csv(tmp_path / "data.csv", x, [names[c] for c in noisy])
    out = tmp_path / "ranked.csv"
    args = ["find-mislabeled", str(tmp_path / "data.csv"), "--label", "kind", "--out", str(out)]
    assert (
        main(
            args + ["--epochs", "8", "--lr", "1e-2", "--batch-size", "32", "--compare", "cleanlab"]
        )
        == 0
    )
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "rank", "row", "given_label", "preferred_label", "aum", "cleanlab_flagged", "cleanlab_label_quality",
    ]  # fmt: skip
    lines = {int(r["row"].split()[1]) - 2 for r in rows}  # data line 2 is row 0
    assert len(lines & set(planted.tolist())) >= 10 and len(lines) <= 16
    for r in rows:
        i = int(r["row"].split()[1]) - 2
        if i in planted:
            assert r["given_label"] == names[noisy[i]] and r["preferred_label"] == names[y[i]]
    assert [float(r["aum"]) for r in rows] == sorted(float(r["aum"]) for r in rows)
    assert "AUM flags" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["find-mislabeled", "{tmp}/data.csv"], "name its label column with --label"),
        (["find-mislabeled", "{tmp}/missing.csv", "--label", "kind"], "does not exist"),
        (["find-mislabeled", "{tmp}/data.csv", "--label", "nope"], "no label column 'nope'"),
        (
            ["find-mislabeled", "{tmp}/data.csv", "--label", "kind", "--model", "cnn"],
            "--model cnn needs images",
        ),
        (["find-mislabeled", "{tmp}/one.csv", "--label", "kind"], "single class"),
    ],
)
def test_find_mislabeled_bad_input_exits_2_with_one_line(tmp_path, capsys, args, needle):
    x, y = _blobs(4, 2)
    _write_csv(tmp_path / "data.csv", x, [str(c) for c in y])
    _write_csv(tmp_path / "one.csv", x, ["0"] * len(y))
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("takeaways: error: ") and needle in err and err.count("\n") == 1
