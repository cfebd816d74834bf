"""Lottery tickets: find sparse trainable subnetworks by iterative magnitude pruning.

Chen et al., "The Lottery Ticket Hypothesis for Pre-trained BERT Networks" (NeurIPS
2020, arXiv:2007.12223): pruning a pre-trained BERT by iterative magnitude pruning
(IMP), rewinding the survivors to the pre-trained weights after every round, finds
subnetworks at 40-90% sparsity that fine-tune to the full model's accuracy, and a
subnetwork found on the masked-language-model task at 70% transfers to every
downstream task.

The package reads top to bottom: ``ticket`` (masks, what is prunable, magnitude
pruning, keeping masks applied, save/load/transfer, the random control) and ``imp``
(the IMP loop with linear or geometric schedules and rewinding; ``train_controls`` trains
the paper's random-mask and one-shot-pruning controls beside the tickets); ``metrics`` writes
and reads results stored as one metric per arm and sparsity.

Example:
    >>> from takeaways.lottery import Ticket, find_ticket
    >>> ticket = find_ticket(model, train_fn, eval_fn, rate=0.1, rounds=9)  # doctest: +SKIP
    >>> control = ticket.random_like(seed=0)    # same per-layer sparsity, random positions
    >>> ticket.save("ticket.safetensors")       # doctest: +SKIP
    >>> Ticket.load("ticket.safetensors").transfer(other_model)  # doctest: +SKIP
"""

from takeaways.lottery.imp import find_ticket
from takeaways.lottery.ticket import Ticket, prunable_weights

__all__ = ["find_ticket", "Ticket", "prunable_weights"]
