"""Tests for takeaways.attention.clustered: Hamming K-means, clustered and improved attention."""

from __future__ import annotations

import pytest
import torch

from takeaways.attention import clustered as cl
from takeaways.attention import (
    clustered_attention,
    clustered_attention_reference,
    improved_clustered_attention,
)
from takeaways.nn import EncoderConfig, TransformerEncoder, dense_attention


def qkv(B=2, H=2, N=45, Nk=None, D=8, grad=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(B, H, N, D), (B, H, Nk or N, D), (B, H, Nk or N, D)]
    return [torch.randn(*s, generator=g).requires_grad_(grad) for s in shapes]


def padding(kind: str | None, B: int, N: int) -> torch.Tensor | None:
    pos = torch.arange(N)[None].expand(B, N)
    if kind == "right":
        return pos < torch.tensor([[N], [N - 9]])
    if kind == "left":
        return pos >= torch.tensor([[0], [11]])
    return None


def test_popcount_counts_bits():
    x = torch.tensor([0, 1, 2**62 + 5, 2**63 - 1, 0x5555], dtype=torch.int64)
    assert cl._popcount(x).tolist() == [bin(int(v)).count("1") for v in x]


@pytest.mark.parametrize("pad", [None, "left"])
def test_matmul_kmeans_equals_packed_popcount_kmeans(pad):
    q, k, _ = qkv(N=70)
    mask = padding(pad, 2, 70)
    bits = cl._hash_bits(q, 12, seed=3)  # few bits: many ties, which both must break alike
    real = cl._real_queries(q, mask, self_attention=True)
    for C in (1, 6, 70):
        fast = cl._kmeans(bits, real, C, iterations=5)
        assert torch.equal(fast, cl._kmeans_packed(bits, real, C, iterations=5))


@pytest.mark.parametrize("N", [45, 64])
@pytest.mark.parametrize("pad", [None, "right", "left"])
@pytest.mark.parametrize("topk", [None, 5])
def test_fast_kernels_equal_reference_forward_and_gradients(N, pad, topk):
    q, k, v = qkv(N=N, grad=True)
    mask = padding(pad, 2, N)
    opts = {"clusters": 7, "bits": 20, "key_padding_mask": mask, "seed": 1}
    ref = clustered_attention_reference(q, k, v, topk=topk, **opts)
    if topk is None:
        out = clustered_attention(q, k, v, **opts)
    else:
        out = improved_clustered_attention(q, k, v, topk=topk, **opts)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), g)
    for a, b in zip(grads, torch.autograd.grad(ref, (q, k, v), g)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert all(a.abs().sum() > 0 for a in grads)  # gradients reach q, k and v


@pytest.mark.parametrize("pad", [None, "right", "left"])
def test_one_cluster_per_query_is_dense_attention(pad):
    q, k, v = qkv(N=40)
    mask = padding(pad, 2, 40)
    out = clustered_attention(q, k, v, clusters=40, bits=63, key_padding_mask=mask)
    dense = dense_attention(q, k, v, key_padding_mask=mask)
    real = (mask if mask is not None else torch.ones(2, 40, dtype=torch.bool))[:, None, :, None]
    torch.testing.assert_close(out * real, dense * real)  # padded query rows are don't-care


@pytest.mark.parametrize("pad", [None, "left"])
def test_topk_all_keys_is_dense_attention(pad):
    q, k, v = qkv(N=33, Nk=50)
    mask = padding(pad, 2, 50)
    opts = {"clusters": 3, "key_padding_mask": mask, "self_attention": False}
    out = improved_clustered_attention(q, k, v, topk=50, **opts)
    torch.testing.assert_close(out, dense_attention(q, k, v, key_padding_mask=mask))
    big = improved_clustered_attention(q, k, v, topk=500, **opts)
    torch.testing.assert_close(big, out)  # topk > N_k is capped, not an error


@pytest.mark.parametrize("kernel", [clustered_attention, improved_clustered_attention])
def test_padded_keys_get_zero_weight(kernel):
    q, k, v = qkv(N=30, Nk=40)  # cross-attention, so queries all take part
    mask = padding("right", 2, 40)
    k2, v2 = k.clone(), v.clone()
    k2[1, :, 31:] = 100.0  # whatever sits at padded positions must not matter
    v2[1, :, 31:] = -1e4
    a = kernel(q, k, v, clusters=4, key_padding_mask=mask, self_attention=False)
    b = kernel(q, k2, v2, clusters=4, key_padding_mask=mask, self_attention=False)
    torch.testing.assert_close(a, b)
    empty = torch.zeros(2, 40, dtype=torch.bool)
    out = kernel(q, k, v, clusters=4, key_padding_mask=empty, self_attention=False)
    assert out.abs().max() == 0


@pytest.mark.parametrize("N", [40, 37])
@pytest.mark.parametrize("topk", [None, 6])
def test_equal_length_cross_attention_keeps_every_query(N, topk):
    # Cross-attention with as many queries as keys: the key padding mask must not drop
    # queries. With one cluster per query it is dense attention on every row, including
    # the rows at padded key positions (which self-attention treats as padded queries).
    q, k, v = qkv(N=N, grad=True, seed=4)
    mask = padding("right", 2, N)
    opts = {"bits": 63, "key_padding_mask": mask, "self_attention": False, "seed": 2}
    ref = clustered_attention_reference(q, k, v, clusters=9, topk=topk, **opts)
    kernel = clustered_attention if topk is None else improved_clustered_attention
    extra = {} if topk is None else {"topk": topk}
    out = kernel(q, k, v, clusters=9, **extra, **opts)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    exact = clustered_attention(q, k, v, clusters=N, **opts)
    torch.testing.assert_close(exact, dense_attention(q, k, v, key_padding_mask=mask))
    # Self-attention (the default) leaves the padded queries out of clustering, which moves
    # the real rows of the padded sequence too: the flag is what decides it, not N_q == N_k.
    as_self = kernel(q, k, v, clusters=9, **extra, **{**opts, "self_attention": True})
    assert not torch.allclose(as_self[1, :, : N - 9], out[1, :, : N - 9])
    torch.testing.assert_close(as_self[0], out[0])  # no padding in row 0: the same


def test_self_attention_flag_is_checked():
    q, k, v = qkv(N=30, Nk=40)
    with pytest.raises(ValueError, match="pass self_attention=False for cross-attention"):
        clustered_attention(q, k, v, clusters=4)
    with pytest.raises(TypeError, match="self_attention must be True or False"):
        improved_clustered_attention(q, k, v, clusters=4, self_attention=None)


def test_planted_clusters_are_approximated_and_improved_is_closer():
    # Queries are 4 tight groups: 4 clusters recover dense attention almost exactly.
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(1, 2, 4, 16, generator=g) * 2
    q = centers.repeat_interleave(64, dim=2) + 0.01 * torch.randn(1, 2, 256, 16, generator=g)
    k, v = torch.randn(1, 2, 256, 16, generator=g), torch.randn(1, 2, 256, 16, generator=g)
    dense = dense_attention(q, k, v)
    err = (clustered_attention(q, k, v, clusters=4) - dense).norm() / dense.norm()
    assert err < 0.02
    # Random queries with 8 clusters: improved (exact top-32 keys) errs less than plain.
    q = torch.randn(1, 2, 256, 16, generator=g)
    dense = dense_attention(q, k, v)
    plain = (clustered_attention(q, k, v, clusters=8) - dense).norm()
    better = (improved_clustered_attention(q, k, v, clusters=8, topk=32) - dense).norm()
    assert better < plain


def test_same_seed_same_output_and_layer_index_changes_hashing():
    q, k, v = qkv(N=64)
    a = clustered_attention(q, k, v, clusters=5, seed=0, layer_index=2)
    torch.testing.assert_close(a, clustered_attention(q, k, v, clusters=5, seed=2))
    assert not torch.allclose(a, clustered_attention(q, k, v, clusters=5, seed=0))


def test_bf16_inputs_keep_their_dtype():
    q, k, v = qkv(N=64)
    ref = improved_clustered_attention(q, k, v, clusters=5)
    out = improved_clustered_attention(*(t.bfloat16() for t in (q, k, v)), clusters=5)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().mean() < 0.02


@pytest.mark.parametrize("name", ["clustered", "improved-clustered"])
def test_encoder_trains_with_clustered_attention(name):
    cfg = EncoderConfig(
        vocab_size=30,
        dim=16,
        depth=2,
        heads=2,
        max_len=64,
        dropout=0.0,
        attention=name,
        attention_options={"clusters": 4},
    )
    enc = TransformerEncoder(cfg)
    ids = torch.randint(0, 30, (2, 64), generator=torch.Generator().manual_seed(0))
    enc(ids).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clusters": 0}, "clusters must be an int >= 1"),
        ({"bits": 64}, "bits must be <= 63"),
        ({"iterations": -1}, "iterations must be an int >= 0"),
        ({"topk": 0}, "topk must be an int >= 1"),
        (
            {"key_padding_mask": torch.ones(2, 44, dtype=torch.bool)},
            "key_padding_mask must have shape",
        ),
    ],
)
def test_bad_input_gives_one_line_errors(options, message):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=message):
        improved_clustered_attention(q, k, v, **options)


def test_shape_mismatches_are_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="q and k must agree"):
        clustered_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="k and v must agree"):
        clustered_attention(q, k, v[:, :, :5])
