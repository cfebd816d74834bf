"""AutoAugment ops, policy strings and AWS search: per-op numbers, batched == per-image
reference, round-trips, clear errors, and a search that moves towards a planted reward."""

from __future__ import annotations

import math

import pytest
import torch

from takeaways.autoaugment import AUTOAUGMENT_CIFAR10, apply_policy, format_policy, parse_policy
from takeaways.autoaugment import ops as O
from takeaways.autoaugment.policy import apply_ops, apply_ops_reference


def _v(b: int, value: float) -> torch.Tensor:
    return torch.full((b,), float(value))


U = torch.full((4, 2), 0.5)


def _images(b=4, c=1, h=12, w=12, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- single ops


def test_invert_twice_is_identity():
    x = _images()
    torch.testing.assert_close(O.invert(O.invert(x, _v(4, 0), U), _v(4, 0), U), x)


@pytest.mark.parametrize("name", ["rotate", "shear_x", "shear_y", "translate_x", "translate_y"])
def test_geometric_ops_at_zero_are_identity(name):
    x = _images(c=3, h=9, w=13)
    torch.testing.assert_close(O.OPS[name].fn(x, _v(4, 0), U), x, atol=1e-5, rtol=0)


def test_rotate_by_90_degrees_matches_rot90():
    x = _images(h=10, w=10)
    out = O.rotate(x, _v(4, 90), U)
    # a positive angle turns the image the way torch.rot90(k=1) does (counter-clockwise)
    torch.testing.assert_close(out, torch.rot90(x, k=1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_translate_x_shifts_by_whole_pixels():
    x = _images(h=8, w=8)
    out = O.translate_x(x, _v(4, 0.25), U)  # 2 pixels to the right, zeros come in
    torch.testing.assert_close(out[..., 2:], x[..., :-2], atol=1e-5, rtol=0)
    assert out[..., :2].abs().max() < 1e-6


def test_solarize_inverts_at_and_above_the_threshold_only():
    x = torch.tensor([0.0, 100, 127, 128, 200, 255]).div(255).view(1, 1, 1, 6)
    out = O.solarize(x, torch.tensor([0.5]), U[:1]) * 255  # threshold 128
    torch.testing.assert_close(
        out.flatten(), torch.tensor([0.0, 100, 127, 127, 55, 0]), atol=1e-3, rtol=0
    )
    assert torch.equal(O.solarize(x, torch.tensor([0.0]), U[:1]), x)  # threshold 256: nothing


def test_posterize_keeps_the_high_bits():
    x = torch.tensor([0.0, 1, 15, 16, 200, 255]).div(255).view(1, 1, 1, 6)
    out = (O.posterize(x, torch.tensor([4.0]), U[:1]) * 255).round()
    assert out.flatten().tolist() == [0, 0, 0, 16, 192, 240]
    torch.testing.assert_close(O.posterize(x, torch.tensor([0.0]), U[:1]), x, atol=1e-6, rtol=0)


def test_equalize_flattens_the_histogram_of_a_planted_image():
    # 16 grey levels 100..115, four pixels each, in a narrow band: equalize spreads them
    q = torch.arange(100, 116).repeat_interleave(4)[
        torch.randperm(64, generator=torch.Generator().manual_seed(1))
    ]
    x = (q.float() / 255).view(1, 1, 8, 8)
    out = (O.equalize(x, _v(1, 0), U[:1]) * 255).round()
    assert sorted(out.unique().tolist()) == [17.0 * k for k in range(16)]
    counts = torch.histc(out, bins=16, min=0, max=255.001)
    assert counts.tolist() == [4.0] * 16
    flat = torch.full((1, 1, 4, 4), 0.3)
    torch.testing.assert_close(O.equalize(flat, _v(1, 0), U[:1]), flat)


def test_autocontrast_stretches_to_full_range_per_channel():
    x = _images(c=3) * 0.5 + 0.2
    out = O.autocontrast(x, _v(4, 0), U)
    assert torch.allclose(out.amin(dim=(2, 3)), torch.zeros(4, 3), atol=1e-6)
    assert torch.allclose(out.amax(dim=(2, 3)), torch.ones(4, 3), atol=1e-6)


def test_blends_at_zero_are_identity_and_brightness_scales():
    x = _images(c=3) * 0.5
    for name in ("brightness", "contrast", "sharpness", "color"):
        torch.testing.assert_close(O.OPS[name].fn(x, _v(4, 0), U), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(O.brightness(x, _v(4, 0.5), U), x * 1.5)
    gray = _images(c=1)
    assert torch.equal(O.color(gray, _v(4, 0.9), U), gray)  # documented no-op on grayscale
    c = O.contrast(x, _v(4, -1.0), U)  # factor 0: every pixel is the image's mean grey
    assert (c.amax(dim=(1, 2, 3)) - c.amin(dim=(1, 2, 3))).max() < 1e-6


def test_cutout_zeroes_a_square_of_the_asked_side():
    x = torch.ones(2, 1, 10, 10)
    out = O.cutout(x, torch.tensor([0.4, 0.2]), torch.tensor([[0.5, 0.5], [0.0, 0.0]]))
    assert (out[0] == 0).sum() == 16  # 4x4 inside the image
    assert (out[1] == 0).sum() == 1  # 2x2 centred on the corner: one pixel inside


def test_geometric_and_blend_ops_pass_gradients():
    x = _images().requires_grad_()
    (O.rotate(x, _v(4, 10), U).sum() + O.contrast(x, _v(4, 0.3), U).sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- batched vs reference


@pytest.mark.parametrize(("b", "c", "h", "w"), [(1, 1, 8, 8), (7, 1, 28, 28), (5, 3, 9, 13)])
def test_batched_apply_equals_the_per_image_reference(b, c, h, w):
    g = torch.Generator().manual_seed(b + h)
    x = torch.rand(b, c, h, w, generator=g)
    length = 3
    ids = torch.randint(-1, len(O.OP_NAMES), (b, length), generator=g)
    mags = torch.tensor(
        [[O.magnitude(O.OP_NAMES[k], 7) if k >= 0 else 0.0 for k in row] for row in ids.tolist()]
    )
    probs = torch.rand(b, length, generator=g)
    fast = apply_ops(x, ids, mags, probs, torch.Generator().manual_seed(3))
    slow = apply_ops_reference(x, ids, mags, probs, torch.Generator().manual_seed(3))
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)


def test_every_op_batched_equals_reference():
    x = _images(b=6, c=3, h=11, w=11)
    for k in range(len(O.OP_NAMES)):
        ids = torch.full((6, 1), k)
        mags = torch.full(
            (6, 1), O.magnitude(O.OP_NAMES[k], 6) if O.has_level(O.OP_NAMES[k]) else 0.0
        )
        probs = torch.ones(6, 1)
        fast = apply_ops(x, ids, mags, probs, torch.Generator().manual_seed(k))
        slow = apply_ops_reference(x, ids, mags, probs, torch.Generator().manual_seed(k))
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0, msg=O.OP_NAMES[k])


def test_apply_policy_is_seeded_and_respects_probability():
    x = _images(b=64)
    a = apply_policy(x, "invert@0.5", torch.Generator().manual_seed(0))
    b = apply_policy(x, "invert@0.5", torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    flipped = (a - x).abs().amax(dim=(1, 2, 3)) > 1e-6
    assert 20 <= int(flipped.sum()) <= 44  # about half of 64
    assert torch.equal(apply_policy(x, "none"), x)
    assert torch.equal(apply_policy(x, "invert@0"), x)


def test_weights_choose_sub_policies():
    x = torch.full((400, 1, 4, 4), 0.25)
    out = apply_policy(x, "3*invert; brightness:0", torch.Generator().manual_seed(0))
    share = (out[:, 0, 0, 0] > 0.5).float().mean().item()
    assert 0.68 < share < 0.82  # 3 / 4 chose invert


# ----------------------------------------------------------------------------- policy strings


def test_policy_strings_round_trip():
    for text in [
        "rotate:6, invert; 0.5*shear_x:3@0.7, posterize:9",
        AUTOAUGMENT_CIFAR10,
        "none",
        "equalize@0.25",
    ]:
        parsed = parse_policy(text)
        canonical = format_policy(parsed)
        assert parse_policy(canonical) == parsed
        assert format_policy(parse_policy(canonical)) == canonical
    assert format_policy(parse_policy(" Rotate:6 ,INVERT ")) == "rotate:6, invert"


def test_autoaugment_cifar10_policy_has_25_pairs():
    subs = parse_policy(AUTOAUGMENT_CIFAR10)
    assert len(subs) == 25 and all(len(s.ops) == 2 for s in subs)
    assert subs[0].ops[0] == ("invert", 0, 0.1) and subs[0].ops[1] == ("contrast", 6, 0.2)


def test_rand_policy_expands_to_all_pairs():
    subs = parse_policy("rand-n2-m9")
    assert len(subs) == 14 * 14
    assert all(op.level in (0, 9) for s in subs for op in s.ops)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("rotat:5", r"unknown op 'rotat'.*known ops: shear_x"),
        ("rotate:11", r"level '11' in 'rotate:11' is not an integer in 0\.\.10"),
        ("rotate:-1", r"0\.\.10"),
        ("rotate", r"needs a level 0\.\.10"),
        ("invert:3", r"takes no level"),
        ("rotate:5@1.5", r"probability '1.5' in 'rotate:5@1.5' is not a number in \[0, 1\]"),
        ("0*rotate:5", r"weight '0' before '\*'"),
        ("rotate:5,,invert", r"empty op"),
        ("rand-n2-m12", r"M in 0\.\.10"),
    ],
)
def test_bad_policy_strings_name_the_token_and_range(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_policy(text)


def test_bad_images_get_a_clear_error():
    with pytest.raises(ValueError, match=r"expects images \(B, C, H, W\), got shape \(28, 28\)"):
        apply_policy(torch.rand(28, 28), "invert")
    with pytest.raises(TypeError, match="float images"):
        apply_policy(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), "invert")


# ----------------------------------------------------------------------------- Policy and search

from takeaways.autoaugment import Policy, PolicyAugment, aws_search  # noqa: E402
from takeaways.autoaugment.search import SEARCH_SPACE, ppo_update  # noqa: E402


def test_search_space_has_36_ops_and_uniform_start():
    assert len(SEARCH_SPACE) == 36
    p = Policy()
    torch.testing.assert_close(p.joint(), torch.full((36, 36), 1 / 36**2))
    assert abs(p.entropy() - 2 * torch.log(torch.tensor(36.0)).item()) < 1e-4


def test_policy_samples_follow_its_joint_distribution():
    p = Policy()
    with torch.no_grad():
        p.first[5] = 4.0  # op1 = 5 favoured
        p.second[5, 7] = 4.0
        p.second[5] -= 3.0
    j = p.joint()
    pairs = p.sample(20000, torch.Generator().manual_seed(0))
    freq = torch.bincount(pairs[:, 0] * 36 + pairs[:, 1], minlength=36 * 36).float() / 20000
    assert (freq - j.flatten()).abs().max() < 0.015
    torch.testing.assert_close(
        p.log_prob(pairs[:3]), j.flatten()[pairs[:3, 0] * 36 + pairs[:3, 1]].log()
    )


def test_ppo_with_new_over_old_ratio_raises_a_rewarded_pair_and_respects_the_clip():
    p = Policy()
    weight = torch.zeros(36 * 36)
    weight[3 * 36 + 4] = 1.0  # only pair (3, 4) was used, positive advantage
    before = p.joint()[3, 4].item()
    sgd = torch.optim.SGD(p.parameters(), lr=0.3)  # about +15% per step
    steps = ppo_update(p, sgd, weight, clip=0.2, steps=10, kl_stop=10.0)
    after10 = p.joint()[3, 4].item()
    ppo_update(p, sgd, weight, clip=0.2, steps=10, kl_stop=10.0)  # a new "old": moves again
    assert steps == 10 and 1.2 < after10 / before < 1.45  # past 1 + clip the gradient is zero
    assert p.joint()[3, 4].item() > after10
    once = Policy()  # stopping early on KL: one step only with a tiny kl_stop
    assert ppo_update(once, torch.optim.SGD(once.parameters(), lr=20.0), weight, kl_stop=1e-12) == 1
    q = Policy()
    weight[3 * 36 + 4] = -1.0
    ppo_update(q, torch.optim.Adam(q.parameters(), lr=0.5), weight, steps=5, kl_stop=10.0)
    assert q.joint()[3, 4].item() < before


def test_policy_augment_is_identity_in_eval_and_top_lists_pairs():
    x = _images(b=8)
    aug = PolicyAugment("invert")
    assert torch.equal(aug.eval()(x), x)
    torch.testing.assert_close(aug.train()(x), 1 - x)
    subs = Policy().top(3)
    assert len(subs) == 3 and all(len(s.ops) == 2 for s in subs)
    assert parse_policy(format_policy(subs)) == subs
    assert PolicyAugment(Policy()).train()(x).shape == x.shape


def test_aws_search_counts_its_cost_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()

    def model_fn():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))

    kw = dict(
        shared_epochs=2, finetune_epochs=1, iterations=3, trajectories=2, batch_size=32, seed=1
    )
    p1, h1 = aws_search(model_fn, (x, y), (x, y), **kw)
    p2, h2 = aws_search(model_fn, (x, y), (x, y), **kw)
    assert h1.model_epochs == 2 + 3 * 2 * 1 and h1.evaluated_policies == 6
    assert h1.rewards == h2.rewards and torch.equal(p1.joint(), p2.joint())
    assert (
        len(h1.entropy) == 3 and h1.entropy[-1] <= 2 * torch.log(torch.tensor(36.0)).item() + 1e-4
    )
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        aws_search(model_fn, (x, y), (x, y), shared_epochs=1, finetune_epochs=1, iterations=0)


def test_aws_search_learns_to_avoid_a_planted_harmful_op():
    # labels are "bright or dark"; brightness at level 9 (x0.1 or x1.9) destroys them,
    # rotation and shear of a flat image do not
    g = torch.Generator().manual_seed(0)
    v = torch.rand(256, generator=g) * 0.6 + 0.2
    x = (v.view(-1, 1, 1, 1) + 0.02 * torch.randn(256, 1, 4, 4, generator=g)).clamp(0, 1)
    y = (v > 0.5).long()
    space = (("brightness", 9), ("rotate", 3), ("shear_x", 3))

    def model_fn():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))

    policy, hist = aws_search(
        model_fn, (x[:192], y[:192]), (x[192:], y[192:]), shared_epochs=3, finetune_epochs=1,
        iterations=8, trajectories=4, pairs_per_trajectory=1, batch_size=32, lr=0.5,
        finetune_lr=0.5, ppo_lr=0.3, space=space, seed=0,
    )  # fmt: skip
    p1, p2 = policy.probs()
    assert p1[0] < 0.2  # P(op1 = brightness) fell from 1/3 (0.08 at this seed)
    safe = policy.joint()[1:, 1:].sum().item()
    assert safe > 0.55  # mass on pairs without brightness rose from 4/9 (0.61 at this seed)
    assert hist.model_epochs == 3 + 8 * 4 and len(hist.baseline) == 8


def test_search_with_a_menu_uses_only_menu_pairs():
    from takeaways.autoaugment.search import _train

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    menu = torch.tensor([[0, 1], [5, 5]])
    x, y = torch.rand(40, 1, 4, 4), torch.randint(0, 2, (40,))
    drawn = _train(model, opt, x, y, epochs=2, batch_size=16, lr_at=lambda t: 0.1, policy=Policy(),
                   generator=torch.Generator().manual_seed(0), menu=menu)  # fmt: skip
    assert drawn.shape == (80, 2)
    assert set(map(tuple, drawn.tolist())) == {(0, 1), (5, 5)}


def test_grayscale_search_space_drops_color_and_has_no_grayscale_no_op():
    from takeaways.autoaugment import search_space

    gray = search_space(1)
    assert len(search_space(3)) == 36 and search_space(3) == SEARCH_SPACE
    assert len(gray) == 33 and not any(n == "color" for n, _ in gray)
    assert search_space(2) == gray
    # a planted grayscale "digit": a bright bar on a dark background, not spanning 0..1
    x = torch.full((4, 1, 12, 12), 0.1)
    x[:, :, 3:9, 5:7] = 0.8
    x[1:, :, 2, 2:10] = 0.6
    u = torch.full((4, 2), 0.5)
    for name, level in gray:  # every op of the space changes every image
        v = torch.full((4,), float(O.magnitude(name, level)))
        out = O.OPS[name].fn(x, v, u)
        change = (out - x).abs().amax(dim=(1, 2, 3))
        assert (change > 1e-3).all(), (name, level, change.tolist())
    color = O.color(x, torch.full((4,), 0.9), u)
    assert torch.equal(color, x)  # why it is dropped
    assert Policy(gray).joint().shape == (33, 33)
    with pytest.raises(ValueError, match="channels must be >= 1"):
        search_space(0)


def test_random_pairs_like_has_the_same_size_and_weights_and_distinct_random_pairs():
    from takeaways.autoaugment import random_pairs_like, search_space

    space = search_space(1)
    p = Policy(space)
    with torch.no_grad():
        p.first[0] = 3.0  # shear_x:3 first is favoured, and its second ops in falling order,
        p.second[0] = torch.linspace(4.0, -4.0, 33)  # so the top pairs differ in weight
    top = p.top(25)
    a = random_pairs_like(top, space, torch.Generator().manual_seed(0))
    b = random_pairs_like(top, space, torch.Generator().manual_seed(0))
    c = random_pairs_like(top, space, torch.Generator().manual_seed(1))
    assert a == b and a != c  # seeded
    assert len(a) == 25 and all(len(s.ops) == 2 for s in a)
    assert [s.weight for s in a] == [s.weight for s in top]  # the same weights, in order
    assert top[0].weight > 2 * top[-1].weight  # (so that this is a real test of weights)
    pairs = [tuple((o.name, o.level) for o in s.ops) for s in a]
    assert len(set(pairs)) == 25 and all(o in space for pr in pairs for o in pr)
    assert all(o.prob == 1.0 for s in a for o in s.ops)  # both ops always applied, as in AWS
    top_pairs = {tuple((o.name, o.level) for o in s.ops) for s in top}
    assert len(top_pairs & set(pairs)) <= 3  # random, not the top pairs (0 at this seed)
    # uniform over the space: over many draws every op appears as op1 about 1/33 of the time
    firsts = torch.zeros(33)
    for seed in range(200):
        for s in random_pairs_like(top, space, torch.Generator().manual_seed(seed)):
            firsts[space.index((s.ops[0].name, s.ops[0].level))] += 1
    assert firsts.sum() == 5000 and 100 < firsts.min() and firsts.max() < 210  # mean 151.5
    tiny = (("invert", 0),)
    with pytest.raises(ValueError, match="25 pairs asked, the space has only 1"):
        random_pairs_like(top, tiny)
    with pytest.raises(ValueError, match="a policy of pairs"):
        random_pairs_like(parse_policy("invert"), space)


def test_shared_schedule_fine_tune_continues_the_cosine_tail():
    import math

    from takeaways.autoaugment import shared_schedule
    from takeaways.autoaugment.search import cosine_lr

    head, tail = shared_schedule(0.2, 30, 10)
    assert head(0.0) == pytest.approx(0.2)
    # the shared run ends where the tail begins: progress 30 / 40 of one cosine
    at = 0.1 * (1 + math.cos(math.pi * 0.75))  # 0.02929
    assert tail(0.0) == pytest.approx(at) and at == pytest.approx(0.029289, abs=1e-6)
    assert head(1.0) == pytest.approx(at)
    assert tail(0.5) == pytest.approx(0.1 * (1 + math.cos(math.pi * 0.875)))
    assert tail(1.0) == pytest.approx(0.0, abs=1e-12)
    # step by step, shared then fine-tune is the one 40-epoch schedule (5 steps per epoch)
    total = 40 * 5
    one = [cosine_lr(0.2, i / total) for i in range(total)]
    pieces = [head(i / 150) for i in range(150)] + [tail(i / 50) for i in range(50)]
    assert pieces == pytest.approx(one, abs=1e-12)
    # what train.fit's cosine does at the same progress (the final trainings' schedule)
    from takeaways.train import lr_factor

    assert cosine_lr(0.2, 0.75) == pytest.approx(0.2 * lr_factor("cosine", 0.75, 0.76, 0.0))


def test_aws_search_fine_tunes_on_the_tail_and_a_constant_lr_only_when_asked(monkeypatch):
    from takeaways.autoaugment import search as S

    seen = []
    real = S._train

    def spy(model, opt, x, y, *, epochs, lr_at, **kw):
        seen.append((epochs, lr_at(0.0), lr_at(0.5)))
        return real(model, opt, x, y, epochs=epochs, lr_at=lr_at, **kw)

    monkeypatch.setattr(S, "_train", spy)
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()

    def model_fn():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))

    kw = dict(shared_epochs=3, finetune_epochs=1, iterations=1, trajectories=2, lr=0.1)
    aws_search(model_fn, (x, y), (x, y), **kw)
    head, tail = (
        [0.1, 0.1 * 0.5 * (1 + math.cos(math.pi * 0.375))],
        0.1 * 0.5 * (1 + math.cos(math.pi * 0.75)),
    )
    assert seen[0] == (3, pytest.approx(head[0]), pytest.approx(head[1]))
    assert (
        seen[1:]
        == [(1, pytest.approx(tail), pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.875))))]
        * 2
    )
    assert tail == pytest.approx(0.014645, abs=1e-6)
    seen.clear()
    aws_search(model_fn, (x, y), (x, y), finetune_lr=0.01, **kw)
    assert seen[1:] == [(1, 0.01, 0.01)] * 2


def test_recipe_smoke_numbers_and_config_errors(tmp_path):
    from takeaways.recipes import get_recipe, resolve_config, run_recipe

    result, _ = run_recipe("autoaugment", preset="smoke", out_dir=tmp_path)
    m = result.metrics["digits"]
    # per seed: 2 shared epochs + 2 steps x 2 trajectories x 1 fine-tune epoch
    assert m["search_model_epochs"] == 2 + 2 * 2 * 1 and m["evaluated_policies"] == 4
    assert m["search_cost_ratio"] == pytest.approx(6 / (4 * 3))
    assert m["search_space_ops"] == 33 and m["reward_val_images"] == 100
    policies = ("none", "uniform", "same-size-random", "autoaugment-cifar10", "aws")
    assert all(0.0 <= m[f"test_accuracy_{p}"] <= 1.0 for p in policies)
    assert all(len(m[f"test_accuracy_per_seed_{p}"]) == 2 for p in policies)
    # the cost target is measured: search CPU time over evaluated policies x one final training
    assert len(result.targets) == 3 and "measured" in result.targets[2].name
    assert result.targets[2].measured == pytest.approx(
        m["search_cpu_seconds"] / (m["evaluated_policies"] * m["final_training_cpu_seconds"])
    )
    assert m["search_over_one_final_training"] == pytest.approx(
        m["search_cpu_seconds"] / m["final_training_cpu_seconds"]
    )
    assert m["search_cpu_seconds"] > 0 and m["final_training_cpu_seconds"] > 0
    assert [t.interval is not None for t in result.targets] == [True, True, False]  # paired
    assert "same-size-random" in result.targets[1].name
    lo_hi = m["diff_points_aws_minus_none"]
    assert lo_hi[1] <= lo_hi[0] <= lo_hi[2]
    names = [c.name.split(": ")[1][:12] for c in result.checks]
    assert names == ["the no-augme", "per-seed tes", "augmentation", "the reward's"]
    # the smoke validation set is 100 images: one image is a whole point, and the check says so
    assert not result.checks[3].passed and "one image = 1.00 points" in result.checks[3].detail
    assert [p["kind"] for p in result.plots] == ["bar", "bar", "line"]
    assert result.plots[0]["series"][0]["y"][4] == m["test_accuracy_aws"]
    diffs = result.plots[1]["series"][0]  # every paired difference with its interval's half-width
    mean, lo, hi = m["diff_points_aws_minus_same-size-random"]
    assert diffs["y"][1] == mean and diffs["err"][1] == pytest.approx(hi - mean)
    assert len(diffs["y"]) == 5 and diffs["err"][1] == pytest.approx(mean - lo)
    assert len(result.plots[2]["series"][0]["y"]) == 2  # one reward per controller step
    assert "no-op" in result.notes
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        resolve_config(get_recipe("autoaugment"), "smoke", ["datasets=cifar"])
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        resolve_config(get_recipe("autoaugment"), "smoke", ["iterations=0"])
    with pytest.raises(ValueError, match="finetune_epochs .3. must be below search_epochs"):
        resolve_config(get_recipe("autoaugment"), "smoke", ["finetune_epochs=3"])


def test_judge_checks_can_fail_and_targets_need_the_interval():
    from takeaways.recipes import get_recipe, resolve_config

    recipe = get_recipe("autoaugment")
    cfg = resolve_config(recipe, "full", ["seeds=3"])
    acc = {"none": [0.90, 0.91, 0.92], "uniform": [0.90, 0.92, 0.91],
           "same-size-random": [0.93, 0.92, 0.94], "autoaugment-cifar10": [0.91, 0.91, 0.92],
           "aws": [0.95, 0.94, 0.96]}  # fmt: skip
    m = {f"test_accuracy_per_seed_{p}": v for p, v in acc.items()}
    m.update({f"test_accuracy_{p}": sum(v) / 3 for p, v in acc.items()})
    m.update({f"diff_points_aws_minus_{b}": [1.0, 0.0, 2.0] for b in acc if b != "aws"})
    m.update(majority_class_test_accuracy=0.1, reward_val_images=500, train_images=250,
             search_over_naive=0.08, search_over_one_final_training=10.0,
             evaluated_policies=128)  # fmt: skip
    j = recipe.judge({"mnist": m}, cfg)
    passed = [c.passed for c in j.checks]
    assert passed == [True, True, False, True]  # uniform - none: +0.00, CI includes 0
    assert "+0.00 points" in j.checks[2].detail
    assert [t.met for t in j.targets] == [True, True, True]  # aws - none +4.0, - random +2.0
    assert j.targets[0].measured == pytest.approx(4.0)
    m2 = dict(m, test_accuracy_per_seed_none=[0.96, 0.95, 0.97], reward_val_images=200,
              search_over_naive=0.2, majority_class_test_accuracy=0.8)  # fmt: skip
    j2 = recipe.judge({"mnist": m2}, cfg)
    assert [c.passed for c in j2.checks] == [False, True, False, False]
    assert [t.met for t in j2.targets] == [False, True, False]
