"""Atomic file writes: a reader sees the old file or the whole new one, never half a file.

One way to write, used for results, reports, dataset and tokenizer caches and training
checkpoints: write into a temp file in the target's own folder (same file system),
then ``os.replace`` it over the target, which POSIX and Windows do atomically.

Temp files are named ``.<name>.<pid>.<8 hex>.tmp`` (``.gitignore`` has ``.*.tmp``). An
exception or Ctrl-C mid-write removes the temp file and leaves the previous file intact.
A process killed outright (SIGKILL, power loss) runs no cleanup and leaves its temp
file; the next write to the same target removes it, since its pid is no longer running.
New files get the permissions a plain ``open(path, "w")`` would give (0666 less the
umask: 0644 under the usual umask 022).

``check_writable`` is for commands: it verifies an output path before any work, so a
bad ``--out`` fails in one line at once instead of after an hour of training.

Example:
    >>> atomic_write(tmp / "a.json", '{"x": 1}\\n')            # doctest: +SKIP
    >>> with atomic_path(tmp / "model.pt") as p:              # doctest: +SKIP
    ...     torch.save(state, p)
    >>> check_writable("report/index.html")                   # doctest: +SKIP
    PosixPath('report/index.html')
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

__all__ = ["atomic_write", "atomic_path", "check_writable"]


# ----------------------------------------------------------------------------- temp files


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another write of ours (a thread) may be under way
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there: never guess
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _remove_stale_temps(target: Path) -> None:
    """Remove temp files of ``target`` left by processes that are no longer running."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    try:
        siblings = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in siblings:
        m = pattern.fullmatch(entry.name)
        if m and not _pid_running(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _create_temp(tmp: Path, target: Path) -> None:
    """Create the empty temp file ``tmp``; one readable error naming ``target`` if it can't."""
    # O_EXCL: never reuse a file; 0o666: the kernel applies the umask, as open() does.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        os.close(os.open(tmp, flags, 0o666))
    except OSError as e:
        raise type(e)(
            f"cannot write {target}: folder {tmp.parent} is not writable ({e.strerror or e}); "
            "pass a path in a folder you can write to"
        ) from None


# ----------------------------------------------------------------------------- checks


def _make_folder(folder: Path, target: Path) -> None:
    """Create ``folder`` and its parents; one readable error naming ``target`` if it can't."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"cannot write {target}: {parent} is a file, not a folder; "
                    "pass a path whose folders are folders"
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(
            f"cannot write {target}: cannot create folder {folder} ({e.strerror or e}); "
            "pass a path in a folder you can write to"
        ) from None


def check_writable(path: str | Path, *, kind: Literal["file", "dir"] = "file") -> Path:
    """Check before any work that ``path`` can be written; create its missing folders.

    Call it at the start of a command, before training, for every output it will write.
    ``kind="file"``: ``path`` is a file to (over)write; its parent folders are created.
    ``kind="dir"``: ``path`` is a folder files will be written into; it is created.
    Writability is tested by creating and removing an empty temp file, so read-only
    file systems and missing permissions show up here (a disk that fills up during the
    run still fails at the write, leaving the old file and no temp file).

    Args:
        path: the output path (``~`` is expanded).
        kind: "file" or "dir".

    Returns:
        The path, ``~`` expanded.

    Raises:
        IsADirectoryError: ``kind="file"`` and ``path`` is a folder.
        NotADirectoryError: a folder on the way (or ``path`` itself for ``kind="dir"``) is a file.
        PermissionError / OSError: the folder cannot be created or written to.
        Each message is one line naming the path and what to do.

    Example:
        >>> out = check_writable(args.out)                 # doctest: +SKIP
        >>> ...train for an hour...; atomic_write(out, text)  # doctest: +SKIP
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir'; got {kind!r}")
    path = Path(path).expanduser()
    if kind == "file":
        if path.is_dir():
            raise IsADirectoryError(
                f"cannot write {path}: it is a folder; pass a file path (a name inside it, or elsewhere)"
            )
        folder = path.parent
    else:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(
                f"cannot write into {path}: it is a file, not a folder; pass a folder path"
            )
        folder = path
    _make_folder(folder, path)
    probe = _temp_name(folder / ".takeaways-write-check")
    _create_temp(probe, path)
    probe.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------- writes


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block ends cleanly, it replaces ``path``.

    For writers that want a file name (``torch.save``, ``np.savez`` on an open handle).
    The parent folder is created. Temp files of ``path`` left by killed processes are
    removed first. If the block (or the replace) raises, KeyboardInterrupt included, the
    temp file is removed and ``path`` is left as it was.

    Raises:
        IsADirectoryError: ``path`` is a folder.
        NotADirectoryError: a folder on the way is a file.
        Whatever the block raises, after cleaning up.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; pass a file path")
    _make_folder(path.parent, path)
    _remove_stale_temps(path)
    tmp = _temp_name(path)
    _create_temp(tmp, path)
    try:
        yield tmp
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
