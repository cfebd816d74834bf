"""Policy strings, their parser, and ``apply_policy`` on batched images.

A policy is a list of sub-policies; each image draws one sub-policy (by weight)
and applies its operations in order, each with its own probability::

    "rotate:6, invert; 0.5*shear_x:3@0.7, posterize:9"

* ``;`` separates sub-policies, ``,`` the operations inside one;
* an operation is ``name``, ``name:level`` (level 0..10) or ``name:level@p`` with
  application probability ``p`` in [0, 1] (default 1);
* a sub-policy may start with ``w*``, a positive weight (default 1); weights are
  normalised when sampling;
* ``none`` (or an empty string) is the policy that leaves images unchanged;
* ``rand-n{N}-m{M}`` is a RandAugment-style policy: N operations drawn uniformly
  from the 14 of the search space (not cutout), all at level M.

Ops without a magnitude (autocontrast, equalize, invert) take no level.
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

import torch
from torch import Tensor

from takeaways.autoaugment.ops import MAX_LEVEL, OP_NAMES, OPS, check_images, has_level, magnitude


class Op(NamedTuple):
    name: str  # a key of ops.OPS
    level: int  # 0..MAX_LEVEL (0 for ops without a magnitude)
    prob: float = 1.0  # probability of applying it


class SubPolicy(NamedTuple):
    ops: tuple[Op, ...]
    weight: float = 1.0  # relative chance that an image draws this sub-policy


# AutoAugment's policy found on reduced CIFAR-10: Cubuk et al., "AutoAugment: Learning
# Augmentation Policies from Data", arXiv 1805.09501, Appendix (Table "policy found on
# reduced CIFAR-10"; the same 25 pairs are torchvision's AutoAugmentPolicy.CIFAR10), as
# (op, probability, level) on the shared 0..10 level scale. Their colour ops map a level to
# a factor 0.1 + 0.18 * level without a random sign, ours to 1 +- 0.09 * level, so those
# entries are approximate.
AUTOAUGMENT_CIFAR10 = (
    "invert@0.1, contrast:6@0.2; rotate:2@0.7, translate_x:9@0.3; "
    "sharpness:1@0.8, sharpness:3@0.9; shear_y:8@0.5, translate_y:9@0.7; "
    "autocontrast@0.5, equalize@0.9; shear_y:7@0.2, posterize:7@0.3; "
    "color:3@0.4, brightness:7@0.6; sharpness:9@0.3, brightness:9@0.7; "
    "equalize@0.6, equalize@0.5; contrast:7@0.6, sharpness:5@0.6; "
    "color:7@0.7, translate_x:8@0.5; equalize@0.3, autocontrast@0.4; "
    "translate_y:3@0.4, sharpness:6@0.2; brightness:6@0.9, color:8@0.2; "
    "solarize:2@0.5, invert@0; equalize@0.2, autocontrast@0.6; "
    "equalize@0.2, equalize@0.6; color:9@0.9, equalize@0.6; "
    "autocontrast@0.8, solarize:8@0.2; brightness:3@0.1, color:0@0.7; "
    "solarize:5@0.4, autocontrast@0.9; translate_y:9@0.9, translate_y:7@0.7; "
    "autocontrast@0.9, solarize:3@0.8; equalize@0.8, invert@0.1; "
    "translate_y:7@0.7, autocontrast@0.9"
)

_RAND = re.compile(r"rand-n(\d+)-m(\d+)")
SEARCH_OPS = tuple(n for n in OP_NAMES if n != "cutout")  # the 14 AutoAugment operations


def _op(token: str) -> Op:
    m = re.fullmatch(r"([a-z_]+)(?::([^@]*))?(?:@(.*))?", token)
    if not m:
        raise ValueError(f"cannot read op {token!r}; write name, name:level or name:level@prob")
    name, level_s, prob_s = m.groups()
    if name not in OPS:
        raise ValueError(f"unknown op {name!r} in {token!r}; known ops: {', '.join(OP_NAMES)}")
    level = 0
    if level_s is not None:
        if not has_level(name):
            raise ValueError(f"op {name!r} takes no level; write {name!r} alone (in {token!r})")
        if not level_s.strip().isdigit() or not 0 <= int(level_s) <= MAX_LEVEL:
            raise ValueError(f"level {level_s!r} in {token!r} is not an integer in 0..{MAX_LEVEL}")
        level = int(level_s)
    elif has_level(name):
        raise ValueError(f"op {name!r} needs a level 0..{MAX_LEVEL}, e.g. {name}:5 (in {token!r})")
    prob = 1.0
    if prob_s is not None:
        try:
            prob = float(prob_s)
        except ValueError:
            prob = -1.0
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"probability {prob_s!r} in {token!r} is not a number in [0, 1]")
    return Op(name, level, prob)


def _sub(text: str) -> SubPolicy:
    weight = 1.0
    if "*" in text:
        w_s, text = text.split("*", 1)
        try:
            weight = float(w_s)
        except ValueError:
            weight = -1.0
        if not weight > 0:
            raise ValueError(f"weight {w_s!r} before '*' is not a positive number")
    tokens = [t for t in text.split(",")]
    if any(t == "" for t in tokens):
        raise ValueError(f"empty op in sub-policy {text!r}; remove the stray ','")
    return SubPolicy(tuple(_op(t) for t in tokens), weight)


def parse_policy(text: str) -> list[SubPolicy]:
    """Read a policy string (format in the module docstring) into sub-policies.

    Raises:
        ValueError: naming the bad token and the valid names or range.
    """
    if not isinstance(text, str):
        raise TypeError(f"a policy string is a str, got {type(text).__name__}")
    s = re.sub(r"\s+", "", text.lower())
    if s in ("", "none"):
        return []
    m = _RAND.fullmatch(s)
    if m:
        n, level = int(m.group(1)), int(m.group(2))
        if n < 1 or level > MAX_LEVEL:
            raise ValueError(f"{text!r}: need N >= 1 and M in 0..{MAX_LEVEL}, e.g. rand-n2-m9")
        return [
            SubPolicy(tuple(Op(o, level if has_level(o) else 0) for o in combo))
            for combo in itertools.product(SEARCH_OPS, repeat=n)
        ]
    return [_sub(part) for part in s.split(";")]


def format_policy(policy: list[SubPolicy]) -> str:
    """The canonical string of ``policy``; ``parse_policy`` reads it back unchanged."""
    if not policy:
        return "none"
    parts = []
    for sub in policy:
        ops = []
        for op in sub.ops:
            t = f"{op.name}:{op.level}" if has_level(op.name) else op.name
            ops.append(t if op.prob == 1.0 else f"{t}@{op.prob!r}")
        w = "" if sub.weight == 1.0 else f"{sub.weight!r}*"
        parts.append(w + ", ".join(ops))
    return "; ".join(parts)


# ----------------------------------------------------------------------------- applying


def op_tables(policy: list[SubPolicy], choice: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image op ids, magnitudes and probabilities (B, L) for chosen sub-policies."""
    length = max(len(s.ops) for s in policy)
    ids = torch.full((len(policy), length), -1, dtype=torch.long)
    mags = torch.zeros(len(policy), length)
    probs = torch.zeros(len(policy), length)
    for i, sub in enumerate(policy):
        for j, op in enumerate(sub.ops):
            ids[i, j] = OP_NAMES.index(op.name)
            mags[i, j] = magnitude(op.name, op.level)
            probs[i, j] = op.prob
    return ids[choice], mags[choice], probs[choice]


def apply_ops(
    images: Tensor, ids: Tensor, mags: Tensor, probs: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Apply op ``ids[b, j]`` (index into OP_NAMES, -1 = none) at ``mags`` with ``probs``.

    All randomness (application, sign, cutout centre) is drawn up front, batched; each
    step then runs every distinct op once on the images that use it.
    """
    b, length = ids.shape
    dev = images.device
    applied = torch.rand(b, length, generator=generator) < probs  # (B, L)
    sign = torch.where(torch.rand(b, length, generator=generator) < 0.5, -1.0, 1.0)
    u = torch.rand(b, length, 2, generator=generator)  # (B, L, 2)
    x = images
    for j in range(length):
        for k in ids[:, j].unique().tolist():
            if k < 0:
                continue
            info = OPS[OP_NAMES[k]]
            idx = ((ids[:, j] == k) & applied[:, j]).nonzero().flatten()
            if len(idx) == 0:
                continue
            v = mags[idx, j] * (sign[idx, j] if info.signed else 1.0)
            out = info.fn(x[idx.to(dev)], v.to(dev), u[idx, j].to(dev))
            x = x.index_copy(0, idx.to(dev), out)
    return x


def apply_ops_reference(
    images: Tensor, ids: Tensor, mags: Tensor, probs: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Naive ``apply_ops``: the same draws, one image and one op at a time."""
    b, length = ids.shape
    applied = torch.rand(b, length, generator=generator) < probs
    sign = torch.where(torch.rand(b, length, generator=generator) < 0.5, -1.0, 1.0)
    u = torch.rand(b, length, 2, generator=generator)
    rows = []
    for i in range(b):
        xi = images[i : i + 1]
        for j in range(length):
            k = int(ids[i, j])
            if k < 0 or not applied[i, j]:
                continue
            info = OPS[OP_NAMES[k]]
            v = mags[i, j] * (sign[i, j] if info.signed else 1.0)
            xi = info.fn(xi, v.view(1), u[i, j].view(1, 2))
        rows.append(xi)
    return torch.cat(rows)


def as_policy(policy: str | list[SubPolicy]) -> list[SubPolicy]:
    return parse_policy(policy) if isinstance(policy, str) else list(policy)


def apply_policy(
    images: Tensor,
    policy: str | list[SubPolicy],
    generator: torch.Generator | None = None,
) -> Tensor:
    """Augment each image with one sub-policy of ``policy`` drawn by weight.

    Args:
        images: (B, C, H, W) float in [0, 1], any device.
        policy: a policy string (see the module docstring) or ``parse_policy``'s output.
        generator: a CPU ``torch.Generator`` for reproducible draws.

    Returns:
        (B, C, H, W) augmented images (differentiable through the geometric and blend ops).

    Raises:
        ValueError / TypeError: images not (B, C, H, W) float, or a bad policy string.

    Example:
        >>> x = torch.rand(8, 1, 28, 28)
        >>> apply_policy(x, "rotate:6, invert; shear_x:3@0.5", torch.Generator().manual_seed(0)).shape
        torch.Size([8, 1, 28, 28])
    """
    check_images(images, "apply_policy")
    subs = as_policy(policy)
    if not subs or len(images) == 0:
        return images
    weights = torch.tensor([s.weight for s in subs], dtype=torch.float64)
    choice = torch.multinomial(weights, len(images), replacement=True, generator=generator)
    ids, mags, probs = op_tables(subs, choice)
    return apply_ops(images, ids, mags, probs, generator)
