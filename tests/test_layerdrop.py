"""takeaways.layerdrop: schedules, gates, the fit() hook, the Post-LN guard, the sublayer form, bad
input, a HF Pre-LN model; the layer-drop recipe."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from takeaways.layerdrop import keep_probs, pld_theta, prepare_layer_drop, scaled_gamma
from takeaways.nn import Block, EncoderConfig, MaskedLM, TransformerEncoder
from takeaways.recipes import get_recipe, resolve_config, run_recipe
from takeaways.train import BatchInfo, fit


class Residual(nn.Module):
    """x + tanh(W x), counting how often forward runs."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.calls = 0

    def forward(self, x, scale=1.0):
        self.calls += 1
        return x + scale * torch.tanh(self.fc(x))


class TupleResidual(Residual):
    def forward(self, x):
        return (super().forward(x), None)


class Widen(nn.Module):
    def forward(self, x):
        return torch.cat([x, x], dim=-1)


def stack(n: int = 4, seed: int = 0) -> nn.ModuleList:
    torch.manual_seed(seed)
    return nn.ModuleList(Residual() for _ in range(n))


def run(layers, x, **kwargs):
    for block in layers:
        x = block(x, **kwargs)
    return x


def test_schedule_values():
    assert pld_theta(0) == 1.0
    assert pld_theta(1000) == pytest.approx(0.5 * math.exp(-1) + 0.5)  # 0.684
    assert pld_theta(5000) == pytest.approx(0.50337, abs=1e-5)
    assert pld_theta(10**7) == pytest.approx(0.5)
    assert pld_theta(10**7, theta_bar=0.3, gamma=0.01) == pytest.approx(0.3)
    assert pld_theta(123, theta_bar=1.0) == 1.0
    assert pld_theta(123, gamma=0.0) == 1.0


def test_keep_probs_endpoints_and_monotone():
    p = keep_probs(0.5, 4)
    assert p == pytest.approx([0.875, 0.75, 0.625, 0.5])
    p = keep_probs(0.3, 12)
    assert p[0] == pytest.approx(1 - 0.7 / 12) and p[-1] == pytest.approx(0.3)
    assert all(a > b for a, b in zip(p, p[1:]))
    assert keep_probs(1.0, 5) == [1.0] * 5


def test_empirical_drop_rate_matches_schedule():
    layers = stack(4)
    pld = prepare_layer_drop(layers, seed=1)
    pld.step(10**7)  # theta -> theta_bar = 0.5
    x = torch.randn(2, 4)
    n = 4000
    with torch.no_grad():
        for _ in range(n):
            run(layers, x)
    assert [d + e for d, e in zip(pld.dropped, pld.executed)] == [n] * 4
    assert pld.run_share == sum(pld.executed) / (4 * n)
    expected = [1 - p for p in keep_probs(0.5, 4)]  # 0.125 .. 0.5
    assert pld.drop_rate == pytest.approx(expected, abs=0.03)
    # a dropped block is never called: its own forward ran exactly `executed` times
    assert [b.calls for b in layers] == pld.executed


def test_dropped_block_returns_input_and_kept_block_is_rescaled():
    layers = stack(1)
    block = layers[0]
    pld = prepare_layer_drop(layers, theta_bar=0.25, seed=0)
    pld.step(10**7)  # p = 0.25 for the only block
    x = torch.randn(3, 4)
    with torch.no_grad():
        ref = x + torch.tanh(block.fc(x))
        outs = [block(x, scale=5.0) for _ in range(200)]  # extra kwargs ignored when dropped
    dropped = [o for o in outs if o is x]
    kept = [o for o in outs if o is not x]
    assert len(dropped) == pld.dropped[0] > 0 and len(kept) == pld.executed[0] > 0
    torch.testing.assert_close(kept[0], x + 5.0 * (ref - x) / 0.25)

    no_scale = prepare_layer_drop(stack(1), theta_bar=0.25, rescale=False)
    no_scale.step(10**7)
    b = no_scale.layers[0]
    outs = [b(x) for _ in range(50)]
    with torch.no_grad():
        torch.testing.assert_close(next(o for o in outs if o is not x), x + torch.tanh(b.fc(x)))


def test_eval_runs_every_block_unscaled():
    layers = stack(4)
    with torch.no_grad():
        x = torch.randn(2, 4)
        plain = run(layers, x)
        pld = prepare_layer_drop(layers, theta_bar=0.1)
        pld.step(10**7)
        layers.eval()
        for _ in range(20):
            assert torch.equal(run(layers, x), plain)
    assert [b.calls for b in layers] == [21] * 4
    assert pld.executed == [0] * 4 and pld.dropped == [0] * 4  # eval calls are not counted


def test_theta_bar_one_equals_plain_model_and_remove_restores():
    layers = stack(4)
    x = torch.randn(2, 4)
    with torch.no_grad():
        plain = run(layers, x)
        pld = prepare_layer_drop(layers, theta_bar=1.0)
        pld.step(500)
        assert pld.keep_probs == [1.0] * 4
        assert torch.equal(run(layers, x), plain)
        pld.theta_bar = 0.5  # now drop for real
        pld.step(10**7)
        for _ in range(10):
            run(layers, x)
        assert sum(pld.dropped) > 0
        pld.remove()
        pld.remove()  # idempotent
        assert "forward" not in layers[0].__dict__
        assert torch.equal(run(layers, x), plain)
    assert sum(b.calls for b in layers) == 4 * 2 + sum(pld.executed)  # plain and restored runs


def test_same_seed_same_gates_and_deepcopy():
    def gates(seed):
        layers = stack(4)
        pld = prepare_layer_drop(layers, seed=seed)
        pld.step(10**7)
        x = torch.randn(1, 4)
        seq = []
        for _ in range(30):
            run(layers, x)
            seq.append(tuple(pld.dropped))
        return seq

    assert gates(3) == gates(3)
    assert gates(3) != gates(4)

    layers = stack(2)
    pld = prepare_layer_drop(layers, theta_bar=0.5)
    pld.step(10**7)
    twin = copy.deepcopy(layers)
    x = torch.randn(1, 4)
    for _ in range(20):
        run(twin, x)
    assert [b.calls for b in layers] == [0, 0] and sum(b.calls for b in twin) > 0
    assert pld.executed == [0, 0] and pld.dropped == [0, 0]  # the copy counts on its own handle


def test_tuple_output_blocks():
    torch.manual_seed(0)
    layers = nn.ModuleList(TupleResidual() for _ in range(3))
    pld = prepare_layer_drop(layers, theta_bar=0.2)
    pld.step(10**7)
    x = torch.randn(2, 4)
    for _ in range(30):
        h = x
        for block in layers:
            out = block(h)
            assert isinstance(out, tuple) and len(out) == 2 and out[0].shape == x.shape
            h = out[0]
    assert sum(pld.dropped) > 0 and sum(pld.executed) > 0


def test_scaled_gamma_saturates_at_the_papers_fraction():
    assert scaled_gamma(200_000) == pytest.approx(0.001)
    assert scaled_gamma(1000) == pytest.approx(0.2)
    assert scaled_gamma(6) == 0.001 * 200_000 / 6  # bit for bit: published results use it
    # theta at 2.5% of the run is the same as the paper's at 5K of 200K steps
    paper = pld_theta(5000, theta_bar=0.5, gamma=0.001)
    ours = pld_theta(25, theta_bar=0.5, gamma=scaled_gamma(1000))
    assert ours == pytest.approx(paper) and paper == pytest.approx(0.5034, abs=1e-4)
    # another fraction: saturated (e^-5 of the way left) after 10% of 400 steps
    assert pld_theta(40, gamma=scaled_gamma(400, fraction=0.1)) == pytest.approx(
        0.5 + 0.5 * math.exp(-5)
    )
    for bad, match in ((dict(steps=0), "steps"), (dict(steps=10, fraction=0.0), "fraction"),
                       (dict(steps=10, fraction=1.5), "fraction")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            scaled_gamma(**bad)


def test_on_batch_follows_fit_step():
    pld = prepare_layer_drop(stack(3), theta_bar=0.4, gamma=0.01)
    assert pld.theta == 1.0
    info = BatchInfo(torch.zeros(1, 2), torch.zeros(1), torch.zeros(1), 0.0, epoch=0, step=100)
    pld.on_batch(info)
    assert pld.theta == pytest.approx(0.6 * math.exp(-1) + 0.4)
    assert pld.keep_probs == pytest.approx(keep_probs(pld.theta, 3))


def test_transformer_encoder_inside_fit():
    torch.manual_seed(0)
    cfg = EncoderConfig(vocab_size=40, dim=16, depth=4, heads=2, max_len=16, dropout=0.0)
    model = MaskedLM(TransformerEncoder(cfg))
    pld = prepare_layer_drop(model.encoder.layers, theta_bar=0.3, gamma=0.5, seed=0)
    ids = torch.randint(0, 40, (64, 12))
    train = ({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, ids.clone())
    out = fit(model, train, epochs=1, batch_size=8, hooks=[pld], progress=False, max_steps=8)
    assert out.steps == 8
    assert math.isfinite(out.history[-1]["loss"])
    assert pld.theta == pytest.approx(pld_theta(8, theta_bar=0.3, gamma=0.5))
    assert sum(pld.dropped) > 0 and sum(pld.executed) > 0
    assert sum(pld.dropped) + sum(pld.executed) == 8 * 4
    # fit() leaves the model in eval mode: a prepared encoder evaluates every block
    with torch.no_grad():
        a = model(ids[:2])
        pld.remove()
        torch.testing.assert_close(model(ids[:2]), a, rtol=0, atol=0)


def test_bad_input():
    with pytest.raises(ValueError, match="theta_bar"):
        prepare_layer_drop(stack(2), theta_bar=0.0)
    with pytest.raises(ValueError, match="theta_bar"):
        prepare_layer_drop(stack(2), theta_bar=1.5)
    with pytest.raises(ValueError, match="gamma"):
        prepare_layer_drop(stack(2), gamma=-0.1)
    with pytest.raises(ValueError, match="gamma"):
        pld_theta(10, gamma=float("nan"))
    with pytest.raises(ValueError, match="step"):
        pld_theta(-1)
    with pytest.raises(ValueError, match="theta"):
        keep_probs(0.0, 3)
    with pytest.raises(ValueError, match="num_layers"):
        keep_probs(0.5, 0)
    with pytest.raises(TypeError, match="ModuleList"):
        prepare_layer_drop(nn.Sequential(Residual()))
    with pytest.raises(TypeError, match="ModuleList"):
        prepare_layer_drop([Residual()])
    with pytest.raises(ValueError, match="empty"):
        prepare_layer_drop(nn.ModuleList())
    layers = stack(2)
    prepare_layer_drop(layers)
    with pytest.raises(TypeError, match="already"):
        prepare_layer_drop(layers)

    torch.manual_seed(0)
    layers = nn.ModuleList([Residual(), Widen()])
    prepare_layer_drop(layers).step(0)  # theta = 1: every block runs
    with pytest.raises(ValueError, match=r"block 1 is not residual: output \(2, 8\)"):
        run(layers, torch.randn(2, 4))
    with pytest.raises(TypeError, match="first positional"):
        layers[0](x=torch.randn(2, 4))


# ----------------------------------------------------------------------------- Post-LN guard


@pytest.fixture(scope="module")
def hf_layers():
    """One tiny layer of each HF family: name -> (layer, is Pre-LN); imports once (~3 s)."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.bert.modeling_bert import BertLayer
    from transformers.models.distilbert.modeling_distilbert import TransformerBlock
    from transformers.models.electra.modeling_electra import ElectraLayer
    from transformers.models.mpnet.modeling_mpnet import MPNetLayer
    from transformers.models.roberta.modeling_roberta import RobertaLayer
    from transformers.models.roberta_prelayernorm.modeling_roberta_prelayernorm import (
        RobertaPreLayerNormLayer,
    )

    sizes = dict(vocab_size=10, hidden_size=8, num_attention_heads=2, intermediate_size=16,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    return {
        "BertLayer": (BertLayer(transformers.BertConfig(**sizes)), False),
        "RobertaLayer": (RobertaLayer(transformers.RobertaConfig(**sizes)), False),
        "ElectraLayer": (ElectraLayer(transformers.ElectraConfig(**sizes)), False),
        "MPNetLayer": (MPNetLayer(transformers.MPNetConfig(**sizes)), False),
        "TransformerBlock": (
            TransformerBlock(transformers.DistilBertConfig(dim=8, n_heads=2, hidden_dim=16)),
            False,
        ),
        "RobertaPreLayerNormLayer": (
            RobertaPreLayerNormLayer(transformers.RobertaPreLayerNormConfig(**sizes)),
            True,
        ),
    }


def test_post_ln_blocks_are_refused_with_a_one_line_fix(hf_layers):
    post = [
        TransformerEncoder(
            EncoderConfig(vocab_size=8, dim=8, depth=2, heads=2, norm="post")
        ).layers,
        nn.ModuleList([nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)]),
        nn.ModuleList([nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)]),
    ] + [nn.ModuleList([layer]) for layer, pre in hf_layers.values() if not pre]
    transformers = pytest.importorskip("transformers")
    bert = transformers.BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=16)  # fmt: skip
    post.append(transformers.BertModel(bert).encoder.layer)  # a whole model's, as users pass it
    for layers in post:
        with pytest.raises(ValueError, match="block 0 is Post-LN") as err:
            prepare_layer_drop(layers)
        msg = str(err.value)
        assert "\n" not in msg and "allow_post_ln=True" in msg and "RobertaPreLayerNorm" in msg
        assert "forward" not in layers[0].__dict__  # nothing attached
        pld = prepare_layer_drop(layers, allow_post_ln=True)  # the opt-out gates them anyway
        assert "forward" in layers[0].__dict__
        pld.remove()


def test_pre_ln_blocks_are_accepted_and_gated(hf_layers):
    layer, pre = hf_layers["RobertaPreLayerNormLayer"]
    assert pre
    torch.manual_seed(0)
    pre_ln = [
        nn.ModuleList([layer]),
        nn.ModuleList(
            [nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True)]
        ),
        TransformerEncoder(EncoderConfig(vocab_size=8, dim=8, depth=1, heads=2)).layers,
    ]
    x = torch.randn(2, 5, 8)
    for layers in pre_ln:
        pld = prepare_layer_drop(layers, theta_bar=0.2)
        pld.step(10**7)
        outs = [layers[0](x) for _ in range(40)]
        assert pld.dropped[0] > 0 and pld.executed[0] > 0
        assert sum(o is x for o in outs) == pld.dropped[0]
        pld.remove()


# ----------------------------------------------------------------------------- sublayer form


def _ln(v: list[float], eps: float = 1e-5) -> list[float]:
    mean = sum(v) / len(v)
    var = sum((a - mean) ** 2 for a in v) / len(v)
    return [(a - mean) / math.sqrt(var + eps) for a in v]


def _gelu(a: float) -> float:
    return 0.5 * a * (1.0 + math.erf(a / math.sqrt(2.0)))


def _add(u: list[float], v: list[float], scale: float = 1.0) -> list[float]:
    return [a + scale * b for a, b in zip(u, v)]


SHIFT = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]  # (W v)_i = v_(i+1 mod 3)


def _fixed_blocks(depth: int) -> nn.ModuleList:
    """Pre-LN Blocks of width 3, one head: attention on one token is its value, ``SHIFT v``.

    ``attn(u) = SHIFT u`` and ``mlp(u) = gelu(u)`` (every other weight the identity or zero,
    LayerNorms plain), so a block is ``h = x + SHIFT ln(x)``, then ``h + gelu(ln(h))``.
    """
    cfg = EncoderConfig(vocab_size=8, dim=3, depth=depth, heads=1, ffn_ratio=1, dropout=0.0)
    layers = nn.ModuleList(Block(cfg) for _ in range(depth))
    eye = torch.eye(3)
    with torch.no_grad():
        for b in layers:
            for lin in (b.attn.qkv, b.attn.proj, b.mlp.fc, b.mlp.proj):
                lin.bias.zero_()
            b.attn.qkv.weight.copy_(torch.cat([0 * eye, 0 * eye, torch.tensor(SHIFT)]))
            for lin in (b.attn.proj, b.mlp.fc, b.mlp.proj):
                lin.weight.copy_(eye)
    return layers


def _by_hand(x: list[float], p: float, form: str) -> list[float]:
    a = [_ln(x)[1], _ln(x)[2], _ln(x)[0]]  # SHIFT ln(x): the attention branch
    if form == "sublayer":  # each branch scaled before its add; the FFN sees x + a / p
        h = _add(x, a, 1 / p)
        return _add(h, [_gelu(u) for u in _ln(h)], 1 / p)
    h = _add(x, a)  # block form: the block runs as is, then block(x) - x is scaled
    y = _add(h, [_gelu(u) for u in _ln(h)])
    return _add(x, _add(y, x, -1.0), 1 / p)


def test_sublayer_form_matches_a_hand_computation():
    x_list = [1.0, 2.0, 6.0]
    x = torch.tensor([[x_list]])  # (B=1, N=1, C=3)
    plain = _fixed_blocks(1)
    with torch.no_grad():
        torch.testing.assert_close(plain[0](x)[0, 0], torch.tensor(_by_hand(x_list, 1.0, "block")))
    # the two forms differ only in what the FFN sees (x + a / p or x + a); here that matters
    assert _by_hand(x_list, 0.5, "sublayer") == pytest.approx([-0.1511, 6.1468, 4.9296], abs=1e-4)
    assert _by_hand(x_list, 0.5, "block") == pytest.approx([-0.1736, 5.0192, 6.0669], abs=1e-4)

    for form in ("sublayer", "block"):
        layers = _fixed_blocks(2)
        pld = prepare_layer_drop(layers, theta_bar=0.5, form=form, seed=0)
        pld.step(10**7)  # keep_probs [0.75, 0.5]
        with torch.no_grad():
            first = [layers[0](x) for _ in range(60)]
            second = [layers[1](x) for _ in range(200)]
        kept0 = [o for o in first if o is not x]
        kept1 = [o for o in second if o is not x]
        for o in kept0:  # kept: both sublayers rescaled by 1 / p_1
            torch.testing.assert_close(o[0, 0], torch.tensor(_by_hand(x_list, 0.75, form)))
        for o in kept1:
            torch.testing.assert_close(o[0, 0], torch.tensor(_by_hand(x_list, 0.5, form)))
        dropped1 = len(second) - len(kept1)  # dropped: the input itself, no computation
        if form == "sublayer":  # DeepSpeed's draw: block l with p_(l-1), the first never
            assert len(kept0) == 60 and pld.dropped[0] == 0
            assert 0.15 < dropped1 / 200 < 0.35  # 1 - p_1 = 0.25
        else:
            assert pld.dropped[0] > 0
            assert 0.4 < dropped1 / 200 < 0.6  # 1 - p_2 = 0.5
        layers.eval()  # evaluation: every block unscaled
        with torch.no_grad():
            torch.testing.assert_close(
                layers[1](x)[0, 0], torch.tensor(_by_hand(x_list, 1.0, form))
            )
        pld.remove()
        assert all(not m._forward_hooks for m in layers.modules())


def test_sublayer_form_on_torch_and_hf_pre_ln_layers(hf_layers):
    layer, _ = hf_layers["RobertaPreLayerNormLayer"]
    torch.manual_seed(0)
    tl = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True)
    x = torch.randn(2, 5, 8)
    p = 0.4  # one block: never dropped, scaled by 1 / p_1 = 1 / theta

    def by_parts_torch(x):
        n = tl.norm1(x)
        h = x + tl.self_attn(n, n, n, need_weights=False)[0] / p
        return h + tl.linear2(tl.activation(tl.linear1(tl.norm2(h)))) / p

    def by_parts_hf(x):  # HF's sublayers add the residual themselves: take it off again
        h = x + (layer.attention(x)[0] - x) / p
        return h + (layer.output(layer.intermediate(h), h) - h) / p

    for block, by_parts in ((tl, by_parts_torch), (layer, by_parts_hf)):
        layers = nn.ModuleList([block])
        with torch.no_grad():
            expected, plain = by_parts(x), block(x)
        pld = prepare_layer_drop(layers, theta_bar=p, form="sublayer")
        pld.step(10**7)
        with torch.no_grad():
            for _ in range(3):
                torch.testing.assert_close(block(x), expected)
            pld.remove()
            torch.testing.assert_close(block(x), plain)
        assert not (expected - plain).abs().max() < 1e-3  # the scaling did something


class TwoBranch(nn.Module):
    """x + a(x), then + b(h): two residual branches by name."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        h = x + self.a(x)
        return h + self.b(h)


def test_sublayer_form_branches_deepcopy_and_bad_input():
    torch.manual_seed(0)
    layers = nn.ModuleList(TwoBranch() for _ in range(2))
    x = torch.randn(2, 4)
    pld = prepare_layer_drop(layers, theta_bar=0.5, form="sublayer", branches=("a", "b"))
    pld.step(10**7)
    with torch.no_grad():
        b = layers[0]
        h = x + b.a(x) / 0.75  # hooks are idle outside a gated call
        torch.testing.assert_close(b(x), h + b.b(h) / 0.75)
        twin = copy.deepcopy(layers)  # the copy's hooks follow the copy's gates
        tb = twin[0]
        torch.testing.assert_close(tb(x), h + b.b(h) / 0.75)
        twin.eval()
        torch.testing.assert_close(tb(x), x + b.a(x) + b.b(x + b.a(x)))
    assert pld.executed == [1, 0]

    with pytest.raises(ValueError, match="unknown form 'layer'; known: block, sublayer"):
        prepare_layer_drop(stack(2), form="layer")
    with pytest.raises(ValueError, match="only used with form='sublayer'"):
        prepare_layer_drop(stack(2), branches=("fc",))
    with pytest.raises(ValueError, match=r"needs the residual branches of block 0 \(Residual\)"):
        prepare_layer_drop(stack(2), form="sublayer")
    with pytest.raises(ValueError, match="has no submodule 'c'"):
        prepare_layer_drop(nn.ModuleList([TwoBranch()]), form="sublayer", branches=("a", "c"))
    layers = stack(1)
    prepare_layer_drop(layers, form="sublayer", branches=("fc",))  # a tuple-less Linear: fine
    assert "forward" in layers[0].__dict__


# ----------------------------------------------------------------------------- the recipe


def test_recipe_config_errors_are_one_line():
    recipe = get_recipe("layer-drop")
    full = resolve_config(recipe, "full")
    assert full.gamma_eff == pytest.approx(0.2 * 1000 / 1800)  # theta floor at 2.5% of 1,800 steps
    assert (full.ft_seeds, full.ft_train) == (5, 4000)  # a +1-3 point gain needs both
    assert resolve_config(recipe, "demo", ["gamma=0.05"]).gamma_eff == 0.05
    for bad, match in (
        ("theta_bar=1.5", "theta_bar must be in"),
        ("theta_bar=0", "theta_bar must be in"),
        ("gamma=-1", "gamma must be >= 0"),
        ("heads=3", "not divisible"),
        ("ft_task=wiki", "ft_task must be reviews or tweets"),
        ("pld_lr_factor=0", "pld_lr_factor"),
    ):
        with pytest.raises(ValueError, match=match) as err:
            resolve_config(recipe, "demo", [bad])
        assert "\n" not in str(err.value)


def test_recipe_smoke_numbers_and_judge(tmp_path):
    result, _ = run_recipe("layer-drop", preset="smoke", out_dir=tmp_path)
    assert [t.name for t in result.targets] == [
        "PLD time per sample: baseline / PLD",
        "time to the baseline's final val loss: baseline / PLD at the same lr",
        "time to the baseline's final val loss: baseline / PLD at 2x lr",
        "tweets accuracy, PLD minus baseline (points; within 1)",
        "tweets accuracy, PLD at 2x lr minus baseline (points; within 1)",
    ]
    m = result.metrics
    for key in ("baseline samples/s", "PLD samples/s", "PLD, higher lr samples/s",
                "time per sample, baseline / PLD", "baseline final val loss", "unigram val loss"):  # fmt: skip
        assert math.isfinite(m[key]) and m[key] > 0, key
    assert m["learning rates"] == {"baseline": 2e-3, "PLD": 2e-3, "PLD, higher lr": 4e-3}
    acc = m["downstream accuracy per seed"]
    assert set(acc) == {"baseline", "PLD", "PLD, higher lr", "scratch"}
    assert all(len(v) == 1 and 0 <= v[0] <= 1 for v in acc.values())
    assert 0.33 <= m["downstream majority-class accuracy"] <= 1.0  # three tweet classes
    assert result.targets[0].measured == pytest.approx(m["time per sample, baseline / PLD"])
    # smoke: 6 steps, 4 layers, theta 1 -> 0.5; the top layer is dropped, the curves line up
    assert m["gamma (scaled)"] == pytest.approx(0.001 * 200_000 / 6)
    assert 0.5 < m["PLD share of layer calls run"] < 1.0
    c = m["curves"]
    assert (
        c["baseline"]["steps"] == c["PLD"]["steps"] == c["PLD, higher lr"]["steps"] == [0, 2, 4, 6]
    )
    assert c["baseline"]["val_loss"][0] == pytest.approx(c["PLD"]["val_loss"][0])  # same start
    assert m["shared prefix"]["steps"] == 2 and m["shared prefix"]["val loss"] == pytest.approx(
        c["PLD"]["val_loss"][0]
    )
    assert c["PLD"]["val_loss"][1] != pytest.approx(c["PLD, higher lr"]["val_loss"][1])
    assert all(b > a for a, b in zip(c["PLD"]["seconds"], c["PLD"]["seconds"][1:]))
    bf16 = m["bf16"]
    assert bf16["fp32 seconds per step"] > 0 and bf16["bf16 seconds per step"] > 0
    assert abs(bf16["val loss difference (bf16 - fp32)"]) < 0.05

    # the judge: smoke runs sit on the plateau and at the majority class, so checks fail ...
    judge, cfg = get_recipe("layer-drop").judge, resolve_config(get_recipe("layer-drop"), "smoke")
    assert not all(c.passed for c in result.checks)
    # ... and pass once both runs are 0.5 nats under the unigram loss, every fine-tune is a
    # point over the majority class and the pre-trained baseline beats scratch on every seed
    major, uni = m["downstream majority-class accuracy"], m["unigram val loss"]
    per_seed = {"baseline": [major + 0.10, major + 0.12, major + 0.11],
                "PLD": [major + 0.095, major + 0.118, major + 0.107],
                "PLD, higher lr": [major + 0.05, major + 0.06, major + 0.04],
                "scratch": [major + 0.01, major + 0.02, major + 0.00]}  # fmt: skip
    good = dict(m, **{"baseline final val loss": uni - 0.9, "PLD final val loss": uni - 0.6,
                      "downstream accuracy": {a: sum(v) / 3 for a, v in per_seed.items()},
                      "downstream accuracy per seed": per_seed,
                      "time to the baseline's final val loss, baseline / PLD": 1.1,
                      "time to the baseline's final val loss, baseline / PLD, higher lr": None})  # fmt: skip
    j = judge(good, cfg)
    assert all(c.passed for c in j.checks), j.checks
    assert [t.met for t in j.targets][1:] == [False, False, True, False]  # high lr: -5.7 points
    assert j.targets[3].interval[0] > -1 and j.targets[4].interval[1] < -1
    assert j.finding and j.advice.startswith("Do not expect to reach")  # ratio < 1.5
    assert "never reached it" in j.finding
    faster = dict(good, **{"time to the baseline's final val loss, baseline / PLD, higher lr": 2.0})
    assert judge(faster, cfg).advice.startswith("Use it when")
    edge = dict(good, **{"PLD final val loss": uni - 0.4})
    failed = [c.name for c in judge(edge, cfg).checks if not c.passed]
    assert failed == ["PLD pre-training left the unigram plateau (nats below the unigram loss)"]
    no_gain = dict(
        good, **{"downstream accuracy per seed": dict(per_seed, scratch=per_seed["baseline"])}
    )
    failed = [c.name for c in judge(no_gain, cfg).checks if not c.passed]
    assert len(failed) == 1 and failed[0].startswith("pre-training helped downstream")


# ----------------------------------------------------------------------------- a HF Pre-LN model


def _hf_classifier(**overrides):
    """A tiny random ``RobertaPreLayerNormForSequenceClassification``: 3 layers of width 16."""
    transformers = pytest.importorskip("transformers")
    sizes = dict(vocab_size=24, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=16, num_labels=2,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    torch.manual_seed(0)
    cfg = transformers.RobertaPreLayerNormConfig(**{**sizes, **overrides})
    return transformers.RobertaPreLayerNormForSequenceClassification(cfg)


def _hf_batch(n: int = 3, length: int = 7, seed: int = 0):
    """Token ids in [3, 24) right-padded with HF's pad id 1, the first token's parity as label."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 24, (n, length), generator=g)
    mask = (torch.arange(length) < torch.randint(4, length + 1, (n, 1), generator=g)).long()
    return ids.masked_fill(mask == 0, 1), mask, ids[:, 0] % 2


def _plant_gates(pld, keep: list[bool]) -> None:
    """Reseed ``pld``'s gates so that the next forward keeps exactly the blocks ``keep`` says.

    Replays the gate's own draw: one uniform per block, kept below ``p_l`` (block form) or
    ``p_(l-1)`` (sublayer form, ``p_0 = 1``).
    """
    p_draw = pld.keep_probs if pld.form == "block" else [1.0, *pld.keep_probs[:-1]]
    for seed in range(1000):
        g = torch.Generator().manual_seed(seed)
        if [torch.rand((), generator=g).item() < p for p in p_draw] == keep:
            pld.generator.manual_seed(seed)
            return
    raise AssertionError(f"no seed below 1000 gives {keep}")


def _hf_layer_by_hand(layer, x, mask, p: float, form: str):
    """A kept ``RobertaPreLayerNormLayer`` from its own submodules (which add the residual)."""
    if form == "block":  # the layer as is, then its residual branch y - x scaled by 1 / p
        a = layer.attention(x, mask)[0]
        return x + (layer.output(layer.intermediate(a), a) - x) / p
    h = x + (layer.attention(x, mask)[0] - x) / p  # each sublayer's branch scaled by 1 / p
    return h + (layer.output(layer.intermediate(h), h) - h) / p


@pytest.mark.parametrize("form", ["block", "sublayer"])
def test_hf_pre_ln_classifier_drops_and_rescales_its_layers(form):
    model = _hf_classifier(initializer_range=0.5)  # branches large enough for 1/p to show
    ids, mask, _ = _hf_batch()
    model.eval()
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask).logits
    layers = model.roberta_prelayernorm.encoder.layer
    pld = prepare_layer_drop(layers, theta_bar=0.3, form=form)
    pld.step(10**7)  # keep_probs [0.767, 0.533, 0.3]
    with torch.no_grad():  # evaluation: every layer, unscaled, bit for bit
        for _ in range(3):
            assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, plain)
    assert pld.executed == pld.dropped == [0, 0, 0]

    seen = []  # (positional args, output) of every layer call
    for layer in layers:
        layer.register_forward_hook(lambda m, args, out: seen.append((args, out)))
    _plant_gates(pld, [True, False, True])
    model.train()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert pld.executed == [1, 0, 1] and pld.dropped == [0, 1, 0]
    close = dict(rtol=1e-4, atol=1e-4)  # by hand, HF's residual is added and taken off again
    x = model.roberta_prelayernorm.embeddings(input_ids=ids)
    for i, (layer, (args, y)) in enumerate(zip(layers, seen, strict=True)):
        y = y[0] if isinstance(y, tuple) else y  # older transformers return (hidden, ...)
        torch.testing.assert_close(args[0], x, **close)  # the hidden state so far, by hand
        if i == 1:
            assert y is args[0]  # dropped: its input, no computation
            continue
        x = _hf_layer_by_hand(layer, x, args[1], pld.keep_probs[i], form)
        torch.testing.assert_close(y, x, **close)
    logits = model.classifier(model.roberta_prelayernorm.LayerNorm(x))
    torch.testing.assert_close(out.logits, logits, **close)
    assert torch.equal(out.hidden_states[2], out.hidden_states[1])  # layer 1 returned its input
    assert not torch.allclose(out.logits, plain, atol=0.1)  # dropping and scaling did something
    pld.remove()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, plain)


@pytest.mark.parametrize("form", ["block", "sublayer"])
@pytest.mark.parametrize("reentrant", [False, True])
def test_hf_gradient_checkpointing_gives_the_same_gradients(form, reentrant):
    """HF re-runs a checkpointed layer in backward: the sublayer form scales that run too."""
    ids, mask, _ = _hf_batch()

    def gradients(checkpointing: bool):
        model = _hf_classifier(initializer_range=0.5)  # branches large enough for 1/p to matter
        if checkpointing:
            enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5
            (enable or model.gradient_checkpointing_enable)({"use_reentrant": reentrant})
        layers = model.roberta_prelayernorm.encoder.layer
        funcs = [vars(layer).get("_gradient_checkpointing_func") for layer in layers]
        pld = prepare_layer_drop(layers, theta_bar=0.3, form=form)
        pld.step(10**7)
        with torch.no_grad():  # each layer's first call runs whatever its gate says
            model.eval()(input_ids=ids, attention_mask=mask)
        runs = []
        layers[0].attention.output.dense.register_forward_hook(lambda *_: runs.append(1))
        _plant_gates(pld, [True, False, True])
        model.train()
        model(input_ids=ids, attention_mask=mask).logits.square().sum().backward()
        assert pld.dropped == [0, 1, 0]
        assert len(runs) == 1 + checkpointing  # the re-run in backward happened
        assert [vars(layer).get("_gradient_checkpointing_func") for layer in layers] == funcs
        return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain.keys() == checkpointed.keys()
    assert not any("encoder.layer.1." in n for n in plain)  # the dropped layer got none
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, msg=name)


def test_hf_pre_ln_classifier_inside_fit():
    model = _hf_classifier()
    ids, mask, y = _hf_batch(n=96, length=8)
    steps = 30
    pld = prepare_layer_drop(
        model.roberta_prelayernorm.encoder.layer, theta_bar=0.5, gamma=scaled_gamma(steps)
    )
    losses = []
    out = fit(model, ({"input_ids": ids, "attention_mask": mask}, y), epochs=5, batch_size=16,
              lr=3e-3, hooks=[pld, lambda b: losses.append(b.loss)], progress=False)  # fmt: skip
    assert out.steps == steps
    assert pld.theta == pytest.approx(pld_theta(steps, theta_bar=0.5, gamma=scaled_gamma(steps)))
    assert sum(pld.dropped) > 0 and sum(pld.dropped) + sum(pld.executed) == steps * 3
    assert pld.dropped[0] < pld.dropped[2]  # deeper layers are dropped more
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert first == pytest.approx(math.log(2), abs=0.02) and last < first - 0.1
