"""A lottery ticket: one pruning mask per weight tensor, kept through training, saved, transferred.

Paper: "The Lottery Ticket Hypothesis for Pre-trained BERT Networks", Chen, Frankle,
Chang, Liu, Zhang, Wang & Carbin, NeurIPS 2020, arXiv:2007.12223.

A ``Ticket`` stores, for every prunable weight tensor, the round in which each entry
was pruned (0 = kept, k = pruned in round k of iterative magnitude pruning). The
masks of every intermediate round are therefore in one uint8 tensor per weight:
``ticket.at_round(k)`` gives the ticket as it was after round k.

What is pruned by default (``prunable_weights``) follows the paper's code: in a
BERT-like model the attention query/key/value and output projections, the
intermediate and output dense layers of each block and the pooler; never
embeddings, norms, biases or the task head. A model with no BERT-like names gets
every Linear / Conv weight except the last Linear (its head).

Example:
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> ticket = Ticket.magnitude(model, 0.5)          # one-shot, global magnitude
    >>> handle = ticket.apply(model)                   # pruned weights stay zero in training
    >>> ticket.sparsity, ticket.layer_sparsity
    (0.5, {'0.weight': 0.5})
    >>> ticket.save("t.safetensors"); Ticket.load("t.safetensors").sparsity  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

__all__ = ["Ticket", "prunable_weights", "prune_smallest", "attach_masks", "MaskHandle"]

Prunable = Callable[[str, Tensor], bool] | str | None

# HF BERT names (attention.self.query, attention.output.dense, intermediate.dense,
# output.dense, pooler.dense) and takeaways' own encoder (attn.qkv, attn.proj, mlp.fc, mlp.proj).
BERT_PRUNABLE = re.compile(
    r"(attention\.self\.(query|key|value)|output\.dense|intermediate\.dense|pooler\.dense"
    r"|attn\.(qkv|proj)|mlp\.(fc|proj))\.weight$"
)
SCOPES = ("global", "layer")


# ----------------------------------------------------------------------------- what to prune


def prunable_weights(model: nn.Module, prunable: Prunable = None) -> list[str]:
    """Names of the weight tensors a ticket prunes, in the model's parameter order.

    Args:
        model: any module.
        prunable: ``None`` for the default (BERT-like layers if the model has any,
            else every Linear / Conv weight but the last Linear), a regex searched in
            each parameter name, or a callable ``(name, param) -> bool``.

    Returns:
        The selected parameter names.

    Raises:
        ValueError: the filter selects nothing, or a 1-D tensor (bias, norm).
        TypeError: ``prunable`` is neither None, a string nor a callable.
    """
    params = dict(model.named_parameters())
    if prunable is None:
        names = [n for n in params if BERT_PRUNABLE.search(n)]
        if not names:
            layers = [
                (n, m)
                for n, m in model.named_modules()
                if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
            ]
            last_linear = max(
                (i for i, (_, m) in enumerate(layers) if isinstance(m, nn.Linear)), default=-1
            )
            names = [
                f"{n}.weight" if n else "weight"
                for i, (n, _) in enumerate(layers)
                if i != last_linear
            ]
        what = "the default filter (BERT-like layers, else Linear/Conv weights but the head)"
    elif isinstance(prunable, str):
        pattern = re.compile(prunable)
        names = [n for n in params if pattern.search(n)]
        what = f"prunable={prunable!r}"
    elif callable(prunable):
        names = [n for n, p in params.items() if prunable(n, p)]
        what = "the prunable callable"
    else:
        raise TypeError(
            f"prunable must be None, a regex string or a callable, got {type(prunable).__name__}"
        )
    if not names:
        raise ValueError(
            f"{what} matched no parameter of {type(model).__name__}; "
            f"its parameters start with {list(params)[:4]}"
        )
    flat = [n for n in names if params[n].dim() < 2]
    if flat:
        raise ValueError(
            f"{flat[0]} is 1-D (a bias or norm); prune weight matrices and kernels only"
        )
    return names


# ----------------------------------------------------------------------------- magnitude pruning


def smallest_k(scores: Tensor, k: int) -> Tensor:
    """Bool mask of the ``k`` smallest entries of a 1-D tensor, ties going to the lower index.

    O(n) with ``kthvalue``; equals ``smallest_k_reference`` (a stable sort) exactly.
    """
    out = torch.zeros_like(scores, dtype=torch.bool)
    if k <= 0:
        return out
    if k >= len(scores):
        return ~out
    thr = scores.kthvalue(k).values
    out = scores < thr
    ties = torch.nonzero(scores == thr).squeeze(1)[: k - int(out.sum())]
    out[ties] = True
    return out


def smallest_k_reference(scores: Tensor, k: int) -> Tensor:
    """Naive reference for ``smallest_k``: a stable sort, the first ``k`` indices."""
    out = torch.zeros_like(scores, dtype=torch.bool)
    out[torch.argsort(scores, stable=True)[: max(0, k)]] = True
    return out


def prune_smallest(
    weights: Mapping[str, Tensor], levels: dict[str, Tensor], sparsity: float, scope: str, tag: int
) -> None:
    """Prune the smallest-magnitude kept weights until ``sparsity`` is reached; mark them ``tag``.

    ``global`` ranks all tensors together (one threshold, the paper's choice); ``layer``
    brings every tensor to ``sparsity`` on its own. Already pruned entries stay pruned.
    """
    groups = [list(levels)] if scope == "global" else [[n] for n in levels]
    for names in groups:
        lv = torch.cat([levels[n].flatten() for n in names])  # (P,)
        score = torch.cat([weights[n].detach().abs().flatten().float().cpu() for n in names])
        score[lv > 0] = float("inf")  # already pruned: never chosen again
        k = round(sparsity * len(lv)) - int((lv > 0).sum())
        new = smallest_k(score, k)
        lv[new] = tag
        start = 0
        for n in names:
            size = levels[n].numel()
            levels[n] = lv[start : start + size].view_as(levels[n]).clone()
            start += size


# ----------------------------------------------------------------------------- keeping masks applied


class MaskHandle:
    """What ``Ticket.apply`` returns; ``remove()`` takes the hooks off (weights stay as they are)."""

    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def attach_masks(model: nn.Module, masks: Mapping[str, Tensor]) -> MaskHandle:
    """Zero the pruned entries now, mask their gradients, and re-zero them before every forward.

    The gradient hook keeps an optimizer from moving them (momentum and weight decay of
    a zero weight with zero gradient stay zero); the forward pre-hook re-zeros them anyway,
    on ``.data`` so autograd's version counters are untouched.
    """
    handles: list[Any] = []
    modules = dict(model.named_modules())
    by_module: dict[str, list[tuple[str, Tensor]]] = {}
    for name, mask in masks.items():
        owner, _, attr = name.rpartition(".")
        by_module.setdefault(owner, []).append((attr, mask))
    for owner, items in by_module.items():
        module = modules[owner]
        cache = {}
        for attr, mask in items:
            param = getattr(module, attr)
            cache[attr] = mask.to(param.device)
            param.data.mul_(cache[attr])
            handles.append(param.register_hook(lambda g, m=cache[attr]: g * m.to(g.device)))

        def rezero(mod: nn.Module, _args: Any, items=items, cache=cache) -> None:
            for attr, _ in items:
                p = getattr(mod, attr)
                if cache[attr].device != p.device:
                    cache[attr] = cache[attr].to(p.device)
                p.data.mul_(cache[attr])

        handles.append(module.register_forward_pre_hook(rezero))
    return MaskHandle(handles)


# ----------------------------------------------------------------------------- the ticket


class Ticket:
    """Pruning masks for named weight tensors, with the round each entry was pruned in.

    Args:
        levels: ``{name: uint8 tensor}`` shaped like the weight; 0 = kept, k >= 1 = pruned
            in round k.
        history: one dict per IMP round (``round``, ``sparsity``, ``score``), if any.

    Attributes:
        levels, history: as given.
    """

    def __init__(self, levels: Mapping[str, Tensor], history: list[dict[str, Any]] | None = None):
        if not levels:
            raise ValueError("a ticket needs at least one tensor; levels is empty")
        self.levels = {n: torch.as_tensor(v).to(torch.uint8).cpu() for n, v in levels.items()}
        self.history = list(history or [])

    @classmethod
    def from_masks(cls, masks: Mapping[str, Tensor]) -> Ticket:
        """A one-round ticket from ``{name: bool tensor}`` masks (True = kept)."""
        return cls(
            {n: (~torch.as_tensor(m, dtype=torch.bool)).to(torch.uint8) for n, m in masks.items()}
        )

    @classmethod
    def magnitude(
        cls,
        model: nn.Module,
        sparsity: float,
        *,
        prunable: Prunable = None,
        scope: Literal["global", "layer"] = "global",
    ) -> Ticket:
        """One-shot magnitude pruning of the model's current weights to ``sparsity``.

        Raises:
            ValueError: ``sparsity`` outside [0, 1), an unknown scope, a filter matching nothing.
        """
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
        params = dict(model.named_parameters())
        names = prunable_weights(model, prunable)
        levels = {n: torch.zeros(params[n].shape, dtype=torch.uint8) for n in names}
        prune_smallest({n: params[n] for n in names}, levels, sparsity, scope, 1)
        return cls(levels)

    # -- what it prunes
    @property
    def masks(self) -> dict[str, Tensor]:
        """``{name: bool tensor}``, True where the weight is kept."""
        return {n: v == 0 for n, v in self.levels.items()}

    @property
    def sparsity(self) -> float:
        """Share of pruned entries over all tensors of the ticket."""
        pruned = sum(int((v > 0).sum()) for v in self.levels.values())
        return pruned / sum(v.numel() for v in self.levels.values())

    @property
    def layer_sparsity(self) -> dict[str, float]:
        """Share of pruned entries per tensor."""
        return {n: int((v > 0).sum()) / v.numel() for n, v in self.levels.items()}

    @property
    def rounds(self) -> int:
        """The last round that pruned anything (0 for a dense ticket)."""
        return max(int(v.max()) for v in self.levels.values())

    def at_round(self, k: int) -> Ticket:
        """The ticket as it was after round ``k``: only entries pruned in rounds 1..k are pruned."""
        levels = {n: torch.where(v <= k, v, torch.zeros_like(v)) for n, v in self.levels.items()}
        return Ticket(levels, [h for h in self.history if h.get("round", 0) <= k])

    def random_like(self, seed: int = 0) -> Ticket:
        """The control: the same number of pruned entries per tensor (and per round), at random places."""
        g = torch.Generator().manual_seed(seed)
        levels = {}
        for n, v in self.levels.items():
            flat = v.flatten()
            levels[n] = flat[torch.randperm(flat.numel(), generator=g)].view_as(v)
        return Ticket(levels)

    # -- attaching to a model
    def _check(self, params: Mapping[str, Tensor], mapping: Mapping[str, str]) -> None:
        for ours, theirs in mapping.items():
            if theirs not in params:
                raise ValueError(
                    f"the model has no tensor {theirs!r} for the ticket's {ours!r}; "
                    "use transfer() for a model whose names differ"
                )
            got, want = tuple(params[theirs].shape), tuple(self.levels[ours].shape)
            if got != want:
                raise ValueError(
                    f"tensor {theirs!r} has shape {got} but the ticket's mask is {want}; "
                    "the ticket was found on a different architecture"
                )

    def _mapping(self, params: Mapping[str, Tensor], owner: str) -> dict[str, str]:
        """The model parameter each ticket tensor goes to: the one whose dotted name equals
        it, ends it, or is ended by it."""
        mapping: dict[str, str] = {}
        for ours in self.levels:
            hits = [
                p for p in params if p == ours or p.endswith("." + ours) or ours.endswith("." + p)
            ]
            if len(hits) != 1:
                why = "no parameter" if not hits else f"{len(hits)} parameters ({hits[:3]})"
                raise ValueError(
                    f"the ticket's tensor {ours!r} matches {why} of {owner}; "
                    "transfer needs one parameter whose name ends with it"
                )
            mapping[ours] = hits[0]
        self._check(params, mapping)
        return mapping

    def deviation(self, model: nn.Module, found_on: Mapping[str, Tensor]) -> float:
        """Largest ``|w - w0 * mask|`` over the ticket's tensors of ``model`` (names matched as
        in ``transfer``), where ``w0`` is ``found_on[name]``: the weights the ticket was found
        with (e.g. the pre-trained state IMP rewound to). 0.0 means the model holds exactly
        those weights under exactly this mask, e.g. right after ``transfer``.

        Raises:
            ValueError: a ticket tensor missing from ``found_on`` or unmatched in ``model``.
        """
        missing = [n for n in self.levels if n not in found_on]
        if missing:
            raise ValueError(f"found_on has no tensor {missing[0]!r} of the ticket")
        params = dict(model.named_parameters())
        mapping = self._mapping(params, type(model).__name__)
        masks = self.masks
        with torch.no_grad():
            return max(
                float((params[theirs] - found_on[ours] * masks[ours]).abs().max())
                for ours, theirs in mapping.items()
            )

    def apply(self, model: nn.Module) -> MaskHandle:
        """Zero the pruned weights of ``model`` and keep them zero through further training.

        Names must match the model's parameter names exactly (see ``transfer`` otherwise).

        Returns:
            A handle whose ``remove()`` takes the hooks off.

        Raises:
            ValueError: a ticket tensor missing from the model or shaped differently (named).
        """
        params = dict(model.named_parameters())
        self._check(params, {n: n for n in self.levels})
        return attach_masks(model, self.masks)

    def transfer(self, model: nn.Module) -> MaskHandle:
        """Apply a ticket found on another model sharing the same body (e.g. MLM -> classifier).

        Each ticket tensor goes to the one model parameter whose dotted name equals it
        or ends it (or is ended by it): ``bert.encoder.layer.0...`` meets
        ``encoder.bert.encoder.layer.0...``. The model's own head stays dense.

        Raises:
            ValueError: a ticket tensor with no match, an ambiguous match, or a shape mismatch.
        """
        params = dict(model.named_parameters())
        mapping = self._mapping(params, type(model).__name__)
        return attach_masks(model, {mapping[n]: m for n, m in self.masks.items()})

    # -- files
    def save(self, path: str | Path) -> Path:
        """Write the ticket as a safetensors file (uint8 levels, history in the metadata)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {n: v.contiguous() for n, v in self.levels.items()}
        save_file(tensors, str(path), metadata={"history": json.dumps(self.history)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Ticket:
        """Read a ticket written by ``save``."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            levels = {n: f.get_tensor(n) for n in f.keys()}  # noqa: SIM118 (safe_open has no iter)
            meta = f.metadata() or {}
        return cls(levels, json.loads(meta.get("history", "[]")))

    def __repr__(self) -> str:
        return f"Ticket({len(self.levels)} tensors, sparsity={self.sparsity:.3f}, rounds={self.rounds})"
