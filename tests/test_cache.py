"""mvf.cache: files and folders are never half-written, checksums are of the whole file, MVF_CACHE moves the cache."""

import hashlib
import importlib
import os
import stat
from pathlib import Path

import pytest

from mvf import cache


def test_sha256_of_a_file_longer_than_one_read_is_of_all_its_bytes(tmp_path):
    data = os.urandom((1 << 23) + 12345)  # one 8 MiB chunk and part of a second
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert cache.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_an_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "value.bin"
    path.write_bytes(b"old")
    cache.write_atomically(path, lambda stream: stream.write(b"new"))
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["value.bin"]


def test_an_atomic_write_has_the_permissions_of_an_ordinary_file(tmp_path):
    path = tmp_path / "value.bin"
    cache.write_atomically(path, lambda stream: stream.write(b"new"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "value.bin"
    path.write_bytes(b"old")

    def fail(stream):
        stream.write(b"half")
        raise KeyboardInterrupt  # an interrupt too: nothing half-written stays behind

    with pytest.raises(KeyboardInterrupt):
        cache.write_atomically(path, fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["value.bin"]


def test_a_built_folder_replaces_a_damaged_one(tmp_path):
    folder = tmp_path / "deep" / "model"
    folder.mkdir(parents=True)
    (folder / "stale").write_text("damaged")
    cache.build_folder_atomically(folder, lambda out: (out / "weights").write_text("new"))
    assert sorted(p.name for p in folder.iterdir()) == ["weights"]
    assert [p.name for p in folder.parent.iterdir()] == ["model"]


def test_a_failed_build_keeps_the_old_folder_and_removes_the_temporary(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights").write_text("old")

    def fail(out: Path):
        (out / "weights").write_text("half")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        cache.build_folder_atomically(folder, fail)
    assert (folder / "weights").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_mvf_cache_moves_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MVF_CACHE", str(tmp_path / "elsewhere"))
    try:
        assert importlib.reload(cache).CACHE_DIR == tmp_path / "elsewhere"
        monkeypatch.delenv("MVF_CACHE")
        assert importlib.reload(cache).CACHE_DIR == Path.home() / ".cache" / "mvf"
    finally:
        monkeypatch.undo()
        importlib.reload(cache)


def test_a_folder_is_built_beside_where_it_goes_even_where_nothing_exists_yet(tmp_path):
    """The temporary folder is a hidden sibling (same file system, so the rename is atomic); missing parents are made."""
    folder = tmp_path / "a" / "b" / "model"
    seen = []

    def build(out: Path):
        seen.append(out)
        (out / "weights").write_text("new")

    cache.build_folder_atomically(folder, build)
    assert seen[0].parent == folder.parent and seen[0].name.startswith(".model.")
    assert (folder / "weights").read_text() == "new" and not seen[0].exists()
