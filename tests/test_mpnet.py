"""takeaways.mpnet: collator statistics, two-stream masks, fast vs naive path, HF export."""

from __future__ import annotations

import types

import pytest
import torch

import takeaways.attention  # noqa: F401  registers "bigbird" for the refusal test below
from takeaways.mpnet import (
    HF_LAYOUT,
    MPNetPretrainer,
    from_hf_mpnet,
    hf_position_ids,
    hf_token_ids,
    permute_and_mask,
    to_hf_mpnet,
    two_stream_masks,
)
from takeaways.mpnet.collate import MPNetCollator
from takeaways.mpnet.two_stream import two_stream_block, two_stream_block_reference
from takeaways.nn import EncoderConfig, MaskedLM, TransformerEncoder

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = (PAD, CLS, SEP, MASK)
V = 50


def _ids(B: int, T: int, seed: int = 0, pad_from: tuple[int, ...] = ()) -> torch.Tensor:
    """[CLS] words [SEP] rows; row r is padded from pad_from[r] on."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, V, (B, T), generator=g)
    ids[:, 0] = CLS
    ids[:, -1] = SEP
    for r, n in enumerate(pad_from):
        ids[r, n - 1] = SEP
        ids[r, n:] = PAD
    return ids


def _collate(ids, objective="mpnet", seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return permute_and_mask(
        ids, objective=objective, vocab_size=V, mask_id=MASK, special_ids=SPECIAL,
        pad_id=PAD, generator=g, **kw,
    )  # fmt: skip


def _encoder(**kw) -> TransformerEncoder:
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, dim=32, depth=2, heads=4, max_len=64, dropout=0.0)
    return TransformerEncoder(EncoderConfig(**(cfg | kw)))


# ----------------------------------------------------------------------------- masks


def test_masks_match_a_hand_written_example():
    # T=6, P=2: columns [n0 n1 n2 n3 | o0 o1 | m0 m1]; 1 = may attend
    content, query = two_stream_masks(6, 2, "mpnet")
    expected_content = [
        [1, 1, 1, 1, 0, 0, 1, 1],  # non-predicted rows: non-predicted + every [M]
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 1, 0, 0, 1],  # original 0: originals <= 0, [M] > 0
        [1, 1, 1, 1, 1, 1, 0, 0],  # original 1: originals <= 1, no [M]
        [1, 1, 1, 1, 0, 0, 1, 1],  # [M] rows: like non-predicted rows
        [1, 1, 1, 1, 0, 0, 1, 1],
    ]
    expected_query = [
        [1, 1, 1, 1, 0, 0, 1, 1],  # query 0: no originals, [M] >= 0
        [1, 1, 1, 1, 1, 0, 0, 1],  # query 1: original 0, [M] >= 1
    ]
    assert content.int().tolist() == expected_content
    assert query.int().tolist() == expected_query

    content, query = two_stream_masks(6, 2, "plm")
    assert content.int().tolist() == [
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1],
    ]
    assert query.int().tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]]

    content, query = two_stream_masks(6, 2, "mlm")
    assert content.all() and content.shape == (6, 6) and query is None


# ----------------------------------------------------------------------------- collator


def test_collator_statistics_and_inverse_permutation():
    ids = _ids(400, 40, pad_from=(30,) * 100)
    inputs, targets = _collate(ids, "mpnet")
    B, T, P = 400, 40, round(40 * 0.15)
    assert targets.shape == (B, P) and (inputs["pred_size"] == P).all()
    assert inputs["input_ids"].shape == (B, T + 2 * P)
    # never a special token or padding as a target; full rows predict all P slots
    y = targets[targets != -100]
    assert not torch.isin(y, torch.tensor(SPECIAL)).any()
    assert (targets[100:] != -100).all()
    # the inverse permutation restores the input
    perm, permuted = inputs["positions"][:, :T], inputs["input_ids"][:, :T]
    assert (torch.sort(perm, 1).values == torch.arange(T)).all()
    assert torch.equal(torch.empty_like(ids).scatter_(1, perm, permuted), ids)
    # targets are the original tokens at the predicted positions; [M] copies carry them
    assert torch.equal(targets, ids.gather(1, perm[:, T - P :]))
    assert torch.equal(inputs["positions"][:, T : T + P], perm[:, T - P :])
    assert torch.equal(inputs["input_ids"][:, T : T + P], inputs["input_ids"][:, T + P :])
    # 80/10/10
    m = inputs["input_ids"][:, T : T + P]
    is_mask = (m == MASK).float().mean().item()
    kept = (m == targets).float().mean().item()  # the 10% kept (+ random hits ~0.1/46)
    assert abs(is_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.02
    assert abs(1 - is_mask - kept - 0.1) < 0.02
    # permutations are uniform: each original position is predicted about P/T of the time
    freq = torch.bincount(perm[100:, T - P :].flatten(), minlength=T)[1 : T - 1].float()
    assert (freq / 300).sub(P / (T - 2)).abs().max() < 0.08


def test_short_rows_fill_the_tail_with_ignored_slots():
    ids = _ids(2, 20, pad_from=(3, 20))  # row 0: [CLS] w [SEP] + padding, only one word
    inputs, targets = _collate(ids, "mpnet")
    assert (targets[0] != -100).sum() == 1 and (targets[1] != -100).all()
    # the padding in the tail is padding in attention_mask too, [M] copies included
    T = 20
    att = inputs["attention_mask"]
    assert att[0, T:].tolist() == (targets[0] != -100).long().repeat(2).tolist()


def test_objectives_share_the_permutation_and_corruption():
    ids = _ids(8, 30)
    outs = {o: _collate(ids, o, seed=3) for o in ("mpnet", "plm", "mlm")}
    T, P = 30, round(30 * 0.15)
    assert all(torch.equal(outs["mpnet"][1], outs[o][1]) for o in outs)
    mp, plm, mlm = (outs[o][0]["input_ids"] for o in ("mpnet", "plm", "mlm"))
    assert torch.equal(plm[:, :T], mp[:, :T]) and plm.shape == (8, T + P)
    # mlm: the predicted tail is corrupted in place, in the same positions
    assert torch.equal(mlm[:, : T - P], mp[:, : T - P]) and torch.equal(
        mlm[:, T - P :], mp[:, T : T + P]
    )


def test_plm_query_inputs_are_pure_mask():
    """XLNet's PLM predicts from position alone: no query input is a random token or its own
    target (80/10/10 would leave 10% of them equal to what they predict)."""
    ids = _ids(64, 40, seed=5)
    inputs, targets = _collate(ids, "plm", seed=0)
    T, P = 40, round(40 * 0.15)
    query = inputs["input_ids"][:, T:]
    real = targets != -100
    assert real.sum() > 300 and bool((query[real] == MASK).all())
    mpnet_query = _collate(ids, "mpnet", seed=0)[0]["input_ids"][:, T + P :]
    assert (mpnet_query[real] != MASK).float().mean() > 0.1  # MPNet keeps its 80/10/10


def test_whole_word_permutation_keeps_words_together():
    class Tok:  # ids 4..49; even ids >= 20 are '##' pieces
        vocab_size, mask_id, pad_id, special_ids = V, MASK, PAD, SPECIAL

        @staticmethod
        def id_to_token(i):
            return f"##w{i}" if i >= 20 and i % 2 == 0 else f"w{i}"

    ids = _ids(64, 24, seed=1)
    inputs, _ = MPNetCollator(Tok(), whole_word=True, seed=0)(ids)
    perm = inputs["positions"][:, :24]
    cont = (ids >= 20) & (ids % 2 == 0)
    cont[:, 0] = False
    # every '##' piece after a word token comes right after its predecessor in permuted order
    where = perm.argsort(1)  # original position -> permuted index
    prev_ok = ~torch.isin(ids, torch.tensor(SPECIAL))
    glued = cont[:, 1:] & prev_ok[:, :-1] & prev_ok[:, 1:]
    assert glued.any()
    assert (where[:, 1:] - where[:, :-1])[glued].eq(1).all()


def test_bad_input_errors_are_one_line():
    with pytest.raises(ValueError, match=r"length 3 give .* = 0 predicted .* at least 4 tokens"):
        _collate(_ids(2, 3), "mpnet")
    with pytest.raises(ValueError, match="unknown objective 'bert'; known: mpnet, plm, mlm"):
        _collate(_ids(2, 20), "bert")
    with pytest.raises(ValueError, match="must be 1"):
        MPNetCollator(
            type("T", (), dict(vocab_size=V, mask_id=3, pad_id=0, special_ids=SPECIAL))(),
            mask_prob=0.9,
        )
    inputs, _ = _collate(_ids(2, 8), "mlm")  # T=8, P=1
    inputs["pred_size"] = torch.full((2,), 4)
    with pytest.raises(ValueError, match="do not fit objective 'mpnet'"):
        MPNetPretrainer(_encoder(), objective="mpnet")(**inputs)
    msg = str(pytest.raises(ValueError, _collate, _ids(2, 3)).value)
    assert "\n" not in msg


# ----------------------------------------------------------------------------- model


def test_content_stream_without_predictions_equals_the_plain_encoder():
    for layout in ({}, HF_LAYOUT):
        enc = _encoder(**layout).eval()
        ids = _ids(3, 11, pad_from=(7,))
        att = (ids != PAD).long()
        plain = enc(ids, attention_mask=att)
        T = 11
        allowed = torch.ones(T, T, dtype=torch.bool)[None] & att.bool()[:, None, :]
        pos = torch.arange(T).expand(3, T)
        c = enc.embed_tokens(ids, pos)
        bias = enc.position_bias(pos, pos)
        for fn in (two_stream_block, two_stream_block_reference):
            h = c
            for block in enc.layers:
                h, _ = fn(block, h, None, allowed, None, bias, None)
            real = att.bool()
            assert torch.allclose(enc.norm(h)[real], plain[real], atol=1e-5)


@pytest.mark.parametrize("objective", ["mpnet", "plm", "mlm"])
@pytest.mark.parametrize("layout", ["pre", "hf"])
def test_fast_path_equals_reference_with_odd_lengths_and_padding(objective, layout):
    enc = _encoder(**(HF_LAYOUT if layout == "hf" else {}))
    fast = MPNetPretrainer(enc, objective=objective).eval()
    ref = MPNetPretrainer(enc, objective=objective, reference=True).eval()
    ref.mlm = fast.mlm  # the same weights
    for T, pad in ((13, (9, 13)), (27, (5, 20, 27))):
        inputs, _ = _collate(_ids(len(pad), T, seed=T, pad_from=pad), objective)
        a, b = fast(**inputs), ref(**inputs)
        assert a.shape == (len(pad), round(T * 0.15), V)
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_query_stream_sees_no_predicted_token_it_should_not():
    """Changing predicted original j moves query i only for j < i (mpnet and plm)."""
    enc = _encoder(**HF_LAYOUT)
    for objective in ("mpnet", "plm"):
        model = MPNetPretrainer(enc, objective=objective).eval()
        inputs, _ = _collate(_ids(1, 20, seed=5), objective)
        T, P = 20, 3
        base = model(**inputs)
        for j in range(P):
            changed = {k: v.clone() for k, v in inputs.items()}
            ids = changed["input_ids"]
            ids[0, T - P + j] = 4 if ids[0, T - P + j] != 4 else 5
            delta = (model(**changed) - base).abs().amax(-1)[0]  # (P,)
            for i in range(P):
                assert (delta[i] > 1e-6) == (j < i), (objective, i, j, delta)


@pytest.mark.parametrize("objective", ["mpnet", "plm", "mlm"])
def test_every_objective_gives_a_finite_loss_and_a_gradient_for_every_parameter(objective):
    enc = _encoder(**HF_LAYOUT, dropout=0.1)
    model = MPNetPretrainer(enc, objective=objective).train()
    inputs, targets = _collate(_ids(4, 21, pad_from=(15,)), objective)
    logits = model(**inputs)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_encoder_options_keep_the_default_state_dict_and_refuse_biasless_kernels():
    keys = set(TransformerEncoder(EncoderConfig(vocab_size=V, dim=32, heads=4)).state_dict())
    assert not any("embed_norm" in k or "rel_bias" in k for k in keys)
    assert "norm.weight" in keys
    with pytest.raises(TypeError, match="takes no attn_bias"):
        TransformerEncoder(
            EncoderConfig(vocab_size=V, dim=32, heads=4, rel_buckets=32, attention="bigbird")
        )
    with pytest.raises(ValueError, match="norm must be 'pre' or 'post'"):
        EncoderConfig(vocab_size=V, norm="mid")


# ----------------------------------------------------------------------------- export


def _random_hf_mlm() -> MaskedLM:
    mlm = MaskedLM(_encoder(**HF_LAYOUT, max_len=40)).eval()
    with torch.no_grad():  # random weights everywhere, not just the init's zeros and ones
        for p in mlm.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return mlm


def test_hf_round_trip_gives_the_same_logits():
    pytest.importorskip("transformers")
    mlm = _random_hf_mlm()
    hf = to_hf_mpnet(mlm, pad_id=PAD)
    ids = _ids(3, 33, pad_from=(20, 7))
    att = (ids != PAD).long()
    ours = mlm(ids, attention_mask=att)
    vocab = hf_token_ids(torch.arange(V), pad_id=PAD)  # the exported order -> ours
    theirs = hf(input_ids=hf_token_ids(ids, pad_id=PAD), attention_mask=att).logits[..., vocab]
    real = att.bool()
    assert torch.allclose(ours[real], theirs[real], atol=1e-5)
    explicit = hf(
        input_ids=hf_token_ids(ids), attention_mask=att, position_ids=hf_position_ids(ids)
    ).logits[..., vocab]
    assert torch.allclose(explicit[real], theirs[real], atol=1e-6)
    back = from_hf_mpnet(hf)
    assert torch.allclose(back(ids, attention_mask=att)[real], ours[real], atol=1e-6)
    with pytest.raises(ValueError, match="not in HF MPNet's layout"):
        to_hf_mpnet(MaskedLM(_encoder()))
    with pytest.raises(ValueError, match="pad_id must be a token id"):
        to_hf_mpnet(mlm, pad_id=V)


def test_hf_export_needs_no_position_ids_with_id_1_inside_the_input():
    # HF MPNet fixes padding at id 1 and, without position_ids, numbers only tokens != 1. Our
    # tokenizers' [UNK] is id 1 ([CLS] in this file): the export must give id 1 to [PAD].
    pytest.importorskip("transformers")
    mlm = _random_hf_mlm()
    hf = to_hf_mpnet(mlm)  # pad_id=0, this file's PAD
    ids = _ids(3, 33, pad_from=(20, 7))
    ids[0, [5, 6, 17]] = 1  # rows 0 and 1 are padded from 20 and 7 on
    ids[1, 3] = 1
    ids[2, [12, 31]] = 1
    att = (ids != PAD).long()
    order = torch.arange(V)
    order[[1, PAD]] = torch.tensor([PAD, 1])  # exported id h is our token order[h], and back
    assert hf.config.pad_token_id == 1
    ours = mlm(ids, attention_mask=att)
    theirs = hf(input_ids=order[ids], attention_mask=att).logits[..., order]  # no position_ids
    real = att.bool()
    assert (theirs[real] - ours[real]).abs().max() < 1e-5
    assert torch.equal(hf_token_ids(ids), order[ids])


def test_from_hf_mpnet_keeps_a_hub_models_vocabulary():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.MPNetConfig(
        vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=42, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5,
    )  # fmt: skip
    hf = transformers.MPNetForMaskedLM(cfg).eval()  # padding at 1, as on the hub
    ids = _ids(2, 20, pad_from=(11,))
    ids[ids == PAD] = 1
    ids[:, 0] = 0  # HF's <s>
    att = (ids != 1).long()
    ours = from_hf_mpnet(hf)(ids, attention_mask=att)
    theirs = hf(input_ids=ids, attention_mask=att).logits
    real = att.bool()
    assert (theirs[real] - ours[real]).abs().max() < 1e-5


def test_export_without_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "transformers", None)
    with pytest.raises(ImportError, match=r'pip install "takeaways\[hf\]"'):
        to_hf_mpnet(MaskedLM(_encoder(**HF_LAYOUT)))


def test_recipe_config_errors_are_one_line():
    from takeaways.recipes import get_recipe, resolve_config

    recipe = get_recipe("mpnet")
    assert recipe.takeaway == 4 and resolve_config(recipe, "full").seeds >= 3
    for bad, needle in (("seq_len=3", "rounds to 0 predicted"), ("tasks=imdb", "subset of")):
        with pytest.raises(ValueError, match=needle) as err:
            resolve_config(recipe, "demo", [bad])
        assert "\n" not in str(err.value)


def _metrics(mpnet, mlm, scratch, *, loss=4.0, majority=0.55, plm=None):
    """Recipe metrics, as stored in JSON, for one task and three seeds."""
    arm = lambda xs: {"mean": sum(xs) / len(xs), "per_seed": xs}  # noqa: E731
    arms = ("mlm", "plm", "mpnet", "mlm, equal compute")
    return {
        "accuracy": {
            "reviews": {
                "scratch": arm(scratch),
                "mlm": arm(mlm),
                "plm": arm(plm or mlm),
                "mpnet": arm(mpnet),
                "mlm, equal compute": arm(mlm),
            }
        },  # fmt: skip
        "val_loss": {o: arm([loss] * 3) for o in arms},
        "unigram_val_loss": 4.6,
        "majority_class_accuracy": {"reviews": majority},
    }


def test_recipe_judge_checks_before_the_paired_target():
    from takeaways.recipes import get_recipe, resolve_config

    recipe = get_recipe("mpnet")
    cfg = resolve_config(recipe, "full", ["tasks=reviews"])
    good = _metrics([0.66, 0.68, 0.67], [0.63, 0.64, 0.645], [0.60, 0.61, 0.60])
    j = recipe.judge(good, cfg)
    assert all(c.passed for c in j.checks), j.checks
    assert [t.name.split(" accuracy")[0] for t in j.targets] == [
        "reviews: MPNet minus MLM, equal steps",
        "reviews: MPNet minus PLM, equal steps",
        "reviews: MPNet minus MLM, equal compute",
    ]
    target = j.targets[0]
    assert target.met and target.interval[0] > 0 and target.measured == pytest.approx(9.5 / 3)
    assert all(t.met for t in j.targets) and j.advice.startswith("Use it when")
    # PLM ahead of MPNet: that target is missed, the others still met
    plm_ahead = _metrics([0.66, 0.68, 0.67], [0.63, 0.64, 0.645], [0.60, 0.61, 0.60],
                         plm=[0.67, 0.69, 0.68])  # fmt: skip
    assert [t.met for t in recipe.judge(plm_ahead, cfg).targets] == [True, False, True]
    # a result without the equal-compute arm cannot meet that target
    old_arms = dict(good, accuracy={"reviews": dict(good["accuracy"]["reviews"])})
    del old_arms["accuracy"]["reviews"]["mlm, equal compute"]
    missing = recipe.judge(old_arms, cfg).targets[2]
    assert not missing.met and "rerun the full preset" in missing.rule
    # a mean gain inside the seed spread: the paired interval includes 0, the target is missed
    noisy = _metrics([0.66, 0.62, 0.65], [0.63, 0.64, 0.645], [0.60, 0.61, 0.60])
    assert not recipe.judge(noisy, cfg).targets[0].met
    # pre-training that loses to a random init, or stays on the unigram plateau, fails a check
    failed = lambda m: [c.name for c in recipe.judge(m, cfg).checks if not c.passed]  # noqa: E731
    beat_scratch = (
        "reviews: every pre-trained arm beat a randomly initialized encoder (points, worst arm; "
        "the paired interval must lie above 0)"
    )
    assert failed(_metrics([0.66] * 3, [0.63] * 3, [0.7] * 3)) == [beat_scratch]
    # ahead of scratch on average but inside the seed spread: the interval includes 0
    assert failed(_metrics([0.66] * 3, [0.63, 0.58, 0.66], [0.60, 0.61, 0.60])) == [beat_scratch]
    # 0.4 nats under the unigram loss is not off the plateau (margin 0.5): all four runs fail
    assert len(failed(_metrics([0.66] * 3, [0.63] * 3, [0.6] * 3, loss=4.2))) == 4
    assert failed(_metrics([0.66] * 3, [0.63] * 3, [0.6] * 3, majority=0.625)) == [
        "reviews: every pre-trained arm beat the majority class (points, worst arm)"
    ]
    # a result stored before the majority class was recorded cannot pass that check
    old = dict(good)
    del old["majority_class_accuracy"]
    (missing,) = [c for c in recipe.judge(old, cfg).checks if not c.passed]
    assert "not in this result; rerun the full preset" in missing.detail


def test_static_collations_are_successive_draws_stacked():
    tok = types.SimpleNamespace(
        vocab_size=V, mask_id=MASK, pad_id=PAD, special_ids=SPECIAL, cls_id=CLS, sep_id=SEP
    )
    ids = _ids(4, 12)
    inputs, targets = MPNetCollator(tok, objective="mpnet", seed=3).static(ids, 2)
    collate = MPNetCollator(tok, objective="mpnet", seed=3)
    first, second = collate(ids), collate(ids)
    for k in inputs:
        assert torch.equal(inputs[k], torch.cat([first[0][k], second[0][k]]))
    assert torch.equal(targets, torch.cat([first[1], second[1]]))


def test_the_judged_measure_must_be_one_the_run_scores():
    from takeaways.recipes import get_recipe, resolve_config

    recipe = get_recipe("mpnet")
    with pytest.raises(ValueError, match="judged='probe' needs probe=true"):
        resolve_config(recipe, "smoke", ["judged=probe"])
    with pytest.raises(ValueError, match="judged='finetune' needs finetune=true"):
        resolve_config(recipe, "smoke", ["finetune=false", "probe=true"])
    cfg = resolve_config(recipe, "smoke", ["probe=true", "judged=probe", "finetune=false"])
    assert (cfg.probe, cfg.judged, cfg.finetune) == (True, "probe", False)


def test_a_shared_mlm_prefix_and_the_probe_run_end_to_end_at_smoke():
    """Every objective continues from one MLM prefix per seed; the probe scores every arm."""
    from takeaways.recipes import run_recipe

    sets = ["tasks=tweets", "shared_steps=3", "probe=true", "judged=probe", "finetune=false",
            "equal_compute=false", "seeds=2"]  # fmt: skip
    result, _ = run_recipe("mpnet", preset="smoke", overrides=sets, write=False)
    m = result.metrics
    assert m["shared_mlm_prefix"]["steps"] == 3 and len(m["shared_mlm_prefix"]["val_loss"]) == 2
    assert "accuracy" not in m and set(m["probe_accuracy"]["tweets"]) == {
        "scratch", "mlm", "plm", "mpnet",
    }  # fmt: skip
    assert all(len(v["per_seed"]) == 2 for v in m["probe_accuracy"]["tweets"].values())
    assert any("linear-probe" in c.name for c in result.checks)
