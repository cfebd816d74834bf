"""Tests for takeaways.nn: attention kernels, the encoder and its heads, vision models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from takeaways.nn import (
    ATTENTION,
    MLP,
    Block,
    EncoderConfig,
    MaskedLM,
    SequenceClassifier,
    SmallCNN,
    SmallCNN1d,
    SmallResNet,
    TransformerEncoder,
    attention_reference,
    dense_attention,
    get_attention,
    register_attention,
    set_attention,
)
from takeaways.nn.attention import causal_attention, causal_attention_reference

VOCAB = 50


def tiny_config(**overrides) -> EncoderConfig:
    base = dict(vocab_size=VOCAB, dim=32, depth=2, heads=4, max_len=64, dropout=0.1)
    return EncoderConfig(**(base | overrides))


def padding_mask(lengths: list[int], n: int, *, side: str) -> torch.Tensor:
    """bool (B, n), True on the `length` real tokens at the right or left end."""
    idx = torch.arange(n)
    rows = []
    for length in lengths:
        rows.append(idx < length if side == "right" else idx >= n - length)
    return torch.stack(rows)


# ---------------------------------------------------------------- attention kernels


@pytest.mark.parametrize("n", [1, 7, 33])
@pytest.mark.parametrize("side", ["none", "right", "left"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dense_matches_reference_outputs_and_grads(n, side, dtype):
    torch.manual_seed(n)
    B, H, D = 3, 2, 8
    q, k, v = (torch.randn(B, H, n, D, dtype=dtype, requires_grad=True) for _ in range(3))
    # the last row is all padding when padding is on: it must come out as zeros, not NaN
    mask = None if side == "none" else padding_mask([n, max(1, n // 2), 0], n, side=side)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=3e-2, rtol=3e-2)

    out_d = dense_attention(q, k, v, key_padding_mask=mask)
    grads_d = torch.autograd.grad((out_d.float() * 1.7).sin().sum(), (q, k, v))
    out_r = attention_reference(q, k, v, key_padding_mask=mask)
    grads_r = torch.autograd.grad((out_r.float() * 1.7).sin().sum(), (q, k, v))

    assert out_d.shape == (B, H, n, D) and out_d.dtype == dtype
    torch.testing.assert_close(out_d, out_r, **tol)
    for gd, gr in zip(grads_d, grads_r):
        assert torch.isfinite(gd).all()
        torch.testing.assert_close(gd, gr, **tol)
    if mask is not None:
        for out, grads in ((out_d, grads_d), (out_r, grads_r)):
            assert torch.isfinite(out).all()
            assert out[2].abs().max() == 0  # the all-padding row
            assert all(g[2].abs().max() == 0 for g in grads)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dense_matches_reference_on_cuda(dtype):
    # GPU SDPA backends handle an all-padding row differently from the CPU one
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 33, 64, device="cuda", dtype=dtype) for _ in range(3))
    mask = padding_mask([33, 10, 0], 33, side="left").cuda()
    out = dense_attention(q, k, v, key_padding_mask=mask)
    tol = dict(atol=1e-4, rtol=1e-3) if dtype == torch.float32 else dict(atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(out, attention_reference(q, k, v, key_padding_mask=mask), **tol)
    assert out[2].abs().max() == 0


@pytest.mark.parametrize("kernel", [dense_attention, attention_reference])
def test_padding_equals_truncation(kernel):
    # attending with padding masked must equal attending over the real keys alone
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 9, 4) for _ in range(3))
    mask = padding_mask([6], 9, side="right")
    out = kernel(q, k, v, key_padding_mask=mask)
    scores = q @ k[:, :, :6].transpose(-1, -2) / math.sqrt(4)
    expected = scores.softmax(-1) @ v[:, :, :6]
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_kernels_without_mask_match_each_other():
    torch.manual_seed(1)
    q = torch.randn(2, 3, 5, 8)
    k, v = torch.randn(2, 3, 11, 8), torch.randn(2, 3, 11, 8)  # cross-length keys
    out = dense_attention(q, k, v)
    assert out.shape == (2, 3, 5, 8)
    torch.testing.assert_close(out, attention_reference(q, k, v), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "shapes, mask, match",
    [
        (((2, 5, 8), (2, 5, 8), (2, 5, 8)), None, "q must be 4-D"),
        (((2, 1, 5, 8), (2, 1, 5, 8), (2, 1, 6, 8)), None, "k and v must agree"),
        (((2, 1, 5, 8), (2, 1, 5, 4), (2, 1, 5, 4)), None, "q and k must agree"),
        (
            ((2, 1, 5, 8), (2, 1, 5, 8), (2, 1, 5, 8)),
            torch.ones(2, 4, dtype=torch.bool),
            r"\(2, 5\)",
        ),
    ],
)
@pytest.mark.parametrize("kernel", [dense_attention, attention_reference])
def test_kernel_shape_errors(kernel, shapes, mask, match):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        kernel(q, k, v, key_padding_mask=mask)


def test_kernel_rejects_non_bool_mask():
    q = torch.zeros(1, 1, 3, 2)
    with pytest.raises(TypeError, match="mask.bool"):
        dense_attention(q, q, q, key_padding_mask=torch.ones(1, 3, dtype=torch.long))


def test_registry_lookup_and_errors():
    assert get_attention("dense") is dense_attention
    assert ATTENTION["reference"] is attention_reference

    def mine(q, k, v, *, key_padding_mask=None):
        return q

    assert get_attention(mine) is mine
    with pytest.raises(ValueError, match="unknown attention 'nope'; known: .*dense.*reference"):
        get_attention("nope")
    with pytest.raises(ValueError, match="import takeaways.attention first"):
        get_attention("nope")
    with pytest.raises(TypeError, match="registered name or a callable"):
        get_attention(3)
    register_attention("test-mine", mine)
    try:
        assert get_attention("test-mine") is mine
        register_attention("test-mine", mine)  # same function again is fine
        with pytest.raises(ValueError, match="already registered"):
            register_attention("test-mine", dense_attention)
        register_attention("test-mine", dense_attention, overwrite=True)
        assert get_attention("test-mine") is dense_attention
    finally:
        del ATTENTION["test-mine"]
    with pytest.raises(TypeError, match="must be callable"):
        register_attention("x", 3)


# ---------------------------------------------------------------- causal kernel (next-token LM)


@pytest.mark.parametrize(("B", "H", "N", "Dh"), [(2, 3, 7, 8), (1, 1, 1, 4), (3, 2, 33, 16)])
def test_causal_attention_matches_reference_and_ignores_the_future(B, H, N, Dh):
    torch.manual_seed(N)
    q, k, v = (torch.randn(B, H, N, Dh) for _ in range(3))
    out = causal_attention(q, k, v)
    torch.testing.assert_close(out, causal_attention_reference(q, k, v), atol=1e-5, rtol=1e-5)
    v2 = v.clone()
    v2[:, :, -1] += 100.0  # changing the last token moves only the last output
    torch.testing.assert_close(causal_attention(q, k, v2)[:, :, :-1], out[:, :, :-1])
    with pytest.raises(ValueError, match="no key_padding_mask"):
        causal_attention(q, k, v, key_padding_mask=torch.ones(B, N, dtype=torch.bool))


def test_causal_is_a_registered_kernel_and_refuses_cross_attention():
    assert get_attention("causal") is causal_attention
    q = torch.randn(1, 2, 5, 8)
    with pytest.raises(ValueError, match="self-attention"):
        causal_attention(q, torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8))
    with pytest.raises(ValueError, match="4-D"):
        causal_attention_reference(q[0], q[0], q[0])
    # an encoder built on the name gives every position only its past
    cfg = EncoderConfig(
        vocab_size=50, dim=16, depth=2, heads=2, max_len=9, dropout=0.0, attention="causal"
    )
    enc = TransformerEncoder(cfg).eval()
    ids = torch.randint(0, 50, (2, 9))
    ids2 = ids.clone()
    ids2[:, -1] = (ids[:, -1] + 1) % 50
    torch.testing.assert_close(enc(ids)[:, :-1], enc(ids2)[:, :-1])


# ---------------------------------------------------------------- encoder


def test_encoder_shapes_and_bert_init():
    torch.manual_seed(0)
    enc = TransformerEncoder(tiny_config(dim=64, depth=3))
    out = enc(torch.randint(0, VOCAB, (2, 9)))
    assert out.shape == (2, 9, 64) and out.dtype == torch.float32
    assert isinstance(enc.layers, nn.ModuleList) and len(enc.layers) == 3
    assert all(isinstance(b, Block) for b in enc.layers)
    assert enc.dim == 64
    block = enc.layers[0]
    assert abs(block.attn.qkv.weight.std().item() - 0.02) < 0.002
    assert abs(enc.embed.weight.std().item() - 0.02) < 0.002
    assert block.mlp.fc.bias.abs().max() == 0
    # final LayerNorm: every position normalized to mean 0, std 1
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 9), atol=1e-5, rtol=0)


def test_encoder_padding_invariance():
    torch.manual_seed(0)
    enc = TransformerEncoder(tiny_config()).eval()
    ids = torch.randint(1, VOCAB, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    out = enc(ids, attention_mask=mask)
    # append 5 more padding tokens: the real positions must not change
    ids_long = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    mask_long = torch.cat([mask, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    out_long = enc(ids_long, attention_mask=mask_long.bool())
    torch.testing.assert_close(out_long[0, :7], out[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_long[1, :4], out[1, :4], atol=1e-5, rtol=1e-5)
    # and the padded tokens' ids do not matter either
    ids_other = ids_long.clone()
    ids_other[1, 4:] = 7
    out_other = enc(ids_other, attention_mask=mask_long)
    torch.testing.assert_close(out_other[1, :4], out[1, :4], atol=1e-5, rtol=1e-5)


def test_encoder_eval_is_deterministic_and_train_uses_dropout():
    torch.manual_seed(0)
    enc = TransformerEncoder(tiny_config(dropout=0.2))
    ids = torch.randint(0, VOCAB, (2, 6))
    enc.eval()
    torch.testing.assert_close(enc(ids), enc(ids), atol=0, rtol=0)
    enc.train()
    assert (enc(ids) - enc(ids)).abs().max() > 1e-3


def test_encoder_reference_attention_matches_dense():
    torch.manual_seed(0)
    dense = TransformerEncoder(tiny_config()).eval()
    ref = TransformerEncoder(tiny_config(attention="reference")).eval()
    ref.load_state_dict(dense.state_dict())
    ids = torch.randint(0, VOCAB, (3, 11))
    mask = padding_mask([11, 5, 8], 11, side="right")
    torch.testing.assert_close(dense(ids, mask), ref(ids, mask), atol=1e-5, rtol=1e-5)


def test_encoder_bf16_autocast_is_finite():
    torch.manual_seed(0)
    enc = TransformerEncoder(tiny_config()).eval()
    ids = torch.randint(0, VOCAB, (2, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(ids, attention_mask=padding_mask([8, 3], 8, side="right"))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(
        out.float(), enc(ids, padding_mask([8, 3], 8, side="right")), atol=0.1, rtol=0.1
    )


def test_encoder_error_messages():
    enc = TransformerEncoder(tiny_config(max_len=16))
    with pytest.raises(ValueError, match="sequence length 20 exceeds max_len 16"):
        enc(torch.zeros(1, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="dim=30 must be divisible by heads=4"):
        EncoderConfig(vocab_size=10, dim=30, heads=4)
    with pytest.raises(ValueError, match="depth must be a positive int"):
        EncoderConfig(vocab_size=10, depth=0)
    with pytest.raises(ValueError, match="unknown attention 'sparse'; known: .*dense"):
        TransformerEncoder(tiny_config(attention="sparse"))
    with pytest.raises(TypeError, match="integer tensor"):
        enc(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="2-D"):
        enc(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask shape"):
        enc(torch.zeros(2, 4, dtype=torch.long), attention_mask=torch.ones(2, 5))
    with pytest.raises(TypeError, match="does not accept options"):
        TransformerEncoder(tiny_config(attention_options={"window": 3}))


def test_custom_attention_is_called_with_options_and_layer_index():
    calls = []

    def recording(q, k, v, *, key_padding_mask=None, layer_index, temperature=1.0):
        calls.append((layer_index, temperature, tuple(q.shape), key_padding_mask))
        return dense_attention(q, k, v, key_padding_mask=key_padding_mask)

    torch.manual_seed(0)
    enc = TransformerEncoder(
        tiny_config(depth=3, attention=recording, attention_options={"temperature": 0.5})
    ).eval()
    dense = TransformerEncoder(tiny_config(depth=3)).eval()
    dense.load_state_dict(enc.state_dict())
    ids = torch.randint(0, VOCAB, (2, 5))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = enc(ids, attention_mask=mask)
    assert [c[:3] for c in calls] == [(i, 0.5, (2, 4, 5, 8)) for i in range(3)]
    assert all(c[3].dtype == torch.bool and c[3].tolist() == mask.bool().tolist() for c in calls)
    torch.testing.assert_close(out, dense(ids, attention_mask=mask), atol=0, rtol=0)


def test_custom_attention_without_layer_index_gets_none():
    seen = []

    def plain(q, k, v, *, key_padding_mask=None):  # would raise TypeError on layer_index
        seen.append(key_padding_mask is None)
        return attention_reference(q, k, v, key_padding_mask=key_padding_mask)

    enc = TransformerEncoder(tiny_config(attention=plain))
    enc(torch.randint(0, VOCAB, (1, 4)))
    assert seen == [True, True]


def test_attention_returning_wrong_shape_is_reported():
    def broken(q, k, v, *, key_padding_mask=None):
        return q[..., :1]

    enc = TransformerEncoder(tiny_config(attention=broken))
    with pytest.raises(ValueError, match="attention kernel returned shape"):
        enc(torch.randint(0, VOCAB, (1, 4)))


def test_block_is_a_residual_unit():
    # with both output projections zeroed a Pre-LN block is exactly the identity,
    # which is what lets layer-dropping techniques skip it
    torch.manual_seed(0)
    block = Block(tiny_config(dropout=0.0))
    for proj in (block.attn.proj, block.mlp.proj):
        nn.init.zeros_(proj.weight)
        nn.init.zeros_(proj.bias)
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(block(x, key_padding_mask=torch.ones(2, 5, dtype=torch.bool)), x)


# ---------------------------------------------------------------- heads


def test_masked_lm_ties_decoder_to_embedding():
    torch.manual_seed(0)
    mlm = MaskedLM(TransformerEncoder(tiny_config()))
    assert mlm.decoder.weight is mlm.encoder.embed.weight
    logits = mlm(input_ids=torch.randint(0, VOCAB, (2, 6)), attention_mask=torch.ones(2, 6))
    assert logits.shape == (2, 6, VOCAB)
    untied = MaskedLM(TransformerEncoder(tiny_config()), tie_weights=False)
    assert untied.decoder.weight is not untied.encoder.embed.weight
    n_tied = sum(p.numel() for p in mlm.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - n_tied == VOCAB * 32


def test_masked_lm_needs_token_embedding():
    class Bare(nn.Module):
        dim = 8

        def forward(self, input_ids, attention_mask=None):
            return torch.zeros(*input_ids.shape, 8)

    with pytest.raises(TypeError, match="no token embedding"):
        MaskedLM(Bare())
    assert MaskedLM(Bare(), tie_weights=False, vocab_size=11)(torch.zeros(1, 3)).shape == (1, 3, 11)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_ignores_appended_padding(pooling):
    torch.manual_seed(0)
    clf = SequenceClassifier(TransformerEncoder(tiny_config()), 3, pooling=pooling).eval()
    ids = torch.randint(1, VOCAB, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    logits = clf(input_ids=ids, attention_mask=mask)
    assert logits.shape == (2, 3)
    ids_long = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], 1)
    mask_long = torch.cat([mask, torch.zeros(2, 4, dtype=torch.long)], 1)
    torch.testing.assert_close(clf(ids_long, mask_long), logits, atol=1e-5, rtol=1e-5)


def test_classifier_mean_pooling_is_masked_mean():
    torch.manual_seed(0)
    clf = SequenceClassifier(TransformerEncoder(tiny_config()), 2, pooling="mean").eval()
    ids = torch.randint(1, VOCAB, (1, 6))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    h = clf.encoder(ids, mask)
    expected = clf.head(h[0, :4].mean(0))
    torch.testing.assert_close(clf(ids, mask)[0], expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown pooling 'max'; known: cls, mean"):
        SequenceClassifier(clf.encoder, 2, pooling="max")


# ---------------------------------------------------------------- every model: forward + backward


def _tokens():
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (3, 9))
    return {"input_ids": ids, "attention_mask": padding_mask([9, 4, 6], 9, side="right").long()}


MODELS = {
    "encoder": (lambda: TransformerEncoder(tiny_config()), _tokens),
    "encoder-reference": (lambda: TransformerEncoder(tiny_config(attention="reference")), _tokens),
    "masked-lm": (lambda: MaskedLM(TransformerEncoder(tiny_config())), _tokens),
    "classifier-cls": (lambda: SequenceClassifier(TransformerEncoder(tiny_config()), 3), _tokens),
    "classifier-mean": (
        lambda: SequenceClassifier(TransformerEncoder(tiny_config()), 3, pooling="mean"),
        _tokens,
    ),
    "cnn-8": (lambda: SmallCNN(width=4, image_size=8), lambda: torch.rand(4, 1, 8, 8)),
    "cnn-28": (lambda: SmallCNN(width=4), lambda: torch.rand(2, 1, 28, 28)),
    "cnn-batchnorm": (
        lambda: SmallCNN(3, 5, 4, 16, norm="batch"),
        lambda: torch.rand(4, 3, 16, 16),
    ),
    "cnn-groupnorm": (lambda: SmallCNN(width=6, norm="group"), lambda: torch.rand(2, 1, 28, 28)),
    "cnn1d": (lambda: SmallCNN1d(width=4), lambda: torch.rand(3, 40)),
    "cnn1d-channel": (lambda: SmallCNN1d(5, width=3), lambda: torch.rand(2, 1, 17)),
    "resnet": (lambda: SmallResNet(width=4), lambda: torch.rand(4, 1, 8, 8)),
    "resnet-deep": (
        lambda: SmallResNet(3, 4, 4, blocks=(2, 1, 2)),
        lambda: torch.rand(2, 3, 12, 12),
    ),
    "mlp": (lambda: MLP(64, 10, hidden=(16, 8), dropout=0.1), lambda: torch.rand(4, 1, 8, 8)),
    "mlp-signal": (lambda: MLP(40, 10, hidden=()), lambda: torch.rand(4, 40)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_forward_backward_all_params_get_grads(name):
    build, make_input = MODELS[name]
    torch.manual_seed(0)
    model = build().train()
    x = make_input()
    out = model(**x) if isinstance(x, dict) else model(x)
    assert torch.isfinite(out).all()
    # a random projection, not out.sum(): a LayerNorm output sums to a constant
    loss = (out * torch.randn_like(out)).sum()
    loss.backward()
    params = dict(model.named_parameters())
    with_grad = [n for n, p in params.items() if p.grad is not None and p.grad.abs().sum() > 0]
    assert all(torch.isfinite(p.grad).all() for p in params.values() if p.grad is not None)
    assert sorted(with_grad) == sorted(params), f"no gradient: {set(params) - set(with_grad)}"


# ---------------------------------------------------------------- vision specifics


def test_small_cnn_output_sizes_and_no_batchnorm_by_default():
    for size in (8, 28, 13):
        assert SmallCNN(image_size=size)(torch.rand(2, 1, size, size)).shape == (2, 10)
    assert SmallCNN(in_channels=3, num_classes=4)(torch.rand(1, 3, 32, 32)).shape == (1, 4)
    cnn = SmallCNN()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in cnn.modules())
    pools = [m for m in SmallCNN(image_size=8).modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 1  # 8 -> 4, then the map is too small to halve again
    assert any(isinstance(m, nn.BatchNorm2d) for m in SmallResNet().modules())


def test_small_cnn_per_sample_output_does_not_depend_on_batch():
    # no BatchNorm: a sample's logits in train mode are the same alone or in a batch,
    # so data-parallel shards compute what one process would
    torch.manual_seed(0)
    cnn = SmallCNN(width=4, image_size=8).train()
    x = torch.rand(6, 1, 8, 8)
    torch.testing.assert_close(cnn(x)[:2], cnn(x[:2]), atol=1e-6, rtol=1e-5)


def test_small_cnn1d_shapes_layout_and_gradients():
    torch.manual_seed(0)
    cnn = SmallCNN1d(num_classes=7, width=4).train()
    x = torch.rand(5, 40, requires_grad=True)
    out = cnn(x)
    assert out.shape == (5, 7)
    torch.testing.assert_close(cnn(x.detach().unsqueeze(1)), out.detach())  # (B, 1, L) == (B, L)
    assert cnn.features(x).shape == (5, 8, 10)  # (B, 2w, L // 4)
    assert cnn.head[-1].in_features == 16  # 2w channels x 2 pooled positions
    out.pow(2).sum().backward()
    assert x.grad is not None and x.grad.shape == (5, 40)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cnn.parameters())
    encoder = nn.Sequential(cnn.features, cnn.pool, nn.Flatten())  # the SmallCNN split
    assert encoder(torch.rand(2, 40)).shape == (2, 16)
    with pytest.raises(ValueError, match=r"expects signals \(B, L\) or \(B, 1, L\)"):
        cnn(torch.rand(2, 3, 40))
    with pytest.raises(ValueError, match="must be positive"):
        SmallCNN1d(width=0)


def test_vision_errors():
    with pytest.raises(ValueError, match=r"expects images \(B, 1, H, W\)"):
        SmallCNN()(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        SmallCNN(norm="layer")
    with pytest.raises(ValueError, match=r"expects images \(B, 3, H, W\)"):
        SmallResNet(in_channels=3)(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="expects 64 features per sample, got 40"):
        MLP(64, 10)(torch.rand(2, 40))
    with pytest.raises(ValueError, match="sizes must be positive"):
        MLP(64, 10, hidden=(0,))


def quadrant_images(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Planted signal: class c in 0..3 brightens one 4x4 quadrant of a noisy 8x8 image."""
    y = torch.arange(n) % 4
    x = torch.rand(n, 1, 8, 8, generator=generator) * 0.5
    for i, c in enumerate(y.tolist()):
        r, s = divmod(c, 2)
        x[i, 0, 4 * r : 4 * r + 4, 4 * s : 4 * s + 4] += 0.5
    return x, y


@pytest.mark.parametrize(
    "build",
    [
        lambda: SmallCNN(width=8, image_size=8),
        lambda: SmallResNet(width=8),
        lambda: MLP(64, 4, hidden=(32,)),
    ],
    ids=["cnn", "resnet", "mlp"],
)
def test_vision_models_learn_a_planted_signal(build):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    (x, y), (x_test, y_test) = quadrant_images(32, g), quadrant_images(64, g)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    model.eval()
    assert (model(x_test).argmax(1) == y_test).float().mean() == 1.0  # held-out images


# ---------------------------------------------------------------- set_attention


def test_set_attention_swaps_every_layer_with_its_index_and_restores():
    calls = []

    def recording(q, k, v, *, key_padding_mask=None, layer_index, scale=1.0):
        calls.append((layer_index, scale))
        return attention_reference(q, k, v, key_padding_mask=key_padding_mask)

    torch.manual_seed(0)
    clf = SequenceClassifier(TransformerEncoder(tiny_config(depth=3)), 2).eval()
    ids = torch.randint(0, VOCAB, (2, 6))
    before = clf(ids)
    with set_attention(clf, recording, scale=0.5) as swapped:
        assert swapped is clf
        torch.testing.assert_close(clf(ids), before, atol=1e-5, rtol=1e-5)
    assert calls == [(0, 0.5), (1, 0.5), (2, 0.5)]
    layers = [block.attn for block in clf.encoder.layers]
    assert all(a.attention is dense_attention and a.options == {} for a in layers)
    clf(ids)
    assert len(calls) == 3  # the dense kernel is back


def test_set_attention_restores_on_exception():
    enc = TransformerEncoder(tiny_config())
    with pytest.raises(RuntimeError, match="boom"):
        with set_attention(enc, "reference"):
            assert enc.layers[0].attn.attention is attention_reference
            raise RuntimeError("boom")
    assert all(block.attn.attention is dense_attention for block in enc.layers)


def test_set_attention_rejects_bad_options_and_names_in_one_line():
    enc = TransformerEncoder(tiny_config())
    for kernel, options, err, match in [
        ("dense", {"window": 3}, TypeError, "does not accept options \\['window'\\]"),
        ("nope", {}, ValueError, "unknown attention 'nope'"),
    ]:
        with pytest.raises(err, match=match) as info:
            with set_attention(enc, kernel, **options):
                pytest.fail("entered the block with a bad kernel or option")
        assert "\n" not in str(info.value)
        assert all(block.attn.attention is dense_attention for block in enc.layers)
    with pytest.raises(ValueError, match="no MultiHeadAttention"):
        with set_attention(nn.Linear(2, 2), "dense"):
            pass


def test_set_attention_keeps_the_encoders_attn_bias_check():
    enc = TransformerEncoder(tiny_config(rel_buckets=8))

    def no_bias(q, k, v, *, key_padding_mask=None):
        return q

    with pytest.raises(TypeError, match="takes no attn_bias"):
        with set_attention(enc, no_bias):
            pass
