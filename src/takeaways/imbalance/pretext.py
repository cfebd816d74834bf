"""Self-supervised pre-training on the imbalanced inputs themselves (arXiv 2006.07529, Sec. 4).

Pre-train the network on a pretext task over the *same* long-tailed training
inputs with labels ignored, then fine-tune the whole network with a fresh head.
Images: 4-way rotation prediction (:class:`RotationPretext`). 1-D signals:
4-way time-reversal / sign-flip prediction (:class:`FlipPretext`).
:func:`self_supervised_pretrain` runs either through ``train.fit``;
:func:`pretrain_classifier` does it for a ``features -> pool -> head`` classifier.

Read top to bottom: the transforms and their per-sample references, the two
pretext wrappers, the pre-training loop.

Example:
    >>> cnn = SmallCNN(width=16)                                    # doctest: +SKIP
    >>> enc = nn.Sequential(cnn.features, cnn.pool, nn.Flatten())  # doctest: +SKIP
    >>> self_supervised_pretrain(enc, x, feature_dim=128, epochs=10)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from takeaways import train as _train
from takeaways.imbalance.inputs import inputs_tensor

__all__ = ["RotationPretext", "FlipPretext", "self_supervised_pretrain", "pretrain_classifier"]


def rotate_images(x: Tensor, k: Tensor) -> Tensor:
    """Rotate image i by k_i * 90 degrees counter-clockwise.

    Shapes: x (B, C, H, H), k (B,) in 0..3 -> (B, C, H, H). One ``rot90`` per
    rotation class rather than per image.
    """
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"rotation needs square images (B, C, H, H), got shape {tuple(x.shape)}; "
            "pad or crop to a square first"
        )
    out = torch.empty_like(x)
    for r in range(4):
        sel = (k == r).nonzero().squeeze(1)
        if len(sel):
            out[sel] = torch.rot90(x[sel], r, dims=(-2, -1))
    return out


def _rotate_images_ref(x: Tensor, k: Tensor) -> Tensor:
    """Reference for ``rotate_images``: one image at a time."""
    return torch.stack([torch.rot90(xi, int(ki), dims=(-2, -1)) for xi, ki in zip(x, k)])


def flip_signals(x: Tensor, k: Tensor) -> Tensor:
    """Apply transform k_i to signal i: bit 0 reverses time, bit 1 flips the sign.

    Shapes: x (B, L) or (B, C, L), k (B,) in 0..3 -> same shape as x. The four
    transforms are the symmetries of the signal's plot (identity, mirror in
    time, mirror in amplitude, and both = a 180-degree rotation of the plot),
    the 1-D counterpart of rotating an image.
    """
    if x.dim() not in (2, 3):
        raise ValueError(f"signals must be (B, L) or (B, C, L), got shape {tuple(x.shape)}")
    shape = (-1,) + (1,) * (x.dim() - 1)
    reverse = (k & 1).bool().view(shape)
    sign = (1 - 2 * ((k >> 1) & 1)).to(x.dtype).view(shape)
    return torch.where(reverse, x.flip(-1), x) * sign


def _flip_signals_ref(x: Tensor, k: Tensor) -> Tensor:
    """Reference for ``flip_signals``: one signal at a time."""
    out = []
    for xi, ki in zip(x, k.tolist()):
        if ki & 1:
            xi = xi.flip(-1)
        if ki & 2:
            xi = -xi
        out.append(xi)
    return torch.stack(out)


def _balanced_transforms(n: int, generator: torch.Generator | None = None) -> Tensor:
    """(n,) transform ids 0..3 in random order, each used n/4 times (up to one)."""
    return torch.randperm(n, generator=generator) % 4


def _check_features(encoder: nn.Module, x: Tensor, feature_dim: int) -> None:
    with torch.no_grad():
        was_training = encoder.training
        f = encoder.eval()(x[:2].to(_train._model_device(encoder)))
        encoder.train(was_training)
    if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[1] != feature_dim:
        got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
        raise ValueError(
            f"the encoder must return features (B, {feature_dim}), got {got}; pass the part of "
            "your model before its classifier (e.g. nn.Sequential(cnn.features, cnn.pool, "
            "nn.Flatten())) and its output width as feature_dim"
        )


class RotationPretext(nn.Module):
    """4-way rotation prediction around any image encoder; ``forward(x)`` returns the loss.

    Gidaris et al. (arXiv 1803.07728), as used for SSP by Yang & Xu (arXiv
    2006.07529, ``pretrain_rot.py``): each image in the batch is rotated by 0, 90,
    180 or 270 degrees, the counts balanced within the batch, and a linear head
    on the encoder's features predicts which. Wraps the encoder, does not copy
    it: training this module trains your encoder in place.

    Args:
        encoder: maps images (B, C, H, H) to features (B, F).
        feature_dim: F.

    Example:
        >>> cnn = SmallCNN(width=16)
        >>> pretext = RotationPretext(nn.Sequential(cnn.features, cnn.pool, nn.Flatten()),
        ...                           feature_dim=128)
        >>> loss = pretext(torch.rand(8, 1, 28, 28)); loss.backward()  # doctest: +SKIP
    """

    num_transforms = 4

    def __init__(self, encoder: nn.Module, *, feature_dim: int) -> None:
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be positive, got {feature_dim}")
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, self.num_transforms)

    @staticmethod
    def transform(x: Tensor, k: Tensor) -> Tensor:
        return rotate_images(x, k)

    def forward(self, x: Tensor) -> Tensor:
        """Images (B, C, H, H) -> scalar rotation-prediction cross-entropy."""
        k = _balanced_transforms(len(x)).to(x.device)  # (B,)
        logits = self.head(self.encoder(self.transform(x, k)))  # (B, 4)
        return F.cross_entropy(logits.float(), k)


class FlipPretext(nn.Module):
    """4-way time-reversal / sign-flip prediction for 1-D signals; ``forward(x)`` returns the loss.

    Why this pretext for signals such as MNIST-1D (Greydanus, arXiv 2011.14439):
    its generator already applies random shifts, scales, shear and noise to
    each digit template, so predicting any of those is either hopeless or
    answerable from low-level statistics. Time reversal and sign flip are not
    in the data: telling a reversed or negated digit from an upright one
    requires knowing what the digits look like, which is exactly what rotation
    prediction asks of an image encoder. The four classes (identity, reverse,
    negate, both) are the symmetries of the signal's plot, so the task is the
    1-D analogue of 4-way rotation.

    Args:
        encoder: maps signals (B, L) or (B, C, L) to features (B, F).
        feature_dim: F.
    """

    num_transforms = 4

    def __init__(self, encoder: nn.Module, *, feature_dim: int) -> None:
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be positive, got {feature_dim}")
        self.encoder = encoder
        self.head = nn.Linear(feature_dim, self.num_transforms)

    @staticmethod
    def transform(x: Tensor, k: Tensor) -> Tensor:
        return flip_signals(x, k)

    def forward(self, x: Tensor) -> Tensor:
        """Signals (B, L) or (B, C, L) -> scalar transform-prediction cross-entropy."""
        k = _balanced_transforms(len(x)).to(x.device)  # (B,)
        logits = self.head(self.encoder(self.transform(x, k)))  # (B, 4)
        return F.cross_entropy(logits.float(), k)


PRETEXTS: dict[str, type[RotationPretext] | type[FlipPretext]] = {
    "rotation": RotationPretext,
    "flip": FlipPretext,
}


def _all_transforms(x: Tensor, transform: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """(N, ...) -> (4N, ...): row 4i + k is sample i under transform k."""
    n = len(x)
    rep = x.repeat_interleave(4, dim=0)  # (4N, ...)
    return transform(rep, torch.arange(4).repeat(n))


@dataclass
class _OneTransformPerSample:
    """fit() hook: each epoch trains on one transform per sample, balanced (pretrain_rot.py)."""

    n: int  # original samples; the pretext dataset has 4n rows
    seed: int

    def on_epoch_start(self, epoch: int, model: nn.Module):
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        k = _balanced_transforms(self.n, g)
        return (torch.arange(self.n) * 4 + k).numpy(), None


def self_supervised_pretrain(
    encoder: nn.Module,
    x: Any,
    *,
    feature_dim: int,
    epochs: int,
    pretext: str = "rotation",
    all_transforms: bool = False,
    eval_x: Any = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> tuple[nn.Module, _train.FitResult]:
    """Self-supervised pre-training (SSP) of ``encoder`` on unlabeled inputs, in place.

    Yang & Xu (arXiv 2006.07529, Sec. 4): pre-train on the *same* imbalanced
    training images with labels ignored, then fine-tune the *whole* network
    (encoder included) with a fresh classifier, with any loss or rule; the
    paper's code does not freeze the backbone. This function does the first
    half through ``train.fit`` (so bf16, checkpoints and ``torchrun`` work);
    fine-tune afterwards with ``fit`` on your full model.

    Each epoch sees every sample once under one transform, the four transforms
    balanced over the epoch, as in ``pretrain_rot.py``; ``all_transforms=True``
    shows all four every epoch instead (RotNet; 4x the cost per epoch).

    Args:
        encoder: maps inputs to features (B, feature_dim); trained in place.
        x: (N, C, H, H) images for ``"rotation"``, (N, L) or (N, C, L) signals for ``"flip"``.
        feature_dim: width of the encoder's features.
        epochs: passes over ``x``.
        pretext: ``"rotation"`` or ``"flip"`` (see :class:`RotationPretext`, :class:`FlipPretext`).
        all_transforms: train on all four transforms of every sample each epoch.
        eval_x: held-out inputs; their pretext accuracy (all four transforms)
            lands in the history as ``eval_accuracy``.
        seed: seeds fit and the per-epoch transform draw.
        **fit_kwargs: passed to ``train.fit`` (lr, batch_size, bf16, progress, ...).

    Returns:
        (the pretext module holding the encoder and its 4-way head, fit's FitResult).

    Raises:
        ValueError: unknown pretext, empty ``x``, an encoder that does not return (B, feature_dim).
    """
    if pretext not in PRETEXTS:
        raise ValueError(f"unknown pretext {pretext!r}; choose one of {', '.join(PRETEXTS)}")
    xt = inputs_tensor(x, "x")
    if len(xt) == 0:
        raise ValueError("x is empty; self-supervised pre-training needs at least one sample")
    module = PRETEXTS[pretext](encoder, feature_dim=feature_dim)
    probe = module.transform(xt[:2], torch.zeros(min(2, len(xt)), dtype=torch.long))
    _check_features(encoder, probe, feature_dim)
    module.head.to(_train._model_device(encoder))
    inputs = _all_transforms(xt, module.transform)  # (4N, ...)
    targets = torch.arange(4).repeat(len(xt))  # (4N,)
    hooks = list(fit_kwargs.pop("hooks", []))
    if not all_transforms:
        hooks.append(_OneTransformPerSample(len(xt), seed))
    eval_data = None
    if eval_x is not None:
        ex = inputs_tensor(eval_x, "eval_x")
        eval_data = (_all_transforms(ex, module.transform), torch.arange(4).repeat(len(ex)))
    classifier = nn.Sequential(module.encoder, module.head)  # shares the weights
    out = _train.fit(
        classifier,
        (inputs, targets),
        epochs=epochs,
        seed=seed,
        hooks=hooks,
        eval_data=eval_data,
        **{"desc": f"SSP {pretext}", **fit_kwargs},
    )
    return module, out


def pretrain_classifier(
    model: nn.Module, x: Any, *, epochs: int, pretext: str = "rotation", **kwargs: Any
) -> tuple[nn.Module, _train.FitResult]:
    """SSP of a ``features -> pool -> head`` classifier (``nn.SmallCNN``, ``nn.SmallCNN1d``).

    Pre-trains ``nn.Sequential(model.features, model.pool, nn.Flatten())`` in place with
    :func:`self_supervised_pretrain`; ``model.head`` keeps its weights, so fine-tuning the
    whole ``model`` with ``train.fit`` afterwards completes the paper's SSP recipe.

    Args:
        model: classifier with ``features``, ``pool`` and a ``head`` ending in ``nn.Linear``.
        x, epochs, pretext, **kwargs: as for :func:`self_supervised_pretrain`.

    Returns:
        (the pretext module, fit's FitResult), as :func:`self_supervised_pretrain`.

    Raises:
        TypeError: a model without that layout.
    """
    head = getattr(model, "head", None)
    last = head[-1] if isinstance(head, nn.Sequential) else head
    if not (hasattr(model, "features") and hasattr(model, "pool") and isinstance(last, nn.Linear)):
        raise TypeError(
            f"{type(model).__name__} needs features, pool and a head ending in nn.Linear; "
            "otherwise call self_supervised_pretrain with your own encoder"
        )
    encoder = nn.Sequential(model.features, model.pool, nn.Flatten())  # shares model's weights
    return self_supervised_pretrain(
        encoder, x, feature_dim=last.in_features, epochs=epochs, pretext=pretext, **kwargs
    )
