"""files: atomic writes leave the old file or the whole new one, never a half or a temp file."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
import torch

from takeaways.files import atomic_path, atomic_write
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


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "model.pt"
    atomic_write(path, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
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
