"""File operations the filesystem registry builds on: atomic writes, a lock, a digest.

Atomicity comes from ``os.replace``/``os.rename`` within one filesystem: a reader opens the
old file or the new one, never a half-written one. The lock is ``flock`` on a file of its
own, held per open file, so it excludes other threads of this process as well as other
processes on the host (and on NFS, where the kernel maps it to a POSIX lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "file_lock", "sha256_file", "write_synced"]

_CHUNK = 1 << 20


def write_synced(path: Path, data: bytes) -> None:
    """Write and flush to disk: a rename must never publish a file the disk has not got."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step, through a temporary file beside it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block."""
    with path.open("a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def sha256_file(path: Path, *, sync: bool = False) -> tuple[str, int]:
    """The file's sha256 (hex) and size; ``sync`` also flushes it to disk on the way."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(f.fileno())
    return digest.hexdigest(), size
