"""imbalance: self-training and self-supervised pre-training on long-tailed MNIST and MNIST-1D.

Takeaway 6, Yang & Xu (arXiv 2006.07529). Per dataset, imbalance ratio and seed,
``data.long_tail`` keeps n_c = n_max * ratio^(-c/9) labeled samples of class c (class 0 the
head); the rest of the training split is the unlabeled pool. ``nn.SmallCNN`` sees MNIST pooled
to 14x14, ``nn.SmallCNN1d`` MNIST-1D. Every supervised fit gets the same optimizer steps at
every ratio and every arm starts from the same weights (``imbalance.PairedArms``):

- **CE**: cross-entropy on the labeled set (the paper's baseline);
- **CE + self-training**: CE's argmax pseudo-labels on the pool (no threshold, as in the
  paper), then a fresh model on labeled + pseudo-labeled;
- **class-balanced**: the class-balanced rule alone (default re-sampling, our reading of the
  paper's "CE (Balanced)");
- **CE long**: CE for as many steps as pre-training plus fine-tuning, SSP's step-matched control;
- **CE + SSP**: rotation pre-training (flip for MNIST-1D) on the labeled inputs, labels
  ignored, then CE fine-tuning of the whole network;
- **class-balanced + SSP**: the same pre-trained weights, class-balanced fine-tuning.

Scores: balanced, overall and tail (3 rarest classes) accuracy on the balanced test split at the
last epoch. ``judge`` scores self-training against CE and SSP against CE long, each as a paired
difference over seeds at the largest ratio.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn as tnn

from takeaways import data, imbalance, nn, train
from takeaways.imbalance import arm_key
from takeaways.recipes import register_recipe, seed_range
from takeaways.results import (
    RERUN,
    Check,
    Claim,
    Judgement,
    Result,
    Target,
    line_plot,
    mean_std,
    paired_diff,
    series,
)

DATASETS = ("mnist", "mnist1d")
METHODS = (
    "CE",
    "CE long",
    "CE + self-training",
    "class-balanced",
    "CE + SSP",
    "class-balanced + SSP",
)
PAIRS = (  # (technique, its baseline): the paired gains reported
    ("CE + self-training", "CE"),
    ("CE + SSP", "CE"),
    ("CE + SSP", "CE long"),
    ("class-balanced + SSP", "class-balanced"),
)
SCORES = ("balanced_accuracy", "tail_accuracy", "accuracy")
NUM_CLASSES = 10  # both datasets
CHANCE_MARGIN = 0.10  # the CE baseline must clear chance (1/10) by this much balanced accuracy
CLAIM = Claim(
    text=(
        "On CIFAR-10-LT, self-supervised rotation pre-training lowers the top-1 error of plain "
        "CE(Uniform) training to 26.50% at imbalance ratio 100 (12.28% at 10), and pseudo-labeled "
        "unlabeled data lowers the error too (16.79% at ratio 50 with 5x balanced unlabeled data)"
    ),
    value=26.50,
    source=(
        "Yang & Xu, Rethinking the Value of Labels for Improving Class-Imbalanced Learning, "
        "NeurIPS 2020, arXiv 2006.07529 (SSP and semi-supervised CIFAR-10-LT results, ResNet-32; "
        "as published in the YyzHarry/imbalanced-semi-self README)"
    ),
)


@dataclass(frozen=True)
class ImbalanceConfig:
    datasets: tuple[str, ...] = ("mnist", "mnist1d")  # embedded datasets to long-tail
    ratios: tuple[float, ...] = (100.0,)  # imbalance ratios n_head / n_tail
    seeds: int = 1  # long-tail draws x model inits per setting; mean and spread reported
    seed: int = 0  # first seed
    steps: int = 120  # optimizer steps of every supervised fit on the labeled set, at every ratio
    # (epochs = steps * batch / labeled size; 600 = 39 epochs at ratio 100, where CE fits it)
    st_epochs: int = 2  # epochs of the self-training retrain over labeled + pseudo-labeled
    ssp_epochs: int = 5  # pretext epochs over the labeled inputs (labels ignored)
    lr: float = 1e-2  # AdamW peak learning rate for every fit, cosine decay
    batch_size: int = 64  # global batch for every fit
    cnn_width: int = 16  # SmallCNN first-block channels (mnist)
    mnist_size: int = 14  # MNIST side after 2x2 average pooling (28 keeps the original; 3x slower)
    signal_width: int = 32  # SmallCNN1d first-block channels (mnist1d)
    balancing: str = "resample"  # class-balanced rule: reweight, resample or ldam-drw
    threshold: float | None = None  # pseudo-label confidence threshold (paper: none)
    balance: int | None = None  # per-class cap on pseudo-labels (paper: none)
    max_train: int | None = None  # use only the first N training samples (smoke)
    max_test: int | None = None  # score on the first N test samples (smoke)
    # torch threads, set by the registry (None: as is); a second one made the demo 15x slower
    threads: int | None = 1

    def validate(self) -> None:
        if min(self.steps, self.st_epochs, self.ssp_epochs, self.seeds) < 1:
            raise ValueError("steps, st_epochs, ssp_epochs and seeds must be >= 1")
        if not self.ratios or min(self.ratios) < 1:
            raise ValueError(f"every imbalance ratio must be >= 1 (head / tail), got {self.ratios}")
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown or not self.datasets:
            raise ValueError(f"datasets must be among {', '.join(DATASETS)}; got {self.datasets}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or none, got {self.threads}")
        if self.mnist_size not in (7, 14, 28):
            raise ValueError(f"mnist_size must be 7, 14 or 28 (divides 28), got {self.mnist_size}")
        if self.balancing not in ("reweight", "resample", "ldam-drw"):
            raise ValueError(f"balancing must be reweight, resample or ldam-drw: {self.balancing}")


def _model(name: str, cfg: ImbalanceConfig) -> tnn.Module:
    if name == "mnist":
        return nn.SmallCNN(1, NUM_CLASSES, width=cfg.cnn_width, image_size=cfg.mnist_size)
    return nn.SmallCNN1d(num_classes=NUM_CLASSES, width=cfg.signal_width)


def _load(name: str, cfg: ImbalanceConfig) -> tuple[data.Split, data.Split]:
    """The train and test splits, cut to max_train / max_test, MNIST average-pooled."""
    b = data.load(name)
    n_tr, n_te = cfg.max_train or len(b.train), cfg.max_test or len(b.test)
    x_tr, x_te = b.train.x[:n_tr], b.test.x[:n_te]
    if name == "mnist" and cfg.mnist_size != 28:  # (N, 1, 28, 28) -> (N, 1, s, s)
        x_tr, x_te = (
            F.adaptive_avg_pool2d(torch.as_tensor(x), cfg.mnist_size).numpy() for x in (x_tr, x_te)
        )
    return data.Split(x_tr, b.train.y[:n_tr]), data.Split(x_te, b.test.y[:n_te])


def _run_setting(
    cfg: ImbalanceConfig, name: str, split: data.Split, test: data.Split, ratio: float, seed: int
) -> dict[str, Any]:
    """Every arm on one long-tail draw: scores, steps, diagnostics. Each fit reseeds, but building
    a model draws from the global RNG, so the order of the arms below is part of the numbers."""
    lab, unl = data.long_tail(split.y, imbalance_ratio=ratio, seed=seed)
    x, y = split.x[lab], split.y[lab]
    epochs = max(1, round(cfg.steps * cfg.batch_size / len(y)))  # cfg.steps optimizer steps
    fit_kw = dict(lr=cfg.lr, batch_size=cfg.batch_size, warmup=0.05, seed=seed)
    train.seed_everything(seed)
    model = _model(name, cfg)
    tag = f"{name} rho={ratio:g} seed {seed}"
    init = copy.deepcopy(model.state_dict())  # every arm starts from these weights
    make = functools.partial(_model, name, cfg)
    arms = imbalance.PairedArms(make, x, y, test, fit_kw, cfg.balancing, NUM_CLASSES, tag, init)
    # CE is self-training's base model; CE + self-training retrains `model` on the pool too
    kw = dict(epochs=cfg.st_epochs, base_epochs=epochs, desc=f"{tag} self-train")
    kw.update(threshold=cfg.threshold, balance=cfg.balance)  # off in the paper
    st = arms.self_train("CE", "CE + self-training", model, split.x[unl], **kw)
    fitted = arms.score(st.base_model, (x, y))["balanced_accuracy"]
    arms.fit("class-balanced", arms.fresh(), epochs, balanced=True)
    # SSP on the labeled inputs, labels ignored; the head keeps its initial weights
    ssp, pretext = arms.fresh(), "rotation" if name == "mnist" else "flip"
    kw = dict(eval_x=test.x, eval_every=cfg.ssp_epochs, desc=f"{tag} SSP", **fit_kw)
    _, pre = imbalance.pretrain_classifier(ssp, x, epochs=cfg.ssp_epochs, pretext=pretext, **kw)
    ssp_init = copy.deepcopy(ssp.state_dict())
    arms.fit("CE + SSP", ssp, epochs, before=pre.steps)
    # the control: CE with SSP's pretext epochs added to its own, as many steps as CE + SSP
    arms.fit("CE long", arms.fresh(), epochs + cfg.ssp_epochs)
    arms.fit("class-balanced + SSP", arms.fresh(ssp_init), epochs, balanced=True, before=pre.steps)
    tail = arms.scores["CE"]["tail_classes"]
    return {
        "arms": arms,
        "ssp_pretext_steps": pre.steps,
        "sizes": {"labeled": len(lab), "unlabeled": len(unl), "supervised_epochs": epochs},
        "diagnostics": {
            "ce_train_balanced_accuracy": fitted,
            **imbalance.pseudo_label_quality(st.pseudo_labels, split.y[unl], tail),
            "pretext_accuracy": pre.final.get("eval_accuracy", float("nan")),
        },
    }


def _key(name: str, ratio: float) -> str:
    return f"{name}_r{ratio:g}"


def _metrics(cfg: ImbalanceConfig, runs: dict[tuple[str, float], list[dict]]) -> dict[str, Any]:
    """Per setting: sizes, every arm's scores per seed and as mean/std, steps, paired gains."""
    metrics: dict[str, Any] = {"seeds": list(seed_range(cfg)), "classes": NUM_CLASSES}
    for (name, ratio), rs in runs.items():
        k = _key(name, ratio)
        draws = [r["arms"] for r in rs]
        arms = imbalance.summarize_arms(draws, arms=METHODS, scores=SCORES, pairs=PAIRS)
        metrics.update({f"{k}_{what}": v for what, v in {**rs[0]["sizes"], **arms}.items()})
        metrics[f"{k}_ssp_pretext_steps_per_seed"] = [r["ssp_pretext_steps"] for r in rs]
        for what in rs[0]["diagnostics"]:
            metrics[f"{k}_{what}"] = mean_std([r["diagnostics"][what] for r in rs])[0]
    return metrics


def _plots(cfg: ImbalanceConfig, metrics: dict[str, Any], runs: dict) -> list[dict[str, Any]]:
    """Balanced and tail accuracy against the ratio (std band over seeds); per-class at the top."""
    top, n, plots = max(cfg.ratios), cfg.seeds, []
    for name in cfg.datasets:
        for what, label in (("balanced_accuracy", "balanced"), ("tail_accuracy", "tail-class")):
            lines = []
            for method in METHODS:
                keys = [f"{_key(name, r)}_{arm_key(method)}_{what}" for r in cfg.ratios]
                mean, std = [metrics[k] for k in keys], [metrics[f"{k}_std"] for k in keys]
                lines.append(series(method, list(cfg.ratios), mean, std))
            title = f"{name}: {label} test accuracy vs imbalance ratio (mean ± std of {n} seeds)"
            y_label, log_x = f"{label} test accuracy", len(cfg.ratios) > 1
            plots.append(line_plot(title, "imbalance ratio", y_label, lines, log_x=log_x))
        lines = []
        for method in METHODS:
            v = [r["arms"].scores[method]["per_class"] for r in runs[(name, top)]]
            std = np.nanstd(v, axis=0, ddof=1).tolist() if n > 1 else None
            lines.append(series(method, list(range(NUM_CLASSES)), np.nanmean(v, 0).tolist(), std))
        title = f"{name}, ratio {top:g}: per-class test accuracy (class 0 = head)"
        x_label = "class (training samples fall from 0 to 9)"
        plots.append(line_plot(title, x_label, "test accuracy", lines, integer_x=True))
    return plots


NOTES = (
    "The unlabeled pool is the rest of the training split, so it is tail-heavy (the labeled set "
    "uses up the head class) while the paper's pool follows the labeled imbalance or is balanced; "
    "a head-biased base model's pseudo-labels are least accurate on exactly the classes the pool "
    "is full of (pseudo_label_accuracy_tail, pool_tail_share). Scores are last-epoch (the paper's "
    "code reports the best test epoch). Users of the paper's code reported SSP not reproducing on "
    "CIFAR-LT (YyzHarry/imbalanced-semi-self issue #5)."
)

# ----------------------------------------------------------------------------- judging


def _gain(m: dict[str, Any], k: str, what: str, method: str, ref: str, goal: float) -> Target:
    """``method`` beats ``ref`` by more than ``goal`` points only if the paired interval does."""
    name = f"{what} gain over {ref} in balanced accuracy, {k.replace('_r', ' ratio ')} (points)"
    a, b = (m.get(f"{k}_{arm_key(x)}_balanced_accuracy_per_seed") for x in (method, ref))
    if a is None or b is None:
        mean = m.get(f"{k}_{arm_key(method)}_vs_{arm_key(ref)}_gain_points")
        rule = f"per-seed values {RERUN} (a beat needs the paired interval)"
        return Target(name, float("nan") if mean is None else mean, goal, ">", False, None, rule)
    return Target.beats(name, paired_diff([100 * v for v in a], [100 * v for v in b]), goal=goal)


def _checks(m: dict[str, Any], cfg: ImbalanceConfig, name: str, ratio: float) -> list[Check]:
    """CE learned; CE long ran as many steps as CE + SSP; every arm has its per-seed values."""
    k, where, chance = _key(name, ratio), f"{name} ratio {ratio:g}", 1 / NUM_CLASSES
    ce = m.get(f"{k}_ce_balanced_accuracy")
    margin = f"CE balanced test accuracy vs chance {chance:g} plus a {CHANCE_MARGIN:g} margin"
    out = [Check.that(f"CE above chance, {where}", ce, ">=", chance + CHANCE_MARGIN, margin)]
    long, ssp = m.get(f"{k}_ce_long_steps_per_seed"), m.get(f"{k}_ce_ssp_steps_per_seed")
    matched = f"CE long is step-matched to CE + SSP, {where}"
    if long is None or ssp is None:
        out.append(Check.missing(matched, "optimizer step counts"))
    else:
        steps = f"optimizer steps per seed: CE long {long}, CE + SSP {ssp} (pretext + fine-tuning)"
        out.append(Check(matched, long == ssp, steps))
    seeds = {x: m.get(f"{k}_{arm_key(x)}_balanced_accuracy_per_seed") or [] for x in METHODS}
    missing = [x for x, v in seeds.items() if len(v) != cfg.seeds]
    detail = f"{cfg.seeds} for each arm"
    if missing:
        detail = f"per-seed balanced accuracy of {', '.join(missing)} {RERUN}"
    out.append(Check(f"per-seed values of every arm, {where}", not missing, detail))
    return out


def _finding(m: dict[str, Any], cfg: ImbalanceConfig, top: float) -> str:
    parts = []
    for k, name in ((_key(name, top), name) for name in cfg.datasets):
        st, ssp, ce = (
            f"{m[f'{k}_{p}_gain_points']:+.1f} ± {m[f'{k}_{p}_gain_points_std']:.1f}"
            for p in ("ce_self_training_vs_ce", "ce_ssp_vs_ce_long", "ce_ssp_vs_ce")
        )
        parts.append(
            f"on {name} CE reached {m[f'{k}_ce_balanced_accuracy']:.3f} balanced accuracy, "
            f"self-training moved it {st} points and SSP {ssp} over the step-matched CE long "
            f"({ce} over plain CE)"
        )
    return f"At imbalance ratio {top:g} ({cfg.seeds} seed(s), mean ± std), {'; '.join(parts)}."


def _advice(m: dict[str, Any], cfg: ImbalanceConfig, top: float, targets: list[Target]) -> str:
    n, keys = len(cfg.datasets), [_key(name, top) for name in cfg.datasets]
    goals = {
        "self-training to gain 3 points over CE": targets[:n],
        "SSP to gain 1 point over a CE run with as many steps": targets[n:],
    }
    lacking = [what for what, ts in goals.items() if not all(t.met for t in ts)]
    ce, bal = ([m[f"{k}_{a}_balanced_accuracy"] for k in keys] for a in ("ce", "class_balanced"))
    cb = [100 * (b - a) for a, b in zip(ce, bal)]
    rule = (
        f"class-balanced {cfg.balancing} moved balanced accuracy {min(cb):+.1f} to {max(cb):+.1f} "
        "points over CE with the same steps"
    )
    if not lacking:
        return (
            "Use self-training and SSP when labels are long-tailed and the unlabeled pool holds "
            f"the same classes: both beat their baselines here, and {rule}."
        )
    return (
        f"Do not expect {' or '.join(lacking)} at this scale ({rule}); use them when the unlabeled "
        "pool follows the labeled classes, and judge them against a step-matched CE run."
    )


def judge(m: dict[str, Any], cfg: ImbalanceConfig) -> Judgement:
    """Self-training vs CE (goal +3 points), SSP vs the step-matched CE long (goal +1 point), paired
    over seeds at the largest ratio: met only when the whole 95% interval clears the goal."""
    top = max(cfg.ratios)
    checks = [Check.that("at least 2 seeds", cfg.seeds, ">=", 2, "a paired interval needs 2")]
    for name in cfg.datasets:
        checks += _checks(m, cfg, name, top)
    keys = [_key(name, top) for name in cfg.datasets]
    targets = [_gain(m, k, "self-training", "CE + self-training", "CE", 3.0) for k in keys]
    targets += [_gain(m, k, "SSP", "CE + SSP", "CE long", 1.0) for k in keys]
    return Judgement(checks, targets, _finding(m, cfg, top), _advice(m, cfg, top, targets))


# ----------------------------------------------------------------------------- the experiment

PRESETS = {
    "smoke": dict(ratios=(10.0,), steps=1, st_epochs=1, ssp_epochs=1, max_train=300, max_test=100),
    "demo": {},
    "full": dict(ratios=(10.0, 50.0, 100.0), seeds=3, steps=600, st_epochs=8, ssp_epochs=20),
}


@register_recipe(
    "imbalance",
    config=ImbalanceConfig,
    presets=PRESETS,
    takeaway=6,
    summary="long-tailed MNIST / MNIST-1D: CE vs self-training vs rotation/flip SSP (balanced acc.)",
    judge=judge,
)
def run(cfg: ImbalanceConfig) -> Result:
    splits = {name: _load(name, cfg) for name in cfg.datasets}
    runs = {
        (name, ratio): [_run_setting(cfg, name, *splits[name], ratio, s) for s in seed_range(cfg)]
        for name in cfg.datasets
        for ratio in cfg.ratios
    }
    metrics = _metrics(cfg, runs)
    plots = _plots(cfg, metrics, runs)
    return Result(recipe="imbalance", claim=CLAIM, metrics=metrics, plots=plots, notes=NOTES)
