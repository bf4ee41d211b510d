"""Archive backends, chosen by name or URL with :func:`open_archive`.

``memory``                       in-process, gone with the process (tests, demos)
``sqlite:///relative/path.db``   one SQLite file, relative to the deployment file's folder
``sqlite:////abs/path.db``       one SQLite file at an absolute path
``postgresql://…``               shared PostgreSQL (not available yet)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ArchiveError
from .base import Archive, DecoyInput, RequestRecord
from .memory import MemoryArchive
from .sqlite import SQLiteArchive

__all__ = [
    "Archive",
    "DecoyInput",
    "MemoryArchive",
    "RequestRecord",
    "SQLiteArchive",
    "open_archive",
]

_EXPECTED = "expected 'memory', 'sqlite:///relative/path.db', 'sqlite:////absolute/path.db'"


def open_archive(
    url: str,
    *,
    base_dir: Path | None = None,
    max_buffer: int = 100_000,
    flush_interval: float = 0.1,
) -> Archive:
    """The archive ``url`` names, not started yet (``start()`` or ``with`` opens it).

    A relative SQLite path is taken relative to ``base_dir`` when given (the folder of the
    deployment file, so a deployment finds its archive wherever it is run from), otherwise
    relative to the working directory.
    """
    if url == "memory":
        return MemoryArchive(max_buffer=max_buffer, flush_interval=flush_interval)
    if url.startswith("sqlite:///"):
        path = _sqlite_path(url, base_dir)
        return SQLiteArchive(path, max_buffer=max_buffer, flush_interval=flush_interval)
    if url.startswith(("postgresql://", "postgres://")):
        raise ArchiveError(
            f"archive {url!r}: PostgreSQL archive is not available yet;"
            " use 'sqlite:///rendezvous.db' or 'memory' for now"
        )
    raise ArchiveError(f"unknown archive {url!r}: {_EXPECTED} or 'postgresql://…'")


def _sqlite_path(url: str, base_dir: Path | None) -> Path:
    raw = url.removeprefix("sqlite:///")
    if not raw:
        raise ArchiveError(f"archive {url!r} names no file: {_EXPECTED}")
    if raw == ":memory:":
        # Every connection would get its own empty database; the writer and the
        # queries use different connections.
        raise ArchiveError(f"archive {url!r}: use 'memory' for an in-process archive")
    if "?" in raw:
        # Rather than create a file whose name ends in "?mode=…".
        raise ArchiveError(f"archive {url!r}: query parameters are not supported")
    path = Path(raw)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path
