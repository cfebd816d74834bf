"""One plain training loop, ``fit()``, that every recipe and user shares.

What it does, in the order it happens each step: pick this rank's batch of
dataset indices, forward (optionally under bf16 autocast), loss, backward,
clip, optimizer and schedule step, then hand the logits, targets and dataset
indices to the hooks (AUM margins and CRUST gradient proxies need exactly
those). Evaluation, atomic checkpoints with resume, a progress bar and
``torchrun`` data parallelism are built in; nothing else is hidden.

Around the loop: ``predict_probs``, ``cross_val_probs`` (out-of-sample probabilities
from K-fold training, what cleanlab needs) and the ``MeanLoss`` hook (small-loss ranking).

Example:
    >>> from takeaways import data, nn, train
    >>> digits = data.load("digits")
    >>> model = nn.SmallCNN(image_size=8)
    >>> out = train.fit(model, digits.train, epochs=5, eval_data=digits.test)
    >>> out.history[-1]["eval_accuracy"]  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from takeaways import distributed as dist
from takeaways.files import atomic_path

__all__ = [
    "fit",
    "fit_score",
    "evaluate",
    "majority_accuracy",
    "BatchInfo",
    "FitResult",
    "seed_everything",
    "as_tensors",
    "predict_probs",
    "cross_val_probs",
    "MeanLoss",
]

IGNORE_INDEX = -100


# ----------------------------------------------------------------------------- data


def as_tensors(data: Any) -> tuple[Tensor | dict[str, Tensor], Tensor]:
    """Turn a Split, an (x, y) pair or a map-style Dataset into (inputs, targets) tensors.

    ``inputs`` is a tensor (N, ...) or a dict of tensors sharing dim 0 (a
    tokenizer's ``input_ids`` / ``attention_mask``); ``targets`` is (N, ...) long.
    Float numpy images become float32; integer labels become int64.
    """
    if hasattr(data, "x") and hasattr(data, "y"):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
    elif isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        items = [data[i] for i in range(len(data))]
        xs, ys = zip(*items)
        x = torch.stack([torch.as_tensor(v) for v in xs])
        y = torch.as_tensor(np.asarray([int(v) for v in ys]))
    else:
        raise TypeError(
            f"fit() takes a Split, an (x, y) pair or a map-style Dataset, not {type(data).__name__}"
        )
    if y is None:
        raise ValueError(
            "the data have no labels (y is None); pass labelled data or (inputs, targets)"
        )
    if isinstance(x, np.ndarray) and x.dtype == object:
        raise TypeError(
            "x holds text; tokenize it first, e.g. fit(model, (tokenizer.encode(list(split.x)), split.y))"
        )
    if isinstance(x, Mapping):  # a dict, or a tokenizer's BatchEncoding (a UserDict)
        inputs: Tensor | dict[str, Tensor] = {k: torch.as_tensor(v) for k, v in x.items()}
        n = len(next(iter(inputs.values())))
        if any(len(v) != n for v in inputs.values()):
            raise ValueError("every tensor in the input dict must have the same first dimension")
    else:
        inputs = torch.as_tensor(x)
        if inputs.is_floating_point() and inputs.dtype == torch.float64:
            inputs = inputs.float()
        n = len(inputs)
    targets = torch.as_tensor(y)
    if not targets.is_floating_point():
        targets = targets.long()
    if len(targets) != n:
        raise ValueError(f"inputs have {n} rows but targets have {len(targets)}; they must match")
    if n == 0:
        raise ValueError("the data are empty; pass at least one sample")
    return inputs, targets


def _take(inputs: Tensor | dict[str, Tensor], idx: Tensor, device: torch.device):
    if isinstance(inputs, dict):
        return {k: v[idx].to(device, non_blocking=True) for k, v in inputs.items()}
    return inputs[idx].to(device, non_blocking=True)


def _call(model: nn.Module, x: Tensor | dict[str, Tensor]) -> Tensor:
    out = model(**x) if isinstance(x, dict) else model(x)
    if isinstance(out, Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)):
        return out[0]
    raise TypeError(f"the model returned {type(out).__name__}; return logits as a tensor")


def _per_sample_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy per sample; token-level targets (B, N) average over non-ignored tokens."""
    logits = logits.float()
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets, reduction="none")
    tok = F.cross_entropy(
        logits.flatten(0, -2), targets.flatten(), reduction="none", ignore_index=IGNORE_INDEX
    ).view(targets.shape)
    keep = (targets != IGNORE_INDEX).float()
    return (tok * keep).sum(-1) / keep.sum(-1).clamp(min=1)


# ----------------------------------------------------------------------------- hooks


@dataclass
class BatchInfo:
    """What a hook sees after every optimizer step (all detached)."""

    logits: Tensor  # (b, C) or (b, N, V), this rank's batch
    targets: Tensor  # (b,) or (b, N)
    indices: Tensor  # (b,) dataset indices of the batch's samples
    loss: float  # the batch's mean loss
    epoch: int
    step: int  # global optimizer step, counted from 1


def _batch_hooks(hooks: Sequence[Any]) -> list[Callable[[BatchInfo], None]]:
    out = []
    for h in hooks:
        if hasattr(h, "on_batch"):
            out.append(h.on_batch)
        elif callable(h):
            out.append(h)
        elif not (hasattr(h, "on_epoch_start") or hasattr(h, "on_epoch_end")):
            raise TypeError(
                f"hook {h!r} is not callable and has none of on_batch, on_epoch_start, on_epoch_end"
            )
    return out


def _epoch_hooks(hooks: Sequence[Any]) -> list[Callable[[int, nn.Module], None]]:
    return [h.on_epoch_end for h in hooks if hasattr(h, "on_epoch_end")]


def _epoch_plan(
    hooks: Sequence[Any], epoch: int, model: nn.Module, n: int
) -> tuple[Tensor | None, Tensor | None]:
    """Ask ``on_epoch_start`` hooks which dataset indices (and weights) this epoch trains on."""
    subset, weights = None, None
    for h in hooks:
        if not hasattr(h, "on_epoch_start"):
            continue
        plan = h.on_epoch_start(epoch, model)
        if plan is None:
            continue
        idx, w = plan
        subset = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        if subset.dim() != 1 or len(subset) == 0:
            raise ValueError("on_epoch_start must return a non-empty 1-D array of dataset indices")
        if subset.min() < 0 or subset.max() >= n:
            raise ValueError(f"on_epoch_start returned indices outside [0, {n})")
        weights = None if w is None else torch.as_tensor(np.asarray(w), dtype=torch.float32)
        if weights is not None and weights.shape != subset.shape:
            raise ValueError(
                f"on_epoch_start returned {len(subset)} indices but {len(weights)} weights; give one each"
            )
    return subset, weights


# ----------------------------------------------------------------------------- schedule


SCHEDULES = ("cosine", "linear", "constant")


def lr_factor(kind: str, start: float, end: float, warmup: float) -> float:
    """Learning-rate multiplier for a step that spans run progress [start, end] (0..1).

    The schedule is a function of progress through the run, not of a step
    count, so epochs that train on a subset (coresets) still end the schedule
    on time. Warm-up rises linearly over the first ``warmup`` fraction (the
    first step already gets a positive rate), then cosine or linear decay to 0.
    """
    if warmup > 0 and start < warmup:
        return min(1.0, end / warmup)
    if kind == "constant":
        return 1.0
    p = min(1.0, max(0.0, (start - warmup) / max(1e-12, 1.0 - warmup)))
    if kind == "linear":
        return 1.0 - p
    return 0.5 * (1.0 + math.cos(math.pi * p))


def _make_optimizer(
    name: str | Callable[..., torch.optim.Optimizer], params, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    if callable(name):
        return name(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True
        )
    raise ValueError(f"optimizer must be 'adamw', 'sgd' or a callable(params); got {name!r}")


# ----------------------------------------------------------------------------- results


@dataclass
class FitResult:
    """What ``fit()`` returns: per-epoch history and totals."""

    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    wall_s: float = 0.0
    resumed_from_epoch: int | None = None

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# ----------------------------------------------------------------------------- evaluate


def majority_accuracy(train_targets: Any, test_targets: Any) -> float:
    """Accuracy of always predicting the training targets' most frequent class: the floor to beat.

    Works for labels ``(N,)`` and token targets ``(B, K)`` alike; ``IGNORE_INDEX`` entries are
    left out on both sides (for masked tokens it is the unigram solution's accuracy).

    Example:
        >>> majority_accuracy(torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1, 1]))
        0.75
    """
    y = torch.as_tensor(train_targets).flatten()
    t = torch.as_tensor(test_targets).flatten()
    y, t = y[y != IGNORE_INDEX], t[t != IGNORE_INDEX]
    if len(y) == 0 or len(t) == 0:
        raise ValueError("majority_accuracy needs at least one labelled target on each side")
    top = int(torch.bincount(y.long()).argmax())
    return float((t == top).double().mean())


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Any,
    *,
    batch_size: int = 256,
    bf16: bool = False,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on ``data`` (sharded over ranks, then summed).

    Token-level targets (B, N) count only positions that are not -100.

    Returns:
        {"loss": ..., "accuracy": ..., "count": ...}
    """
    inputs, targets = as_tensors(data)
    dev = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    n = len(targets)
    mine = torch.arange(dist.rank(), n, dist.world_size())  # no padding: exact totals
    sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        y = targets[idx].to(dev)
        with _autocast(dev, bf16):
            logits = _call(model, _take(inputs, idx, dev))
        logits = logits.float()
        if y.dim() == 1:
            sums[0] += F.cross_entropy(logits, y, reduction="sum").item()
            sums[1] += (logits.argmax(-1) == y).sum().item()
            sums[2] += len(y)
        else:
            keep = y != IGNORE_INDEX
            sums[0] += F.cross_entropy(logits[keep], y[keep], reduction="sum").item()
            sums[1] += (logits[keep].argmax(-1) == y[keep]).sum().item()
            sums[2] += keep.sum().item()
    if dist.is_distributed():
        sums = _all_reduce_cpu(sums)
    model.train(was_training)
    count = max(sums[2].item(), 1.0)
    return {
        "loss": sums[0].item() / count,
        "accuracy": sums[1].item() / count,
        "count": sums[2].item(),
    }


def _all_reduce_cpu(t: Tensor) -> Tensor:
    if torch.distributed.get_backend() == "nccl":
        return dist.all_reduce_sum(t.cuda()).cpu()
    return dist.all_reduce_sum(t)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ----------------------------------------------------------------------------- checkpoint


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:  # a crash leaves the previous checkpoint intact
        torch.save(state, tmp)


def _digest(*tensors: Tensor) -> str:
    h = hashlib.blake2b(digest_size=8)
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _data_digest(inputs: Tensor | dict[str, Tensor], targets: Tensor, rows: int = 1024) -> str:
    """Hash of every target and of ``rows`` evenly spaced input rows: cheap, and it changes
    when the data are swapped, relabelled, reordered or resized."""
    n = len(targets)
    pick = torch.linspace(0, n - 1, min(n, rows)).round().long()
    xs = [inputs[k][pick] for k in sorted(inputs)] if isinstance(inputs, dict) else [inputs[pick]]
    return _digest(targets, *xs)


def _run_fingerprint(model: nn.Module, data_digest: str, n: int, **settings: Any) -> dict[str, Any]:
    """What defines a run: a checkpoint resumes only a run with the same fingerprint."""
    shapes = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return {
        "model": hashlib.blake2b(shapes.encode(), digest_size=8).hexdigest(),
        "data rows": n,
        "data": data_digest,
        **settings,
    }


def _check_fingerprint(
    path: Path, saved: dict[str, Any] | None, now: dict[str, Any], resume: bool | str, done: int
) -> None:
    """Raise one line naming what differs between the checkpoint's run and this one."""
    fresh = f"to start fresh, delete {path}, pass another checkpoint path or resume=False (overwrites it)"
    if saved is None:
        raise ValueError(
            f"checkpoint {path} does not record which run wrote it (it was not written by this "
            f"version of fit()), so resuming it could silently mix two runs; {fresh}"
        )
    differ = [k for k in now if saved.get(k) != now[k]]
    if resume == "extend" and "epochs" in differ:
        if now["epochs"] < done:
            raise ValueError(
                f"checkpoint {path} has {done} epochs done, more than epochs={now['epochs']}; "
                f"pass epochs >= {done}, or {fresh}"
            )
        differ.remove("epochs")
    if not differ:
        return
    if "data rows" in differ:
        differ.remove("data")  # a new size says it; the content hash differs with it
    named = {"model": "model parameter names or shapes", "data": "data content"}
    what = "; ".join(named.get(k, f"{k} {saved.get(k)!r} -> {now[k]!r}") for k in differ)
    if differ == ["epochs"]:
        todo = f"pass resume='extend' to train it on to {now['epochs']} epochs"
    else:
        todo = "pass the same settings to resume it"
    raise ValueError(f"checkpoint {path} is from a different run ({what}); {todo}, or {fresh}")


def _callable_name(f: Callable[..., Any]) -> str:
    return f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', type(f).__name__)}"


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


# ----------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    train: Any,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    optimizer: Literal["adamw", "sgd"] | Callable[..., torch.optim.Optimizer] = "adamw",
    weight_decay: float = 0.01,
    schedule: Literal["cosine", "linear", "constant"] = "cosine",
    warmup: float = 0.0,
    clip: float | None = 1.0,
    bf16: bool = False,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    sample_weights: Tensor | np.ndarray | None = None,
    eval_data: Any = None,
    eval_every: int = 1,
    hooks: Iterable[Any] = (),
    checkpoint: str | Path | None = None,
    resume: bool | Literal["extend"] = True,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "train",
    max_steps: int | None = None,
    find_unused_parameters: bool = False,
) -> FitResult:
    """Train ``model`` on ``train`` with one plain loop; runs unchanged under ``torchrun``.

    Args:
        model: any module whose forward takes the inputs (a tensor, or keyword
            tensors for a dict input) and returns logits (B, C) or (B, N, V).
        train: a Split (``.x``, ``.y``), an (inputs, targets) pair of tensors /
            arrays (inputs may be a dict such as a tokenizer's output), or a
            map-style Dataset of (input, target). Token targets use -100 for
            positions without a label.
        epochs: passes over the data.
        batch_size: global batch; under ``torchrun`` each rank takes batch_size / world.
        lr, optimizer, weight_decay: AdamW (default) or SGD with Nesterov momentum,
            or a callable ``params -> Optimizer``.
        schedule, warmup: warm-up (a fraction of the run if < 1, else steps)
            then cosine, linear or constant learning rate, as a function of
            progress through the run.
        clip: max gradient norm (None or 0 disables).
        bf16: autocast matmuls to bfloat16 (CPU and GPU); the loss stays fp32.
        loss_fn: ``(logits, targets) -> per-sample loss (b,)``; default cross-entropy.
        sample_weights: (N,) weights per dataset index; the batch loss is the
            mean of weight * per-sample loss.
        eval_data: evaluated every ``eval_every`` epochs and at the end.
        hooks: callables ``f(BatchInfo)``, or objects with any of ``on_batch(info)``,
            ``on_epoch_end(epoch, model)`` and ``on_epoch_start(epoch, model)``; the
            last may return ``(indices, weights | None)`` to train that epoch on a
            subset of dataset indices with per-sample loss weights (coresets).
        checkpoint: file written atomically after every epoch; with ``resume``
            a run restarted with the same arguments continues after the last
            finished epoch and ends bit-identical to an uninterrupted run. The file
            holds a fingerprint of the run (parameter names and shapes, data size and
            a hash of the targets and sampled input rows, optimizer, lr, weight decay,
            schedule, warm-up, clip, bf16, batch size, epochs, max_steps, seed); a
            checkpoint of a different run, or one without a fingerprint, is refused
            with a ValueError naming what differs. To start fresh delete the file,
            pass another path, or ``resume=False`` (which overwrites it).
        resume: True: continue the checkpoint's run. False: ignore and overwrite it.
            "extend": as True, but ``epochs`` may be raised past the checkpoint's run
            (train a finished run for longer); the schedule is recomputed for the new
            length, so the learning rate picks up where the longer run would be.
        seed: seeds the data order (shared by ranks) and torch's RNG (dropout).
        device: where to train; default the model's device.
        progress: show a tqdm bar (rank 0 only) with loss and samples/s.
        max_steps: stop after this many optimizer steps (for smoke runs).
        find_unused_parameters: under ``torchrun``, let DDP accept parameters without a
            gradient in a step (needed when blocks are skipped, e.g. ``takeaways.layerdrop``).

    Returns:
        FitResult with one history row per epoch: epoch, loss, lr, seconds,
        samples_per_s and eval_loss / eval_accuracy when evaluated.

    Raises:
        ValueError / TypeError: bad data, epochs < 1, batch not divisible by ranks, a
            checkpoint of a different run.
    """
    if resume not in (True, False, "extend"):
        raise ValueError(f"resume must be True, False or 'extend'; got {resume!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dist.init_distributed()
    world = dist.world_size()
    if batch_size % world:
        raise ValueError(
            f"batch_size {batch_size} is not divisible by the {world} ranks; use a multiple of {world}"
        )
    inputs, targets = as_tensors(train)
    n = len(targets)
    weights = None
    if sample_weights is not None:
        weights = torch.as_tensor(sample_weights, dtype=torch.float32)
        if weights.shape != (n,):
            raise ValueError(f"sample_weights must have shape ({n},), got {tuple(weights.shape)}")
    dev = torch.device(device) if device is not None else _model_device(model)
    model.to(dev)
    per_rank = batch_size // world
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    steps_per_epoch = math.ceil(math.ceil(n / world) / per_rank)
    nominal_steps = steps_per_epoch * epochs
    warm = warmup if warmup < 1 else warmup / nominal_steps  # as a fraction of the run

    seed_everything(seed)
    net: nn.Module = model
    if dist.is_distributed():
        net = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters,
        )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(optimizer, params, lr, weight_decay)
    base_lrs = [g["lr"] for g in opt.param_groups]
    hooks = list(hooks)
    batch_hooks, epoch_hooks = _batch_hooks(hooks), _epoch_hooks(hooks)
    loss_of = loss_fn or _per_sample_loss

    out = FitResult()
    start_epoch, step = 0, 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    fingerprint = None
    if ckpt is not None:
        fingerprint = _run_fingerprint(
            model,
            _data_digest(inputs, targets),
            n,
            optimizer=optimizer if isinstance(optimizer, str) else _callable_name(optimizer),
            lr=lr,
            weight_decay=weight_decay,
            schedule=schedule,
            warmup=warmup,
            clip=clip or None,
            bf16=bf16,
            batch_size=batch_size,
            epochs=epochs,
            max_steps=max_steps,
            seed=seed,
        )
    if ckpt is not None and resume and ckpt.exists():
        state = torch.load(ckpt, map_location=dev, weights_only=False)
        saved = state.get("fingerprint") if isinstance(state, dict) else None
        done = state["epoch"] + 1 if saved is not None else 0
        _check_fingerprint(ckpt, saved, fingerprint, resume, done)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        out.history = state["history"]
        out.resumed_from_epoch = state["epoch"]

    t_start = time.perf_counter()
    net.train()
    for epoch in range(start_epoch, epochs):
        if max_steps is not None and step >= max_steps:
            break
        subset, subset_w = _epoch_plan(hooks, epoch, model, n)
        if subset is None:
            order = dist.shard_indices(n, epoch=epoch, seed=seed)
            epoch_w = weights
        else:  # a hook chose this epoch's samples (e.g. a coreset) and maybe their weights
            order = subset[dist.shard_indices(len(subset), epoch=epoch, seed=seed)]
            epoch_w = weights.clone() if weights is not None else torch.ones(n)
            if subset_w is not None:
                epoch_w[subset] = epoch_w[subset] * subset_w
        batches = [order[i : i + per_rank] for i in range(0, len(order), per_rank)]
        t0, seen, loss_sum, done = time.perf_counter(), 0, 0.0, 0
        bar = tqdm(
            batches,
            desc=f"{desc} {epoch + 1}/{epochs}",
            disable=not progress
            or not dist.is_main()
            or os.environ.get("TAKEAWAYS_PROGRESS") == "0",
            leave=False,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,  # logs get a line now and then
            unit="batch",
        )
        for i, idx in enumerate(bar):
            if max_steps is not None:  # smoke runs: the schedule spans the steps actually taken
                horizon = min(max_steps, nominal_steps)
                start, end = step / horizon, (step + 1) / horizon
            else:
                start = (epoch + i / len(batches)) / epochs
                end = (epoch + (i + 1) / len(batches)) / epochs
            factor = lr_factor(schedule, start, end, warm)
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * factor
            x, y = _take(inputs, idx, dev), targets[idx].to(dev)
            with _autocast(dev, bf16):
                logits = _call(net, x)
            per_sample = loss_of(logits, y)
            if epoch_w is not None:
                per_sample = per_sample * epoch_w[idx].to(dev)
            loss = per_sample.mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at epoch {epoch + 1} step {step + 1}; lower lr or enable clip"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            step += 1
            seen += len(idx) * world
            loss_sum += loss.item()
            done += 1
            if batch_hooks:
                info = BatchInfo(logits.detach(), y.detach(), idx, loss.item(), epoch, step)
                for h in batch_hooks:
                    h(info)
            bar.set_postfix(
                loss=f"{loss.item():.4f}",
                sps=f"{seen / (time.perf_counter() - t0):.0f}",
                refresh=False,
            )
            if max_steps is not None and step >= max_steps:
                break
        bar.close()
        seconds = time.perf_counter() - t0
        row = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(1, done),
            "lr": opt.param_groups[0]["lr"],
            "seconds": seconds,
            "samples_per_s": seen / seconds if seconds > 0 else float("nan"),
            "step": step,
        }
        last = epoch == epochs - 1 or (max_steps is not None and step >= max_steps)
        if eval_data is not None and ((epoch + 1) % eval_every == 0 or last):
            ev = evaluate(model, eval_data, batch_size=max(per_rank, 256), bf16=bf16, device=dev)
            row["eval_loss"], row["eval_accuracy"] = ev["loss"], ev["accuracy"]
            net.train()
        out.history.append(row)
        for h in epoch_hooks:
            h(epoch, model)
        if ckpt is not None:
            if dist.is_main():
                _save_checkpoint(
                    ckpt,
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "rng": _rng_state(),
                        "epoch": epoch,
                        "step": step,
                        "history": out.history,
                        "fingerprint": fingerprint,
                    },
                )
            dist.barrier()
    model.eval()
    out.steps = step
    out.wall_s = time.perf_counter() - t_start
    return out


def fit_score(
    model: nn.Module, train_set: Any, test_set: Any, *, eval_batch: int = 256, **fit_kwargs: Any
) -> float:
    """``fit(model, train_set, **fit_kwargs)``, then the test accuracy of ``model``.

    The fine-tune-and-score step of a pre-training comparison: the caller builds (and seeds)
    the classifier, so every arm can get the same head init.
    """
    fit(model, train_set, **fit_kwargs)
    return evaluate(model, test_set, batch_size=eval_batch)["accuracy"]


@torch.no_grad()
def pooled_features(encoder: nn.Module, x: Any, *, batch_size: int = 256) -> np.ndarray:
    """Frozen features: ``encoder``'s outputs mean-pooled over each row's real positions.

    Args:
        encoder: called as ``encoder(input_ids, attention_mask=...) -> (B, N, C)``.
        x: ``{"input_ids": (N, L), "attention_mask": (N, L)}`` (``Tokenizer.encode``), or ids.

    Returns:
        ``(N, C)`` float64 features, computed in eval mode (the mode is restored).
    """
    from takeaways.nn.transformer import mean_pool

    inputs = x if isinstance(x, Mapping) else {"input_ids": x}
    ids, mask = inputs["input_ids"], inputs.get("attention_mask")
    was_training, device = encoder.training, _model_device(encoder)
    encoder.eval()
    try:
        out = []
        for i in range(0, len(ids), batch_size):
            m = None if mask is None else mask[i : i + batch_size].to(device)
            h = encoder(ids[i : i + batch_size].to(device), attention_mask=m)  # (b, L, C)
            out.append(mean_pool(h.float(), m).cpu().double().numpy())
    finally:
        encoder.train(was_training)
    return np.concatenate(out)


def probe_score(
    encoder: nn.Module, train_set: Any, test_set: Any, *, C: float = 1.0, batch_size: int = 256
) -> float:
    """Test accuracy of a linear probe on ``encoder``'s frozen mean-pooled features.

    The probe is L2-regularised logistic regression (``C`` its inverse strength) on features
    standardised with the training rows' mean and deviation; the encoder is not trained, so
    the score says what pre-training put in the features (a randomly initialised encoder
    is the floor to compare with).

    Args:
        encoder: as for ``pooled_features``.
        train_set, test_set: ``(inputs, labels)`` pairs (``Tokenizer.encode_split``).
    """
    from sklearn.linear_model import LogisticRegression

    (x_tr, y_tr), (x_te, y_te) = train_set, test_set
    f_tr = pooled_features(encoder, x_tr, batch_size=batch_size)
    f_te = pooled_features(encoder, x_te, batch_size=batch_size)
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-8
    probe = LogisticRegression(C=C, max_iter=2000).fit((f_tr - mu) / sd, np.asarray(y_tr))
    return float((probe.predict((f_te - mu) / sd) == np.asarray(y_te)).mean())


# ----------------------------------------------------------------------------- predictions


@torch.no_grad()
def predict_probs(model: nn.Module, x: Any, *, batch_size: int = 1024) -> np.ndarray:
    """Softmax probabilities (N, C) of ``model`` on inputs ``x`` (N, ...), in eval mode, float32.

    Leaves the model in eval mode. Runs on the CPU tensors given (no device moves).
    """
    model.eval()
    xs = torch.as_tensor(x)
    out = [
        torch.softmax(model(xs[i : i + batch_size]).float(), -1)
        for i in range(0, len(xs), batch_size)
    ]
    return torch.cat(out).numpy()


def cross_val_probs(
    make_model: Callable[[int], nn.Module],
    x: Any,
    y: np.ndarray,
    *,
    folds: int = 5,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    fit_kwargs: dict[str, Any] | None = None,
) -> np.ndarray:
    """Out-of-sample predicted probabilities (N, C) from stratified K-fold training of fresh models.

    What cleanlab's ``find_label_issues(labels, pred_probs)`` needs: each row comes from
    a model that never saw that sample (probabilities on the training set itself are
    overfit). Fold ``f`` seeds everything with ``seed + f`` before building its model.

    Args:
        make_model: ``num_classes -> fresh model`` (C = max(y) + 1).
        x: (N, ...) inputs, indexable by an index array.
        y: (N,) integer labels, the possibly noisy ones.
        folds: K; scikit-learn's ``StratifiedKFold(K, shuffle=True, random_state=seed)``.
        epochs, batch_size, lr: passed to ``fit`` for every fold.
        fit_kwargs: more ``fit`` options (default: ``progress=False``).

    Returns:
        (N, C) float32 rows summing to 1.

    Raises:
        ValueError: a class with fewer samples than folds.

    Example:
        >>> probs = cross_val_probs(lambda k: MLP(64, k), x, y, epochs=5, batch_size=64, lr=1e-3)  # doctest: +SKIP
        >>> issues = cleanlab.filter.find_label_issues(y, probs)  # doctest: +SKIP
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    c = int(y.max()) + 1
    counts = np.bincount(y, minlength=c)
    if counts.min() < folds:
        raise ValueError(
            f"class {int(counts.argmin())} has {int(counts.min())} samples, fewer than {folds} folds; "
            "lower folds or add data"
        )
    probs = np.zeros((len(y), c), dtype=np.float32)
    split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for f, (tr, te) in enumerate(split):
        seed_everything(seed + f)
        model = make_model(c)
        opts = {"progress": False, **(fit_kwargs or {})}
        fit(
            model,
            (x[tr], y[tr]),
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed + f,
            **opts,
        )
        probs[te] = predict_probs(model, x[te])
    return probs


class MeanLoss:
    """fit() hook: each sample's training loss, averaged per epoch, then over epochs.

    The "small-loss" ranking of label-noise work (Han et al. 2018, arXiv:1804.06872):
    mislabeled samples keep a high loss while the network fits the clean majority. The
    first ``skip_epochs`` epochs are left out, as AUM leaves them out. Per-sample losses
    are gathered across ranks under ``torchrun``.

    Example:
        >>> loss = MeanLoss(len(y))
        >>> fit(model, (x, y), epochs=10, hooks=[loss])  # doctest: +SKIP
        >>> suspects = np.argsort(-loss.mean)[:100]  # doctest: +SKIP
    """

    def __init__(self, num_samples: int, *, skip_epochs: int = 1) -> None:
        self.n, self.skip = num_samples, skip_epochs
        self.sum = torch.zeros(num_samples, dtype=torch.float64)
        self.epochs = torch.zeros(num_samples)
        self._vals: list[Tensor] = []
        self._idx: list[Tensor] = []

    def on_batch(self, info: BatchInfo) -> None:
        if info.epoch >= self.skip:
            loss = F.cross_entropy(info.logits.float(), info.targets, reduction="none")
            self._vals.append(loss.cpu())
            self._idx.append(info.indices.cpu())

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        if epoch >= self.skip and self._vals:
            s, c = dist.reduce_per_sample(torch.cat(self._vals), torch.cat(self._idx), self.n)
            seen = c > 0
            self.sum[seen] += s[seen] / c[seen]
            self.epochs[seen] += 1
            self._vals, self._idx = [], []

    @property
    def mean(self) -> np.ndarray:
        """(N,) mean loss per sample over the epochs it was seen in (0 if never)."""
        return (self.sum / self.epochs.clamp(min=1)).numpy()
