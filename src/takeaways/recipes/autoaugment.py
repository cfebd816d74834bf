"""autoaugment: AWS-searched augmentation vs none, uniform, same-size random and AutoAugment's.

The low-data regime where augmentation matters: per seed, ``train_size`` training images and
a disjoint ``val_size``-image validation set are drawn from the training split (the test split
is never touched until the end). AWS search runs once per seed on them: shared training under
the uniform policy for the first ``search_epochs - finetune_epochs`` epochs of a cosine
schedule, then fine-tunes from the shared weights and optimizer state that continue the
schedule's last ``finetune_epochs`` under candidate policies, scored on the validation set, PPO
on the policy. (The search's schedule is a third of a final training's, so that its tail still
has the learning rate and steps to tell policies apart -- a tail of a full-length schedule
barely moves the weights on 250 images -- while one fine-tune costs under a tenth of a final
training.) The learning rate 0.1 is the better of 0.05 / 0.1 / 0.15 for no augmentation in a
pilot (0.15 diverged under one searched policy and cost the baseline a point on one seed).
Then the same small CNN trains from scratch on the training images for ``epochs`` under five
policies and is tested on the test split:

* ``none``              no augmentation;
* ``uniform``           the uniform policy over the search space's op pairs (RandAugment-like:
  two random ops at a random one of three levels), where the search starts;
* ``same-size-random``  ``final_pairs`` random pairs of the search space carrying the AWS
  policy's weights (``random_pairs_like``): what AWS's pairs are worth if the search learned
  nothing;
* ``autoaugment-cifar10``  AutoAugment's published CIFAR-10 policy in our format;
* ``aws``               the searched policy: its ``final_pairs`` most probable pairs, weighted
  by probability (AutoAugment also kept 25 sub-policies).

The op set is ``search_space(channels)``: ``color`` is a no-op on grayscale and is dropped.
The search cost is measured in the same run: search CPU seconds over one final training's
(the median of the run's augmented final trainings) and over the naive cost, evaluated
policies x one final training. ``judge`` checks that the baseline is well above the majority
class (a data-only ``facts`` value), every policy has per-seed values, augmentation helps at
all (uniform minus none, paired) and the reward's validation set is large, then scores AWS
against none and the same-size random policy paired over seeds, and the search cost.
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from takeaways import data, nn, train
from takeaways.autoaugment import (
    AUTOAUGMENT_CIFAR10,
    Policy,
    PolicyAugment,
    aws_search,
    random_pairs_like,
    search_space,
)
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

POLICIES = ("none", "uniform", "same-size-random", "autoaugment-cifar10", "aws")
AUGMENTED = POLICIES[1:]
# (a, b) pairs whose paired difference a - b over seeds is reported with its interval
COMPARISONS = (
    ("aws", "none"),
    ("aws", "same-size-random"),
    ("aws", "uniform"),
    ("aws", "autoaugment-cifar10"),
    ("uniform", "none"),
)
# The authors' pipeline (AWS-OHL-AutoAug, pipeline/aws.py and its README config): 200 epochs of
# shared training plus 350 controller steps of 10-epoch fine-tunes, against a 300-epoch final
# training -- a search that costs (200 + 350 * 10) / 300 = 12.3 final trainings per trajectory.
PAPER_SEARCH_OVER_FINAL = (200 + 350 * 10) / 300
NAIVE_GOAL = 0.1  # search cost as a share of training every evaluated policy from scratch
MIN_VAL_IMAGES = 300  # one validation image is then at most 1/3 of a point of reward


@dataclass(frozen=True)
class AutoAugmentConfig:
    datasets: tuple[str, ...] = ("mnist",)  # image datasets of data.load
    train_size: int = 250  # training images per seed (the low-data regime)
    val_size: int = 500  # reward's validation images, disjoint, from the rest of the split
    width: int = 16  # channels of the SmallCNN's first block
    epochs: int = 120  # epochs of each final training from scratch
    batch_size: int = 32  # batch of every training
    lr: float = 0.1  # SGD (Nesterov) peak learning rate, cosine decay to 0
    search_epochs: int = 40  # the search's cosine schedule: shared training + one fine-tune
    finetune_epochs: int = 8  # its last epochs, run once per evaluated policy
    iterations: int = 48  # controller (PPO) steps
    trajectories: int = 4  # fine-tunes per controller step
    pairs_per_trajectory: int | None = 8  # pairs a fine-tune draws (None: a pair per image)
    ppo_lr: float = 0.3  # Adam learning rate of the policy parameters
    final_pairs: int = 25  # final "aws" policy: its most probable pairs
    seeds: int = 5  # searches and final trainings per policy, paired over seeds
    seed: int = 0  # first seed

    def validate(self) -> None:
        counts = ("epochs", "search_epochs", "batch_size", "finetune_epochs", "iterations")
        counts = (*counts, "trajectories")
        for name in (*counts, "seeds", "width", "train_size", "val_size", "final_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pairs_per_trajectory is not None and self.pairs_per_trajectory < 1:
            raise ValueError(
                f"pairs_per_trajectory must be >= 1, or none for all; got {self.pairs_per_trajectory}"
            )
        if self.finetune_epochs >= self.search_epochs:
            raise ValueError(
                f"finetune_epochs ({self.finetune_epochs}) must be below search_epochs "
                f"({self.search_epochs}): "
                "the fine-tunes are the schedule's last epochs, after shared training"
            )
        known = {d.name for d in data.list_datasets()}
        for d in self.datasets:
            if d not in known:
                raise ValueError(f"unknown dataset {d!r}; image datasets: digits, mnist")


def _data(cfg: AutoAugmentConfig, name: str, seed: int):
    """(bundle, train, validation, test) of one dataset for one seed: (x, y) tensor pairs.

    Train and validation are disjoint draws from the training split; the test split is whole.

    Raises:
        ValueError: the split has fewer than ``train_size + val_size`` images.
    """
    d = data.load(name)
    n = len(d.train.y)
    if cfg.train_size + cfg.val_size > n:
        raise ValueError(
            f"{name} has {n} training images; train_size + val_size = "
            f"{cfg.train_size + cfg.val_size}: lower one of them"
        )
    idx = np.random.default_rng(seed).permutation(n)
    tr, va = idx[: cfg.train_size], idx[cfg.train_size : cfg.train_size + cfg.val_size]
    t = torch.as_tensor
    test_xy = (t(d.test.x), t(d.test.y))
    return d, (t(d.train.x[tr]), t(d.train.y[tr])), (t(d.train.x[va]), t(d.train.y[va])), test_xy


def facts(cfg: AutoAugmentConfig) -> dict[str, Any]:
    """Data-only metrics per dataset: the test accuracy of always predicting the majority class
    of the first seed's training images."""
    out = {}
    for name in cfg.datasets:
        _, (_, y), _, (_, test_y) = _data(cfg, name, cfg.seed)
        out[name] = {"majority_class_test_accuracy": train.majority_accuracy(y, test_y)}
    return out


def _search(cfg: AutoAugmentConfig, make, space, train_xy, val_xy, seed: int):
    """``aws_search`` on the training images, rewarded on the validation images:
    (policy, history, reward curve, wall s, CPU s)."""
    t0, c0 = time.perf_counter(), time.process_time()
    curve: list[float] = []
    policy, hist = aws_search(
        make,
        train_xy,
        val_xy,
        shared_epochs=cfg.search_epochs - cfg.finetune_epochs,
        finetune_epochs=cfg.finetune_epochs,
        iterations=cfg.iterations,
        trajectories=cfg.trajectories,
        pairs_per_trajectory=cfg.pairs_per_trajectory,
        space=space,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        ppo_lr=cfg.ppo_lr,
        seed=seed,
        on_step=lambda i, p, hh: curve.append(statistics.fmean(hh.rewards[-1])),
    )
    return policy, hist, curve, time.perf_counter() - t0, time.process_time() - c0


def _final_training(cfg, make, policy, train_xy, test_xy, seed: int, desc: str):
    """One training from scratch under ``policy``: (test accuracy, wall s, CPU s)."""
    train.seed_everything(seed)
    model = torch.nn.Sequential(PolicyAugment(policy, seed=seed), make())
    t1, c1 = time.perf_counter(), time.process_time()
    out = train.fit(
        model, train_xy, eval_data=test_xy, seed=seed, desc=desc, optimizer="sgd", lr=cfg.lr,
        weight_decay=1e-4, clip=3.0, progress=False, epochs=cfg.epochs,
        batch_size=cfg.batch_size, eval_every=cfg.epochs,
    )  # fmt: skip
    return out.final["eval_accuracy"], time.perf_counter() - t1, time.process_time() - c1


def _one_dataset(cfg: AutoAugmentConfig, name: str) -> tuple[dict[str, Any], list[float]]:
    """Per seed: search, then the five final trainings (metrics, mean reward curve)."""
    acc: dict[str, list[float]] = {p: [] for p in POLICIES}
    wall, cpu = [], []  # augmented final trainings
    search_s, search_cpu, curves, entropy_end, found = [], [], [], [], []
    hist = None
    for s in seed_range(cfg):
        d, train_xy, val_xy, test_xy = _data(cfg, name, s)
        _, c, h, _ = d.train.x.shape
        k = len(d.classes)
        make = functools.partial(
            nn.SmallCNN, in_channels=c, num_classes=k, width=cfg.width, image_size=h
        )
        space = search_space(c)
        policy, hist, curve, sw, sc = _search(cfg, make, space, train_xy, val_xy, s)
        search_s.append(sw)
        search_cpu.append(sc)
        curves.append(curve)
        entropy_end.append(hist.entropy[-1])
        aws = policy.top(cfg.final_pairs)
        found.append(str(policy))
        policies: dict[str, Any] = {
            "none": "none",
            "uniform": Policy(space),
            "same-size-random": random_pairs_like(aws, space, torch.Generator().manual_seed(s)),
            "autoaugment-cifar10": AUTOAUGMENT_CIFAR10,
            "aws": aws,
        }
        for pname in POLICIES:
            a, w, cp = _final_training(
                cfg, make, policies[pname], train_xy, test_xy, s, f"{name} {pname} seed {s}"
            )
            acc[pname].append(a)
            if pname in AUGMENTED:
                wall.append(w)
                cpu.append(cp)
    assert hist is not None
    one_s, one_cpu = statistics.median(wall), statistics.median(cpu)
    s_wall, s_cpu = statistics.median(search_s), statistics.median(search_cpu)
    naive_cpu = hist.evaluated_policies * one_cpu
    stats = {p: mean_std(acc[p]) for p in POLICIES}
    diffs = {}
    for a, b in COMPARISONS:
        pd = paired_diff([100 * v for v in acc[a]], [100 * v for v in acc[b]])
        diffs[f"diff_points_{a}_minus_{b}"] = [pd.mean, pd.lo, pd.hi]
    metrics = {
        **{f"test_accuracy_{p}": stats[p][0] for p in POLICIES},
        **{f"test_accuracy_std_{p}": stats[p][1] for p in POLICIES},
        **{f"test_accuracy_per_seed_{p}": acc[p] for p in POLICIES},
        **diffs,  # [mean, 95% lo, 95% hi] of the paired difference, in points
        "train_images": cfg.train_size,
        "reward_val_images": cfg.val_size,
        "search_space_ops": len(search_space(d.train.x.shape[1])),
        "search_model_epochs": hist.model_epochs,
        "scratch_model_epochs_per_evaluated_policy": cfg.epochs,
        "evaluated_policies": hist.evaluated_policies,
        # config arithmetic, not a measurement: search epochs / (policies x final epochs)
        "search_cost_ratio": hist.model_epochs / (hist.evaluated_policies * cfg.epochs),
        # measured in this run, medians over seeds (search) and augmented trainings (final)
        "search_seconds": s_wall,
        "search_cpu_seconds": s_cpu,
        "search_cpu_seconds_per_seed": search_cpu,
        "final_training_seconds": one_s,
        "final_training_cpu_seconds": one_cpu,
        "seconds_per_model_epoch": one_s / cfg.epochs,
        "search_over_one_final_training": s_cpu / one_cpu,
        "naive_search_cpu_seconds": naive_cpu,
        "search_over_naive": s_cpu / naive_cpu,
        "shared_val_accuracy": hist.shared_accuracy,  # last seed's
        "policy_entropy_start": float(Policy(search_space(d.train.x.shape[1])).entropy()),
        "policy_entropy_end": statistics.fmean(entropy_end),
        "found_policy_top10": found[0],  # first seed's
    }
    n_steps = min(len(c) for c in curves)
    mean_curve = [statistics.fmean(c[i] for c in curves) for i in range(n_steps)]
    return metrics, mean_curve


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
    per_seed = {p: m.get(f"test_accuracy_per_seed_{p}") or [] for p in POLICIES}
    out.append(
        Check(
            f"{name}: per-seed test accuracies of every policy ({cfg.seeds} seeds)",
            all(len(v) == cfg.seeds for v in per_seed.values()),
            ", ".join(f"{p} {len(v)}" for p, v in per_seed.items()),
        )
    )
    # augmentation must help at all here, or no policy search can show anything
    helps = f"{name}: augmentation helps at all (uniform minus none, paired 95% interval > 0)"
    uni, none = per_seed["uniform"], per_seed["none"]
    if len(uni) >= 2 and len(uni) == len(none):
        pd = paired_diff([100 * v for v in uni], [100 * v for v in none])
        detail = f"{pd.mean:+.2f} points, 95% CI [{pd.lo:+.2f}, {pd.hi:+.2f}] (n={pd.n})"
        out.append(Check(helps, bool(pd.lo > 0), detail))
    else:
        out.append(Check(helps, False, "needs >= 2 paired seeds of uniform and none"))
    val = m.get("reward_val_images")
    out.append(
        Check.that(
            f"{name}: the reward's validation set has >= {MIN_VAL_IMAGES} images",
            val,
            ">=",
            MIN_VAL_IMAGES,
            "one image = " + (f"{100 / val:.2f} points" if val else "n/a"),
        )
    )
    return out


def _cost(m: dict[str, Any], name: str) -> Target:
    """Measured search CPU time over the naive cost: every evaluated policy trained from
    scratch, at the CPU time of one final training of the same run."""
    label = (
        f"{name}: search CPU time / (evaluated policies x one final training's), measured "
        f"(goal <= {NAIVE_GOAL:g})"
    )
    return Target.check(label, m["search_over_naive"], "<=", NAIVE_GOAL)


def judge(m: dict[str, Any], cfg: AutoAugmentConfig) -> Judgement:
    """Per dataset: the baseline learned, every policy has per-seed values, augmentation helps
    at all, the reward's validation set is large (checks); AWS beats no augmentation and a
    random policy of the same size paired over seeds, and the search costs at most a tenth of
    training every evaluated policy (targets)."""
    checks: list[Check] = []
    targets: list[Target] = []
    found = []
    for name in cfg.datasets:
        d = m[name]
        checks += _checks(d, cfg, name)
        aws = d.get("test_accuracy_per_seed_aws")
        for base in ("none", "same-size-random"):
            b = d.get(f"test_accuracy_per_seed_{base}")
            targets.append(
                Target.beats_or_missing(
                    f"{name}: AWS minus {base} test accuracy (points, paired over seeds)",
                    None if aws is None else [100 * a for a in aws],
                    None if b is None else [100 * a for a in b],
                    mean_diff=100 * (d["test_accuracy_aws"] - d.get(f"test_accuracy_{base}", 0.0)),
                )
            )
        targets.append(_cost(d, name))
        ci = lambda k, d=d: "{:+.2f} [{:+.2f}, {:+.2f}]".format(*d[k])  # noqa: E731
        found.append(
            f"on {name} ({d['train_images']} training images) AWS reached "
            f"{d['test_accuracy_aws']:.4f} vs {d['test_accuracy_none']:.4f} without augmentation, "
            f"{d['test_accuracy_same-size-random']:.4f} with a same-size random policy, "
            f"{d['test_accuracy_uniform']:.4f} uniform and "
            f"{d['test_accuracy_autoaugment-cifar10']:.4f} with AutoAugment's CIFAR-10 policy "
            f"(AWS minus none {ci('diff_points_aws_minus_none')}, minus same-size random "
            f"{ci('diff_points_aws_minus_same-size-random')}, minus uniform "
            f"{ci('diff_points_aws_minus_uniform')}, minus AutoAugment "
            f"{ci('diff_points_aws_minus_autoaugment-cifar10')} points); its search cost "
            f"{d['search_over_one_final_training']:.2f} final trainings, "
            f"{d['search_over_naive']:.3f} of training each of its "
            f"{d['evaluated_policies']} evaluated policies"
        )
    beats = [t for t in targets if t.interval is not None]
    finding = f"Over {cfg.seeds} seed(s), " + "; ".join(found) + "."
    if beats and all(t.met for t in beats):
        advice = (
            "Use it when augmentation is known to matter (little data) and the best policy is "
            "unknown: a search of a few final trainings beats a random policy of the same size."
        )
    else:
        advice = (
            "Where augmentation helps, a uniform random policy gets most of it; do not expect "
            "a short AWS search on small grayscale digits to beat a random policy of its size."
        )
    return Judgement(checks, targets, finding, advice)


def _diff_bar(m: dict[str, Any], a: str, b: str) -> tuple[str, float, float | None]:
    """One paired difference as a bar: (label, mean, half-width of its 95% interval, or None
    when one seed leaves no interval)."""
    mean, lo, hi = m[f"diff_points_{a}_minus_{b}"]
    return f"{a} - {b}", mean, (hi - mean if np.isfinite(hi) else None)


@register_recipe(
    "autoaugment",
    config=AutoAugmentConfig,
    presets={
        "smoke": {
            "datasets": ("digits",),
            "train_size": 200,
            "val_size": 100,
            "epochs": 3,
            "search_epochs": 3,
            "finetune_epochs": 1,
            "iterations": 2,
            "trajectories": 2,
            "width": 8,
            "seeds": 2,
        },
        "demo": {
            "epochs": 30,
            "search_epochs": 20,
            "finetune_epochs": 3,
            "iterations": 6,
            "seeds": 2,
        },
        # full: 20 seeds, 2.6 CPU-minutes each (8 seeds took 20.6, commit 2ba352f): at 8 seeds
        # AWS minus the same-size random policy was +0.25 [-0.52, +1.02] points, too wide to
        # tell either way; 20 seeds narrow it to about +-0.45 points
        "full": {"seeds": 20},
    },
    takeaway=8,
    summary="AWS AutoAugment search on 250 MNIST images vs no, uniform, same-size random and "
    "AutoAugment-CIFAR augmentation",
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
        m, curve = _one_dataset(cfg, name)
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
        plots.append(
            bar_plot(
                f"{name}: paired differences in test accuracy ({cfg.seeds} seeds, ± 95% interval)",
                "points",
                [_diff_bar(m, a, b) for a, b in COMPARISONS],
                x_label="comparison",
                reference=("no difference", 0.0),
            )
        )
        steps = list(range(1, len(curve) + 1))
        plots.append(
            line_plot(
                f"{name}: search reward (validation accuracy after fine-tune, mean over seeds)",
                "controller step",
                "mean reward",
                [series("reward", steps, curve)],
                integer_x=True,
            )
        )
        notes.append(
            f"{name}: search {m['search_model_epochs']} model-epochs vs "
            f"{m['evaluated_policies'] * cfg.epochs} from scratch ({m['search_cost_ratio']:.3f}); "
            f"measured CPU {m['search_cpu_seconds']:.0f} s vs {m['naive_search_cpu_seconds']:.0f} s "
            f"naive ({m['search_over_naive']:.3f}); policy entropy "
            f"{m['policy_entropy_start']:.2f} -> {m['policy_entropy_end']:.2f} nats"
        )
    notes.append(
        "color is a no-op on grayscale and is left out of the search space (33 ops); the "
        "uniform and same-size random policies use the same 33. autocontrast stays: it is not "
        "a no-op on grayscale, though most MNIST digits already span 0..1 (it changed 9% of "
        "500 of them). AutoAugment's CIFAR-10 policy is kept as published, its color entries "
        "included. Deviations from the paper's pipeline: each fine-tune draws "
        "pairs_per_trajectory pairs from the policy (trajectories then differ in policy, not "
        "only in sampling noise), the reward is the final validation accuracy, and the final "
        "'aws' policy is the final_pairs most probable pairs; final trainings use the "
        "training images only, never the validation images."
    )
    return Result(
        recipe="autoaugment", claim=CLAIM, metrics=metrics, plots=plots, notes=" | ".join(notes)
    )
