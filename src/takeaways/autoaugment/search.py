"""The learned policy and AWS search: shared weights once, then cheap fine-tunes scored by PPO.

``Policy`` is a distribution over ordered pairs (op1, op2) of the 36-op AWS search
space (11 ops at levels 3, 6, 9, plus autocontrast, equalize, invert; ``search_space(1)``
drops ``color``, a no-op on grayscale, leaving 33), factored as
P(op1) P(op2 | op1) with parameters ``first`` (K,) and ``second`` (K, K); probabilities
are sigmoid(param) normalised to sum to 1, so all-zero parameters are uniform.
Both ops of a drawn pair are always applied.

``aws_search`` (arXiv 2009.14737, pipeline as in our research notes §4):

1. train the model once under the uniform policy (the shared weights);
2. each controller step: for each trajectory restore the shared weights and optimizer
   state, fine-tune ``finetune_epochs`` with one pair drawn per image from the current
   policy, the learning rate continuing the shared cosine schedule's tail (the shared
   training is the head of one ``shared_epochs + finetune_epochs`` schedule), reward =
   validation accuracy;
3. PPO: advantage = reward - running baseline, spread over the drawn pairs by their
   frequency; ratio = new / old probability, clipped to [1 - clip, 1 + clip]; a few Adam
   steps, stopping early when the KL to the old policy passes ``kl_stop``.

Differences from the official code: the ratio is new / old (the code computes old / new);
the fine-tune continues the shared cosine schedule to 0 (the code fine-tunes at the constant
lr at which its cosine ended, 0.001);
the reward is the final validation accuracy (the code averages the best two of ten
epochs); the advantage is divided by a running mean absolute deviation of the rewards
(the spread of the first step's rewards to start) so that the tiny accuracy differences
of a short CPU search still move the policy; and, optionally (``pairs_per_trajectory``),
each fine-tune draws a small menu of pairs and every image uses one of them, so that
with few trajectories their rewards differ by policy and not only by sampling noise.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from takeaways.autoaugment.ops import OP_NAMES, check_images, has_level, magnitude
from takeaways.autoaugment.policy import Op as PolicyOp
from takeaways.autoaugment.policy import (
    SubPolicy,
    apply_ops,
    apply_policy,
    as_policy,
    format_policy,
)

SEARCH_LEVELS = (3, 6, 9)
# (name, level) of the 36 ops; the first 11 names take SEARCH_LEVELS, the last 3 no level
SEARCH_SPACE: tuple[tuple[str, int], ...] = tuple(
    (n, lvl) for n in OP_NAMES if has_level(n) and n != "cutout" for lvl in SEARCH_LEVELS
) + tuple((n, 0) for n in OP_NAMES if not has_level(n))
# ops that leave an image with this many channels unchanged: saturation needs colour
NO_OPS_BY_CHANNELS: dict[int, tuple[str, ...]] = {1: ("color",), 2: ("color",)}


def search_space(channels: int = 3) -> tuple[tuple[str, int], ...]:
    """The AWS search space for images of ``channels`` channels, without the ops that are
    no-ops on them (``color`` on 1 or 2 channels: 33 ops instead of 36), so that no pair
    of the policy's mass is spent on leaving images as they are.
    """
    if channels < 1:
        raise ValueError(f"search_space channels must be >= 1, got {channels}")
    drop = NO_OPS_BY_CHANNELS.get(channels, ())
    return tuple((n, lv) for n, lv in SEARCH_SPACE if n not in drop)


def cosine_lr(lr: float, progress: float) -> float:
    """``lr * (1 + cos(pi * progress)) / 2``: the cosine decay to 0 that ``train.fit`` uses."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))


def shared_schedule(
    lr: float, shared_epochs: int, finetune_epochs: int
) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """Learning rate of the shared training and of a fine-tune, as functions of the progress
    ``t`` in [0, 1) through each phase.

    Both are pieces of one cosine schedule over ``shared_epochs + finetune_epochs`` epochs:
    the shared training is its head and every fine-tune continues its tail from where the
    shared training stopped, so a fine-tune is the last ``finetune_epochs`` of one full
    training whose augmentation changes to the candidate policy at the end (the paper's
    premise: augmentation matters most late in training).
    """
    total = shared_epochs + finetune_epochs
    head = shared_epochs / total

    def shared(t: float) -> float:
        return cosine_lr(lr, t * head)

    def tail(t: float) -> float:
        return cosine_lr(lr, head + t * (1.0 - head))

    return shared, tail


class Policy(nn.Module):
    """P(op1, op2) = P(op1) P(op2 | op1) over ``SEARCH_SPACE`` (K = 36 ops, K^2 pairs).

    Example:
        >>> p = Policy()                         # uniform
        >>> pairs = p.sample(4, torch.Generator().manual_seed(0))   # (4, 2) op indices
        >>> p.augment(torch.rand(4, 1, 28, 28), pairs).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(self, space: tuple[tuple[str, int], ...] = SEARCH_SPACE) -> None:
        super().__init__()
        self.space = tuple(space)
        k = len(self.space)
        self.first = nn.Parameter(torch.zeros(k))  # (K,)
        self.second = nn.Parameter(torch.zeros(k, k))  # (K, K), row = op1
        # per search-space op: its index in OP_NAMES and its unsigned magnitude
        self.register_buffer("op_ids", torch.tensor([OP_NAMES.index(n) for n, _ in self.space]))
        self.register_buffer(
            "op_mags", torch.tensor([float(magnitude(n, lv)) for n, lv in self.space])
        )

    def probs(self) -> tuple[Tensor, Tensor]:
        """P(op1) (K,) and P(op2 | op1) (K, K), each row summing to 1."""
        p1 = torch.sigmoid(self.first)
        p2 = torch.sigmoid(self.second)
        return p1 / p1.sum(), p2 / p2.sum(-1, keepdim=True)

    def joint(self) -> Tensor:
        """(K, K) probability of each ordered pair."""
        p1, p2 = self.probs()
        return p1[:, None] * p2

    def log_prob(self, pairs: Tensor) -> Tensor:
        """Log-probability (N,) of pairs (N, 2)."""
        p1, p2 = self.probs()
        return torch.log(p1[pairs[:, 0]]) + torch.log(p2[pairs[:, 0], pairs[:, 1]])

    @torch.no_grad()
    def entropy(self) -> float:
        j = self.joint()
        return float(-(j * j.clamp_min(1e-30).log()).sum())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, 2) op indices, one pair per image."""
        p1, p2 = (p.cpu() for p in self.probs())  # draws on the CPU generator
        op1 = torch.multinomial(p1, n, replacement=True, generator=generator)
        u = torch.rand(n, 1, generator=generator)
        op2 = (p2[op1].cumsum(-1) < u).sum(-1).clamp_max(len(self.space) - 1)
        return torch.stack([op1, op2], dim=1)

    def augment(
        self, images: Tensor, pairs: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Apply pair ``pairs[b]`` to image ``b``; images (B, C, H, W) in [0, 1]."""
        check_images(images, "Policy.augment")
        pairs = pairs.cpu()
        ids, mags = self.op_ids.cpu()[pairs], self.op_mags.cpu()[pairs]  # (B, 2) each
        return apply_ops(images, ids, mags, torch.ones(pairs.shape), generator)

    def top(self, k: int = 10) -> list[SubPolicy]:
        """The ``k`` most probable pairs as sub-policies weighted by their probability."""
        j = self.joint().detach().flatten()
        best = j.topk(min(k, len(j))).indices.tolist()
        n = len(self.space)
        subs = []
        for flat in best:
            a, b = self.space[flat // n], self.space[flat % n]
            subs.append(SubPolicy((PolicyOp(*a), PolicyOp(*b)), float(f"{j[flat].item():.4g}")))
        return subs

    def __str__(self) -> str:
        return format_policy(self.top(10))


def random_pairs_like(
    policy: list[SubPolicy],
    space: tuple[tuple[str, int], ...] = SEARCH_SPACE,
    generator: torch.Generator | None = None,
) -> list[SubPolicy]:
    """A random policy of the same size and weights as ``policy``: as many distinct ordered
    pairs, drawn uniformly from ``space`` x ``space``, each taking the weight of the pair of
    ``policy`` in the same position (so only the choice of pairs differs).

    The control for a searched policy of ``k`` pairs (``Policy.top(k)``): if the search
    learned nothing, its pairs are as good as these.

    Raises:
        ValueError: ``policy`` has more pairs than ``space`` x ``space``, or a sub-policy
            that is not a pair.
    """
    k, n = len(policy), len(space)
    if k > n * n:
        raise ValueError(f"random_pairs_like: {k} pairs asked, the space has only {n * n}")
    if any(len(s.ops) != 2 for s in policy):
        raise ValueError("random_pairs_like takes a policy of pairs, e.g. Policy.top(k)")
    flat = torch.randperm(n * n, generator=generator)[:k].tolist()  # distinct pairs
    return [
        SubPolicy((PolicyOp(*space[f // n]), PolicyOp(*space[f % n])), sub.weight)
        for f, sub in zip(flat, policy)
    ]


class PolicyAugment(nn.Module):
    """Augments its input in training mode only; put it in front of any model.

    ``nn.Sequential(PolicyAugment("rotate:6, invert"), model)`` trains with the policy
    under ``train.fit`` and evaluates on clean images. ``policy`` is a policy string, a
    parsed policy or a ``Policy`` (one pair drawn per image).
    """

    def __init__(self, policy: str | list[SubPolicy] | Policy, *, seed: int = 0) -> None:
        super().__init__()
        if isinstance(policy, Policy):  # a frozen copy: an optimizer over the model skips it
            policy = copy.deepcopy(policy).requires_grad_(False)
        self.policy = policy if isinstance(policy, Policy) else as_policy(policy)
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        with torch.no_grad():
            if isinstance(self.policy, Policy):
                return self.policy.augment(
                    x, self.policy.sample(len(x), self.generator), self.generator
                )
            return apply_policy(x, self.policy, self.generator)


# ----------------------------------------------------------------------------- search


@dataclass
class SearchHistory:
    """What ``aws_search`` did, step by step, and what it cost."""

    rewards: list[list[float]] = field(default_factory=list)  # per step, per trajectory
    baseline: list[float] = field(default_factory=list)  # running reward baseline per step
    entropy: list[float] = field(default_factory=list)  # policy entropy (nats) after each step
    shared_accuracy: float = float("nan")  # validation accuracy of the shared weights
    shared_epochs: int = 0
    finetune_epochs: int = 0  # total over all trajectories
    evaluated_policies: int = 0  # trajectories run (each scores one sampled policy)

    @property
    def model_epochs(self) -> int:
        """Search cost: epochs of training over the training set, all included."""
        return self.shared_epochs + self.finetune_epochs


def _accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(
            int((model(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum())
            for i in range(0, len(y), batch_size)
        )
    model.train()
    return hits / max(len(y), 1)


def _train(model, opt, x, y, *, epochs, batch_size, lr_at, policy, generator, menu=None) -> Tensor:
    """Plain SGD epochs under ``policy``; returns the (P, 2) pairs drawn (for PPO counts).

    With ``menu`` (M, 2), each image draws one of those pairs uniformly instead.
    """
    model.train()
    drawn = []
    steps = epochs * math.ceil(len(y) / batch_size)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            if menu is None:
                pairs = policy.sample(len(idx), generator)
            else:
                pairs = menu[torch.randint(len(menu), (len(idx),), generator=generator)]
            drawn.append(pairs)
            xb = policy.augment(x[idx], pairs, generator)
            for g in opt.param_groups:
                g["lr"] = lr_at(step / steps)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 3.0)
            opt.step()
            step += 1
    return torch.cat(drawn)


def ppo_update(
    policy: Policy,
    controller: torch.optim.Optimizer,
    weight: Tensor,
    *,
    clip: float = 0.2,
    steps: int = 5,
    kl_stop: float = 0.002,
) -> int:
    """Clipped-ratio PPO steps on ``weight`` (K*K,), the advantage spread over pairs.

    Maximizes ``sum_pairs min(r * w, clip(r, 1 - clip, 1 + clip) * w)`` with the ratio
    ``r = P_new(pair) / P_old(pair)`` (standard PPO; the official code's old / new would
    push a rewarded pair down). Stops once KL(old || new) passes ``kl_stop``.

    Returns:
        The number of optimizer steps taken.
    """
    with torch.no_grad():
        old = policy.joint().flatten().clamp_min(1e-30)  # (K*K,)
    for i in range(steps):
        ratio = policy.joint().flatten() / old  # new / old
        obj = torch.minimum(ratio * weight, ratio.clamp(1 - clip, 1 + clip) * weight)
        controller.zero_grad()
        (-obj.sum()).backward()
        controller.step()
        with torch.no_grad():
            new = policy.joint().flatten().clamp_min(1e-30)
            if float((old * (old.log() - new.log())).sum()) > kl_stop:
                return i + 1
    return steps


def aws_search(
    model_fn: Callable[[], nn.Module],
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    *,
    shared_epochs: int,
    finetune_epochs: int,
    iterations: int,
    trajectories: int = 2,
    pairs_per_trajectory: int | None = None,
    space: tuple[tuple[str, int], ...] = SEARCH_SPACE,
    batch_size: int = 64,
    lr: float = 0.05,
    finetune_lr: float | None = None,
    clip: float = 0.2,
    ppo_steps: int = 5,
    ppo_lr: float = 0.1,
    kl_stop: float = 0.002,
    momentum: float = 0.9,
    seed: int = 0,
    on_step: Callable[[int, Policy, SearchHistory], None] | None = None,
) -> tuple[Policy, SearchHistory]:
    """Search an augmentation policy by augmentation-wise weight sharing (arXiv 2009.14737).

    Args:
        model_fn: builds a fresh model mapping (B, C, H, W) to logits (B, K).
        train, val: (images (N, C, H, W) float in [0, 1], labels (N,) int64).
        shared_epochs: epochs of the shared training under the uniform policy.
        finetune_epochs: epochs of each fine-tune from the shared weights.
        iterations: controller (PPO) steps.
        trajectories: fine-tunes per step (one sampled policy each).
        pairs_per_trajectory: if given, each fine-tune first draws this many pairs from the
            policy and every image uses one of them, so that trajectories differ in policy
            and not only in sampling noise (None: one pair per image from the full policy,
            as in the official code).
        space: the (op name, level) pairs the policy chooses from (default the 36 of AWS).
        batch_size, lr: SGD (Nesterov, momentum 0.9, weight decay 1e-4), cosine from ``lr``
            to 0 over ``shared_epochs + finetune_epochs`` (``shared_schedule``).
        finetune_lr: None (default): each fine-tune continues that schedule's tail from
            the shared weights, as if one training switched policy for its last
            ``finetune_epochs``; a number: a constant learning rate instead.
        clip, ppo_steps, ppo_lr, kl_stop: PPO ratio clip, inner Adam steps, their
            learning rate and the KL at which they stop early.
        momentum: of the running reward baseline.
        seed: seeds the model, data order and every draw.
        on_step: called as ``on_step(step, policy, history)`` after each controller step.

    Returns:
        (policy, history): the learned ``Policy`` and a ``SearchHistory`` with its cost
        in model-epochs.

    Raises:
        ValueError: a non-positive epoch/iteration count or images not (N, C, H, W).

    Example:
        >>> from takeaways.nn import SmallCNN
        >>> policy, hist = aws_search(lambda: SmallCNN(width=8), (x, y), (xv, yv),
        ...     shared_epochs=5, finetune_epochs=1, iterations=10)   # doctest: +SKIP
        >>> apply_policy(images, policy.top(5))                       # doctest: +SKIP
    """
    for name, v in (("shared_epochs", shared_epochs), ("finetune_epochs", finetune_epochs),
                    ("iterations", iterations), ("trajectories", trajectories)):  # fmt: skip
        if v < 1:
            raise ValueError(f"aws_search {name} must be >= 1, got {v}")
    if pairs_per_trajectory is not None and pairs_per_trajectory < 1:
        raise ValueError(
            f"aws_search pairs_per_trajectory must be >= 1 or None, got {pairs_per_trajectory}"
        )
    x, y = train
    xv, yv = val
    check_images(x, "aws_search train")
    check_images(xv, "aws_search val")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = model_fn()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
    policy = Policy(space)
    hist = SearchHistory(shared_epochs=shared_epochs)

    head, tail = shared_schedule(lr, shared_epochs, finetune_epochs)
    finetune_at = tail if finetune_lr is None else (lambda t: finetune_lr)

    # 1. shared weights under the uniform policy (all parameters zero)
    _train(model, opt, x, y, epochs=shared_epochs, batch_size=batch_size, lr_at=head,
           policy=policy, generator=g)  # fmt: skip
    hist.shared_accuracy = _accuracy(model, xv, yv)
    shared = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))

    controller = torch.optim.Adam(policy.parameters(), lr=ppo_lr, betas=(0.5, 0.999))
    baseline, spread = None, None
    for step in range(iterations):
        rewards, counts = [], []
        for _ in range(trajectories):
            model.load_state_dict(shared[0])
            opt.load_state_dict(shared[1])
            menu = policy.sample(pairs_per_trajectory, g) if pairs_per_trajectory else None
            drawn = _train(model, opt, x, y, epochs=finetune_epochs, batch_size=batch_size,
                           lr_at=finetune_at, policy=policy, generator=g,
                           menu=menu)  # fmt: skip
            hist.finetune_epochs += finetune_epochs
            hist.evaluated_policies += 1
            rewards.append(_accuracy(model, xv, yv))
            k = len(policy.space)
            counts.append(torch.bincount(drawn[:, 0] * k + drawn[:, 1], minlength=k * k).float())
        # 3. PPO on the pairs each trajectory used, weighted by their frequency
        r = torch.tensor(rewards)
        if baseline is None:
            baseline, spread = float(r.mean()), float(r.std()) if len(r) > 1 else 0.0
        adv = (r - baseline) / max(spread or 0.0, 1e-3)  # (T,)
        freq = torch.stack(counts)
        freq = freq / freq.sum(-1, keepdim=True)  # (T, K*K)
        weight = (freq * adv[:, None]).sum(0)  # (K*K,) advantage spread over pairs
        ppo_update(policy, controller, weight, clip=clip, steps=ppo_steps, kl_stop=kl_stop)
        baseline = momentum * baseline + (1 - momentum) * float(r.mean())
        dev = float((r - baseline).abs().mean())
        spread = momentum * (spread or dev) + (1 - momentum) * dev
        hist.rewards.append(rewards)
        hist.baseline.append(baseline)
        hist.entropy.append(policy.entropy())
        if on_step is not None:
            on_step(step, policy, hist)
    return policy, hist
