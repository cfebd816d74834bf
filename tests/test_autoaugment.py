"""AutoAugment ops, policy strings and AWS search: per-op numbers, batched == per-image
reference, round-trips, clear errors, and a search that moves towards a planted reward."""

from __future__ import annotations

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


def test_recipe_smoke_numbers_and_config_errors(tmp_path):
    from takeaways.recipes import get_recipe, resolve_config, run_recipe

    result, _ = run_recipe("autoaugment", preset="smoke", out_dir=tmp_path)
    m = result.metrics["digits"]
    assert m["search_model_epochs"] == 1 + 2 * 2 * 1 and m["evaluated_policies"] == 4
    assert m["search_cost_ratio"] == pytest.approx(5 / (4 * 2))
    assert all(0.0 <= m[f"test_accuracy_{p}"] <= 1.0 for p in ("none", "random", "aws"))
    # the cost target is measured (search time over one final training's), never config arithmetic
    assert len(result.targets) == 3 and "measured" in result.targets[2].name
    assert result.targets[2].measured == pytest.approx(
        m["search_seconds"] / m["final_training_seconds"]
    )
    assert m["search_cpu_seconds"] > 0 and m["final_training_cpu_seconds"] > 0
    assert [t.interval is not None for t in result.targets] == [True, True, False]  # paired
    assert [c.name.split(": ")[1][:6] for c in result.checks] == ["the no", "per-se"]
    assert [p["kind"] for p in result.plots] == ["bar", "line"]
    assert result.plots[0]["series"][0]["y"][3] == m["test_accuracy_aws"]
    assert len(result.plots[1]["series"][0]["y"]) == 2  # one reward per controller step
    assert "no-op" in result.notes
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        resolve_config(get_recipe("autoaugment"), "smoke", ["datasets=cifar"])
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        resolve_config(get_recipe("autoaugment"), "smoke", ["iterations=0"])
