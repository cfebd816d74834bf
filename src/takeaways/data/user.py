"""Bring your own data: .npz arrays, CSV tables, image folders and text files as Bundles.

Every loader returns the same `Bundle` as `load(name)`, split into train and test
with a seeded shuffle (stratified by class when there are labels). Bad input
raises one line naming the file and, where it applies, the line or row and value.

Class ids: the distinct labels, sorted (numerically when they are all integers),
become ids 0..C-1, and ``classes[id]`` keeps the original label: {1990, 2020} are
two classes "1990" and "2020", {-1, +1} are "-1" and "1". ``read_rows`` returns
the rows in the file's own order, without a split, with where each came from.

Example:
    >>> from takeaways.data import load_csv
    >>> data = load_csv("iris.csv", label="species")
    >>> data.classes, data.train.x.shape
    (['setosa', 'versicolor', 'virginica'], (120, 4))
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from takeaways.data.embedded import Bundle, Split, split_indices, text_array

__all__ = ["Rows", "read_rows", "load_npz", "load_csv", "load_image_folder", "load_text"]

_INT = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


# ---------------------------------------------------------------------------- helpers


def _existing(path: str | Path, *, folder: bool = False) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; check the path")
    if folder and not p.is_dir():
        raise ValueError(f"{p} is not a folder; pass a folder with one sub-folder per class")
    if not folder and not p.is_file():
        raise ValueError(f"{p} is not a file")
    return p


def _bundle(
    path: Path,
    x: np.ndarray,
    y: np.ndarray | None,
    classes: list[str],
    kind: str,
    test_fraction: float,
    seed: int,
) -> Bundle:
    train_idx, test_idx = split_indices(len(x), y, test_fraction=test_fraction, seed=seed)
    whole = Split(x, y)
    return Bundle(
        path.stem,
        whole.subset(train_idx),
        whole.subset(test_idx),
        classes,
        kind,
        f"user data from {path}",
    )


def _int_labels(values: list[int]) -> tuple[np.ndarray, list[str]]:
    """Integer labels -> (ids of the distinct values in numeric order, their names)."""
    distinct, y = np.unique(np.asarray(values, dtype=np.int64), return_inverse=True)
    return y.astype(np.int64), [str(int(v)) for v in distinct]


def _str_labels(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Strings -> (y, sorted class names)."""
    classes = sorted(set(values))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in values], dtype=np.int64), classes


class Rows(NamedTuple):
    """A user's labelled data in the file's own order (what ``read_rows`` returns)."""

    x: np.ndarray  # (N, ...) float32; (N,) object array of strings for kind "text"
    y: np.ndarray  # (N,) int64 class ids in [0, C)
    classes: list[str]  # classes[id] is the label as the file writes it
    kind: str  # "signal" (a table or (N, L) arrays), "image" or "text"
    source: list[str]  # where row i comes from: "line 7", "cat/1.png", "index 3"


def read_rows(
    path: str | Path,
    *,
    label: str | None = None,
    text: str | None = None,
    encoding: str = "utf-8-sig",
) -> Rows:
    """The rows of a CSV, an .npz file or an image folder, in file order and unsplit.

    Args:
        path: a CSV table (needs ``label``), an .npz with ``x`` and ``y``, or a folder
            with one sub-folder per class.
        label: the CSV's label column.
        text: a CSV column of texts: x is then those texts (kind "text", an object
            array) and the other columns are ignored; default: the numeric columns.
        encoding: the CSV's text encoding (default UTF-8, with or without a BOM).

    Raises:
        FileNotFoundError: missing path.
        ValueError: whatever the matching loader raises, a CSV without ``label``,
            ``text`` for a file that is not a CSV, a text column that is missing,
            empty in every row or holds only numbers.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; pass a CSV, an .npz file or an image folder")
    if text is not None and (p.is_dir() or p.suffix.lower() in (".npz", ".npy")):
        raise ValueError(f"--text names a column of a CSV; {p} is not a CSV")
    if p.is_dir():
        return _read_image_folder(p, None)
    if p.suffix.lower() in (".npz", ".npy"):
        return _read_npz(p)
    if not label:
        raise ValueError(f"{p} is read as a CSV; name its label column with --label COLUMN")
    return _read_csv(p, label, encoding, text)


def _bundle_rows(p: Path, rows: Rows, test_fraction: float, seed: int) -> Bundle:
    return _bundle(p, rows.x, rows.y, rows.classes, rows.kind, test_fraction, seed)


# ---------------------------------------------------------------------------- .npz


def load_npz(path: str | Path, *, test_fraction: float = 0.2, seed: int = 0) -> Bundle:
    """Arrays `x` (N, ...) and integer labels `y` (N,) from a NumPy .npz file.

    `x` keeps its values and becomes float32: (N, L) is a "signal" set, (N, H, W)
    gains a channel axis and (N, C, H, W) stays, both "image". An optional array
    `classes` (K,) of names makes `y` indices into it (0..K-1); without it the
    distinct values of `y` are the classes.

    Raises:
        FileNotFoundError: missing path.
        ValueError: a lone .npy array, missing keys, length mismatch, non-numeric or
            non-finite `x`, non-integer or out-of-range labels (with the index and value).
    """
    return _bundle_rows(_existing(path), _read_npz(_existing(path)), test_fraction, seed)


def _read_npz(p: Path) -> Rows:
    if p.suffix.lower() == ".npy":
        raise ValueError(
            f"{p} is a single .npy array; save features and labels together with "
            "np.savez(path.npz, x=..., y=...)"
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, AttributeError, TypeError) as err:
        raise ValueError(f"{p} is not a readable .npz file ({err})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(
            f"{p} lacks array(s) {missing}; it has {sorted(arrays)}; "
            "save with np.savez(path, x=..., y=...)"
        )
    x, y = arrays["x"], arrays["y"]
    if len(x) == 0:
        raise ValueError(f"{p}: x is empty; it needs at least one row")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{p}: x has dtype {x.dtype}; features must be numbers")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"{p}: y must be 1-D with one label per row of x; got y {y.shape} for x {x.shape}"
        )
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"{p}: y has dtype {y.dtype}; labels must be integer class ids")
    bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y))) if y.dtype.kind == "f" else []
    if len(bad):
        raise ValueError(f"{p}: y[{bad[0]}] = {y[bad[0]]} is not an integer class id")
    x = x.astype(np.float32)
    finite = np.isfinite(x.reshape(len(x), -1)).all(1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{p}: x[{i}] holds NaN or infinity; drop or fill that row")
    y = y.astype(np.int64)
    if "classes" in arrays:
        classes = [str(c) for c in arrays["classes"]]
        wrong = (y < 0) | (y >= len(classes))
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise ValueError(
                f"{p}: y[{i}] = {y[i]} is out of range for {len(classes)} classes "
                f"(0..{len(classes) - 1})"
            )
    else:
        y, classes = _int_labels(y.tolist())
    if x.ndim == 2:
        kind = "signal"
    elif x.ndim in (3, 4):
        kind, x = "image", (x[:, None] if x.ndim == 3 else x)
    else:
        raise ValueError(f"{p}: x has shape {x.shape}; expected (N, L), (N, H, W) or (N, C, H, W)")
    return Rows(x, y, classes, kind, [f"index {i}" for i in range(len(y))])


# ---------------------------------------------------------------------------- CSV


def load_csv(
    path: str | Path,
    *,
    label: str,
    test_fraction: float = 0.2,
    seed: int = 0,
    encoding: str = "utf-8-sig",
) -> Bundle:
    """A CSV table with a header: numeric feature columns plus one label column.

    Returns a "signal" Bundle with x (N, F) float32 in column order; the distinct
    labels, sorted (numerically if all are integers), are the classes.

    Raises:
        FileNotFoundError: missing path.
        ValueError: empty file, text that is not in ``encoding``, no label column
            (lists the columns), a row with the wrong number of fields, a
            non-numeric feature (line and column), an empty label (line).
    """
    p = _existing(path)
    return _bundle_rows(p, _read_csv(p, label, encoding), test_fraction, seed)


def _read_csv(p: Path, label: str, encoding: str, text: str | None = None) -> Rows:
    p = _existing(p)
    try:
        with open(p, encoding=encoding, newline="") as fh:
            if text is not None:
                return _parse_text_csv(p, csv.reader(fh), label, text)
            return _parse_csv(p, csv.reader(fh), label)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{p} is not {encoding} text (byte {err.start}: {err.object[err.start : err.start + 1]!r}); "
            "name its encoding, e.g. --encoding latin-1 (encoding='latin-1' in Python)"
        ) from None
    except LookupError:
        raise ValueError(f"unknown text encoding {encoding!r}; try utf-8 or latin-1") from None


def _parse_csv(p: Path, reader, label: str) -> Rows:
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{p} is empty; expected a header row and data rows")
    header = [h.strip() for h in header]
    if label not in header:
        raise ValueError(f"{p} has no label column {label!r}; its columns are {header}")
    li = header.index(label)
    names = [h for i, h in enumerate(header) if i != li]
    if not names:
        raise ValueError(f"{p} has only the label column; it needs feature columns too")
    features: list[list[float]] = []
    labels: list[str] = []
    lines: list[str] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise ValueError(f"{p} line {line}: {len(row)} fields, the header has {len(header)}")
        values = []
        for name, cell in zip(names, (c for i, c in enumerate(row) if i != li)):
            try:
                v = float(cell)
            except ValueError:
                v = math.nan
            if not math.isfinite(v):
                hint = (
                    "; the column holds text: embed it (find-mislabeled --text COLUMN) or drop it"
                    if re.search(r"[A-Za-z]{3}", cell)
                    and cell.strip().lower() not in ("nan", "inf", "infinity", "-inf")
                    else ""
                )
                raise ValueError(
                    f"{p} line {line}, column {name!r}: {cell!r} is not a finite number{hint}"
                ) from None
            values.append(v)
        lab = row[li].strip()
        if not lab:
            raise ValueError(f"{p} line {line}: the label column {label!r} is empty")
        features.append(values)
        labels.append(lab)
        lines.append(f"line {line}")
    if not labels:
        raise ValueError(f"{p} has a header but no data rows")
    if all(_INT.fullmatch(v) for v in labels):
        y, classes = _int_labels([int(v) for v in labels])
    else:
        y, classes = _str_labels(labels)
    return Rows(np.asarray(features, dtype=np.float32), y, classes, "signal", lines)


def _parse_text_csv(p: Path, reader, label: str, text: str) -> Rows:
    header = [h.strip() for h in next(reader, None) or []]
    if not header:
        raise ValueError(f"{p} is empty; expected a header row and data rows")
    for name in (label, text):
        if name not in header:
            raise ValueError(f"{p} has no column {name!r}; its columns are {header}")
    if label == text:
        raise ValueError(f"--text and --label both name {label!r}; they must be two columns")
    li, ti = header.index(label), header.index(text)
    texts, labels, lines = [], [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValueError(
                f"{p} line {reader.line_num}: {len(row)} fields, the header has {len(header)}"
            )
        lab = row[li].strip()
        if not lab:
            raise ValueError(f"{p} line {reader.line_num}: the label column {label!r} is empty")
        texts.append(row[ti])
        labels.append(lab)
        lines.append(f"line {reader.line_num}")
    if not labels:
        raise ValueError(f"{p} has a header but no data rows")
    if not any(t.strip() for t in texts):
        raise ValueError(f"{p}: the text column {text!r} is empty in every row")
    if all(_NUMBER.fullmatch(t.strip()) for t in texts if t.strip()):
        raise ValueError(
            f"{p}: the text column {text!r} holds only numbers; leave out --text to use the "
            "numeric columns as features"
        )
    if all(_INT.fullmatch(v) for v in labels):
        y, classes = _int_labels([int(v) for v in labels])
    else:
        y, classes = _str_labels(labels)
    return Rows(text_array(texts), y, classes, "text", lines)


# ---------------------------------------------------------------------------- image folder


def load_image_folder(
    path: str | Path,
    *,
    size: int | tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Bundle:
    """Images in one sub-folder per class (`root/cat/1.png`, `root/dog/7.jpg`, ...).

    Classes are the sub-folder names, sorted. If every image is grayscale, x is
    (N, 1, H, W), otherwise all become RGB (N, 3, H, W); float32 in [0, 1].
    Hidden files (".DS_Store") and loose files in the root folder are skipped.

    Args:
        size: (height, width) or one int for square; default: the first image's size.
            Other images are resized to it (bilinear).

    Raises:
        FileNotFoundError: missing path.
        ValueError: no class sub-folders, an empty class folder, a file Pillow
            cannot read as an image (named).
    """
    root = _existing(path, folder=True)
    return _bundle_rows(root, _read_image_folder(root, size), test_fraction, seed)


def _read_image_folder(root: Path, size: int | tuple[int, int] | None) -> Rows:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{root} has no class sub-folders; put images in {root}/<class>/")
    images, labels, source = [], [], []
    for c, folder in enumerate(class_dirs):
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            nested = sorted(d.name for d in folder.iterdir() if d.is_dir())
            if nested:
                raise ValueError(
                    f"{folder} holds only sub-folders ({', '.join(nested[:3])}); images must "
                    f"sit directly in {root}/<class>/, one folder level deep"
                )
            raise ValueError(f"{folder} is empty; every class folder needs at least one image")
        for f in files:
            try:
                with Image.open(f) as im:
                    im.load()
                    images.append(im.convert("L" if im.mode in _GRAY_MODES else "RGB"))
            except (UnidentifiedImageError, OSError) as err:
                raise ValueError(
                    f"{f} is not an image Pillow can read ({err}); remove it from the folder"
                ) from None
            labels.append(c)
            source.append(f"{folder.name}/{f.name}")
    if size is None:
        width, height = images[0].size
    else:
        height, width = (size, size) if isinstance(size, int) else size
    mode = "L" if all(im.mode == "L" for im in images) else "RGB"
    x = np.stack(
        [
            np.asarray(im.convert(mode).resize((width, height), Image.Resampling.BILINEAR))
            for im in images
        ]
    )  # (N, H, W) or (N, H, W, 3), uint8
    x = x[:, None] if mode == "L" else x.transpose(0, 3, 1, 2)
    return Rows(
        (x / 255.0).astype(np.float32),
        np.asarray(labels, dtype=np.int64),
        [d.name for d in class_dirs],
        "image",
        source,
    )


# ---------------------------------------------------------------------------- text


def load_text(
    path: str | Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Bundle:
    """Plain text (one document per non-blank line, unlabeled) or JSONL records.

    A file ending in .jsonl / .ndjson, or whose first non-blank line starts with
    "{", is read as JSONL: each line an object with `text_field` and optionally
    `label_field` (all lines or none; ints are class ids, strings are names).
    Labelled data gives kind "text"; unlabeled gives kind "corpus" with y None.

    Raises:
        FileNotFoundError: missing path.
        ValueError: empty file, invalid JSON, a record without the text field or
            with a missing or mixed-type label (line number given).
    """
    p = _existing(path)
    lines = [
        (n, s) for n, s in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if s.strip()
    ]
    if not lines:
        raise ValueError(f"{p} is empty; expected one text per line or JSONL records")
    jsonl = p.suffix.lower() in (".jsonl", ".ndjson") or lines[0][1].lstrip().startswith("{")
    if not jsonl:
        return _bundle(
            p, text_array([s for _, s in lines]), None, [], "corpus", test_fraction, seed
        )
    texts, labels, where = [], [], []
    for n, s in lines:
        try:
            rec = json.loads(s)
        except json.JSONDecodeError as err:
            raise ValueError(f"{p} line {n}: not valid JSON ({err.msg})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get(text_field), str):
            keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
            raise ValueError(f"{p} line {n}: needs a string field {text_field!r}; found {keys}")
        texts.append(rec[text_field])
        labels.append(rec.get(label_field))
        where.append(f"{p} line {n}")
    x = text_array(texts)
    if all(v is None for v in labels):
        return _bundle(p, x, None, [], "corpus", test_fraction, seed)
    for w, v in zip(where, labels):
        if v is None:
            raise ValueError(f"{w}: no {label_field!r}; label every record or none")
    for w, v in zip(where, labels):
        if type(v) not in (int, str):
            raise ValueError(f"{w}: label {v!r} must be an int class id or a string name")
        if type(v) is not type(labels[0]):
            raise ValueError(
                f"{w}: label {v!r} differs in type from the first label "
                f"{labels[0]!r}; use all ints or all strings"
            )
    if isinstance(labels[0], int):
        y, classes = _int_labels(labels)
    else:
        y, classes = _str_labels(labels)
    return _bundle(p, x, y, classes, "text", test_fraction, seed)
