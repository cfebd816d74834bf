"""files: atomic writes leave the old file or the whole new one, never a half or a temp file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from takeaways.files import _temp_name, atomic_path, atomic_write, check_writable
from takeaways.results import write_json_atomic


def test_atomic_write_text_and_bytes_replace_the_file(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    assert atomic_write(path, "héllo\n") == path
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]
    with pytest.raises(TypeError, match="str or bytes; got dict"):
        atomic_write(path, {"a": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path, error):
    path = tmp_path / "model.pt"
    atomic_write(path, b"old")
    with pytest.raises(type(error)), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise error
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_atomic_path_serves_torch_save_and_np_savez(tmp_path):
    with atomic_path(tmp_path / "state.pt") as tmp:
        torch.save({"w": torch.arange(3)}, tmp)
    assert torch.load(tmp_path / "state.pt")["w"].tolist() == [0, 1, 2]
    with atomic_path(tmp_path / "a.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, x=np.ones(2))
    with np.load(tmp_path / "a.npz") as z:
        assert z["x"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "state.pt"]


def test_write_json_atomic_goes_through_the_one_writer(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"x": float("nan"), "y": np.float32(0.5)})
    assert json.loads(path.read_text()) == {"x": None, "y": 0.5}
    assert path.read_text().endswith("}\n")


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_permissions_open_would_give(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "r.json", "{}")
        with atomic_path(tmp_path / "m.pt") as tmp:
            torch.save({}, tmp)
    finally:
        os.umask(old)
    for name in ("r.json", "m.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_temp_names_are_recognisable_and_ignored_by_git():
    tmp = _temp_name(ROOT / "checkpoints-x" / "run.pt")
    assert tmp.name.startswith(".run.pt.") and tmp.name.endswith(".tmp")
    assert str(os.getpid()) in tmp.name
    rel = tmp.relative_to(ROOT)
    r = subprocess.run(["git", "check-ignore", "-q", str(rel)], cwd=ROOT)
    if r.returncode == 128:
        pytest.skip("not a git checkout")
    assert r.returncode == 0, f"{rel} is not ignored by .gitignore"


_KILLED_MID_WRITE = """
import os, signal, sys
from takeaways.files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_the_next_write_removes_temp_files_of_killed_writers(tmp_path):
    path = tmp_path / "run.pt"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE, str(path)], env=env, timeout=60)
    assert r.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()  # SIGKILL runs no cleanup
    assert left.name.startswith(".run.pt.") and left.name.endswith(".tmp")
    alive = tmp_path / f".run.pt.{os.getppid()}.0123abcd.tmp"  # a running writer's: kept
    other = tmp_path / ".other.pt.999999999.0123abcd.tmp"  # another target's: kept
    alive.write_bytes(b"")
    other.write_bytes(b"")
    atomic_write(path, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "run.pt"])
    assert path.read_bytes() == b"new"


def test_check_writable_creates_folders_and_leaves_nothing(tmp_path):
    out = check_writable(tmp_path / "a" / "b" / "index.html")
    assert out == tmp_path / "a" / "b" / "index.html" and out.parent.is_dir()
    assert not out.exists() and list(out.parent.iterdir()) == []
    folder = check_writable(tmp_path / "res" / "demo", kind="dir")
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_check_writable_says_why_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError) as e:
        check_writable(tmp_path / "afile" / "x.csv")
    assert str(e.value) == (
        f"cannot write {tmp_path / 'afile' / 'x.csv'}: {tmp_path / 'afile'} is a file, "
        "not a folder; pass a path whose folders are folders"
    )
    with pytest.raises(IsADirectoryError, match="it is a folder; pass a file path"):
        check_writable(tmp_path)
    with pytest.raises(NotADirectoryError, match="afile: it is a file, not a folder"):
        check_writable(tmp_path / "afile", kind="dir")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        atomic_write(tmp_path / "afile" / "y.json", "{}")  # the writer says the same
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only /sys")
def test_check_writable_refuses_a_folder_it_cannot_write():
    with pytest.raises(OSError, match=r"^cannot write /sys/r\.json: folder /sys is not writable"):
        check_writable("/sys/r.json")
    with pytest.raises(OSError, match=r"^cannot write /sys/r\.json: folder /sys is not writable"):
        atomic_write("/sys/r.json", "{}")  # the writer says the same
