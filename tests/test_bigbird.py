"""Tests for takeaways.attention.bigbird: the pattern, the reference, the gather and flex paths."""

from __future__ import annotations

import warnings

import pytest
import torch

from takeaways.attention import bigbird as bb
from takeaways.attention import bigbird_attention, bigbird_attention_reference, bigbird_mask
from takeaways.nn import EncoderConfig, TransformerEncoder, dense_attention

OPTS = {"block_size": 16, "window_blocks": 3, "global_blocks": 2, "random_blocks": 2, "seed": 5}


def qkv(B=2, H=3, N=200, D=8, dtype=torch.float32, grad=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, N, D, generator=g, dtype=dtype).requires_grad_(grad) for _ in "qkv"]


def padding(kind: str | None, B: int, N: int) -> torch.Tensor | None:
    pos = torch.arange(N)[None].expand(B, N)
    if kind == "right":  # second row: last 37 tokens are padding
        return pos < torch.tensor([[N], [N - 37]])
    if kind == "left":  # second row: first 41 tokens are padding
        return pos >= torch.tensor([[0], [41]])
    return None


# ----------------------------------------------------------------------------- pattern


def test_mask_has_window_global_and_exactly_r_random_blocks_per_head():
    nb, b = 12, 4
    m = bigbird_mask(nb * b, block_size=b, heads=3, random_blocks=2, seed=1)
    assert m.shape == (3, nb * b, nb * b) and m.dtype == torch.bool
    blocks = m[:, ::b, ::b]  # (H, nb, nb) block-level pattern
    assert blocks[:, [0, -1]].all() and blocks[:, :, [0, -1]].all()  # global rows and columns
    idx = torch.arange(nb)
    assert blocks[:, idx, idx].all() and blocks[:, idx[1:], idx[:-1]].all()  # window
    for i in range(2, nb - 2):  # middle rows: 3 window + 2 global + exactly 2 random blocks
        assert (blocks[:, i].sum(-1) == 7).all()
    assert not torch.equal(blocks[0], blocks[1])  # each head draws its own random blocks
    assert torch.equal(m, bigbird_mask(nb * b, block_size=b, heads=3, random_blocks=2, seed=1))
    assert not torch.equal(m, bigbird_mask(nb * b, block_size=b, heads=3, random_blocks=2, seed=2))


def test_random_blocks_zero_is_window_plus_global_only():
    m = bigbird_mask(80, block_size=8, random_blocks=0)[0, ::8, ::8]  # (10, 10)
    assert m[5].nonzero().flatten().tolist() == [0, 4, 5, 6, 9]


def test_pattern_table_lists_each_block_once_and_is_cached():
    p = bb.block_pattern(20, 3, 2, 3, 0, 4, "cpu")
    assert p is bb.block_pattern(20, 3, 2, 3, 0, 4, "cpu")
    for h in range(4):
        for i in range(p.table.shape[1]):
            real = p.table[h, i][p.valid[h, i]].tolist()
            assert len(real) == len(set(real)) == int(p.adjacency[h, i + p.front].sum())


# The ablations of the long-range recipe: each part of the pattern switched off.
ABLATIONS = {
    "global only": {"window_blocks": 0, "random_blocks": 0},
    "window only": {"global_blocks": 0, "random_blocks": 0},
    "window + random": {"global_blocks": 0, "random_blocks": 2},
    "random only": {"window_blocks": 0, "global_blocks": 0, "random_blocks": 2},
}


def naive_block_mask(nb: int, window: int, glob: int, rand_blocks: torch.Tensor) -> torch.Tensor:
    """The block pattern spelled out with loops: ``rand_blocks`` (H, nb, nb) are the random
    blocks the kernel drew (checked separately), the rest follows from the definition."""
    H = rand_blocks.shape[0]
    front, back = (glob + 1) // 2, glob // 2
    out = torch.zeros(H, nb, nb, dtype=torch.bool)
    for h in range(H):
        for i in range(nb):
            for j in range(nb):
                in_window = -((window - 1) // 2) <= j - i <= window // 2 if window else False
                is_global = j < front or j >= nb - back or i < front or i >= nb - back
                out[h, i, j] = in_window or is_global or bool(rand_blocks[h, i, j])
    return out


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_masks_are_what_they_claim(name):
    nb, b, H = 11, 4, 3
    opts = {"window_blocks": 3, "global_blocks": 2, "random_blocks": 2, **ABLATIONS[name]}
    m = bigbird_mask(nb * b - 3, block_size=b, heads=H, seed=7, **opts)  # odd length
    blocks = bigbird_mask(nb * b, block_size=b, heads=H, seed=7, **opts)[:, ::b, ::b]
    assert torch.equal(m, blocks.repeat_interleave(b, 1).repeat_interleave(b, 2)[:, :-3, :-3])
    window, glob, r = opts["window_blocks"], opts["global_blocks"], opts["random_blocks"]
    fixed = naive_block_mask(nb, window, glob, torch.zeros(H, nb, nb, dtype=torch.bool))
    rand = blocks & ~fixed  # what is neither window nor global must be the random blocks
    front, back = (glob + 1) // 2, glob // 2
    middle = range(front, nb - back)
    for h in range(H):
        for i in middle:
            assert int(rand[h, i].sum()) == min(r, int((~fixed[h, i]).sum()))
    assert torch.equal(blocks, naive_block_mask(nb, window, glob, rand))
    if name == "global only":  # a middle block sees the two global blocks, not even itself
        assert all(blocks[:, i].nonzero()[:, 1].unique().tolist() == [0, nb - 1] for i in middle)
        assert blocks[:, [0, -1]].all()  # global rows see everything
    if name == "window only":  # a band: |i - j| <= 1 block, nothing else
        i, j = torch.meshgrid(torch.arange(nb), torch.arange(nb), indexing="ij")
        assert torch.equal(blocks, ((i - j).abs() <= 1).expand(H, nb, nb))
    if glob == 0:  # no block is global: no row or column is full
        assert not blocks.all(dim=-1).any() and not blocks.all(dim=-2).any()


@pytest.mark.parametrize("name", list(ABLATIONS))
@pytest.mark.parametrize("N", [200, 93])
@pytest.mark.parametrize("pad", [None, "right", "left"])
@pytest.mark.parametrize("backend", ["gather", "dense"])
def test_ablations_fast_paths_equal_reference(name, N, pad, backend):
    q, k, v = qkv(N=N, grad=True, seed=N)
    opts = {**OPTS, **ABLATIONS[name]}
    mask = padding(pad, 2, N)
    ref = bigbird_attention_reference(q, k, v, key_padding_mask=mask, **opts)
    out = bigbird_attention(q, k, v, key_padding_mask=mask, backend=backend, **opts)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pad", [None, "right", "left"])
def test_float64_with_padding_matches_reference_and_passes_gradcheck(pad):
    q, k, v = qkv(N=93, dtype=torch.float64, grad=True)
    mask = padding(pad, 2, 93)
    out = bigbird_attention(q, k, v, key_padding_mask=mask, backend="gather", **OPTS)
    assert out.dtype == torch.float64
    ref = bigbird_attention_reference(q, k, v, key_padding_mask=mask, **OPTS)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    small = [t[:1, :1, :40].detach().clone().requires_grad_() for t in (q, k, v)]
    small_mask = None if mask is None else mask[1:, :40]
    opts = {**OPTS, "block_size": 8}

    def fn(a, b, c):
        return bigbird_attention(a, b, c, key_padding_mask=small_mask, backend="gather", **opts)

    assert torch.autograd.gradcheck(fn, small)


# ----------------------------------------------------------------------------- fast == reference


@pytest.mark.parametrize("N", [200, 257, 64])
@pytest.mark.parametrize("pad", [None, "right", "left"])
@pytest.mark.parametrize("backend", ["gather", "dense"])
def test_fast_paths_equal_reference_forward_and_gradients(N, pad, backend):
    q, k, v = qkv(N=N, grad=True)
    mask = padding(pad, 2, N)
    ref = bigbird_attention_reference(q, k, v, key_padding_mask=mask, **OPTS)
    out = bigbird_attention(q, k, v, key_padding_mask=mask, backend=backend, **OPTS)
    assert out.shape == q.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    grads_ref = torch.autograd.grad(ref, (q, k, v), g)
    grads = torch.autograd.grad(out, (q, k, v), g)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_bf16_matches_fp32_reference_and_keeps_dtype():
    q, k, v = qkv(N=150)
    mask = padding("left", 2, 150)
    ref = bigbird_attention_reference(q, k, v, key_padding_mask=mask, **OPTS)
    lo = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    out = bigbird_attention(*lo, key_padding_mask=mask, backend="gather", **OPTS)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)
    out.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in lo)


def test_full_pattern_is_exact_dense_attention():
    q, k, v = qkv(N=50)  # 4 blocks of 16 <= window + global + random: every block sees all
    mask = padding("right", 2, 50)
    out = bigbird_attention(q, k, v, key_padding_mask=mask, **OPTS)
    torch.testing.assert_close(out, dense_attention(q, k, v, key_padding_mask=mask))


def test_auto_backend_gives_the_reference_at_every_length():
    for N in (60, 150, 400):  # full pattern, dense-masked and gather regimes
        q, k, v = qkv(B=1, N=N)
        torch.testing.assert_close(
            bigbird_attention(q, k, v, **OPTS), bigbird_attention_reference(q, k, v, **OPTS)
        )


def test_layer_index_shifts_the_seed():
    q, k, v = qkv(N=300)
    opts = {**OPTS, "seed": 0}
    a = bigbird_attention(q, k, v, layer_index=3, **opts)
    torch.testing.assert_close(a, bigbird_attention_reference(q, k, v, **{**opts, "seed": 3}))
    assert not torch.allclose(a, bigbird_attention(q, k, v, **opts))


def test_fully_padded_row_is_zero_with_finite_gradients():
    q, k, v = qkv(N=130, grad=True)
    mask = torch.ones(2, 130, dtype=torch.bool)
    mask[1] = False
    out = bigbird_attention(q, k, v, key_padding_mask=mask, backend="gather", **OPTS)
    assert out[1].abs().max() == 0 and out[0].abs().max() > 0
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


# ----------------------------------------------------------------------------- flex


@pytest.mark.parametrize("tile", [16, 32, 64])  # 32, 64: the BlockMask lists coarser tiles (CUDA)
def test_flex_eager_on_cpu_equals_reference(tile, monkeypatch):
    pytest.importorskip("torch.nn.attention.flex_attention")
    monkeypatch.setattr(bb, "_flex_tile", lambda block, device: tile)
    q, k, v = qkv(N=144)  # 9 blocks of 16: not whole tiles of 32 or 64
    mask = padding("left", 2, 144)
    p = bb.block_pattern(9, 3, 2, 2, 5, 3, "cpu")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager flex warns that it materializes the scores
        out = bb._flex_attention(q, k, v, p, 16, mask, compiled=False)
    ref = bigbird_attention_reference(q, k, v, key_padding_mask=mask, **OPTS)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_flex_refuses_backward_on_cpu():
    q, k, v = qkv(N=256, grad=True)
    with pytest.raises(ValueError, match="no backward on CPU"):
        bigbird_attention(q, k, v, backend="flex", **OPTS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the flex training path)")
def test_flex_on_cuda_equals_reference_forward_and_gradients():
    q, k, v = (t.cuda().requires_grad_() for t in qkv(N=1000, D=64))
    mask = padding("right", 2, 1000).cuda()
    opts = {**OPTS, "block_size": 64}
    out = bigbird_attention(q, k, v, key_padding_mask=mask, backend="flex", **opts)
    ref = bigbird_attention_reference(q, k, v, key_padding_mask=mask, **opts)
    torch.testing.assert_close(out, ref, atol=2e-3, rtol=2e-3)
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g)):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)


# ----------------------------------------------------------------------------- encoder, errors


def test_encoder_trains_with_bigbird_attention():
    cfg = EncoderConfig(
        vocab_size=30,
        dim=16,
        depth=2,
        heads=2,
        max_len=200,
        dropout=0.0,
        attention="bigbird",
        attention_options={"block_size": 16, "random_blocks": 1},
    )
    enc = TransformerEncoder(cfg)
    ids = torch.randint(0, 30, (2, 200), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 200, dtype=torch.long)
    mask[1, 150:] = 0
    enc(ids, mask).sum().backward()
    assert [blk.attn.options["layer_index"] for blk in enc.layers] == [0, 1]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": torch.zeros(2, 3, 200, 4)}, "q and k must agree"),
        ({"v": torch.zeros(2, 3, 199, 8)}, "k and v must agree"),
        ({"k": torch.zeros(2, 3, 199, 8), "v": torch.zeros(2, 3, 199, 8)}, "same shape"),
        ({"block_size": 0}, "block_size must be an int >= 1"),
        ({"window_blocks": -1}, "window_blocks must be an int >= 0"),
        ({"window_blocks": 0, "global_blocks": 0, "random_blocks": 0}, "all 0"),
        ({"random_blocks": -1}, "random_blocks must be an int >= 0"),
        (
            {"key_padding_mask": torch.ones(2, 199, dtype=torch.bool)},
            "key_padding_mask must have shape",
        ),
        ({"backend": "cuda"}, "unknown backend"),
    ],
)
def test_bad_input_gives_one_line_errors(change, message):
    q, k, v = qkv()
    args = {"q": q, "k": k, "v": v, **change}
    with pytest.raises(ValueError, match=message):
        bigbird_attention(**args)


def test_float_mask_is_a_type_error():
    q, k, v = qkv()
    with pytest.raises(TypeError, match="must be bool"):
        bigbird_attention(q, k, v, key_padding_mask=torch.ones(2, 200))


def test_flex_tile_is_128_on_cuda_when_the_block_divides_it():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert bb._flex_tile(64, cpu) == 64 and bb._flex_tile(48, cpu) == 48
    assert bb._flex_tile(64, cuda) == 128 and bb._flex_tile(32, cuda) == 128
    assert bb._flex_tile(256, cuda) == 256
    with pytest.raises(ValueError, match="divides 128 or is a multiple of it"):
        bb._flex_tile(48, cuda)
