"""autoaugment: a policy found by AWS search vs no, random and AutoAugment's CIFAR-10 augmentation.

Per dataset: hold out a validation split of the training set, run ``aws_search`` once (shared
training under the uniform policy, then short fine-tunes scored on the validation split, PPO on
the policy), then train the same small CNN from scratch under four policies over ``seeds``
seeds and test on the untouched test split:

* ``none``   no augmentation;
* ``random`` the uniform policy over the 36 x 36 op pairs (RandAugment-style: two random ops
  at a random one of three levels), which is also where the search starts;
* ``autoaugment-cifar10``  AutoAugment's published CIFAR-10 policy in our format;
* ``aws``    the searched policy: its ``final_pairs`` most probable pairs, weighted by
  probability (AutoAugment also kept 25 sub-policies); None draws from the whole learned
  distribution, which after a short search is still close to uniform.

The search cost is measured in the same run (search seconds over one final training's, the
median of the run's final trainings) against the ratio of the authors' own pipeline;
``search_cost_ratio`` (model-epochs over training every evaluated policy from scratch) is
config arithmetic and stays a metric. ``judge`` checks that the no-augmentation baseline is well
above the majority class (a data-only ``facts`` value) and every policy has per-seed values,
then scores AWS against no and random augmentation paired over seeds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from takeaways import data, nn, train
from takeaways.autoaugment import AUTOAUGMENT_CIFAR10, Policy, PolicyAugment, aws_search
from takeaways.recipes import register_recipe, seed_range
from takeaways.results import (
    Check,
    Claim,
    Judgement,
    Result,
    Target,
    bar_plot,
    line_plot,
    mean_std,
    paired_diff,
    series,
)

POLICIES = ("none", "random", "autoaugment-cifar10", "aws")
# The authors' pipeline (AWS-OHL-AutoAug, pipeline/aws.py and its README config): 200 epochs of
# shared training plus 350 controller steps of 10-epoch fine-tunes, against a 300-epoch final
# training -- a search that costs (200 + 350 * 10) / 300 = 12.3 final trainings per trajectory.
PAPER_SEARCH_OVER_FINAL = (200 + 350 * 10) / 300


@dataclass(frozen=True)
class AutoAugmentConfig:
    datasets: tuple[str, ...] = ("digits",)  # image datasets of data.load
    train_size: int | None = None  # training images used (None = all), before the hold-out
    val_fraction: float = 0.2  # share of the training images held out to score policies
    width: int = 16  # channels of the SmallCNN's first block
    epochs: int = 20  # epochs of each final training from scratch
    batch_size: int = 64  # batch of every training
    lr: float = 0.15  # SGD (Nesterov) peak learning rate, cosine decay
    shared_epochs: int = 15  # epochs of the search's shared training (uniform policy)
    finetune_epochs: int = 1  # epochs of each fine-tune from the shared weights
    finetune_lr: float = 0.015  # constant learning rate of the fine-tunes (a tenth of lr)
    iterations: int = 12  # controller (PPO) steps
    trajectories: int = 4  # fine-tunes per controller step
    pairs_per_trajectory: int | None = 8  # pairs a fine-tune draws (None: a pair per image)
    ppo_lr: float = 0.3  # Adam learning rate of the policy parameters
    final_pairs: int | None = 25  # final "aws" policy: its most probable pairs (None: all)
    seeds: int = 1  # final trainings per policy (mean and spread are reported)
    seed: int = 0  # first seed; the search uses it

    def validate(self) -> None:
        counts = ("epochs", "batch_size", "shared_epochs", "finetune_epochs", "iterations")
        for name in (*counts, "trajectories", "seeds", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_size", "pairs_per_trajectory", "final_pairs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, or none for all; got {getattr(self, name)}")
        if not 0.0 < self.val_fraction < 0.9:
            raise ValueError(f"val_fraction must be in (0, 0.9), got {self.val_fraction}")
        known = {d.name for d in data.list_datasets()}
        for d in self.datasets:
            if d not in known:
                raise ValueError(f"unknown dataset {d!r}; image datasets: digits, mnist")


def _split(x: np.ndarray, y: np.ndarray, cfg: AutoAugmentConfig):
    g = np.random.default_rng(cfg.seed)
    idx = g.permutation(len(y))
    idx = idx[: cfg.train_size]
    n_val = int(round(len(idx) * cfg.val_fraction))
    tr, va = idx[n_val:], idx[:n_val]
    t = lambda a: torch.as_tensor(a)  # noqa: E731
    return (t(x[tr]), t(y[tr])), (t(x[va]), t(y[va]))


def _data(cfg: AutoAugmentConfig, name: str):
    """(bundle, search train, search validation, full train, test) of one dataset: (x, y) pairs."""
    d = data.load(name)
    (xt, yt), (xv, yv) = _split(d.train.x, d.train.y, cfg)
    full_train = (torch.cat([xt, xv]), torch.cat([yt, yv]))  # final trainings use all of it
    test_xy = (torch.as_tensor(d.test.x), torch.as_tensor(d.test.y))
    return d, (xt, yt), (xv, yv), full_train, test_xy


def facts(cfg: AutoAugmentConfig) -> dict[str, Any]:
    """Data-only metrics per dataset: the test accuracy of always predicting the majority class
    of the (subsampled) training set the final trainings use."""
    out = {}
    for name in cfg.datasets:
        _, _, _, (_, y), (_, test_y) = _data(cfg, name)
        out[name] = {"majority_class_test_accuracy": train.majority_accuracy(y, test_y)}
    return out


def _model(cfg: AutoAugmentConfig, channels: int, classes: int, size: int) -> torch.nn.Module:
    return nn.SmallCNN(in_channels=channels, num_classes=classes, width=cfg.width, image_size=size)


def _search(cfg: AutoAugmentConfig, make: Callable[[], torch.nn.Module], train_xy, val_xy):
    """``aws_search`` on train minus validation: (policy, history, reward curve, wall s, CPU s)."""
    t0, c0 = time.perf_counter(), time.process_time()
    curve: list[float] = []
    # aws_search's options are the config fields of the same names
    steps = ("shared_epochs", "finetune_epochs", "iterations", "trajectories", "batch_size")
    rest = ("pairs_per_trajectory", "lr", "finetune_lr", "ppo_lr", "seed")
    options = {k: getattr(cfg, k) for k in (*steps, *rest)}
    on_step = lambda i, p, hh: curve.append(statistics.fmean(hh.rewards[-1]))  # noqa: E731
    policy, hist = aws_search(make, train_xy, val_xy, on_step=on_step, **options)
    return policy, hist, curve, time.perf_counter() - t0, time.process_time() - c0


def _final_trainings(cfg, make, policies, full_train, test_xy, name):
    """Every policy from scratch on the whole training set, per seed: accuracies and timings."""
    acc: dict[str, list[float]] = {p: [] for p in POLICIES}
    wall: list[float] = []
    cpu: list[float] = []
    sgd = {"optimizer": "sgd", "lr": cfg.lr, "weight_decay": 1e-4, "clip": 3.0, "progress": False}
    schedule = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "eval_every": cfg.epochs}
    for s in seed_range(cfg):
        for pname in POLICIES:
            train.seed_everything(s)
            model = torch.nn.Sequential(PolicyAugment(policies[pname], seed=s), make())
            t1, c1 = time.perf_counter(), time.process_time()
            desc = f"{name} {pname} seed {s}"
            out = train.fit(
                model, full_train, eval_data=test_xy, seed=s, desc=desc, **sgd, **schedule
            )
            wall.append(time.perf_counter() - t1)
            cpu.append(time.process_time() - c1)
            acc[pname].append(out.final["eval_accuracy"])
    return acc, statistics.median(wall), statistics.median(cpu)


def _one_dataset(
    cfg: AutoAugmentConfig, name: str
) -> tuple[dict[str, Any], list[float], list[float]]:
    """Search, then the four final trainings, on one dataset: (metrics, reward curve, baseline)."""
    d, (xt, yt), (xv, yv), full_train, test_xy = _data(cfg, name)
    _, c, h, w = d.train.x.shape
    k = len(d.classes)
    make = lambda: _model(cfg, c, k, h)  # noqa: E731

    policy, hist, curve, search_s, search_cpu = _search(cfg, make, (xt, yt), (xv, yv))
    policies: dict[str, Any] = {
        "none": "none",
        "random": Policy(),
        "autoaugment-cifar10": AUTOAUGMENT_CIFAR10,
        "aws": policy.top(cfg.final_pairs) if cfg.final_pairs else policy,
    }
    acc, one_s, one_cpu = _final_trainings(cfg, make, policies, full_train, test_xy, name)
    stats = {p: mean_std(acc[p]) for p in POLICIES}
    metrics = {
        **{f"test_accuracy_{p}": stats[p][0] for p in POLICIES},
        **{f"test_accuracy_std_{p}": stats[p][1] for p in POLICIES},
        **{f"test_accuracy_per_seed_{p}": acc[p] for p in POLICIES},
        "search_model_epochs": hist.model_epochs,
        "scratch_model_epochs_per_evaluated_policy": cfg.epochs,
        "evaluated_policies": hist.evaluated_policies,
        # config arithmetic, not a measurement: search epochs / (policies x final epochs)
        "search_cost_ratio": hist.model_epochs / (hist.evaluated_policies * cfg.epochs),
        "search_seconds": search_s,
        "seconds_per_model_epoch": one_s / cfg.epochs,
        "shared_val_accuracy": hist.shared_accuracy,
        "policy_entropy_start": float(Policy().entropy()),
        "policy_entropy_end": hist.entropy[-1],
        "found_policy_top10": str(policy),
        "search_cpu_seconds": search_cpu,
        "final_training_seconds": one_s,  # median wall time of one final training
        "final_training_cpu_seconds": one_cpu,
        "search_over_one_final_training": search_s / one_s,  # measured, same run
    }
    return metrics, curve, hist.baseline


CLAIM = Claim(
    text=(
        "Augmentation-wise weight sharing finds policies that reach 1.24% top-1 error on "
        "CIFAR-10 and 20.36% on ImageNet with ResNet-50, 3.34 points better than the "
        "baseline augmentation, at a small fraction of the cost of full training per policy"
    ),
    value=1.24,
    source="Tian et al., Improving Auto-Augment via Augmentation-Wise Weight Sharing, "
    "NeurIPS 2020, arXiv 2009.14737 (abstract)",
)


def _checks(m: dict[str, Any], cfg: AutoAugmentConfig, name: str) -> list[Check]:
    majority = m.get("majority_class_test_accuracy")
    check = f"{name}: the no-augmentation baseline beats the majority class by >= 20 points"
    out = [Check.above(check, m["test_accuracy_none"], majority, 0.2, "majority-class accuracy")]
    counts = [len(m.get(f"test_accuracy_per_seed_{p}") or []) for p in POLICIES]
    out.append(
        Check(
            f"{name}: per-seed test accuracies of every policy ({cfg.seeds} seeds)",
            all(n == cfg.seeds for n in counts),
            ", ".join(f"{p} {n}" for p, n in zip(POLICIES, counts)),
        )
    )
    return out


def _cost(m: dict[str, Any], cfg: AutoAugmentConfig, name: str) -> Target:
    """Measured search wall time over one final training's (the median of the same run's)."""
    one = m.get("final_training_seconds") or m["seconds_per_model_epoch"] * cfg.epochs
    label = (
        f"{name}: search time / one final training's, measured (goal <= "
        f"{PAPER_SEARCH_OVER_FINAL:.1f}: the authors' AWS-OHL-AutoAug pipeline, 200 shared + "
        "350 x 10 fine-tune epochs vs 300 final)"
    )
    return Target.check(label, m["search_seconds"] / one, "<=", PAPER_SEARCH_OVER_FINAL)


def judge(m: dict[str, Any], cfg: AutoAugmentConfig) -> Judgement:
    """Per dataset: the baseline learned and every policy has per-seed values (checks); AWS
    beats no and random augmentation paired over seeds; the measured search cost (targets)."""
    checks: list[Check] = []
    targets: list[Target] = []
    found = []
    for name in cfg.datasets:
        d = m[name]
        checks += _checks(d, cfg, name)
        aws = [100 * a for a in d["test_accuracy_per_seed_aws"]]
        for base in ("none", "random"):
            diff = paired_diff(aws, [100 * a for a in d[f"test_accuracy_per_seed_{base}"]])
            targets.append(
                Target.beats(
                    f"{name}: AWS minus {base} test accuracy (points, paired over seeds)", diff
                )
            )
        targets.append(_cost(d, cfg, name))
        found.append(
            f"on {name} AWS reached {d['test_accuracy_aws']:.4f} vs {d['test_accuracy_none']:.4f} "
            f"without augmentation ({targets[-3].measured:+.2f} points) and {d['test_accuracy_random']:.4f} "
            f"with random augmentation, its search costing {targets[-1].measured:.2f} final trainings"
        )
    beats = [t for t in targets if t.interval is not None]
    finding = "Over " + f"{cfg.seeds} seed(s), " + "; ".join(found) + "."
    if beats and all(t.met for t in beats):
        advice = "Use it when a dataset's best augmentation is unknown and a search of a few final trainings is affordable."
    else:
        advice = (
            "Do not expect a searched policy to beat no or random augmentation on small grayscale "
            "digits; use it when augmentation is known to matter (natural images, long training)."
        )
    return Judgement(checks, targets, finding, advice)


@register_recipe(
    "autoaugment",
    config=AutoAugmentConfig,
    presets={
        "smoke": {
            "train_size": 300,
            "epochs": 2,
            "shared_epochs": 1,
            "finetune_epochs": 1,
            "iterations": 2,
            "trajectories": 2,
            "width": 8,
        },
        "demo": {},
        "full": {
            "datasets": ("mnist", "digits"),
            "seeds": 3,
            "epochs": 30,
            "shared_epochs": 20,
            "iterations": 24,
            "width": 16,
        },
    },
    takeaway=8,
    summary="AWS AutoAugment search on mnist/digits vs no, random and AutoAugment-CIFAR augmentation",
    judge=judge,
    facts=facts,
    threads=1,  # small CNNs: one thread is fastest, and CPU seconds then equal idle wall time
)
def run(cfg: AutoAugmentConfig) -> Result:
    metrics: dict[str, Any] = {}
    plots: list[dict[str, Any]] = []
    notes = []
    floor = facts(cfg)  # the registry also merges these into the metrics
    for name in cfg.datasets:
        m, curve, baseline = _one_dataset(cfg, name)
        metrics[name] = m
        plots.append(
            bar_plot(
                f"{name}: test accuracy by augmentation policy ({cfg.seeds} seeds, ± std)",
                "test accuracy",
                [(p, m[f"test_accuracy_{p}"], m[f"test_accuracy_std_{p}"]) for p in POLICIES],
                x_label="policy",
                reference=("majority class", floor[name]["majority_class_test_accuracy"]),
            )
        )
        steps = list(range(1, len(curve) + 1))
        plots.append(
            line_plot(
                f"{name}: search reward (validation accuracy after fine-tune)",
                "controller step",
                "mean reward",
                [series("reward", steps, curve), series("baseline", steps, baseline)],
                integer_x=True,
            )
        )
        notes.append(
            f"{name}: search {m['search_model_epochs']} model-epochs vs "
            f"{m['evaluated_policies'] * cfg.epochs} from scratch ({m['search_cost_ratio']:.3f}); "
            f"policy entropy {m['policy_entropy_start']:.2f} -> {m['policy_entropy_end']:.2f} nats"
        )
    notes.append(
        "Color is a no-op on these grayscale images, so 3 of the 36 searched ops (and the "
        "color entries of the AutoAugment policy) leave images unchanged. Deviations from "
        "the paper's pipeline: each fine-tune draws pairs_per_trajectory pairs from the "
        "policy (trajectories then differ in policy, not only in sampling noise), the reward "
        "is the final validation accuracy of a 1-epoch fine-tune, and the final 'aws' policy "
        "is the final_pairs most probable pairs."
    )
    return Result(
        recipe="autoaugment", claim=CLAIM, metrics=metrics, plots=plots, notes=" | ".join(notes)
    )
