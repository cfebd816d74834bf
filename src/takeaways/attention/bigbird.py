"""BigBird block-sparse attention (ITC): window + global + random key blocks (arXiv 2007.14062).

The sequence is cut into blocks of ``block_size`` tokens. Query block ``i`` attends to
key block ``j`` when ``j`` is in its window (``i - (w-1)//2 .. i + w//2``, not wrapped), when
either block is global (the first ``ceil(g/2)`` and last ``floor(g/2)`` blocks attend to and are
attended by everything), or when ``j`` is one of the ``random_blocks`` blocks drawn for that
(head, query block) from a generator seeded by ``seed``. The pattern is the same on every step
and every rank; a layer passes its own ``layer_index`` and gets ``seed + layer_index``.

Unlike the Hugging Face implementation (see the research note), random blocks never repeat a
window or global block, evaluation sees the same pattern as training, padding may sit on
either side, ``random_blocks=0`` works and any ``N`` works (padded to whole blocks inside).
Any part may be switched off for ablations (at least one must stay): ``window_blocks=0,
random_blocks=0`` is global-only (a non-global query block sees only the global blocks, not
even itself), ``global_blocks=0, random_blocks=0`` window-only, ``global_blocks=0``
window + random.

Read top to bottom: the pattern (``bigbird_mask``), the naive reference (dense scores + that
mask), then the fast paths. The blocked gather trains on CPU and GPU: each non-global query
block's K key/value blocks come from one ``index_select`` (no duplicates, no Python loop over
blocks), then one batched matmul, a softmax and one matmul, in cache-sized steps, with a
FlashAttention-style backward that recomputes the scores (memory linear in N). Padding is
applied inside the score matmul (an extra key feature), not by a masking pass. It is the
default on GPUs too: on an H200 it ran 3-28x faster than FlexAttention over the same
pattern in fp32 and 1.5-5x in bf16 (except bf16 training below N=4k, where flex is up to
1.4x faster), but its transient peak memory is far larger (N=16k, B=1, H=8, fp32 forward: 1.1 GB
vs 35 MB; benchmarks/results/attention-cuda.json): pass ``backend="flex"`` where memory binds. FlexAttention with a ``BlockMask`` built from the
same table is there as ``backend="flex"`` (trains on CUDA; compiled inference only on CPU,
where torch has no flex backward).

Short sequences, by a documented rule and without a warning: when every query block sees
every key block (``n_blocks <= window + global + random``, N <= 448 with the defaults) the
pattern *is* dense attention, and plain SDPA computes it. When the pattern keeps at least
``DENSE_DENSITY`` of all block pairs (N <= 576 with the defaults) the same pattern is computed
by one dense masked SDPA call, which is as fast there. Both give exactly the pattern's output
(tests check it). Below about N = 1500 on a CPU, BigBird is not faster than dense SDPA at all
(see benchmarks/attention.py); the pattern is still honoured.

Example:
    >>> q = k = v = torch.randn(2, 8, 3000, 64)
    >>> out = bigbird_attention(q, k, v, block_size=64, seed=0)  # (2, 8, 3000, 64)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from takeaways.nn.attention import check_shapes

__all__ = ["bigbird_attention", "bigbird_attention_reference", "bigbird_mask"]

DENSE_DENSITY = 0.85  # from this fraction of kept block pairs up, one dense masked SDPA call
_CHUNK_BYTES = 4 << 20  # score bytes per step of the CPU gather path (fits the caches)
Backend = Literal["auto", "gather", "flex", "dense"]


# ----------------------------------------------------------------------------- the pattern


@dataclass(frozen=True)
class BlockPattern:
    """Which key blocks each query block of each head attends to (``block_pattern``'s result).

    Public so that cost models (``benchmarks/attention.py``: FLOPs = kept block pairs x
    block^2) count exactly the pairs the kernels compute.
    """

    adjacency: Tensor  # bool (H, nb, nb): query block i may attend to key block j
    front: int  # global blocks at the start of the sequence
    back: int  # global blocks at the end of the sequence
    table: Tensor  # long (H, nm, K): key blocks of each non-global query block, ascending
    valid: Tensor  # bool (H, nm, K): real slots of ``table`` (edge rows see fewer blocks)
    full: bool  # every slot of ``table`` is real (no edge row sees fewer blocks)
    density: float  # fraction of (query block, key block) pairs kept


def _check_options(block_size: int, window: int, global_: int, random: int, seed: int) -> None:
    for name, value, low in (
        ("block_size", block_size, 1),
        ("window_blocks", window, 0),
        ("global_blocks", global_, 0),
        ("random_blocks", random, 0),
        ("seed", seed, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if window + global_ + random == 0:
        raise ValueError(
            "window_blocks, global_blocks and random_blocks are all 0: no query could attend "
            "to any key; keep at least one block of some kind"
        )


@lru_cache(maxsize=64)
def block_pattern(
    n_blocks: int, window: int, global_: int, random: int, seed: int, heads: int, device: str
) -> BlockPattern:
    """Build (once per argument tuple, cached) the block pattern of every head.

    Args:
        n_blocks: query (= key) blocks, ``ceil(N / block_size)``.
        window, global_, random: ``window_blocks``, ``global_blocks``, ``random_blocks``.
        seed: seeds the random blocks.
        heads: each head draws its own random blocks.
        device: where the tensors live (``"cpu"``; the kernels move them).

    Returns:
        The ``BlockPattern``; ``adjacency.sum()`` counts the kept (head, query, key) block pairs.
    """
    nb = n_blocks
    front = min((global_ + 1) // 2, nb)
    back = min(global_ // 2, nb - front)
    blocks = torch.arange(nb)
    offset = blocks[None, :] - blocks[:, None]  # (nb, nb): key block minus query block
    local = (offset >= -((window - 1) // 2)) & (offset <= window // 2)  # (nb, nb)
    is_global = (blocks < front) | (blocks >= nb - back)  # (nb,)
    fixed = local | is_global[None, :]  # window or global key blocks, every head alike
    # Random key blocks: the r lowest of per-(head, row) uniform noise among the blocks that
    # are neither window nor global, so they never duplicate them; CPU generator = same
    # pattern on every device and rank.
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(heads, nb, nb, generator=gen).masked_fill(fixed, 2.0)  # (H, nb, nb)
    pick = noise.topk(min(random, nb), dim=-1, largest=False).indices  # (H, nb, r)
    chosen = noise.gather(-1, pick) < 2.0  # rows with fewer candidates than r keep fewer
    rand = torch.zeros(heads, nb, nb, dtype=torch.bool).scatter_(-1, pick, chosen)
    adj = fixed[None] | rand  # (H, nb, nb)
    adj[:, is_global] = True  # global query blocks see everything
    mid = adj[:, front : nb - back]  # (H, nm, nb) rows of the non-global query blocks
    k_slots = int(mid.sum(-1).max()) if mid.numel() else 0
    # Sorting the 0/1 row descending (stably) lists its kept blocks first, in ascending order.
    table = mid.to(torch.int8).argsort(dim=-1, descending=True, stable=True)[..., :k_slots]
    valid = mid.gather(-1, table)  # (H, nm, K)
    return BlockPattern(
        adjacency=adj.to(device),
        front=front,
        back=back,
        table=table.to(device),
        valid=valid.to(device),
        full=bool(valid.all()),
        density=float(adj.float().mean()),
    )


def bigbird_mask(
    n: int,
    *,
    block_size: int = 64,
    window_blocks: int = 3,
    global_blocks: int = 2,
    random_blocks: int = 3,
    seed: int = 0,
    heads: int = 1,
) -> Tensor:
    """The exact token-level pattern that ``bigbird_attention`` computes.

    Args:
        n: sequence length (any; the last block may be partial).
        block_size: tokens per block.
        window_blocks: blocks in each query block's sliding window (itself included); 0: none.
        global_blocks: global blocks, split between the start and the end.
        random_blocks: random key blocks per (head, query block), never window or global.
        seed: seeds the random blocks (``bigbird_attention`` uses ``seed + layer_index``).
        heads: number of heads; each head draws its own random blocks.

    Returns:
        bool ``(heads, n, n)``; ``[h, i, j]`` is True when query ``i`` may attend to key ``j``.

    Raises:
        ValueError: for ``n < 1``, ``heads < 1``, an option out of range or all three of
            window, global and random blocks 0.
    """
    _check_options(block_size, window_blocks, global_blocks, random_blocks, seed)
    if not isinstance(n, int) or n < 1 or not isinstance(heads, int) or heads < 1:
        raise ValueError(f"n and heads must be ints >= 1, got n={n!r}, heads={heads!r}")
    nb = math.ceil(n / block_size)
    p = block_pattern(nb, window_blocks, global_blocks, random_blocks, seed, heads, "cpu")
    tokens = p.adjacency.repeat_interleave(block_size, 1).repeat_interleave(block_size, 2)
    return tokens[:, :n, :n].clone()  # (H, n, n)


# ----------------------------------------------------------------------------- reference


def bigbird_attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    block_size: int = 64,
    window_blocks: int = 3,
    global_blocks: int = 2,
    random_blocks: int = 3,
    seed: int = 0,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """Naive BigBird: dense ``(N, N)`` scores, the ``bigbird_mask`` pattern, masked softmax.

    O(N^2) memory; the oracle that tests hold the fast paths against. Same arguments and
    output as ``bigbird_attention`` (``seed`` here is the final seed: no ``layer_index``).
    """
    _check_bigbird_inputs(q, k, v, key_padding_mask)
    B, H, N, D = q.shape
    keep = bigbird_mask(
        N,
        block_size=block_size,
        window_blocks=window_blocks,
        global_blocks=global_blocks,
        random_blocks=random_blocks,
        seed=seed,
        heads=H,
    ).to(q.device)[None]  # (1, H, N, N)
    if key_padding_mask is not None:
        keep = keep & key_padding_mask[:, None, None, :]  # (B, H, N, N)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(D)  # (B, H, N, N)
    # Finite fill + zeroing after the softmax: a row with no allowed key gives zeros, not NaN.
    scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1) * keep.to(scores.dtype)  # (B, H, N, N)
    return weights @ v  # (B, H, N, D)


def _check_bigbird_inputs(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> None:
    check_shapes(q, k, v, mask)
    if q.shape != k.shape:
        raise ValueError(
            f"BigBird is self-attention: q and k must have the same shape, got "
            f"{tuple(q.shape)} and {tuple(k.shape)}"
        )


# ----------------------------------------------------------------------------- fast paths


def _gather_attention(
    q: Tensor, k: Tensor, v: Tensor, p: BlockPattern, block: int, kpm: Tensor | None
) -> Tensor:
    """Blocked gather: global query blocks as dense rows, the others against their K blocks.

    ``q, k, v`` are ``(B, H, nb * block, D)``; ``kpm`` is bool ``(B, nb * block)`` or None.
    """
    nb = q.shape[2] // block
    parts = []
    if p.front:  # global query blocks: dense rows over every key
        parts.append(_dense_rows(q[:, :, : p.front * block], k, v, kpm))
    if p.table.shape[1]:
        rows = q[:, :, p.front * block : (nb - p.back) * block]
        parts.append(_blocked_rows(rows, k, v, p, block, kpm))
    if p.back:
        parts.append(_dense_rows(q[:, :, (nb - p.back) * block :], k, v, kpm))
    return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]  # (B, H, Np, D)


def _blocked_rows(
    q: Tensor, k: Tensor, v: Tensor, p: BlockPattern, block: int, kpm: Tensor | None
) -> Tensor:
    """Non-global query blocks ``q`` ``(B, H, nm * block, D)`` against their table's K blocks."""
    B, H, Np, D = k.shape
    nb, nm, K = Np // block, p.table.shape[1], p.table.shape[2]
    heads = torch.arange(H, device=q.device)[:, None, None]  # (H, 1, 1)
    q = q.reshape(B, H * nm, block, D) * (1.0 / math.sqrt(D))  # (B, M, b, D), M = H * nm
    if kpm is None and p.full:
        k_rows = v_rows = p.table + heads * nb  # block j of head h is row h * nb + j
    else:
        # No masking pass over the scores: keys get one more feature, an additive bias
        # (0 = real, ``neg`` = padding) that the queries meet with a 1, so the score matmul
        # applies the mask. Rows that see fewer than K blocks point their empty slots at a
        # dead block (index nb, bias ``neg``) for keys, and at any block for values (their
        # weight is exactly 0).
        neg = torch.finfo(q.dtype).min / 2  # finite: an all-padding row stays finite
        k_aug = k.new_zeros(B, H, Np + block, D + 1)
        k_aug[:, :, :Np, :D] = k
        if kpm is not None:
            bias = torch.where(kpm, q.new_zeros(()), q.new_full((), neg))  # (B, Np), q's dtype
            k_aug[:, :, :Np, D] = bias[:, None, :]
        k_aug[:, :, Np:, D] = neg
        q = torch.cat([q, q.new_ones(B, H * nm, block, 1)], dim=-1)  # (B, M, b, D+1)
        k_rows = p.table.masked_fill(~p.valid, nb) + heads * (nb + 1)
        v_rows = p.table + heads * nb
        k = k_aug
    Dk = k.shape[-1]
    per_block = B * block * K * block * q.element_size()  # score bytes of one query block
    step = H * nm if q.is_cuda else max(1, _CHUNK_BYTES // per_block)
    out = _BlockSparse.apply(
        q,
        k.reshape(B, -1, block * Dk),
        v.reshape(B, H * nb, block * D),
        k_rows.reshape(H * nm, K),
        v_rows.reshape(H * nm, K),
        step,
    )  # (B, M, b, D)
    if kpm is not None:  # a query block whose keys are all padding: zeros, as the reference
        real = kpm.view(B, nb, block).any(dim=-1)  # (B, nb)
        has_key = (real[:, p.table] & p.valid).any(dim=-1)  # (B, H, nm)
        out = out * has_key.view(B, H * nm, 1, 1).to(out.dtype)
    return out.view(B, H, nm * block, D)


class _BlockSparse(torch.autograd.Function):
    """softmax(q kg^T) vg for M query blocks, in cache-sized steps, recomputed in backward.

    ``q`` ``(B, M, b, Dk)`` (scaled), ``k`` ``(B, Rk, b * Dk)`` and ``v`` ``(B, Rv, b * D)``
    hold blocks as rows; ``k_rows``/``v_rows`` ``(M, K)`` list each query block's K blocks.
    Backward recomputes the scores step by step (as FlashAttention does), so only q, k, v
    and the output are kept: memory stays linear in N, and each step's gathered blocks,
    scores and gradients stay in cache; dK and dV accumulate with one index_add per step.
    """

    @staticmethod
    def forward(ctx, q, k, v, k_rows, v_rows, step):  # noqa: ANN001, ANN205
        B, M, b, Dk = q.shape
        D = v.shape[-1] // b
        out = q.new_empty(B, M, b, D)
        for s in range(0, M, step):
            kg, vg = _gather(k, v, k_rows[s : s + step], v_rows[s : s + step], b)
            probs = (q[:, s : s + step] @ kg.transpose(-1, -2)).softmax(dim=-1)  # (B, n, b, Kb)
            out[:, s : s + step] = probs @ vg
        ctx.save_for_backward(q, k, v, k_rows, v_rows, out)
        ctx.step = step
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: ANN001, ANN205
        q, k, v, k_rows, v_rows, out = ctx.saved_tensors
        B, M, b, _ = q.shape
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        grad_out = grad_out.contiguous()
        for s in range(0, M, ctx.step):
            e = min(s + ctx.step, M)
            kg, vg = _gather(k, v, k_rows[s:e], v_rows[s:e], b)
            qs, go = q[:, s:e], grad_out[:, s:e]  # (B, n, b, Dk), (B, n, b, D)
            probs = (qs @ kg.transpose(-1, -2)).softmax(dim=-1)  # (B, n, b, Kb)
            dv.index_add_(
                1, v_rows[s:e].reshape(-1), (probs.transpose(-1, -2) @ go).view(B, -1, v.shape[-1])
            )
            # softmax backward: dS = P * (dP - rowsum(dO * O))
            delta = (go * out[:, s:e]).sum(dim=-1, keepdim=True)  # (B, n, b, 1)
            dscores = (go @ vg.transpose(-1, -2)).sub_(delta).mul_(probs)  # (B, n, b, Kb)
            dq[:, s:e] = dscores @ kg
            dk.index_add_(
                1,
                k_rows[s:e].reshape(-1),
                (dscores.transpose(-1, -2) @ qs).view(B, -1, k.shape[-1]),
            )
        return dq, dk, dv, None, None, None


def _gather(k: Tensor, v: Tensor, k_rows: Tensor, v_rows: Tensor, b: int) -> tuple[Tensor, Tensor]:
    """The key and value blocks of ``n`` query blocks: ``(B, n, K*b, Dk)`` and ``(B, n, K*b, D)``."""
    B, n, K = k.shape[0], k_rows.shape[0], k_rows.shape[1]
    kg = k.index_select(1, k_rows.reshape(-1)).view(B, n, K * b, -1)
    vg = v.index_select(1, v_rows.reshape(-1)).view(B, n, K * b, -1)
    return kg, vg


def _dense_rows(q: Tensor, k: Tensor, v: Tensor, kpm: Tensor | None) -> Tensor:
    """Full attention of some query rows over every key; zero rows where all keys are padding."""
    if kpm is None:
        return F.scaled_dot_product_attention(q, k, v)
    has_keys = kpm.any(dim=-1)  # (B,)
    allowed = (kpm | ~has_keys[:, None])[:, None, None, :]  # (B, 1, 1, Np)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return out * has_keys[:, None, None, None].to(out.dtype)


def _dense_pattern_attention(
    q: Tensor, k: Tensor, v: Tensor, p: BlockPattern, block: int, kpm: Tensor | None
) -> Tensor:
    """The same pattern as one dense masked SDPA call: as fast when the pattern is dense."""
    keep = p.adjacency.repeat_interleave(block, 1).repeat_interleave(block, 2)[None]
    if kpm is not None:
        keep = keep & kpm[:, None, None, :]  # (B, H, Np, Np)
    has_keys = keep.any(dim=-1, keepdim=True)  # (B|1, H, Np, 1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep | ~has_keys)
    return out * has_keys.to(out.dtype)


_COMPILED_FLEX = None


def _has_flex() -> bool:
    try:
        import torch.nn.attention.flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def _flex_tile(block: int, device: torch.device) -> int:
    """The BlockMask's block for flex: ``block``, or 128 on CUDA when ``block`` divides it.

    Inductor's CUDA flex kernels (forward and backward) use tiles up to 128 wide that must
    divide the BlockMask's block; a 64-token BigBird block is listed at 128 granularity (a
    128-tile is visited when any of its 64-blocks is kept) and the mask_mod keeps the exact
    pattern inside it.
    """
    if device.type != "cuda" or block % 128 == 0:
        return block
    if 128 % block:
        raise ValueError(
            f"the CUDA flex path needs a block_size that divides 128 or is a multiple of it, "
            f"got {block}; use backend='gather' for other block sizes"
        )
    return 128


def _flex_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    p: BlockPattern,
    block: int,
    kpm: Tensor | None,
    *,
    compiled: bool = True,
) -> Tensor:
    """FlexAttention over a ``BlockMask`` built from the same block table (padding by mask_mod).

    CUDA: trains. CPU: inference only (no backward in torch), compiled by default;
    ``compiled=False`` runs flex's eager (O(N^2)-memory) path, which the CPU tests use.
    """
    from torch.nn.attention.flex_attention import BlockMask, flex_attention

    global _COMPILED_FLEX
    Np = q.shape[2]
    tile = _flex_tile(block, q.device)
    f = tile // block  # pattern blocks per BlockMask block along each axis
    nb = p.adjacency.shape[-1]
    nbt = math.ceil(nb / f)
    # Padded to whole tiles with False / padding, so any index the kernels visit is in range.
    adj = F.pad(p.adjacency, (0, nbt * f - nb, 0, nbt * f - nb))  # (H, nbt*f, nbt*f)
    coarse = adj.view(-1, nbt, f, nbt, f).any(dim=4).any(dim=2)  # (H, nbt, nbt)
    counts = coarse.sum(dim=-1, dtype=torch.int32)[None]  # (1, H, nbt)
    order = coarse.to(torch.int8).argsort(dim=-1, descending=True, stable=True)
    order = order.to(torch.int32)[None]  # (1, H, nbt, nbt): kept key tiles first
    if kpm is not None and nbt * tile > Np:
        kpm = F.pad(kpm, (0, nbt * tile - Np), value=False)

    # The mask_mod states the whole pattern (eager flex ignores the block lists); the block
    # lists let the kernels skip every tile outside it. (Listing blocks as "full" instead
    # would skip the mask_mod, but torch 2.13's CPU codegen fails on that variant.)
    def keep(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        allowed = adj[h, q_idx // block, kv_idx // block]
        return allowed if kpm is None else allowed & kpm[b, kv_idx]

    mask = BlockMask.from_kv_blocks(
        counts, order, BLOCK_SIZE=tile, mask_mod=keep, seq_lengths=(Np, Np)
    )
    if compiled:
        if _COMPILED_FLEX is None:
            _COMPILED_FLEX = torch.compile(flex_attention)
        fn = _COMPILED_FLEX
    else:
        fn = flex_attention
    return fn(q, k, v, block_mask=mask)  # rows with no visible key come out as zeros


# ----------------------------------------------------------------------------- public kernel


def bigbird_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    block_size: int = 64,
    window_blocks: int = 3,
    global_blocks: int = 2,
    random_blocks: int = 3,
    seed: int = 0,
    key_padding_mask: Tensor | None = None,
    layer_index: int = 0,
    backend: Backend = "auto",
) -> Tensor:
    """BigBird ITC block-sparse self-attention, trainable on CPU and GPU (arXiv 2007.14062).

    Args:
        q: queries ``(B, H, N, D)``; any ``N`` (padded to whole blocks inside, then cut).
        k: keys ``(B, H, N, D)``.
        v: values ``(B, H, N, D)``.
        block_size: tokens per block (64 in the paper's ITC setting).
        window_blocks: blocks in each query block's sliding window, itself included (3); 0
            for none (global-only or random-only ablations).
        global_blocks: global blocks, first ``ceil(g/2)`` and last ``floor(g/2)`` (2).
        random_blocks: random key blocks per (head, query block), never window/global (3).
        seed: seeds the random blocks; the pattern is fixed across steps, devices and ranks.
        key_padding_mask: bool ``(B, N)``, True = real token; padding may sit on any side.
        layer_index: added to ``seed`` so every layer of an encoder draws its own blocks.
        backend: ``"auto"`` (gather; dense-masked where the pattern is nearly dense), ``"gather"``, ``"flex"`` (CPU: compiled inference only) or ``"dense"``.

    Returns:
        ``(B, H, N, D)`` in the input dtype. Query rows with no visible real key (padding
        positions when ``global_blocks=0``, a fully padded batch row) are zeros. On CPU, bf16
        and fp16 inputs are computed in fp32 (this CPU's bf16 matmul is ~100x slower).

    Raises:
        ValueError: for disagreeing shapes, q/k head-size mismatch, a mask of the wrong
            shape, an option out of range (or window, global and random all 0), an unknown
            backend or flex backward on CPU.
        TypeError: if ``key_padding_mask`` is not bool.
    """
    _check_bigbird_inputs(q, k, v, key_padding_mask)
    _check_options(block_size, window_blocks, global_blocks, random_blocks, seed + layer_index)
    if backend not in ("auto", "gather", "flex", "dense"):
        raise ValueError(f"unknown backend {backend!r}; known: auto, gather, flex, dense")
    B, H, N, D = q.shape
    nb = math.ceil(N / block_size)
    p = block_pattern(
        nb, window_blocks, global_blocks, random_blocks, seed + layer_index, H, str(q.device)
    )
    if backend == "auto":
        if p.density >= DENSE_DENSITY:
            backend = "dense"
        else:
            backend = "gather"  # on an H200 too: faster than flex, more memory (see above)
    dtype = q.dtype
    if q.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        q, k, v = q.float(), k.float(), v.float()
    if backend == "dense" and p.density == 1.0:  # the pattern is full attention: no padding
        return _dense_rows(q, k, v, key_padding_mask).to(dtype)
    Np = nb * block_size
    kpm = key_padding_mask
    if Np != N:  # pad to whole blocks; padded keys are masked, padded queries cut off below
        pad = (0, 0, 0, Np - N)
        q, k, v = F.pad(q, pad), F.pad(k, pad), F.pad(v, pad)
        if kpm is None:
            kpm = torch.arange(Np, device=q.device)[None].expand(B, Np) < N
        else:
            kpm = F.pad(kpm, (0, Np - N), value=False)
    if backend == "flex":
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
        if q.device.type == "cpu" and needs_grad:
            raise ValueError(
                "FlexAttention has no backward on CPU; use backend='gather' to train on CPU, "
                "or run under torch.no_grad()"
            )
        out = _flex_attention(q, k, v, p, block_size, kpm)
    elif backend == "dense":
        out = _dense_pattern_attention(q, k, v, p, block_size, kpm)
    else:
        out = _gather_attention(q, k, v, p, block_size, kpm)
    return out[:, :, :N].to(dtype)
