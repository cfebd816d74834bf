"""Labels and imbalance: pseudo-label self-training and self-supervised pre-training.

Yang & Xu, "Rethinking the Value of Labels for Improving Class-Imbalanced
Learning" (NeurIPS 2020, arXiv 2006.07529) make two points about a long-tailed
labeled set:

1. *Semi-supervised*: the imbalanced labels are still worth using. Train a base
   classifier on them, give every unlabeled sample the base model's argmax as a
   pseudo-label, and retrain on labeled + pseudo-labeled data
   (:func:`pseudo_label`, :func:`self_train`). The paper uses no confidence
   threshold and no per-class cap; both are options here, off by default.
2. *Self-supervised*: the labels are not always needed first. Pre-train the
   network on a pretext task over the *same* imbalanced images with labels
   ignored (4-way rotation prediction), then fine-tune the whole network with a
   fresh head (:class:`RotationPretext`, :func:`self_supervised_pretrain`). For
   1-D signals, :class:`FlipPretext` predicts which of time reversal / sign flip
   was applied; :func:`pretrain_classifier` does it for a ``features -> pool ->
   head`` classifier such as ``nn.SmallCNN``.

Both combine with the class-balanced training rules the paper pairs them with:
re-weighting, class-balanced re-sampling and LDAM with deferred re-weighting
(:func:`class_balanced`, whose output plugs straight into ``train.fit``), and
are scored by overall, balanced (mean per-class) and tail-class accuracy
(:func:`imbalance_metrics`, :func:`score_classifier` for a model), the
pseudo-labels by :func:`pseudo_label_quality`. :class:`PairedArms` trains the
arms of a comparison from the same weights, data and seed and records their scores.

The package reads top to bottom: ``inputs`` (input checks shared by the others),
``metrics`` (scores), ``balanced`` (class-balanced rules), ``selftrain``
(pseudo-labels and self-training), ``pretext`` (pretexts and self-supervised
pre-training), ``arms`` (paired comparisons). Every public name is importable
from here; the per-sample reference implementations stay private to their
modules (the tests import them there).

Example:
    >>> import torch
    >>> from takeaways import data, nn, train
    >>> from takeaways.imbalance import class_balanced, self_supervised_pretrain, self_train
    >>> mnist = data.load("mnist")
    >>> lab, unl = data.long_tail(mnist.train.y, imbalance_ratio=100)
    >>> model = nn.SmallCNN(width=16)
    >>> out = self_train(model, (mnist.train.x[lab], mnist.train.y[lab]),
    ...                  mnist.train.x[unl], epochs=10)          # doctest: +SKIP
    >>> cnn = nn.SmallCNN(width=16)                               # SSP instead:
    >>> encoder = torch.nn.Sequential(cnn.features, cnn.pool, torch.nn.Flatten())
    >>> self_supervised_pretrain(encoder, mnist.train.x[lab], feature_dim=128,
    ...                          epochs=10)                       # doctest: +SKIP
    >>> train.fit(cnn, (mnist.train.x[lab], mnist.train.y[lab]), epochs=10,
    ...           **class_balanced(mnist.train.y[lab], kind="resample"))  # doctest: +SKIP
"""

# Every public name below is importable as takeaways.imbalance.X.
from takeaways.imbalance.arms import PairedArms, arm_key, summarize_arms  # noqa: F401
from takeaways.imbalance.balanced import (  # noqa: F401
    BALANCING,
    class_balanced,
    class_weights,
    ldam_loss,
    ldam_margins,
    merge_fit_kwargs,
)
from takeaways.imbalance.inputs import class_counts, inputs_tensor, labels_array  # noqa: F401
from takeaways.imbalance.metrics import imbalance_metrics, score_classifier
from takeaways.imbalance.pretext import (  # noqa: F401
    PRETEXTS,
    FlipPretext,
    RotationPretext,
    flip_signals,
    pretrain_classifier,
    rotate_images,
    self_supervised_pretrain,
)
from takeaways.imbalance.selftrain import (  # noqa: F401
    SelfTraining,
    pseudo_label,
    pseudo_label_quality,
    self_train,
)

__all__ = [
    "pseudo_label",
    "self_train",
    "RotationPretext",
    "FlipPretext",
    "self_supervised_pretrain",
    "pretrain_classifier",
    "class_balanced",
    "imbalance_metrics",
    "score_classifier",
    "pseudo_label_quality",
    "PairedArms",
    "summarize_arms",
]
