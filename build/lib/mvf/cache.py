"""Disk caches that are never half-written: atomic files and folders, checksums, and the cache location."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)

# Where converted models live; set MVF_CACHE to move it (a Colab Drive folder, say).
CACHE_DIR = Path(os.environ.get("MVF_CACHE", Path.home() / ".cache" / "mvf"))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 23):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, write: Callable) -> None:
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it over ``path``: never half-written."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes files private; these are ordinary files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build_folder_atomically(folder: Path, build: Callable[[Path], None]) -> None:
    """Call ``build(temporary_folder)`` then rename the result to ``folder``; a damaged old ``folder`` is replaced."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        build(temporary)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temporary, folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
