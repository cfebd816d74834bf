"""torchrun with 2 CPU processes (gloo) gives the single-process result; gathers are exact."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from takeaways import distributed
from torchrun_helper import ROOT, torchrun, torchrun_env


def test_shard_indices_union_of_rank_batches_is_the_single_process_batch(monkeypatch):
    single = distributed.shard_indices(96, epoch=3, seed=7)
    world, per_rank = 2, 8
    shards = []
    for r in range(world):
        monkeypatch.setattr(distributed, "world_size", lambda: world)
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        shards.append(distributed.shard_indices(96, epoch=3, seed=7))
    for i in range(96 // (world * per_rank)):
        union = torch.cat([s[i * per_rank : (i + 1) * per_rank] for s in shards])
        assert torch.equal(union.sort().values, single[i * 16 : (i + 1) * 16].sort().values)


def test_shard_indices_pads_to_equal_counts(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    sizes = []
    for r in range(4):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        sizes.append(len(distributed.shard_indices(10, epoch=0, seed=0)))
    assert sizes == [3, 3, 3, 3]


def test_reduce_per_sample_single_process():
    vals = torch.tensor([1.0, 2.0, 3.0, 4.0])
    idx = torch.tensor([0, 2, 2, 4])
    sums, counts = distributed.reduce_per_sample(vals, idx, 5)
    assert sums.tolist() == [1.0, 0.0, 5.0, 0.0, 4.0]
    assert counts.tolist() == [1, 0, 2, 0, 1]
    with pytest.raises(ValueError, match="indices must lie in"):
        distributed.reduce_per_sample(vals, torch.tensor([0, 1, 2, 9]), 5)
    with pytest.raises(ValueError, match="one index per row"):
        distributed.reduce_per_sample(vals, idx[:3], 5)


@pytest.mark.slow
def test_two_process_fit_matches_single_process(tmp_path):
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    r1 = torchrun(1, "tests/ddp_worker.py", str(one))
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = torchrun(2, "tests/ddp_worker.py", str(two))
    assert r2.returncode == 0, r2.stderr[-2000:]
    a, b = torch.load(one), torch.load(two)
    assert a["world"] == 1 and b["world"] == 2
    for k in a["state"]:
        torch.testing.assert_close(a["state"][k], b["state"][k], atol=1e-5, rtol=1e-4)
    assert a["history"][-1]["eval_accuracy"] == pytest.approx(
        b["history"][-1]["eval_accuracy"], abs=1e-3
    )
    # per-sample state gathered across ranks covers every sample exactly once per epoch
    assert b["counts"].tolist() == [1] * 1280
    torch.testing.assert_close(a["loss_sums"], b["loss_sums"], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_recipe_under_torchrun_matches_single_process(tmp_path):
    r = torchrun(
        2,
        "-m",
        "takeaways",
        "run",
        "baseline-digits",
        "--preset",
        "smoke",
        "--results",
        str(tmp_path / "ddp"),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    ddp = json.loads((tmp_path / "ddp" / "smoke" / "baseline-digits.json").read_text())
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "takeaways",
            "run",
            "baseline-digits",
            "--preset",
            "smoke",
            "--results",
            str(tmp_path / "one"),
        ],
        env=torchrun_env(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "smoke" / "baseline-digits.json").read_text())
    assert ddp["machine"]["world_size"] == 2 and one["machine"]["world_size"] == 1
    # the 1,437 training images do not split evenly, so one padded sample per epoch differs
    assert ddp["metrics"]["cnn_test_accuracy"] == pytest.approx(
        one["metrics"]["cnn_test_accuracy"], abs=0.02
    )


def test_layer_drop_under_torchrun_matches_single_process(tmp_path):
    """Dropped blocks leave parameters without gradients: DDP needs find_unused_parameters."""
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    r1 = torchrun(1, "tests/ddp_layerdrop_worker.py", str(one))
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = torchrun(2, "tests/ddp_layerdrop_worker.py", str(two))
    assert r2.returncode == 0, r2.stderr[-2000:]
    a, b = torch.load(one), torch.load(two)
    assert a["world"] == 1 and b["world"] == 2
    assert a["dropped"] > 0 and a["dropped"] == b["dropped"]  # the same gates on every rank
    for k in a["state"]:
        torch.testing.assert_close(a["state"][k], b["state"][k], atol=1e-5, rtol=1e-4)


def test_layer_drop_on_a_hf_pre_ln_model_undertorchrun(tmp_path):
    """A transformers RobertaPreLayerNorm classifier with dropped layers trains under DDP."""
    pytest.importorskip("transformers")
    out = tmp_path / "hf.pt"
    r = torchrun(2, "tests/ddp_layerdrop_worker.py", str(out), "hf")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "not used" not in r.stderr  # DDP's error for parameters without a gradient
    a, b = torch.load(out), torch.load(f"{out}.rank1")
    assert a["world"] == b["world"] == 2
    assert a["dropped"] > 0 and a["dropped"] == b["dropped"]  # the same gates on both ranks
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k
