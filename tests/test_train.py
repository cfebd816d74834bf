"""fit(): learns, resumes bit-identically, feeds hooks the right indices, schedules, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from takeaways import data
from takeaways import nn as tnn
from takeaways.train import (
    BatchInfo,
    evaluate,
    fit,
    lr_factor,
    pooled_features,
    probe_score,
    seed_everything,
)


def blobs(n: int = 256, classes: int = 3, dim: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 3
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, dim, generator=g)
    return x, y


def mlp(dim: int = 8, classes: int = 3, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return tnn.MLP(dim, classes, hidden=(32,), dropout=dropout)


def test_fit_learns_digits_with_cnn():
    digits = data.load("digits")
    seed_everything(0)
    model = tnn.SmallCNN(in_channels=1, num_classes=10, width=16, image_size=8)
    out = fit(
        model, digits.train, epochs=10, lr=1e-2, warmup=0.1, eval_data=digits.test, progress=False
    )
    assert out.final["eval_accuracy"] >= 0.95
    assert out.history[-1]["loss"] < out.history[0]["loss"] / 5
    assert len(out.history) == 10 and out.steps == 10 * math.ceil(len(digits.train) / 64)


def test_same_seed_same_weights_and_different_seed_differs():
    x, y = blobs()
    a, b, c = mlp(dropout=0.2), mlp(dropout=0.2), mlp(dropout=0.2)
    fit(a, (x, y), epochs=2, seed=1, progress=False)
    fit(b, (x, y), epochs=2, seed=1, progress=False)
    fit(c, (x, y), epochs=2, seed=2, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


class StopAt:
    """A hook that interrupts training at a given epoch, as a crash or Ctrl-C would."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_batch(self, info: BatchInfo) -> None:
        if info.epoch == self.epoch:
            raise KeyboardInterrupt


def test_resume_after_interruption_is_bit_identical(tmp_path):
    x, y = blobs()
    kw = dict(epochs=4, batch_size=32, lr=5e-3, seed=3, progress=False, eval_data=(x, y))
    ref = mlp(dropout=0.3)
    ref_out = fit(ref, (x, y), **kw)

    ckpt = tmp_path / "run.pt"
    first = mlp(dropout=0.3)
    with pytest.raises(KeyboardInterrupt):
        fit(first, (x, y), checkpoint=ckpt, hooks=[StopAt(2)], **kw)
    assert ckpt.exists()
    assert not list(tmp_path.glob("*.tmp*"))  # nothing half-written left behind

    resumed = mlp(dropout=0.3)
    out = fit(resumed, (x, y), checkpoint=ckpt, **kw)
    assert out.resumed_from_epoch == 1  # epochs 0 and 1 were done
    for p, q in zip(ref.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert [r["loss"] for r in out.history] == [r["loss"] for r in ref_out.history]


def _finished_run(tmp_path, **kw):
    x, y = blobs()
    ckpt = tmp_path / "run.pt"
    base = dict(epochs=2, batch_size=32, lr=5e-3, seed=3, progress=False, checkpoint=ckpt)
    fit(mlp(), (x, y), **{**base, **kw})
    return x, y, base


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (dict(lr=1e-3), "(lr 0.005 -> 0.001)"),
        (dict(seed=4, weight_decay=0.0), "(weight_decay 0.01 -> 0.0; seed 3 -> 4)"),
        (
            dict(batch_size=64, schedule="linear"),
            "(schedule 'cosine' -> 'linear'; batch_size 32 -> 64)",
        ),
        (dict(epochs=5), "(epochs 2 -> 5); pass resume='extend' to train it on to 5 epochs"),
        (dict(optimizer="sgd"), "(optimizer 'adamw' -> 'sgd')"),
        (dict(data="relabel"), "(data content)"),
        (dict(data="fewer"), "(data rows 256 -> 200)"),
        (dict(model="wider"), "(model parameter names or shapes)"),
    ],
)
def test_a_checkpoint_of_a_different_run_is_refused_naming_what_differs(tmp_path, change, needle):
    x, y, base = _finished_run(tmp_path)
    data, model = change.pop("data", None), change.pop("model", None)
    if data == "relabel":
        y = y.clone()
        y[7] = (y[7] + 1) % 3
    elif data == "fewer":
        x, y = x[:200], y[:200]
    net = tnn.MLP(8, 3, hidden=(64,)) if model == "wider" else mlp()
    before = [p.clone() for p in net.parameters()]
    with pytest.raises(ValueError) as e:
        fit(net, (x, y), **{**base, **change})
    msg = str(e.value)
    assert msg.startswith(f"checkpoint {base['checkpoint']} is from a different run ")
    assert needle in msg and "\n" not in msg
    assert msg.endswith(
        f"to start fresh, delete {base['checkpoint']}, pass another checkpoint path "
        "or resume=False (overwrites it)"
    )
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters()))  # nothing loaded


def test_rerunning_a_finished_run_with_the_same_settings_returns_it(tmp_path):
    x, y, base = _finished_run(tmp_path)
    out = fit(mlp(), (x, y), **base)
    assert out.resumed_from_epoch == 1 and len(out.history) == 2


def test_resume_extend_trains_a_finished_run_for_more_epochs(tmp_path):
    x, y, base = _finished_run(tmp_path)
    two = mlp()
    fit(two, (x, y), **base)  # loads the finished 2-epoch weights
    more = mlp()
    out = fit(more, (x, y), **{**base, "epochs": 4}, resume="extend")
    assert out.resumed_from_epoch == 1 and [r["epoch"] for r in out.history] == [1, 2, 3, 4]
    assert out.steps == 4 * 8
    assert any(not torch.equal(p, q) for p, q in zip(two.parameters(), more.parameters()))
    again = fit(mlp(), (x, y), **{**base, "epochs": 4})  # the checkpoint now is the 4-epoch run
    assert again.resumed_from_epoch == 3
    with pytest.raises(
        ValueError, match=r"has 4 epochs done, more than epochs=3; pass epochs >= 4"
    ):
        fit(mlp(), (x, y), **{**base, "epochs": 3}, resume="extend")
    with pytest.raises(ValueError, match=r"\(lr 0.005 -> 0.001\)"):  # extend allows epochs only
        fit(mlp(), (x, y), **{**base, "epochs": 6, "lr": 1e-3}, resume="extend")
    with pytest.raises(ValueError, match="resume must be True, False or 'extend'; got 'yes'"):
        fit(mlp(), (x, y), **base, resume="yes")


def test_a_checkpoint_without_a_fingerprint_is_refused_and_resume_false_overwrites_it(tmp_path):
    x, y = blobs()
    ckpt = tmp_path / "old.pt"
    torch.save({"model": mlp().state_dict(), "epoch": 1, "step": 16, "history": []}, ckpt)
    kw = dict(epochs=1, batch_size=32, progress=False, checkpoint=ckpt)
    with pytest.raises(
        ValueError, match=r"^checkpoint .*old.pt does not record which run wrote it"
    ):
        fit(mlp(), (x, y), **kw)
    out = fit(mlp(), (x, y), **kw, resume=False)
    assert out.resumed_from_epoch is None
    assert fit(mlp(), (x, y), **kw).resumed_from_epoch == 0  # now it has one


def test_hooks_see_every_index_once_per_epoch_with_matching_targets():
    x, y = blobs(n=100)
    seen: list[torch.Tensor] = []
    ends: list[int] = []

    class Recorder:
        def on_batch(self, info: BatchInfo) -> None:
            assert info.logits.shape == (len(info.indices), 3)
            assert torch.equal(info.targets, y[info.indices])
            assert not info.logits.requires_grad
            if info.epoch == 1:
                seen.append(info.indices)

        def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
            ends.append(epoch)

    fit(mlp(), (x, y), epochs=2, batch_size=16, hooks=[Recorder()], progress=False)
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(100))
    assert ends == [0, 1]


def test_history_loss_is_the_mean_of_batch_losses():
    x, y = blobs(n=100)
    losses: list[float] = []
    out = fit(
        mlp(),
        (x, y),
        epochs=1,
        batch_size=16,
        hooks=[lambda i: losses.append(i.loss)],
        progress=False,
    )
    assert len(losses) == 7
    assert out.final["loss"] == pytest.approx(sum(losses) / len(losses))


def test_plain_callable_hook_and_max_steps():
    x, y = blobs()
    steps = []
    out = fit(
        mlp(),
        (x, y),
        epochs=5,
        batch_size=32,
        max_steps=5,
        hooks=[lambda i: steps.append(i.step)],
        progress=False,
    )
    assert steps == [1, 2, 3, 4, 5] and out.steps == 5


def test_schedules():
    assert lr_factor("cosine", 0.0, 0.01, 0.1) == pytest.approx(0.1)  # first step already > 0
    assert lr_factor("cosine", 0.09, 0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor("cosine", 0.1, 0.11, 0.1) == pytest.approx(1.0)
    assert lr_factor("cosine", 0.55, 0.56, 0.1) == pytest.approx(0.5)
    assert lr_factor("cosine", 1.0, 1.0, 0.1) == pytest.approx(0.0)
    assert lr_factor("linear", 0.5, 0.6, 0.0) == pytest.approx(0.5)
    assert lr_factor("constant", 0.7, 0.8, 0.0) == 1.0
    x, y = blobs()
    with pytest.raises(ValueError, match="schedule must be one of"):
        fit(mlp(), (x, y), epochs=1, schedule="step", progress=False)


class Coreset:
    """Trains every epoch on the first 40 samples with weight 0 for the even ones."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_epoch_start(self, epoch: int, model: nn.Module):
        return np.arange(40), np.tile([0.0, 1.0], 20)

    def on_batch(self, info: BatchInfo) -> None:
        self.seen.append(info.indices)


def test_on_epoch_start_trains_on_a_weighted_subset_and_the_schedule_still_ends():
    x, y = blobs(n=200)
    hook = Coreset()
    out = fit(mlp(), (x, y), epochs=3, batch_size=16, hooks=[hook], progress=False)
    seen = torch.cat(hook.seen)
    assert len(seen) == 120 and set(seen.tolist()) == set(range(40))
    assert out.steps == 3 * 3 and out.final["lr"] < 0.1 * 1e-3  # cosine reached ~0 on time
    # even samples have weight 0: moving them anywhere changes nothing
    x2 = x.clone()
    x2[0:40:2] = 100.0
    a, b = mlp(), mlp()
    fit(a, (x, y), epochs=2, batch_size=16, hooks=[Coreset()], progress=False)
    fit(b, (x2, y), epochs=2, batch_size=16, hooks=[Coreset()], progress=False)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_on_epoch_start_bad_plan():
    class Bad:
        def on_epoch_start(self, epoch, model):
            return np.arange(5), np.ones(4)

    x, y = blobs()
    with pytest.raises(ValueError, match="5 indices but 4 weights"):
        fit(mlp(), (x, y), epochs=1, hooks=[Bad()], progress=False)


def test_zero_sample_weights_leave_model_unchanged():
    x, y = blobs()
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]
    fit(model, (x, y), epochs=1, weight_decay=0.0, sample_weights=np.zeros(len(y)), progress=False)
    for p, q in zip(before, model.parameters()):
        assert torch.equal(p, q)


def test_bf16_autocast_trains():
    x, y = blobs()
    out = fit(mlp(), (x, y), epochs=4, lr=1e-2, bf16=True, eval_data=(x, y), progress=False)
    assert out.final["eval_accuracy"] > 0.9


class TinyTokenModel(nn.Module):
    """Predicts a token id per position from dict inputs, like an MLM head."""

    def __init__(self, vocab: int = 11):
        super().__init__()
        self.emb = nn.Embedding(vocab, 16)
        self.out = nn.Linear(16, vocab)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.out(self.emb(input_ids))  # (B, N, V)


def test_dict_inputs_and_token_targets_ignore_minus_100():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 11, (64, 9), generator=g)
    targets = ids.clone()
    targets[:, ::2] = -100  # only odd positions carry a label
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    seed_everything(0)
    model = TinyTokenModel()
    out = fit(model, (inputs, targets), epochs=30, lr=3e-2, batch_size=16, progress=False)
    ev = evaluate(model, (inputs, targets))
    assert ev["count"] == (targets != -100).sum().item()
    assert ev["accuracy"] > 0.95 and out.final["loss"] < out.history[0]["loss"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"epochs": 1, "batch_size": 0}, "batch_size must be >= 1"),
        ({"epochs": 1, "sample_weights": np.ones(3)}, "sample_weights must have shape"),
        ({"epochs": 1, "optimizer": "lbfgs"}, "optimizer must be"),
    ],
)
def test_bad_arguments(kwargs, match):
    x, y = blobs()
    with pytest.raises(ValueError, match=match):
        fit(mlp(), (x, y), progress=False, **kwargs)


def test_bad_data():
    with pytest.raises(TypeError, match="tokenize it first"):
        fit(mlp(), (np.array(["a b", "c"], dtype=object), np.array([0, 1])), epochs=1)
    with pytest.raises(ValueError, match="must match"):
        fit(mlp(), (torch.zeros(4, 8), torch.zeros(3, dtype=torch.long)), epochs=1)
    with pytest.raises(ValueError, match="no labels"):
        fit(mlp(), (torch.zeros(4, 8), None), epochs=1)
    with pytest.raises(TypeError, match="fit\\(\\) takes"):
        fit(mlp(), 42, epochs=1)


def test_non_finite_loss_is_reported():
    x, y = blobs()
    x[0] = float("nan")
    with pytest.raises(FloatingPointError, match="loss became nan"):
        fit(mlp(), (x, y), epochs=1, batch_size=256, progress=False)


# ---------------------------------------------------------------- predictions, small-loss ranking


def test_predict_probs_are_softmax_rows_in_batches():
    from takeaways.train import predict_probs

    x, _ = blobs(50)
    model = mlp()
    p = predict_probs(model, x, batch_size=7)
    assert p.shape == (50, 3) and p.dtype == np.float32 and not model.training
    np.testing.assert_allclose(p, torch.softmax(model(x), -1).detach().numpy(), rtol=1e-5)


def test_mean_loss_ranks_planted_label_errors_first():
    from takeaways.train import MeanLoss

    x, y = blobs(300, seed=1)
    noisy = y.clone()
    planted = torch.arange(0, 300, 10)  # 30 labels moved to the next class
    noisy[planted] = (y[planted] + 1) % 3
    loss = MeanLoss(len(y))
    fit(mlp(), (x, noisy), epochs=6, batch_size=32, lr=1e-2, hooks=[loss], progress=False)
    assert loss.epochs.tolist() == [5.0] * 300  # the first epoch is skipped
    top = set(np.argsort(-loss.mean)[:30].tolist())
    assert len(top & set(planted.tolist())) >= 27


def test_fit_score_is_fit_then_test_accuracy():
    from takeaways import train as tr

    x, y = torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 2
    torch.manual_seed(0)
    a = torch.nn.Linear(8, 2)
    torch.manual_seed(0)
    b = torch.nn.Linear(8, 2)
    acc = tr.fit_score(a, (x, y), (x[:32], y[:32]), epochs=2, batch_size=16, seed=0, progress=False)
    tr.fit(b, (x, y), epochs=2, batch_size=16, seed=0, progress=False)
    assert acc == tr.evaluate(b, (x[:32], y[:32]))["accuracy"]


def test_a_tokenizers_batch_encoding_is_taken_like_a_dict():
    from collections import UserDict

    from takeaways.train import as_tensors

    ids = torch.randint(0, 10, (6, 4))
    batch = UserDict(
        {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    )  # BatchEncoding's base
    inputs, targets = as_tensors((batch, torch.arange(6) % 2))
    assert isinstance(inputs, dict) and set(inputs) == {"input_ids", "attention_mask"}
    assert torch.equal(inputs["input_ids"], ids) and targets.tolist() == [0, 1] * 3


# ----------------------------------------------------------------------------- linear probe


class _BagOfTokens(nn.Module):
    """A frozen 'encoder' whose outputs are one-hot tokens: its mean-pooled features are the
    rows' token frequencies, so what a probe on them can learn is known exactly."""

    dim = 8

    def forward(self, input_ids, attention_mask=None):
        return torch.nn.functional.one_hot(input_ids, self.dim).float()


def _token_rows(n: int, seed: int, *, signal: bool):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 7, (n, 12), generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    if signal:  # class 1 rows carry token 7 somewhere; class 0 rows never do
        ids[y == 1, 3] = 7
    lengths = torch.randint(6, 13, (n,), generator=g)
    mask = (torch.arange(12)[None] < lengths[:, None]).long()
    ids = ids * mask  # padding id 0 after each row's length (odd lengths)
    return {"input_ids": ids, "attention_mask": mask}, y


def test_pooled_features_ignore_padding_and_batching():
    x, _ = _token_rows(37, 0, signal=False)
    enc = _BagOfTokens()
    f = pooled_features(enc, x, batch_size=5)
    assert np.allclose(f, pooled_features(enc, x, batch_size=256))
    lengths = x["attention_mask"].sum(1).numpy()
    assert np.allclose(f[:, 0], 0.0)  # the padding token never enters the mean
    assert np.allclose(f.sum(1), 1.0)  # frequencies over each row's own length
    first = x["input_ids"][0, : lengths[0]]
    assert np.allclose(f[0], np.bincount(first.numpy(), minlength=8) / lengths[0])


def test_probe_score_finds_a_planted_feature_and_stays_at_chance_without_one():
    enc = _BagOfTokens()
    planted = probe_score(enc, _token_rows(400, 1, signal=True), _token_rows(400, 2, signal=True))
    assert planted > 0.95
    noise = probe_score(enc, _token_rows(400, 1, signal=False), _token_rows(400, 2, signal=False))
    assert 0.4 < noise < 0.6
    assert enc.training  # the mode is restored
