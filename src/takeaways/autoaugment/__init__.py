"""AWS AutoAugment: augmentation-wise weight sharing for augmentation policy search.

Tian et al., "Improving Auto-Augment via Augmentation-Wise Weight Sharing",
NeurIPS 2020, arXiv 2009.14737. Augmentation matters most late in training, so a
short fine-tune from weights trained once under a uniform policy can stand in for
a full training run when scoring a candidate policy.

The package reads top to bottom: ``ops`` (14 image operations + cutout on batched
tensors (B, C, H, W)), ``policy`` (a readable policy string, its parser and
``apply_policy``), ``search`` (the ``Policy`` distribution over sub-policies and
``aws_search``).

Example:
    >>> import torch
    >>> from takeaways.autoaugment import apply_policy
    >>> x = torch.rand(16, 1, 28, 28)
    >>> y = apply_policy(x, "rotate:6, invert; translate_x:3@0.5", torch.Generator().manual_seed(0))
    >>> y.shape
    torch.Size([16, 1, 28, 28])
"""

from takeaways.autoaugment.policy import (
    AUTOAUGMENT_CIFAR10,
    apply_policy,
    format_policy,
    parse_policy,
)
from takeaways.autoaugment.search import (
    Policy,
    PolicyAugment,
    SearchHistory,
    aws_search,
    random_pairs_like,
    search_space,
    shared_schedule,
)

__all__ = [
    "AUTOAUGMENT_CIFAR10",
    "Policy",
    "PolicyAugment",
    "SearchHistory",
    "apply_policy",
    "aws_search",
    "format_policy",
    "parse_policy",
    "random_pairs_like",
    "search_space",
    "shared_schedule",
]
