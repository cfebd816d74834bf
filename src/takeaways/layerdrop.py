"""Progressive layer dropping: skip whole residual blocks while training, more so deeper in.

Progressive Layer Dropping (PLD, arXiv 2010.13369) trains a stack of Pre-LN residual blocks
with a random subset of them switched off on each step. Two schedules set how many:

* over time, ``theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar`` starts at 1 (keep
  everything) and decays to ``theta_bar``; with the defaults it is 0.68 at step 1k and about
  0.5 from step 5k on (``pld_theta``); ``scaled_gamma(steps)`` gives a shorter run the same
  shape (saturated after 2.5% of it);
* over depth, block ``l`` of ``L`` (counted from 1) is kept with probability
  ``p_l = 1 - (l / L) * (1 - theta)``, so the bottom blocks are kept most (``keep_probs``).

``prepare_layer_drop(layers)`` attaches one gate per block to any ``nn.ModuleList`` of residual
blocks (``x -> x + f(x)``, output shaped like the input; checked on the first call, which
always runs the block) and returns a ``LayerDrop`` handle. In training mode a dropped block
does no computation and returns its first positional input; evaluation runs every block
unscaled. A kept block is rescaled (inverted dropout) in one of two forms:

* ``form="block"`` (the default): the block's whole residual branch ``block(x) - x`` is scaled
  by ``1 / p_l``, and block ``l`` is kept with ``p_l``. It needs nothing but ``x -> block(x)``,
  so it attaches to any residual block; the layer-drop recipe's results were measured with it.
* ``form="sublayer"``: the paper's reference code (DeepSpeed's BERT example) as it is.
  Each sublayer's output is scaled by ``1 / p_l`` before its residual add,
  ``h = x + attn(ln1(x)) / p_l`` then ``h + ffn(ln2(h)) / p_l``, so the feed-forward sublayer
  sees the scaled attention output; one gate still covers both sublayers. The gate of block
  ``l`` is drawn with the keep probability of the block below, ``p_{l-1}`` (``p_0 = 1``: the
  first block is never dropped), and scales by ``p_l``. It needs the block's residual
  branches by name (``branches``; known for our ``Block``, torch's
  ``nn.TransformerEncoderLayer`` and HF's ``RobertaPreLayerNormLayer``).

Post-LN blocks (BERT's layout: LayerNorm after each residual add) are refused: there the
identity a dropped block returns skips two LayerNorms, and ``block(x) - x`` is no residual
branch, so neither form is the inverted dropout PLD is; the paper trains Pre-LN. The known
ones are our ``Block`` with ``norm="post"``, torch's ``nn.TransformerEncoderLayer`` with
``norm_first=False`` and HF's BERT-family layers (BERT, RoBERTa, XLM-R, ELECTRA, MPNet, MiniLM,
DistilBERT, ...). ``allow_post_ln=True`` gates them anyway.

The gate is attached by giving each block an instance-level ``forward`` (and, in the sublayer
form, a forward hook on each branch): the blocks keep their type, parameters and
``state_dict`` keys, and ``remove()`` restores the original behaviour.

Gates are drawn on the host from the handle's own ``torch.Generator(seed)``, one per block
call, so a run is reproducible and every rank drops the same blocks (ranks must make the same
calls in the same order). Under DDP a dropped block's parameters get no gradient, so train
with ``fit(..., find_unused_parameters=True)`` (or wrap DDP with it yourself).

A HF Pre-LN model is gated where it keeps its layers (``model.roberta_prelayernorm.encoder.layer``
for the task heads of ``RobertaPreLayerNorm``). Its encoder passes the hidden state first and
the masks and options after it; a layer returns a tensor (recent transformers) or a tuple
(older ones). In training mode a dropped layer adds its input to ``output_hidden_states`` and
no map to ``output_attentions``, which then holds fewer maps than layers. HF's activation
checkpointing (``activation_checkpointing_enable()``, formerly
``gradient_checkpointing_enable()``) runs inside the gated call and re-runs the layer in
backward; the sublayer form scales that re-run as well. Checkpoint inside the blocks, not
around a gated call: re-running the call would draw its gate again.

Example:
    >>> from takeaways.nn import EncoderConfig, TransformerEncoder
    >>> encoder = TransformerEncoder(EncoderConfig(vocab_size=100, dim=32, depth=4, heads=2))
    >>> pld = prepare_layer_drop(encoder.layers, theta_bar=0.5, gamma=0.001)
    >>> pld.step(1000)  # or pass ``pld`` to ``train.fit(..., hooks=[pld])``
    >>> [round(p, 2) for p in pld.keep_probs]
    [0.92, 0.84, 0.76, 0.68]
    >>> pld.remove()  # the plain encoder again
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from takeaways.nn.transformer import Block

__all__ = ["pld_theta", "keep_probs", "scaled_gamma", "prepare_layer_drop", "LayerDrop"]

_SATURATED = 5.0  # theta counts as saturated once gamma * t reaches this (within e^-5 of theta_bar)
_FORMS = ("block", "sublayer")


# ----------------------------------------------------------------------------- schedules


def _check_schedule(theta_bar: float, gamma: float) -> None:
    if not 0.0 < theta_bar <= 1.0:
        raise ValueError(f"theta_bar must be in (0, 1], got {theta_bar}; the paper uses 0.5")
    if not gamma >= 0.0:  # also rejects NaN
        raise ValueError(f"gamma must be >= 0, got {gamma}; the paper uses 0.001")


def pld_theta(step: int, *, theta_bar: float = 0.5, gamma: float = 0.001) -> float:
    """Keep probability of the top block at optimizer step ``step`` (arXiv 2010.13369).

    Args:
        step: global optimizer step, ``>= 0``; ``theta(0) = 1``.
        theta_bar: the limit ``theta`` decays to, in ``(0, 1]``; 1 disables dropping.
        gamma: decay rate per step, ``>= 0``.

    Returns:
        ``(1 - theta_bar) * exp(-gamma * step) + theta_bar``, in ``[theta_bar, 1]``.

    Raises:
        ValueError: for ``theta_bar`` outside ``(0, 1]``, ``gamma < 0`` or ``step < 0``.
    """
    _check_schedule(theta_bar, gamma)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return (1.0 - theta_bar) * math.exp(-gamma * step) + theta_bar


def scaled_gamma(steps: int, *, fraction: float = 0.025) -> float:
    """The ``gamma`` at which ``theta`` saturates after ``fraction`` of a ``steps``-step run.

    ``theta`` counts as saturated once ``gamma * t = 5``: it is then within ``e^-5`` (0.7%) of
    its way from 1 to ``theta_bar``. The paper's ``gamma = 0.001`` over BERT's 200K steps
    saturates at step 5K, 2.5% of training: the default ``fraction``. A shorter run needs a
    larger ``gamma`` for the same shape of schedule.

    Args:
        steps: optimizer steps of the whole run, ``>= 1``.
        fraction: the share of the run after which ``theta`` has saturated, in ``(0, 1]``.

    Returns:
        ``5 / fraction / steps``; 0.001 for 200K steps, 0.2 for 1,000.

    Raises:
        ValueError: for ``steps < 1`` or ``fraction`` outside ``(0, 1]``.

    Example:
        >>> gamma = scaled_gamma(1000)  # 0.2: saturated after 25 of 1,000 steps
        >>> round(pld_theta(25, gamma=gamma), 4) == round(pld_theta(5000, gamma=0.001), 4)
        True
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}; the paper's is 0.025")
    return _SATURATED / fraction / steps


def keep_probs(theta: float, num_layers: int) -> list[float]:
    """Per-block keep probabilities ``p_l = 1 - (l / L) * (1 - theta)`` for ``l = 1..L``.

    The first block is kept with ``1 - (1 - theta) / L`` and the last with ``theta``.

    Args:
        theta: the current ``pld_theta``, in ``(0, 1]``.
        num_layers: ``L``, the number of blocks, ``>= 1``.

    Returns:
        ``L`` floats, non-increasing with depth.

    Raises:
        ValueError: for ``theta`` outside ``(0, 1]`` or ``num_layers < 1``.
    """
    if not 0.0 < theta <= 1.0:
        raise ValueError(f"theta must be in (0, 1], got {theta}")
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    return [1.0 - (l / num_layers) * (1.0 - theta) for l in range(1, num_layers + 1)]  # noqa: E741


# ----------------------------------------------------------------------------- block checks


def _post_ln(block: nn.Module) -> str | None:
    """What makes ``block`` a known Post-LN block (LayerNorm after a residual add), or None.

    Structural checks rather than class names, so every model built from the same parts is
    caught: HF's BERT-family layers keep the feed-forward residual add and its LayerNorm in
    ``layer.output`` (``LayerNorm(dense(h) + x)``), which the Pre-LN ``RobertaPreLayerNormLayer``
    (its ``LayerNorm`` sits in ``intermediate``, before the sublayer) does not have.
    """
    if isinstance(block, Block) and block.post_norm:
        return "takeaways Block with norm='post'"
    torch_layers = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
    if isinstance(block, torch_layers) and not block.norm_first:
        return f"torch {type(block).__name__} with norm_first=False"
    name = type(block).__name__
    if isinstance(getattr(getattr(block, "output", None), "LayerNorm", None), nn.LayerNorm):
        return f"{name}, whose .output adds the residual, then applies LayerNorm"  # BERT family
    if isinstance(getattr(block, "output_layer_norm", None), nn.LayerNorm):
        return f"{name}, whose output_layer_norm follows the residual add"  # DistilBERT
    return None


def _submodule(block: nn.Module, name: str) -> nn.Module | None:
    try:
        return block.get_submodule(name)
    except AttributeError:
        return None


def _known_branches(block: nn.Module) -> tuple[str, ...] | None:
    """Names of the submodules whose outputs are ``block``'s residual branches, if known."""
    if isinstance(block, Block):
        return ("attn", "mlp")  # h = x + attn(ln1(x)), then h + mlp(ln2(h))
    if isinstance(block, nn.TransformerEncoderLayer):
        return ("dropout1", "dropout2")  # the last modules of its _sa_block and _ff_block
    # HF BERT-family parts, as RobertaPreLayerNormLayer has them: the dense before each add
    names = ("attention.output.dense", "output.dense")
    if all(isinstance(_submodule(block, n), nn.Linear) for n in names):
        return names
    return None


def _branches_of(index: int, block: nn.Module, branches: Sequence[str] | None) -> tuple[str, ...]:
    """The branch names the sublayer form hooks in block ``index``; checked to exist."""
    names = tuple(branches) if branches is not None else _known_branches(block)
    if not names:
        raise ValueError(
            f"form='sublayer' needs the residual branches of block {index} "
            f"({type(block).__name__}); pass branches=(...) naming the submodules whose "
            "outputs are added to the residual stream, e.g. ('attn', 'mlp'), or use form='block'"
        )
    for name in names:
        if _submodule(block, name) is None:
            raise ValueError(
                f"block {index} ({type(block).__name__}) has no submodule {name!r} to use as "
                "a residual branch"
            )
    return names


# ----------------------------------------------------------------------------- the gate


def _hidden(out: Any) -> Any:
    """The hidden state in a block's output: the output itself, or its first element."""
    return out[0] if isinstance(out, (tuple, list)) else out


class _GatedForward:
    """A block's instance-level ``forward``: draw the gate, then skip or run and rescale.

    A plain object rather than a closure, so ``copy.deepcopy`` of a prepared model gives each
    copied block a gate that calls the copied block (and a copy of the handle).
    """

    def __init__(self, handle: LayerDrop, index: int, block: nn.Module) -> None:
        self.handle, self.index, self.block = handle, index, block
        self.checked = False  # residual shape verified on the first call
        self.out_len: int | None = None  # tuple length of the block's output, if a tuple
        self.scale = 1.0  # sublayer form: what the branch hooks multiply by while the block runs

    def _run(self, x: Tensor, args: tuple, kwargs: dict) -> Any:
        out = type(self.block).forward(self.block, *args, **kwargs)
        if not self.checked:
            y = _hidden(out)
            if not isinstance(y, Tensor) or y.shape != x.shape:
                got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
                raise ValueError(
                    f"layer drop: block {self.index} is not residual: output {got} differs "
                    f"from input {tuple(x.shape)}"
                )
            self.out_len = len(out) if isinstance(out, (tuple, list)) else None
            self.checked = True
        return out

    def _run_scaled(self, x: Tensor, args: tuple, kwargs: dict, scale: float) -> Any:
        """Run the block with its branch hooks multiplying by ``scale``.

        A block that checkpoints its own forward (HF's ``GradientCheckpointingLayer`` once
        activation checkpointing is on) runs it again during backward, after this call has
        returned; the function it hands its ``_gradient_checkpointing_func`` is wrapped so
        that the re-run is scaled too, or its gradients would be those of an unscaled block.
        """
        block = self.block
        checkpoint = block.__dict__.get("_gradient_checkpointing_func")
        if checkpoint is not None:
            block._gradient_checkpointing_func = _ScaledCheckpoint(checkpoint, self, scale)
        self.scale = scale
        try:
            return self._run(x, args, kwargs)
        finally:
            self.scale = 1.0
            if checkpoint is not None:
                block._gradient_checkpointing_func = checkpoint

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args or not isinstance(args[0], Tensor):
            raise TypeError(
                f"layer drop: block {self.index} must get its hidden state as the first "
                "positional argument"
            )
        x = args[0]  # (B, ..., C) the residual stream
        h = self.handle
        if not self.block.training:  # evaluation: every block, unscaled
            return self._run(x, args, kwargs)
        p = h.keep_probs[self.index]  # a kept block is scaled by 1 / p
        p_draw = p
        if h.form == "sublayer":  # the reference code draws with the block below's p
            p_draw = h.keep_probs[self.index - 1] if self.index else 1.0
        keep = torch.rand((), generator=h.generator).item() < p_draw
        if not keep and self.checked:
            h.dropped[self.index] += 1
            if self.out_len is not None:  # tuple-returning blocks: same arity, extras None
                return (x,) + (None,) * (self.out_len - 1)
            return x  # no computation at all
        # A block's first training call runs even if its gate says drop: it checks the
        # residual shape and learns the output's structure, which a dropped call must mimic.
        h.executed[self.index] += 1
        if not h.rescale or p >= 1.0:
            return self._run(x, args, kwargs)
        if h.form == "sublayer":  # each branch's output, before its residual add
            return self._run_scaled(x, args, kwargs, 1.0 / p)
        out = self._run(x, args, kwargs)
        y = x + (_hidden(out) - x) / p  # inverted dropout on the whole residual branch
        if isinstance(out, (tuple, list)):
            return (y, *out[1:])
        return y


class _ScaledCheckpoint:
    """A block's checkpoint function for one gated call: what it re-runs is scaled as well."""

    def __init__(self, checkpoint: Any, gate: _GatedForward, scale: float) -> None:
        self.checkpoint, self.gate, self.scale = checkpoint, gate, scale

    def __call__(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        gate, scale = self.gate, self.scale

        def scaled(*a: Any, **k: Any) -> Any:  # the forward, and its re-run in backward
            before, gate.scale = gate.scale, scale
            try:
                return fn(*a, **k)
            finally:
                gate.scale = before

        return self.checkpoint(scaled, *args, **kwargs)


class _BranchScale:
    """Forward hook on one residual branch: multiply its output by its gate's current scale.

    The scale is 1 (the hook changes nothing) except while the gate runs a kept block.
    """

    def __init__(self, gate: _GatedForward, name: str) -> None:
        self.gate, self.name = gate, name

    def __call__(self, module: nn.Module, args: tuple, out: Any) -> Any:
        if self.gate.scale == 1.0:
            return None  # output unchanged
        if not isinstance(out, Tensor):
            raise TypeError(
                f"layer drop: branch {self.name!r} of block {self.gate.index} returned "
                f"{type(out).__name__}; name a submodule whose output is the tensor added to "
                "the residual stream"
            )
        return out * self.gate.scale


# ----------------------------------------------------------------------------- the handle


class LayerDrop:
    """Handle returned by ``prepare_layer_drop``: the schedule state, counters and ``remove()``.

    Attributes:
        theta: current keep probability of the top block (starts at 1: nothing dropped).
        keep_probs: current per-block keep probabilities (``keep_probs(theta, L)``).
        executed, dropped: per-block counts of training-mode calls that ran / were skipped.
        generator: the CPU ``torch.Generator`` the gates are drawn from.
        rescale: whether a kept block is scaled by ``1 / p_l``.
        form: ``"block"`` or ``"sublayer"`` (see the module docstring).

    Pass it to ``train.fit(..., hooks=[handle])``: ``on_batch`` sets ``theta`` from the global
    optimizer step after every step.
    """

    def __init__(
        self,
        layers: nn.ModuleList,
        *,
        theta_bar: float,
        gamma: float,
        seed: int,
        rescale: bool,
        form: str = "block",
        branches: Sequence[tuple[str, ...]] | None = None,
    ) -> None:
        self.layers = layers
        self.theta_bar, self.gamma, self.rescale, self.form = theta_bar, gamma, rescale, form
        self.generator = torch.Generator().manual_seed(seed)
        self.executed = [0] * len(layers)
        self.dropped = [0] * len(layers)
        self.theta = 1.0
        self.keep_probs = keep_probs(1.0, len(layers))
        for i, block in enumerate(layers):
            gate = _GatedForward(self, i, block)
            block.forward = gate
            for name in branches[i] if branches is not None else ():
                block.get_submodule(name).register_forward_hook(_BranchScale(gate, name))

    def step(self, global_step: int) -> None:
        """Set ``theta`` (and ``keep_probs``) for the given global optimizer step."""
        self.theta = pld_theta(global_step, theta_bar=self.theta_bar, gamma=self.gamma)
        self.keep_probs = keep_probs(self.theta, len(self.layers))

    def on_batch(self, info: Any) -> None:
        """``fit()`` hook: follow ``info.step``, the global optimizer step."""
        self.step(info.step)

    @property
    def drop_rate(self) -> list[float]:
        """Per-block fraction of training-mode calls that were skipped (NaN before any)."""
        return [
            d / (d + e) if d + e else float("nan")
            for d, e in zip(self.dropped, self.executed, strict=True)
        ]

    @property
    def run_share(self) -> float:
        """Fraction of all training-mode block calls that ran (NaN before any)."""
        runs = sum(self.executed)
        total = runs + sum(self.dropped)
        return runs / total if total else float("nan")

    def remove(self) -> None:
        """Detach the gates (and branch hooks): every block runs as before. Idempotent."""
        for block in self.layers:
            gate = block.__dict__.get("forward")
            if not (isinstance(gate, _GatedForward) and gate.handle is self):
                continue
            del block.forward
            for module in block.modules():
                hooks = module._forward_hooks
                for key in [k for k, hook in hooks.items() if getattr(hook, "gate", None) is gate]:
                    del hooks[key]


def prepare_layer_drop(
    layers: nn.ModuleList,
    *,
    theta_bar: float = 0.5,
    gamma: float = 0.001,
    seed: int = 0,
    rescale: bool = True,
    form: str = "block",
    branches: Sequence[str] | None = None,
    allow_post_ln: bool = False,
) -> LayerDrop:
    """Attach progressive-layer-dropping gates, in place, to a ``ModuleList`` of residual blocks.

    Each block must map its first positional argument ``x`` of shape ``(B, ..., C)`` to an
    output of the same shape (or a tuple whose first element is; other arguments are passed
    through when the block runs and ignored when it is dropped). The shape is checked on each
    block's first call, which always runs the block. Blocks must be Pre-LN (arXiv 2010.13369).

    Args:
        layers: e.g. ``encoder.layers`` of our ``TransformerEncoder``, torch
            ``nn.TransformerEncoderLayer(norm_first=True)`` blocks, or the layers of a HF
            ``RobertaPreLayerNormModel`` (``model.encoder.layer``; with a task head such as
            ``RobertaPreLayerNormForSequenceClassification``,
            ``model.roberta_prelayernorm.encoder.layer``).
        theta_bar: ``pld_theta``'s limit, in ``(0, 1]``; 1 never drops.
        gamma: ``pld_theta``'s decay rate per step, ``>= 0``.
        seed: seeds the gate generator; use the same on every rank.
        rescale: scale a kept block by ``1 / p_l`` (inverted dropout; the paper's reference
            code scales too, per sublayer); ``False`` keeps its output as is.
        form: ``"block"`` (the default: scale ``block(x) - x``, keep with ``p_l``; works on
            any residual block, and the recorded results used it) or ``"sublayer"`` (the
            reference code: scale each sublayer's output, keep with ``p_{l-1}``, never drop
            the first block); see the module docstring.
        branches: with ``form="sublayer"``, the names of the submodules whose outputs each
            block adds to its residual stream, e.g. ``("attn", "mlp")``; default: known for
            our ``Block``, torch's ``nn.TransformerEncoderLayer`` and HF
            ``RobertaPreLayerNormLayer``.
        allow_post_ln: gate known Post-LN blocks anyway (not PLD as published; see above).

    Returns:
        A ``LayerDrop`` handle at ``theta = 1``; call ``step(t)`` or pass it to ``fit`` as a hook.

    Raises:
        ValueError: for ``theta_bar`` outside ``(0, 1]``, ``gamma < 0``, an empty list, an
            unknown ``form``, a known Post-LN block (without ``allow_post_ln``), unknown or
            missing ``branches``, or (on the first forward) a block whose output shape
            differs from its input's.
        TypeError: if ``layers`` is not an ``nn.ModuleList`` or a block already has a gate.

    Example:
        >>> pld = prepare_layer_drop(encoder.layers, form="sublayer")  # DeepSpeed's form
    """
    _check_schedule(theta_bar, gamma)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(
            f"layers must be an nn.ModuleList of residual blocks, got {type(layers).__name__}"
        )
    if len(layers) == 0:
        raise ValueError("layers is empty; pass the ModuleList of the model's blocks")
    if form not in _FORMS:
        raise ValueError(f"unknown form {form!r}; known: {', '.join(_FORMS)}")
    if branches is not None and form != "sublayer":
        raise ValueError("branches is only used with form='sublayer'")
    for i, block in enumerate(layers):
        if isinstance(block.__dict__.get("forward"), _GatedForward):
            raise TypeError(f"block {i} already has a layer-drop gate; remove() it first")
        what = None if allow_post_ln else _post_ln(block)
        if what is not None:
            raise ValueError(
                f"layer drop: block {i} is Post-LN ({what}); PLD skips and rescales the "
                "residual branch of Pre-LN blocks (arXiv 2010.13369): use a Pre-LN model "
                "(EncoderConfig(norm='pre'), norm_first=True, HF RobertaPreLayerNorm) or pass "
                "allow_post_ln=True to gate it anyway"
            )
    per_block = None
    if form == "sublayer":
        per_block = [_branches_of(i, block, branches) for i, block in enumerate(layers)]
    return LayerDrop(
        layers, theta_bar=theta_bar, gamma=gamma, seed=seed, rescale=rescale, form=form,
        branches=per_block,
    )  # fmt: skip
