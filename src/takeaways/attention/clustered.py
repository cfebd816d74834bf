"""Clustered and improved-clustered attention (Vyas, Katharopoulos & Fleuret, arXiv 2007.04825).

Queries are grouped into ``C`` clusters and attention is computed once per cluster, so the
cost is ``O(N C)`` instead of ``O(N^2)``:

1. Hash: each query gets ``bits`` bits, bit ``i`` = ``q . a_i > b_i`` for random hyperplanes
   ``(a_i, b_i) ~ N(0, 1)`` drawn from a generator seeded by ``seed + layer_index`` (the same
   planes on every call with that seed; fast-transformers redraws them on every forward).
2. Lloyd K-means in Hamming space, as fast-transformers does it: centroids start as the codes
   of the first ``C`` (real) queries, each iteration assigns every code to its nearest
   centroid and sets each centroid bit by majority vote of its members; a cluster left empty
   takes the code of the query farthest from its centroid (ft draws a random code); a last
   assignment follows the last vote.
3. Clustered: centroid query = mean of its members' queries, ``V_c = softmax(Q_c K^T /
   sqrt(D)) V``, copied to every member. Improved: each cluster's ``topk`` keys (by centroid
   score) get exact per-query attention scaled by the centroid's mass on them, and the
   centroid's distribution covers the remaining keys.

Speed: the K-means runs on bits as +-1 floats, where the Hamming distance is
``(bits - s . c) / 2``, so assigning N codes to C centroids is one ``(N, bits) @ (bits, C)``
matmul and a vote is one ``index_add``; no Python loop over clusters. The naive reference
(``clustered_attention_reference``) packs the bits into int64, counts differing bits with a
vectorised popcount and builds explicit one-hot matrices; tests check both give the same
clusters and outputs. Padded queries (``self_attention=True``, the default, with a
``key_padding_mask``) neither seed nor vote nor enter centroid means; their rows get their
nearest cluster's output. Cross-attention says ``self_attention=False``: the mask then marks
padded keys only, whatever the lengths (the kernels do not guess it from ``N_q == N_k``).

Example:
    >>> q, k, v = torch.randn(3, 1, 8, 4096, 64).unbind(0)
    >>> out = clustered_attention(q, k, v, clusters=100)  # (1, 8, 4096, 64)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from takeaways.nn.attention import check_shapes

__all__ = ["clustered_attention", "clustered_attention_reference", "improved_clustered_attention"]


# ----------------------------------------------------------------------------- hashing


def _check(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    clusters: int,
    bits: int,
    iterations: int,
    seed: int,
    topk: int | None,
    self_attention: bool,
) -> None:
    check_shapes(q, k, v, mask)
    if not isinstance(self_attention, bool):
        raise TypeError(f"self_attention must be True or False, got {self_attention!r}")
    if self_attention and q.shape[2] != k.shape[2]:
        raise ValueError(
            f"self_attention=True needs as many queries as keys, got N_q={q.shape[2]} and "
            f"N_k={k.shape[2]}; pass self_attention=False for cross-attention"
        )
    for name, value, low, high in (
        ("clusters", clusters, 1, None),
        ("bits", bits, 1, 63),
        ("iterations", iterations, 0, None),
        ("seed", seed, 0, None),
        ("topk", 1 if topk is None else topk, 1, None),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if high is not None and value > high:
            raise ValueError(f"{name} must be <= {high} (codes are packed into int64), got {value}")


def _hash_bits(q: Tensor, bits: int, seed: int) -> Tensor:
    """Random-hyperplane code of every query: bool ``(B, H, N, bits)`` (no gradient)."""
    D = q.shape[-1]
    gen = torch.Generator().manual_seed(seed)
    planes = torch.randn(bits, D + 1, generator=gen).to(q.device)  # CPU draw: same everywhere
    proj = q.detach().float() @ planes[:, :D].T  # (B, H, N, bits)
    return proj > planes[:, D]


def _real_queries(q: Tensor, mask: Tensor | None, self_attention: bool) -> Tensor:
    """bool ``(B, N_q)``: queries that take part in clustering.

    In self-attention the key padding mask is also the query mask (padded queries are out);
    in cross-attention it says nothing about the queries, which all take part, even when
    there happen to be as many queries as keys.
    """
    if mask is not None and self_attention:
        return mask
    return torch.ones(q.shape[0], q.shape[2], dtype=torch.bool, device=q.device)


def _first_real(real: Tensor, C: int) -> Tensor:
    """long ``(B, C)``: positions of the first C real queries (padding after, if too few)."""
    return (~real).to(torch.int8).argsort(dim=-1, stable=True)[:, :C]


# ----------------------------------------------------------------------------- fast K-means


def _kmeans(code_bits: Tensor, real: Tensor, C: int, iterations: int) -> Tensor:
    """Hamming K-means on +-1 codes; returns the cluster of every query, long ``(B, H, N)``."""
    B, H, N, nbits = code_bits.shape
    s = code_bits.float() * 2 - 1  # (B, H, N, bits) in {-1, +1}
    w = real[:, None, :, None].float()  # (B, 1, N, 1): padded queries do not vote
    s_one = torch.cat([s, torch.ones_like(s[..., :1])], dim=-1)  # (B, H, N, bits + 1)
    first = _first_real(real, C)[:, None, :, None].expand(B, H, C, nbits)
    cent = s.gather(2, first)  # (B, H, C, bits)
    offsets = (torch.arange(B * H, device=s.device) * C).view(B, H, 1)
    for _ in range(iterations):
        assign, dot = _nearest(s_one, cent)
        votes = torch.zeros(B * H * C, nbits + 1, device=s.device)
        votes.index_add_(0, (assign + offsets).reshape(-1), (s_one * w).view(-1, nbits + 1))
        votes = votes.view(B, H, C, nbits + 1)  # per cluster: sums of +-1 bits, member count
        cent = torch.where(votes[..., :nbits] > 0, 1.0, -1.0)  # majority; ties go to 0, as ft
        empty = votes[..., nbits:] == 0  # (B, H, C, 1)
        if bool(empty.any()):
            cent = torch.where(empty, s.gather(2, _reseed(dot, real, empty, nbits)), cent)
    return _nearest(s_one, cent)[0]  # (B, H, N)


def _nearest(s_one: Tensor, cent: Tensor) -> tuple[Tensor, Tensor]:
    """Each code's nearest centroid (first on ties) and its similarity ``s . c``, ``(B, H, N)``.

    ``s_one`` is ``(B, H, N, bits + 1)`` (+-1 codes and a 1), ``cent`` ``(B, H, C, bits)``.
    The matmul returns ``C * (s . c) + (C - 1 - c)``: integers, exact in fp32, whose max over
    c is the nearest centroid with ties to the lowest index, so one ``amax`` replaces an
    ``argmax`` (which is ~15x slower on CPU).
    """
    B, H, C, nbits = cent.shape
    if C * (nbits + 2) >= 2**24:  # keys would lose exactness in fp32: plain argmax
        dots = s_one[..., :nbits] @ cent.transpose(-1, -2)  # (B, H, N, C)
        best = dots.max(dim=-1)
        return best.indices, best.values
    tie = (C - 1 - torch.arange(C, device=cent.device, dtype=cent.dtype)).expand(B, H, C)
    keyed = torch.cat([cent * C, tie[..., None]], dim=-1)  # (B, H, C, bits + 1)
    best = (keyed @ s_one.transpose(-1, -2)).amax(dim=-2)  # (B, H, N)
    return (C - 1) - torch.remainder(best, C).long(), torch.div(best, C, rounding_mode="floor")


def _reseed(score: Tensor, real: Tensor, empty: Tensor, nbits: int) -> Tensor:
    """Query index for every cluster (used where ``empty``): the j-th empty cluster of a head
    gets its j-th least similar real query (``score`` = similarity to its centroid), the
    farthest-point rule; ft draws a random code instead. Returns ``(B, H, C, nbits)``."""
    B, H, N = score.shape
    order = score.masked_fill(~real[:, None, :], float("inf")).argsort(dim=-1, stable=True)
    rank = (empty.squeeze(-1).long().cumsum(dim=-1) - 1).clamp(0, N - 1)  # (B, H, C)
    return order.gather(-1, rank)[..., None].expand(B, H, rank.shape[-1], nbits)


# ----------------------------------------------------------------------------- attention


def _masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last dim with masked entries at exactly 0 (all-masked rows all 0)."""
    if mask is None:
        return scores.softmax(dim=-1)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1) * mask.to(scores.dtype)


def _cpu_fp32(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """On CPU compute bf16/fp16 in fp32: this CPU's bf16 matmul is ~100x slower than fp32."""
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        return q.float(), k.float(), v.float()
    return q, k, v


def _prepare(q, k, v, key_padding_mask, clusters, bits, iterations, seed, topk, self_attention):
    """Validate, cluster the queries and form centroid queries; shared by both kernels."""
    _check(q, k, v, key_padding_mask, clusters, bits, iterations, seed, topk, self_attention)
    B, H, N, D = q.shape
    C = min(clusters, N)
    real = _real_queries(q, key_padding_mask, self_attention)
    assign = _kmeans(_hash_bits(q, bits, seed), real, C, iterations)  # (B, H, N)
    offsets = (torch.arange(B * H, device=q.device) * C).view(B, H, 1)
    flat = (assign + offsets).reshape(-1)  # (B*H*N,) row of each query's cluster
    w = real[:, None, :, None].to(q.dtype).expand(B, H, N, 1)
    sums = q.new_zeros(B * H * C, D + 1).index_add(
        0, flat, torch.cat([q * w, w], -1).view(-1, D + 1)
    )
    counts = sums[:, D:].clamp(min=1.0)
    q_c = (sums[:, :D] / counts).view(B, H, C, D) * (1.0 / math.sqrt(D))  # centroid queries
    keep = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    return q_c, flat, keep, C


def clustered_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    clusters: int = 100,
    bits: int = 32,
    iterations: int = 10,
    key_padding_mask: Tensor | None = None,
    self_attention: bool = True,
    seed: int = 0,
    layer_index: int = 0,
) -> Tensor:
    """Clustered attention: one softmax per query cluster, copied to its members.

    Args:
        q: queries ``(B, H, N_q, D)``.
        k: keys ``(B, H, N_k, D)``.
        v: values ``(B, H, N_k, D)``.
        clusters: number of clusters ``C`` (capped at ``N_q``; ``C = N_q`` is exact attention
            when the queries' codes differ).
        bits: hash bits per query (1..63).
        iterations: Lloyd iterations of the Hamming K-means.
        key_padding_mask: bool ``(B, N_k)``, True = real token; padded keys get zero weight.
        self_attention: True (default) when q and k come from the same sequence: the key
            padding mask then also marks the padded queries, which neither seed nor vote nor
            enter centroid means. Pass False for cross-attention (also at equal lengths):
            every query takes part and the mask applies to the keys only.
        seed: seeds the hyperplanes; ``layer_index`` is added so layers hash differently.
        layer_index: the encoder passes each layer's index.

    Returns:
        ``(B, H, N_q, D)``; zeros for a batch row whose keys are all padding. Gradients reach
        q (through the centroid means), k and v; the assignment itself is not differentiated.

    Raises:
        ValueError: disagreeing shapes, a mask of the wrong shape, clusters/bits out of range,
            ``self_attention=True`` with ``N_q != N_k``.
        TypeError: if ``key_padding_mask`` is not bool or ``self_attention`` not a bool.
    """
    dtype = q.dtype
    q, k, v = _cpu_fp32(q, k, v)
    q_c, flat, keep, C = _prepare(
        q,
        k,
        v,
        key_padding_mask,
        clusters,
        bits,
        iterations,
        seed + layer_index,
        None,
        self_attention,
    )
    B, H, N, D = q.shape
    attn = _masked_softmax(q_c @ k.transpose(-1, -2), keep)  # (B, H, C, N_k)
    v_c = attn @ v  # (B, H, C, D)
    return v_c.reshape(B * H * C, D).index_select(0, flat).view(B, H, N, D).to(dtype)


def improved_clustered_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    clusters: int = 100,
    bits: int = 32,
    iterations: int = 10,
    topk: int = 32,
    key_padding_mask: Tensor | None = None,
    self_attention: bool = True,
    seed: int = 0,
    layer_index: int = 0,
) -> Tensor:
    """Improved clustered attention: exact scores on each cluster's top-k keys.

    For a query in cluster ``c`` with centroid distribution ``A_c`` over keys and top-k set
    ``T_c``: ``out = m_c * softmax_{j in T_c}(q . k_j / sqrt(D)) V_T + sum_{j not in T_c}
    A_c[j] v_j`` with ``m_c = sum_{j in T_c} A_c[j]``. ``topk >= N_k`` is exact attention.

    Args:
        q, k, v, clusters, bits, iterations, key_padding_mask, self_attention, seed,
            layer_index: as ``clustered_attention``.
        topk: keys per cluster that get exact attention (capped at ``N_k``).

    Returns:
        ``(B, H, N_q, D)``; zeros for a batch row whose keys are all padding.

    Raises:
        ValueError: as ``clustered_attention``, or ``topk < 1``.
        TypeError: if ``key_padding_mask`` is not bool.
    """
    dtype = q.dtype
    q, k, v = _cpu_fp32(q, k, v)
    q_c, flat, keep, C = _prepare(
        q,
        k,
        v,
        key_padding_mask,
        clusters,
        bits,
        iterations,
        seed + layer_index,
        topk,
        self_attention,
    )
    B, H, N, D = q.shape
    Nk = k.shape[2]
    kk = min(topk, Nk)
    scores_c = q_c @ k.transpose(-1, -2)  # (B, H, C, N_k)
    if keep is not None:  # padded keys rank last in the top-k
        scores_c = scores_c.masked_fill(~keep, torch.finfo(scores_c.dtype).min)
    attn_c = _masked_softmax(scores_c, keep)  # (B, H, C, N_k)
    top = scores_c.detach().topk(kk, dim=-1).indices  # (B, H, C, kk)
    mass = attn_c.gather(-1, top).sum(-1, keepdim=True)  # (B, H, C, 1): centroid mass on T_c
    v_bottom = attn_c.scatter(-1, top, 0.0) @ v  # (B, H, C, D): the rest, from the centroid
    out_top = _exact_top(q, k, v, flat, top, mass, key_padding_mask)  # (B, H, N, D)
    out = out_top + v_bottom.reshape(B * H * C, D).index_select(0, flat).view(B, H, N, D)
    return out.to(dtype)


def _exact_top(
    q: Tensor, k: Tensor, v: Tensor, flat: Tensor, top: Tensor, mass: Tensor, kpm: Tensor | None
) -> Tensor:
    """``mass_c * softmax(q . k_T / sqrt(D)) V_T`` for every query over its cluster's keys T.

    Gathering T's keys for every query would copy ``N * topk * D`` numbers. Instead the
    queries are grouped by cluster into chunks of at most L (about N / C) slots, so a chunk
    shares one key set: one ``(L, D) @ (D, topk)`` matmul per chunk, all chunks batched.

    Args: ``q, k, v`` ``(B, H, N, D)`` / ``(B, H, N_k, D)``; ``flat`` ``(B*H*N,)`` each query's
    cluster row; ``top`` ``(B, H, C, kk)`` key positions; ``mass`` ``(B, H, C, 1)``.
    """
    B, H, N, D = q.shape
    C, kk, Nk = top.shape[2], top.shape[3], k.shape[2]
    L = max(8, min(128, -(-N // C)))  # chunk length: the mean cluster size, within [8, 128]
    size = torch.bincount(flat, minlength=B * H * C)  # (B*H*C,) queries per cluster
    chunks = (size + L - 1) // L  # chunks per cluster
    first_chunk = chunks.cumsum(0) - chunks
    order = flat.argsort(stable=True)  # queries grouped by cluster
    start = size.cumsum(0) - size  # first sorted position of each cluster
    rank = torch.empty_like(flat)
    rank[order] = torch.arange(len(flat), device=q.device) - start[flat[order]]
    slot = (first_chunk[flat] + rank // L) * L + rank % L  # (B*H*N,) distinct buffer slots
    owner = torch.repeat_interleave(torch.arange(B * H * C, device=q.device), chunks)  # (T,)
    T = owner.shape[0]
    q_buf = q.new_zeros(T * L, D).index_add(0, slot, q.reshape(-1, D) * (1.0 / math.sqrt(D)))
    rows = (
        top.reshape(B * H * C, kk)
        + (torch.arange(B * H, device=q.device) * Nk).repeat_interleave(C)[:, None]
    )
    rows = rows.index_select(0, owner)  # (T, kk): each chunk's keys, as rows of k.view(-1, D)
    k_t = k.reshape(-1, D).index_select(0, rows.reshape(-1)).view(T, kk, D)
    v_t = v.reshape(-1, D).index_select(0, rows.reshape(-1)).view(T, kk, D)
    keep = None
    if kpm is not None:  # (T, 1, kk): which of each chunk's keys are real
        keep = kpm[:, None, :].expand(B, H, Nk).reshape(-1)[rows][:, None, :]
    probs = _masked_softmax(q_buf.view(T, L, D) @ k_t.transpose(-1, -2), keep)  # (T, L, kk)
    probs = probs * mass.reshape(B * H * C, 1, 1).index_select(0, owner)
    out = (probs @ v_t).view(T * L, D)  # (T*L, D)
    return out.index_select(0, slot).view(B, H, N, D)


# ----------------------------------------------------------------------------- reference


def _popcount(x: Tensor) -> Tensor:
    """Set bits of every non-negative int64 (SWAR bit tricks, vectorised)."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return ((x * 0x0101010101010101) >> 56) & 0xFF  # the top byte sums the 8 byte counts


def _kmeans_packed(code_bits: Tensor, real: Tensor, C: int, iterations: int) -> Tensor:
    """Reference Hamming K-means on int64-packed codes with popcount distances."""
    B, H, N, nbits = code_bits.shape
    weights = 1 << torch.arange(nbits, device=code_bits.device, dtype=torch.int64)
    codes = (code_bits.long() * weights).sum(-1)  # (B, H, N) packed bits, < 2**63
    cent = codes.gather(2, _first_real(real, C)[:, None, :].expand(B, H, C))  # (B, H, C)
    member_of_real = real[:, None, :, None].long()  # (B, 1, N, 1)
    for _ in range(iterations):
        dist = _popcount(codes[..., :, None] ^ cent[..., None, :])  # (B, H, N, C)
        assign = dist.argmin(dim=-1)  # (B, H, N), first centroid on ties
        member = torch.nn.functional.one_hot(assign, C) * member_of_real  # (B, H, N, C)
        count = member.sum(2)  # (B, H, C)
        bit_of = (codes[..., None] >> torch.arange(nbits, device=codes.device)) & 1
        ones = member.transpose(-1, -2) @ bit_of  # (B, H, C, bits): members with bit i set
        cent = ((2 * ones > count[..., None]).long() * weights).sum(-1)  # majority vote
        # empty clusters: the j-th takes the j-th farthest real query (stable on ties)
        far = (-dist.min(dim=-1).values).masked_fill(~real[:, None, :], nbits + 1)
        rank = ((count == 0).long().cumsum(-1) - 1).clamp(0, N - 1)
        reseed = codes.gather(2, far.argsort(dim=-1, stable=True).gather(-1, rank))
        cent = torch.where(count > 0, cent, reseed)
    return _popcount(codes[..., :, None] ^ cent[..., None, :]).argmin(dim=-1)


def clustered_attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    clusters: int = 100,
    bits: int = 32,
    iterations: int = 10,
    topk: int | None = None,
    key_padding_mask: Tensor | None = None,
    self_attention: bool = True,
    seed: int = 0,
    layer_index: int = 0,
) -> Tensor:
    """Naive clustered (``topk=None``) or improved-clustered attention with dense matrices.

    Packed-int64 codes with popcount K-means, explicit one-hot membership ``(B, H, N, C)``
    and dense ``(N_q, N_k)`` weights. Same arguments and output as the fast kernels.
    """
    _check(
        q,
        k,
        v,
        key_padding_mask,
        clusters,
        bits,
        iterations,
        seed + layer_index,
        topk,
        self_attention,
    )
    B, H, N, D = q.shape
    C = min(clusters, N)
    real = _real_queries(q, key_padding_mask, self_attention)
    code_bits = _hash_bits(q, bits, seed + layer_index)
    member = torch.nn.functional.one_hot(_kmeans_packed(code_bits, real, C, iterations), C)
    member = member.to(q.dtype)  # (B, H, N, C)
    w = member * real[:, None, :, None].to(q.dtype)
    q_c = (w.transpose(-1, -2) @ q) / w.sum(2)[..., None].clamp(min=1.0)  # (B, H, C, D)
    keep = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    scores_c = (q_c @ k.transpose(-1, -2)) / math.sqrt(D)  # (B, H, C, N_k)
    attn_c = _masked_softmax(scores_c, keep)
    if topk is None:
        return member @ (attn_c @ v)  # (B, H, N, D)
    if keep is not None:
        scores_c = scores_c.masked_fill(~keep, torch.finfo(scores_c.dtype).min)
    top = scores_c.topk(min(topk, k.shape[2]), dim=-1).indices
    in_top = torch.zeros_like(attn_c, dtype=torch.bool).scatter_(-1, top, True)  # (B, H, C, N_k)
    mass = (attn_c * in_top).sum(-1, keepdim=True)  # (B, H, C, 1)
    bottom = attn_c * ~in_top  # (B, H, C, N_k)
    q_top = (member @ in_top.to(q.dtype)) > 0  # (B, H, N, N_k): keys in the query's T_c
    allowed = q_top if keep is None else q_top & keep
    exact = _masked_softmax((q @ k.transpose(-1, -2)) / math.sqrt(D), allowed)  # (B, H, N, N_k)
    weights = exact * (member @ mass) + member @ bottom  # (B, H, N, N_k)
    return weights @ v
