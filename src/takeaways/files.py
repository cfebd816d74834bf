"""Atomic file writes: a reader sees the old file or the whole new one, never half a file.

One way to write, used for results, dataset and tokenizer caches and training
checkpoints: write into a temp file in the target's own folder (same file system),
then ``os.replace`` it over the target, which POSIX and Windows do atomically. An
exception or a crash mid-write leaves the previous file intact and no temp file behind
(a killed process may leave one ``.<name>.*.tmp``; it is never read).

Example:
    >>> atomic_write(tmp / "a.json", '{"x": 1}\\n')            # doctest: +SKIP
    >>> with atomic_path(tmp / "model.pt") as p:              # doctest: +SKIP
    ...     torch.save(state, p)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block ends cleanly, it replaces ``path``.

    For writers that want a file name (``torch.save``, ``np.savez`` on an open handle).
    The parent folder is created. The file is made readable by all (0644): caches and
    results are meant to be shared. If the block raises, the temp file is removed and
    ``path`` is left as it was.

    Raises:
        Whatever the block raises, after cleaning up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns ``path``."""
    if not isinstance(data, (str, bytes)):
        raise TypeError(f"atomic_write takes str or bytes; got {type(data).__name__}")
    blob = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)
