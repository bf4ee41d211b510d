"""Archive backends, chosen by name or URL with :func:`open_archive`.

``memory``                       in-process, gone with the process (tests, demos)
``sqlite:///relative/path.db``   one SQLite file, relative to the deployment file's folder
``sqlite:////abs/path.db``       one SQLite file at an absolute path
``postgresql://user@host/db``    shared PostgreSQL (also ``postgres://``); ``?schema=name``
                                 puts the tables in that PostgreSQL schema

The PostgreSQL backend needs the ``postgres`` extra; it is imported only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchiveError, MissingDependency
from .base import Archive, DecoyInput, Event, Example, RequestRecord
from .memory import MemoryArchive
from .sqlite import SQLiteArchive

if TYPE_CHECKING:
    from .postgres import PostgresArchive

__all__ = [
    "Archive",
    "DecoyInput",
    "Event",
    "Example",
    "MemoryArchive",
    "PostgresArchive",
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
        postgres_archive = _postgres_archive()
        return postgres_archive(url, max_buffer=max_buffer, flush_interval=flush_interval)
    raise ArchiveError(f"unknown archive {url!r}: {_EXPECTED} or 'postgresql://…'")


def __getattr__(name: str) -> Any:
    # PostgresArchive is public, but importing psycopg is paid only by those who use it.
    if name == "PostgresArchive":
        return _postgres_archive()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _postgres_archive() -> type[PostgresArchive]:
    try:
        from .postgres import PostgresArchive
    except ImportError as exc:
        # psycopg itself, or its libpq wrapper (that ImportError names no module)
        if exc.name is not None and not exc.name.startswith("psycopg"):
            raise
        raise MissingDependency("psycopg", "postgres", "the PostgreSQL archive") from exc
    return PostgresArchive


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
