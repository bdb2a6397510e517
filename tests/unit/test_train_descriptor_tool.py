"""tools/train_descriptor.py's data loading: prepared chunks from several folders, and a clear error
(what is missing, what to run) instead of a bare numpy traceback when a folder was never prepared."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import train_descriptor  # noqa: E402


def _prepare(folder: Path, n_chunks: int, scale: float = 0.5, value: int = 0) -> None:
    folder.mkdir(parents=True)
    (folder / "teacher.json").write_text(json.dumps({"scale": scale}))
    for c in range(n_chunks):
        x = np.full((train_descriptor.CHUNK, 2, 2, 3), value + c, np.uint8)
        np.savez(folder / f"chunk{c:03d}.npz", x=x, t=np.zeros((train_descriptor.CHUNK, 1, 1, 1), np.uint8))


def test_chunks_from_the_main_folder_and_several_extra_folders(tmp_path):
    _prepare(tmp_path / "main", 2)
    _prepare(tmp_path / "a", 1, value=10)
    _prepare(tmp_path / "b", 1, value=20)
    extra = f"{tmp_path / 'a'},{tmp_path / 'b'}"
    x, t, scale = train_descriptor.load_chunks(tmp_path / "main", 2 * train_descriptor.CHUNK, extra)
    assert scale == 0.5 and len(x) == len(t) == 4 * train_descriptor.CHUNK
    assert sorted(np.unique(x[:, 0, 0, 0])) == [0, 1, 10, 20]


def test_missing_chunks_say_what_to_run(tmp_path):
    _prepare(tmp_path / "main", 1)
    with pytest.raises(FileNotFoundError, match="1 of 2 prepared chunks missing.*run `prepare`"):
        train_descriptor.load_chunks(tmp_path / "main", 2 * train_descriptor.CHUNK)


def test_an_empty_extra_folder_and_a_teacher_scale_mismatch_are_refused(tmp_path):
    _prepare(tmp_path / "main", 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no prepared chunk"):
        train_descriptor.load_chunks(tmp_path / "main", train_descriptor.CHUNK, str(tmp_path / "empty"))
    _prepare(tmp_path / "other", 1, scale=0.25)
    with pytest.raises(ValueError, match="another teacher scale"):
        train_descriptor.load_chunks(tmp_path / "main", train_descriptor.CHUNK, str(tmp_path / "other"))
