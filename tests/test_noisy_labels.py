"""The noisy-labels recipe (its config and judge, through the registry), `train.cross_val_probs`
and `takeaways find-mislabeled` on a user's own files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from takeaways import nn
from takeaways.data import read_rows
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
    rows = read_rows(tmp_path / "t.csv", label="kind")
    assert rows.classes == names and rows.kind == "signal"
    assert rows.source[0] == "line 2" and rows.source[-1] == "line 22"
    np.testing.assert_allclose(rows.x, x, atol=1e-5)
    assert np.array_equal(rows.y, y)
    np.savez(tmp_path / "t.npz", x=x, y=y)
    rows = read_rows(tmp_path / "t.npz")
    assert np.array_equal(rows.x, x) and np.array_equal(rows.y, y) and rows.source[3] == "index 3"
    from PIL import Image

    for c, name in enumerate(names):
        (tmp_path / "img" / name).mkdir(parents=True)
        for j in range(3):
            Image.fromarray(np.full((4, 4), 20 * c + j, dtype=np.uint8)).save(
                tmp_path / "img" / name / f"{j}.png"
            )
    rows = read_rows(tmp_path / "img")
    assert rows.kind == "image" and rows.classes == names and rows.source[4] == "bee/1.png"
    assert rows.y.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    np.testing.assert_allclose(
        rows.x[:, 0, 0, 0] * 255, [20 * c + j for c in range(3) for j in range(3)], atol=1e-3
    )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real entry point, in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "takeaways", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def test_find_mislabeled_cli_ranks_every_row_with_original_labels(tmp_path):
    x, y = _blobs(50, 3, seed=2)
    rng = np.random.default_rng(0)
    planted = rng.choice(len(y), size=12, replace=False)
    noisy = y.copy()
    noisy[planted] = (y[planted] + 1) % 3
    years = [1990, 2005, 2020]  # integer labels far from 0..C-1 stay as written
    _write_csv(tmp_path / "data.csv", x, [str(years[c]) for c in noisy])
    args = ["find-mislabeled", "data.csv", "--label", "kind", "--out", "out/ranked.csv"]
    args += ["--epochs", "8", "--lr", "1e-2", "--batch-size", "32", "--compare", "cleanlab"]
    run = _cli(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "out" / "ranked.csv") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == [
        "rank", "row", "source", "given_label", "preferred_label", "aum", "flagged",
        "cleanlab_flagged", "cleanlab_label_quality",
    ]  # fmt: skip
    assert sum(r["cleanlab_flagged"] == "True" for r in table) >= 6
    assert len(table) == len(y)  # every row, not only the flagged ones
    assert [int(r["rank"]) for r in table] == list(range(1, len(y) + 1))
    assert sorted(int(r["row"]) for r in table) == list(range(len(y)))
    assert [float(r["aum"]) for r in table] == sorted(float(r["aum"]) for r in table)
    for r in table:
        i = int(r["row"])
        assert r["source"] == f"line {i + 2}" and r["given_label"] == str(years[noisy[i]])
    flagged = {int(r["row"]) for r in table if r["flagged"] == "True"}
    assert 6 <= len(flagged) <= 24 and len(flagged & set(planted.tolist())) >= 10
    for i in flagged & set(planted.tolist()):
        assert table[[int(r["row"]) for r in table].index(i)]["preferred_label"] == str(years[y[i]])
    assert f"AUM flags {len(flagged)} of 150 rows" in run.stdout
    assert "warning" not in run.stderr


def test_find_mislabeled_cli_warns_when_the_model_memorises(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype(np.float32)  # features carry no label information
    _write_csv(tmp_path / "noise.csv", x, [str(v) for v in rng.integers(0, 2, 80)])
    run = _cli("find-mislabeled", "noise.csv", "--label", "kind", "--epochs", "40", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "labels planted wrong, so it memorises" in run.stderr
    assert "pass --out FILE.csv" in run.stdout


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
        (["find-mislabeled", "{tmp}/x.npy"], "is a single .npy array"),
        (["find-mislabeled", "{tmp}/latin.csv", "--label", "kind"], "--encoding latin-1"),
        (["find-mislabeled", "{tmp}/text.csv", "--label", "kind"], "find-mislabeled --text COLUMN"),
        (
            ["find-mislabeled", "{tmp}/blank.csv", "--label", "kind", "--text", "review"],
            "the text column 'review' is empty in every row",
        ),
        (
            ["find-mislabeled", "{tmp}/nums.csv", "--label", "kind", "--text", "review"],
            "holds only numbers; leave out --text",
        ),
        (
            ["find-mislabeled", "{tmp}/text.csv", "--label", "kind", "--text", "body"],
            "has no column 'body'; its columns are ['review', 'kind']",
        ),
        (["find-mislabeled", "{tmp}/x.npy", "--text", "review"], "is not a CSV"),
    ],
)
def test_find_mislabeled_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    x, y = _blobs(4, 2)
    _write_csv(tmp_path / "data.csv", x, [str(c) for c in y])
    _write_csv(tmp_path / "one.csv", x, ["0"] * len(y))
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "latin.csv").write_bytes("a,kind\n1,caf\xe9\n".encode("latin-1"))
    (tmp_path / "text.csv").write_text("review,kind\ngreat film,1\nawful,0\n")
    (tmp_path / "blank.csv").write_text("review,kind\n ,1\n,0\n")
    (tmp_path / "nums.csv").write_text("review,kind\n1.5,1\n2,0\n")
    run = _cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("takeaways: error: ") and needle in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_find_mislabeled_text_column_ranks_every_text(tmp_path):
    pytest.importorskip("transformers")
    good = ["a wonderful, moving film", "superb\racting", "loved every minute", "a delight"]
    bad = ["a dull mess", "boring and long", "awful script", "a waste of time"]
    rng = np.random.default_rng(0)
    texts = [(t, "fresh") for t in good * 8] + [(t, "rotten") for t in bad * 8]
    rows = [(t, lab if rng.random() > 0.1 else {"fresh": "rotten", "rotten": "fresh"}[lab])
            for t, lab in texts]  # fmt: skip
    with open(tmp_path / "reviews.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "review", "sentiment"])
        w.writerows([i, t, lab] for i, (t, lab) in enumerate(rows))
    run = _cli(
        "find-mislabeled", "reviews.csv", "--text", "review", "--label", "sentiment",
        "--out", "ranked.csv", "--epochs", "30", "--lr", "1e-2", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "ranked.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0])[-1] == "review" and len(table) == len(rows)
    for r in table:
        assert (r["review"], r["given_label"]) == rows[int(r["row"])]
    flipped = {i for i, ((t, lab), (_, given)) in enumerate(zip(texts, rows)) if lab != given}
    top = {int(r["row"]) for r in table[: len(flipped)]}
    assert len(top & flipped) >= 0.8 * len(flipped)  # the flipped texts rank first
    assert "embedding 64 texts of column 'review'" in run.stdout


# ---------------------------------------------------------------------------- config and judge


def _recipe():
    from takeaways.recipes import get_recipe

    return get_recipe("noisy-labels")


def test_noise_settings_are_parsed_once_into_typed_values():
    from takeaways.data import Noise
    from takeaways.recipes import resolve_config

    cfg = resolve_config(_recipe(), "smoke", ["noises=symmetric:0.5,symmetric:0.50,pairflip:0.4"])
    assert cfg.noises == (Noise("symmetric", 0.5), Noise("pairflip", 0.4))
    assert cfg.epochs == 2 and resolve_config(_recipe(), "demo").max_train is None
    with pytest.raises(ValueError, match="noise 'gauss:0.2' must be kind:rate"):
        resolve_config(_recipe(), "smoke", ["noises=gauss:0.2"])
    with pytest.raises(ValueError, match="epochs and max_train must be >= 1"):
        resolve_config(_recipe(), "smoke", ["epochs=0"])


def test_crust_settings_default_to_the_cleanest_coresets_and_are_checked():
    from takeaways.recipes import resolve_config

    cfg = resolve_config(_recipe(), "smoke")
    assert (cfg.crust_proxy, cfg.crust_weights, cfg.ablation) == (
        "input",
        "radius",
        ("weight", "cluster"),
    )
    cfg = resolve_config(_recipe(), "smoke", ["crust_ablation=", "crust_weights=cluster"])
    assert cfg.ablation is None and cfg.crust_weights == "cluster"
    with pytest.raises(ValueError, match="weights one of cluster, radius; got 'input', 'size'"):
        resolve_config(_recipe(), "smoke", ["crust_weights=size"])
    with pytest.raises(ValueError, match="crust_ablation is 'proxy,weights' or ''"):
        resolve_config(_recipe(), "smoke", ["crust_ablation=weight"])
    with pytest.raises(ValueError, match="'input,radius' is CRUST's own setting"):
        resolve_config(_recipe(), "smoke", ["crust_ablation=input,radius"])


def _metrics(
    aum: list[float], cleanlab: list[float], crust: list[float], noisy: list[float]
) -> dict:
    """Stored metrics for datasets (digits, mnist) x 3 seeds: per-seed lists split in halves."""
    m: dict = {"aum_overhead": {"overhead_cpu": 0.03, "dataset": "mnist"}}
    pooled = {}
    for label in ("symmetric 20%", "symmetric 50%", "pairflip 40%"):
        for i, name in enumerate(("digits", "mnist")):
            part = slice(3 * i, 3 * i + 3)
            m[f"{name} {label}"] = {
                "aum_f1_seeds": aum[part], "cleanlab_f1_seeds": cleanlab[part],
                "acc_crust_seeds": crust[part], "acc_noisy_seeds": noisy[part],
                "acc_noisy": float(np.mean(noisy[part])),
            }  # fmt: skip
        pooled = {"acc_noisy": float(np.mean(noisy)), "acc_oracle": float(np.mean(noisy)) + 0.1,
                  "acc_random_subset": float(np.mean(noisy)), "aum_f1": float(np.mean(aum)),
                  "cleanlab_f1": float(np.mean(cleanlab))}  # fmt: skip
        m[f"mean over datasets, {label}"] = pooled
    return m


def _cfg():
    from takeaways.recipes import resolve_config

    return resolve_config(_recipe(), "demo", ["datasets=digits,mnist", "seeds=3"])


def test_judge_pairs_arms_over_datasets_and_seeds():
    noisy = [0.70, 0.72, 0.71, 0.80, 0.82, 0.78]
    better = [0.90, 0.91, 0.89, 0.85, 0.86, 0.84]
    j = _recipe().judge(
        _metrics(better, [v - 0.05 for v in better], [v + 0.08 for v in noisy], noisy), _cfg()
    )
    assert all(c.passed for c in j.checks), j.checks
    aum20, aum40, crust, overhead = j.targets
    assert aum20.met and aum20.measured == pytest.approx(0.05) and aum20.interval[0] > 0
    assert crust.met and crust.measured == pytest.approx(0.08) and crust.goal == 0.05
    assert overhead.met and "CPU time" in overhead.name
    assert j.finding.startswith("AUM's F1 minus cleanlab's was +0.050") and j.advice.startswith(
        "Use AUM when"
    )
    assert "a random subset of the same size: +0.000)" in j.finding  # no ablation stored
    m = _metrics(better, [v - 0.05 for v in better], [v + 0.08 for v in noisy], noisy)
    m["mean over datasets, symmetric 50%"]["acc_crust_ablation"] = float(np.mean(noisy)) + 0.02
    j2 = _recipe().judge(m, _cfg())
    assert "+0.000; CRUST's ablation: +0.020)" in j2.finding
    assert [t.measured for t in j2.targets] == [t.measured for t in j.targets]  # judged alike
    # a mean gain past the goal that the seed spread swallows is not met: +0.08, one seed -0.05
    noisy_gain = [v + d for v, d in zip(noisy, [0.20, 0.15, 0.10, -0.05, 0.05, 0.03])]
    j = _recipe().judge(_metrics(better, better, noisy_gain, noisy), _cfg())
    assert (
        not j.targets[0].met
        and not j.targets[2].met
        and j.targets[2].measured == pytest.approx(0.08)
        and j.targets[2].interval[0] < 0.05
    )
    assert "do not expect CRUST" in j.advice


def test_judge_fails_its_checks_on_a_chance_baseline_and_on_missing_seeds():
    chance = [0.11, 0.12, 0.10, 0.13, 0.12, 0.11]
    j = _recipe().judge(_metrics(chance, chance, chance, chance), _cfg())
    failed = [c.name for c in j.checks if not c.passed]
    assert failed == [
        "the noisy baseline learned: test accuracy >= chance + 10 points, every dataset and noise"
    ]
    m = _metrics(chance, chance, chance, chance)
    del m["mnist symmetric 50%"]["acc_crust_seeds"]
    j = _recipe().judge(m, _cfg())
    assert not j.checks[0].passed and "rerun the full preset" in j.checks[0].detail
    assert "symmetric 50% acc_crust" in j.checks[0].detail
    assert not j.targets[2].met and "rerun the full preset" in j.targets[2].rule


def test_published_full_result_rejudges_inconclusive_without_per_seed_values(tmp_path):
    """The published result, stripped of its per-seed lists (as older runs wrote it)."""
    from takeaways.recipes import rejudge

    src = Path(__file__).resolve().parents[1] / "results" / "full" / "noisy-labels.json"
    raw = json.loads(src.read_text())
    for row in raw["metrics"].values():
        for key in [k for k in row if k.endswith("_seeds")] if isinstance(row, dict) else []:
            del row[key]
    (tmp_path / "noisy-labels.json").write_text(json.dumps(raw))
    r = rejudge(tmp_path / "noisy-labels.json")
    assert r.verdict.startswith("inconclusive: per-(dataset, seed) values")
    assert [c.passed for c in r.checks] == [False, True, True]
    assert [t.met for t in r.targets] == [False, False, False, True]  # no interval, no beat


def test_finding_says_per_dataset_where_aum_cleaning_helped_and_hurt():
    noisy = [0.70, 0.72, 0.71, 0.80, 0.82, 0.78]
    m = _metrics(noisy, noisy, noisy, noisy)
    rows = {"digits symmetric 20%": [0.75, 0.77, 0.76], "mnist symmetric 20%": [0.76, 0.78, 0.75],
            "digits symmetric 50%": [0.65, 0.77, 0.71]}  # fmt: skip
    for key, aum in rows.items():
        m[key]["acc_aum_seeds"] = aum
    finding = _recipe().judge(m, _cfg()).finding
    helped, hurt, unclear = (
        finding.split(f"{w} on ")[1].split(";")[0] for w in ("helped", "hurt", "noise")
    )
    assert helped == "digits symmetric 20% +5.0 [+5.0, +5.0]"
    assert hurt == "mnist symmetric 20% -3.7 [-5.1, -2.2]"
    assert unclear.startswith("digits symmetric 50% +0.0 [")
    assert (
        "AUM's flagged rows"
        not in _recipe().judge(_metrics(noisy, noisy, noisy, noisy), _cfg()).finding
    )
