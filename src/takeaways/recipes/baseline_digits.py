"""baseline-digits: a small CNN on scikit-learn's digits, end to end through fit().

Not a paper's takeaway: it proves the path every recipe takes (data -> model ->
fit -> Result -> report) and gives a floor to compare with: a logistic
regression on the raw pixels, trained on the same split. ``judge`` checks that both
classifiers are well above chance (the majority class of the training labels), a number
of the data alone that ``facts`` computes, so ``rejudge`` can add it to an older result.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from takeaways import data, nn, train
from takeaways.recipes import register_recipe, seed_range
from takeaways.results import Check, Claim, Judgement, Result, Target, line_plot, mean_std, series


@dataclass(frozen=True)
class DigitsConfig:
    epochs: int = 12  # passes over the 1,437 training images
    batch_size: int = 64  # global batch (split over ranks under torchrun)
    lr: float = 1e-2  # AdamW peak learning rate, cosine decay after 1 epoch of warm-up
    width: int = 32  # channels of the CNN's first conv block
    bf16: bool = False  # bf16 autocast for the CNN
    seeds: int = 1  # independent runs; mean and spread are reported
    seed: int = 0  # first seed

    def validate(self) -> None:
        if self.epochs < 1 or self.seeds < 1 or self.width < 1:
            raise ValueError("epochs, seeds and width must be >= 1")


def _plots(cfg: DigitsConfig, curves: list, logreg_acc: float) -> list[dict[str, Any]]:
    epochs = [row["epoch"] for row in curves[0]]
    return [
        line_plot(
            "CNN on digits: test accuracy per epoch",
            "epoch",
            "test accuracy",
            [
                series(f"CNN seed {cfg.seed + i}", epochs, [r["eval_accuracy"] for r in c])
                for i, c in enumerate(curves)
            ]
            + [series("logistic regression", epochs, [logreg_acc] * len(epochs))],
            integer_x=True,
        ),
        line_plot(
            "CNN on digits: training loss per epoch",
            "epoch",
            "cross-entropy",
            [
                series(f"CNN seed {cfg.seed + i}", epochs, [r["loss"] for r in c])
                for i, c in enumerate(curves)
            ],
            integer_x=True,
        ),
    ]


def judge(m: dict[str, Any], cfg: DigitsConfig) -> Judgement:
    """Checks: the CNN and the logistic regression are both well above chance."""
    chance = m.get("majority_class_test_accuracy")
    checks = []
    for arm, key in (("CNN", "cnn_test_accuracy"), ("logistic regression", "logreg_test_accuracy")):
        name = f"{arm} beats chance (the majority class) by >= 50 points"
        checks.append(Check.above(name, m[key], chance, 0.5, "majority-class accuracy"))
    acc, sd, seconds = m["cnn_test_accuracy"], m["cnn_test_accuracy_std"], m["cnn_train_seconds"]
    targets = [
        Target.check("CNN test accuracy", acc, ">=", 0.95),
        Target.check("CNN train seconds per run", seconds, "<=", 30.0),
    ]
    finding = (
        f"The small CNN reached {acc:.4f} test accuracy (std {sd:.4f} over {cfg.seeds} seed(s)) "
        f"against {m['logreg_test_accuracy']:.4f} for a logistic regression on the raw pixels, "
        f"in {seconds:.1f} s of training per run."
    )
    advice = (
        "Use it when checking that a machine runs the whole pipeline: data, fit(), Result, report."
    )
    return Judgement(checks, targets, finding, advice)


def facts(cfg: DigitsConfig) -> dict[str, Any]:
    """Data-only metrics: the accuracy of always predicting the training set's majority class."""
    digits = data.load("digits")
    return {"majority_class_test_accuracy": train.majority_accuracy(digits.train.y, digits.test.y)}


@register_recipe(
    "baseline-digits",
    config=DigitsConfig,
    presets={"smoke": {"epochs": 2}, "demo": {}, "full": {"epochs": 30, "seeds": 3}},
    takeaway=None,
    summary="small CNN on digits through fit(): the end-to-end check (>= 95% test accuracy)",
    judge=judge,
    facts=facts,
)
def run(cfg: DigitsConfig) -> Result:
    digits = data.load("digits")
    x_train = digits.train.x.reshape(len(digits.train), -1)
    x_test = digits.test.x.reshape(len(digits.test), -1)

    # baseline: multinomial logistic regression on the 64 raw pixels
    t0 = time.perf_counter()
    logreg = LogisticRegression(max_iter=2000).fit(x_train, digits.train.y)
    logreg_acc = float((logreg.predict(x_test) == digits.test.y).mean())
    logreg_s = time.perf_counter() - t0

    # technique: a small CNN trained by fit()
    accs, seconds, curves = [], [], []
    for s in seed_range(cfg):
        train.seed_everything(s)
        model = nn.SmallCNN(
            in_channels=1, num_classes=len(digits.classes), width=cfg.width, image_size=8
        )
        t0 = time.perf_counter()
        out = train.fit(
            model,
            digits.train,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            warmup=1 / cfg.epochs,
            bf16=cfg.bf16,
            eval_data=digits.test,
            seed=s,
            desc=f"cnn seed {s}",
        )
        seconds.append(time.perf_counter() - t0)
        accs.append(out.final["eval_accuracy"])
        curves.append(out.history)

    acc, spread = mean_std(accs)
    return Result(
        recipe="baseline-digits",
        claim=Claim(
            text="A small CNN trained with fit() classifies scikit-learn's 8x8 digits at >= 95% test accuracy",
            value=0.95,
            source="takeaways foundation issue #2 (acceptance target); no paper",
        ),
        metrics={
            "cnn_test_accuracy": acc,
            "cnn_test_accuracy_std": spread,
            "cnn_test_accuracy_per_seed": accs,
            "logreg_test_accuracy": logreg_acc,
            "cnn_train_seconds": statistics.median(seconds),
            "logreg_train_seconds": logreg_s,
            "cnn_samples_per_s": float(np.median([r["samples_per_s"] for c in curves for r in c])),
            "train_size": len(digits.train),
            "test_size": len(digits.test),
        },
        plots=_plots(cfg, curves, logreg_acc),
        notes=(
            f"CNN {acc:.4f} (std {spread:.4f} over {len(accs)} seeds) vs logistic regression "
            f"{logreg_acc:.4f} on the same {len(digits.test)}-image test split."
        ),
    )
