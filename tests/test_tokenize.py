"""WordPiece training, caching, batch encoding and the bundled MiniLM tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from takeaways.data import Tokenizer, minilm_tokenizer, tokenize, train_wordpiece

WORDS = (
    "the quick brown fox jumps over lazy dog while tokenizers learn pieces of words "
    "and sentences about reading writing training models with small corpora"
).split()


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        words = rng.choice(WORDS, size=12)
        texts.append(
            " ".join(words[:5]).capitalize()
            + ", "
            + " ".join(words[5:])
            + rng.choice([".", "!", "?"])
        )
    return texts


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAKEAWAYS_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def tok(cache):
    return train_wordpiece(corpus(), vocab_size=120)


def test_special_ids_are_fixed(tok):
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.special_ids == (0, 1, 2, 3, 4)
    assert tok.vocab_size == len(tok) == 120


def test_round_trip_recovers_the_lowercased_text(tok):
    texts = ["The lazy dog reads words.", "training small models, with pieces!"]
    batch = tok.encode(texts)
    assert tok.decode(batch["input_ids"]) == [t.lower() for t in texts]
    assert tok.decode(batch["input_ids"][1].tolist()) == texts[1].lower()


def test_encode_adds_cls_sep_and_pads_to_the_longest(tok):
    batch = tok.encode(["dog", "the quick brown fox jumps"])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.dtype == mask.dtype == torch.long and ids.shape == mask.shape
    lengths = mask.sum(1).tolist()
    assert ids.shape[1] == max(lengths) and lengths[0] == 3  # [CLS] dog [SEP]
    for row, n in zip(ids.tolist(), lengths):
        assert row[0] == tok.cls_id and row[n - 1] == tok.sep_id
        assert row[n:] == [tok.pad_id] * (ids.shape[1] - n)
        assert tok.cls_id not in row[1 : n - 1] and tok.sep_id not in row[1 : n - 1]
    assert mask[0].tolist() == [1, 1, 1] + [0] * (ids.shape[1] - 3)


def test_truncation_keeps_sep_and_pad_to_fixes_the_width(tok):
    long = " ".join(WORDS * 3)
    ids = tok.encode([long, "dog"], max_len=9)["input_ids"]
    assert ids.shape == (2, 9) and ids[0, -1].item() == tok.sep_id
    fixed = tok.encode("dog", pad_to=16)
    assert fixed["input_ids"].shape == (1, 16) and fixed["attention_mask"].sum().item() == 3
    assert tok.encode(long, max_len=64, pad_to=8)["input_ids"].shape == (1, 8)


def test_unknown_characters_map_to_unk(tok):
    ids = tok.encode("dog ☃")["input_ids"][0].tolist()
    assert ids[-2] == tok.unk_id


def test_training_is_cached_by_corpus_and_vocab_size(tok, cache, monkeypatch):
    files = sorted(p.name for p in (cache / "tokenizers").iterdir())
    assert len(files) == 1 and files[0].startswith("wordpiece-120-")

    def boom(*args):
        raise AssertionError("trained again although cached")

    monkeypatch.setattr(tokenize, "_train", boom)
    again = train_wordpiece(corpus(), vocab_size=120)
    assert again.backend.get_vocab() == tok.backend.get_vocab()
    with pytest.raises(AssertionError, match="trained again"):
        train_wordpiece(corpus(), vocab_size=100)  # another key: must train


def test_uncached_training_writes_nothing(tok, cache):
    # Vocabularies can differ on merge ties between trainings (tokenizers issue #1794),
    # which is why the cache exists; sizes and special ids never differ.
    fresh = train_wordpiece(corpus(), vocab_size=120, cache=False)
    assert fresh.vocab_size == tok.vocab_size and fresh.special_ids == tok.special_ids
    assert fresh.decode(fresh.encode("the lazy dog.")["input_ids"][0]) == "the lazy dog."
    assert len(list((cache / "tokenizers").iterdir())) == 1


def test_encode_and_train_errors(tok):
    with pytest.raises(ValueError, match="texts is empty"):
        tok.encode([])
    with pytest.raises(ValueError, match="must be >= 2"):
        tok.encode("dog", max_len=1)
    with pytest.raises(TypeError, match="texts must be strings, got int"):
        tok.encode(["dog", 3])
    with pytest.raises(ValueError, match="non-empty iterable of strings"):
        train_wordpiece([], cache=False)
    with pytest.raises(ValueError, match="vocab_size must be >= 10"):
        train_wordpiece(["a b"], vocab_size=5, cache=False)


def test_wrapping_a_tokenizer_without_bert_specials_fails():
    from tokenizers import Tokenizer as Backend
    from tokenizers import models

    with pytest.raises(ValueError, match=r"lacks special tokens \['\[PAD\]'"):
        Tokenizer(Backend(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]")))


def test_minilm_tokenizer_matches_bert_uncased():
    tok = minilm_tokenizer()
    assert tok.vocab_size == 30522 and tok.mask_id == 103
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id) == (0, 100, 101, 102)
    batch = tok.encode(["Hello world", "Tokenizers are fun."], max_len=8)
    assert batch["input_ids"].tolist() == [
        [101, 7592, 2088, 102, 0, 0, 0, 0],
        [101, 19204, 17629, 2015, 2024, 4569, 1012, 102],
    ]
    assert tok.decode(batch["input_ids"][1]) == "tokenizers are fun."


def test_minilm_tokenizer_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(tokenize.importlib.util, "find_spec", lambda *args, **kwargs: None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "takeaways\[hf\]"'):
        minilm_tokenizer()


def test_encode_split_pads_every_row_and_keeps_int64_labels(tok):
    from takeaways.data import Split

    split = Split(np.array(corpus(3), dtype=object), np.array([0, 2, 1]))
    x, y = tok.encode_split(split, 8)
    assert x["input_ids"].shape == (3, 8) and y.dtype == torch.int64
    assert torch.equal(x["input_ids"], tok.encode(list(split.x), max_len=8, pad_to=8)["input_ids"])
    assert y.tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="labelled"):
        tok.encode_split(Split(split.x, None), 8)
