"""The SQLite archive: one file, the default for a single host.

WAL mode lets queries read while the writer thread appends, and ``synchronous=NORMAL``
keeps commits off the fsync path (a power cut may lose the last batches, never corrupt the
file). Each batch is one transaction of ``executemany`` calls, which is what makes
thousands of rows a second cheap on a small machine that is serving at the same time.

Predictions, probabilities and features are stored as JSON text (readable with the
``sqlite3`` shell and its ``json_*`` functions). Anything JSON cannot hold exactly is
stored as its text rather than refused: one odd prediction must not block the archive,
whose writer would otherwise retry the same batch forever.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import orjson

from ..errors import ArchiveError
from ..messages import Score
from .base import Archive, DecoyInput, Event, Example, RequestRecord
from .rows import (
    event_record,
    event_row,
    example_record,
    example_row,
    input_record,
    input_row,
    request_record,
    request_row,
    score_record,
    score_row,
)

__all__ = ["SCHEMA_VERSION", "SQLiteArchive"]

log = logging.getLogger("rendezvous.archive")

_R = TypeVar("_R", RequestRecord, Score, DecoyInput)

# Each version's statements, applied in order to bring an older file up to date.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            deployment TEXT NOT NULL,
            received_at REAL NOT NULL,
            features TEXT NOT NULL,
            model TEXT,
            version TEXT,
            reason TEXT NOT NULL,
            prediction TEXT,
            latency_ms REAL NOT NULL
        )""",
        "CREATE INDEX requests_deployment_received ON requests (deployment, received_at)",
        """CREATE TABLE scores (
            request_id TEXT NOT NULL,
            deployment TEXT NOT NULL,
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            prediction TEXT,
            probabilities TEXT,
            error TEXT,
            latency_ms REAL NOT NULL,
            queue_ms REAL NOT NULL,
            batch_size INTEGER NOT NULL,
            computed_at REAL NOT NULL
        )""",
        "CREATE INDEX scores_request ON scores (request_id)",
        "CREATE INDEX scores_model_computed ON scores (deployment, model, computed_at)",
        """CREATE TABLE decoy_inputs (
            request_id TEXT NOT NULL,
            deployment TEXT NOT NULL,
            model TEXT NOT NULL,
            features TEXT NOT NULL,
            received_at REAL NOT NULL
        )""",
        "CREATE INDEX decoy_inputs_request ON decoy_inputs (request_id)",
        # counts() per deployment without scanning the table
        "CREATE INDEX decoy_inputs_deployment ON decoy_inputs (deployment)",
    ),
    2: (
        # AUTOINCREMENT: a seq is never reused, even after the newest rows are deleted, so a
        # learner resuming after the last seq it saw can never skip a new example.
        """CREATE TABLE examples (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment TEXT NOT NULL,
            request_id TEXT,
            features TEXT NOT NULL,
            label TEXT NOT NULL,
            received_at REAL NOT NULL
        )""",
        # One label per prediction. NULLs are distinct in a UNIQUE index, so standalone
        # examples (no request id) are never taken for duplicates of each other.
        "CREATE UNIQUE INDEX examples_request ON examples (deployment, request_id)",
        "CREATE INDEX examples_request_id ON examples (request_id)",  # labels_for
        "CREATE INDEX examples_deployment_seq ON examples (deployment, seq)",
    ),
    3: (
        # AUTOINCREMENT for the same reason as examples: a process following events after
        # the last seq it applied must never skip one.
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment TEXT NOT NULL,
            kind TEXT NOT NULL,
            model TEXT,
            detail TEXT NOT NULL,
            at REAL NOT NULL,
            origin TEXT NOT NULL
        )""",
        "CREATE INDEX events_deployment_seq ON events (deployment, seq)",
    ),
}
SCHEMA_VERSION = max(_MIGRATIONS)

# Errors that depend on the rows, not on the database: retrying cannot help.
_DATA_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    OverflowError,
    TypeError,
    ValueError,
)

# A retried batch (its commit failed after the rows went in) must not fail on the key
# forever, so the first write of a request id wins.
# (Not INSERT OR IGNORE: that would also drop rows breaking NOT NULL, without a word.)
_INSERT_REQUEST = (
    "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
_INSERT_SCORE = "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_INPUT = "INSERT INTO decoy_inputs VALUES (?, ?, ?, ?, ?)"
# No row comes back for a duplicate: that is how store_examples tells new from repeated.
_INSERT_EXAMPLE = (
    "INSERT INTO examples (deployment, request_id, features, label, received_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (deployment, request_id) DO NOTHING RETURNING seq"
)

_REQUEST_COLUMNS = (
    "id, deployment, received_at, features, model, version, reason, prediction, latency_ms"
)
_SCORE_COLUMNS = (
    "request_id, deployment, model, version, prediction, probabilities, error,"
    " latency_ms, queue_ms, batch_size, computed_at"
)
_INPUT_COLUMNS = "request_id, deployment, model, features, received_at"
_EXAMPLE_COLUMNS = "seq, deployment, request_id, features, label, received_at"
_EVENT_COLUMNS = "seq, deployment, kind, model, detail, at, origin"
_INSERT_EVENT = (
    "INSERT INTO events (deployment, kind, model, detail, at, origin)"
    " VALUES (?, ?, ?, ?, ?, ?) RETURNING seq"
)

# How long store_examples waits for the writer thread's batch to finish before giving up
# (as long as SQLite itself waits for another process's lock).
_WRITER_WAIT_S = 30.0
# Host parameters per labels_for query: under SQLite's smallest default limit (999).
_IDS_PER_QUERY = 500


class SQLiteArchive(Archive):
    """Archive in one SQLite file; its parent directory is created on start."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_buffer: int = 100_000,
        flush_interval: float = 0.1,
    ) -> None:
        super().__init__(max_buffer=max_buffer, flush_interval=flush_interval)
        self.path = Path(path)
        self._writer: sqlite3.Connection | None = None
        # Queries come from any thread; one read connection behind a lock is cheaper
        # than a connection per call, and WAL keeps it from waiting on the writer.
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteArchive({str(self.path)!r})"

    # -- backend verbs ----------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = self._connect()
            self._writer = writer
            mode = writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ArchiveError(f"{self!r}: cannot use WAL mode here (got {mode!r})")
            writer.execute("PRAGMA synchronous=NORMAL")
            self._migrate(writer)
            reader = self._connect()
            reader.execute("PRAGMA query_only=ON")
            with self._read_lock:
                self._reader = reader
        except BaseException:
            self._close()
            raise

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are begun and ended explicitly, one per batch.
        # check_same_thread=False: opened by start(), used by the writer thread; the base
        # class and _read_lock make sure no connection is used by two threads at once.
        return sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # IMMEDIATE: two processes opening one new file must not both create the schema.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version"
                " (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            current = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise ArchiveError(
                    f"{self!r} has schema version {current}, newer than this rendezvous-ml"
                    f" understands ({SCHEMA_VERSION}): upgrade rendezvous-ml"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise

    def _store(
        self,
        requests: Sequence[RequestRecord],
        scores: Sequence[Score],
        inputs: Sequence[DecoyInput],
    ) -> None:
        conn = self._writer
        if conn is None:
            raise ArchiveError(f"{self!r} is not open")
        try:
            self._transaction(conn, requests, scores, inputs, one_by_one=False)
        except _DATA_ERRORS:
            # A row the schema cannot hold fails the same way on every retry, and the base
            # class retries until it succeeds: store the others and log the bad ones.
            self._transaction(conn, requests, scores, inputs, one_by_one=True)

    def _transaction(
        self,
        conn: sqlite3.Connection,
        requests: Sequence[RequestRecord],
        scores: Sequence[Score],
        inputs: Sequence[DecoyInput],
        *,
        one_by_one: bool,
    ) -> None:
        insert = self._insert_each if one_by_one else _insert_all
        conn.execute("BEGIN")
        try:
            insert(conn, _INSERT_REQUEST, request_row, requests)
            insert(conn, _INSERT_SCORE, score_row, scores)
            insert(conn, _INSERT_INPUT, input_row, inputs)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    def _insert_each(
        self,
        conn: sqlite3.Connection,
        sql: str,
        to_row: Callable[[_R], tuple[Any, ...]],
        records: Sequence[_R],
    ) -> None:
        for record in records:
            try:
                conn.execute(sql, to_row(record))
            except _DATA_ERRORS as exc:
                # A failed statement is undone on its own; the transaction goes on.
                log.error("%r: skipped a record it cannot store (%s): %r", self, exc, record)

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        with self._read_lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    # -- queries ------------------------------------------------------------------------------

    def get_request(self, request_id: str) -> RequestRecord | None:
        rows = self._query(f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE id = ?", [request_id])
        return request_record(rows[0]) if rows else None

    def scores_for_request(self, request_id: str) -> list[Score]:
        rows = self._query(
            f"SELECT {_SCORE_COLUMNS} FROM scores WHERE request_id = ? ORDER BY computed_at, rowid",
            [request_id],
        )
        return [score_record(row) for row in rows]

    def scores_for_model(
        self,
        deployment: str,
        model: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Score]:
        where, params = _window("computed_at", since, until, limit)
        rows = self._query(
            f"SELECT {_SCORE_COLUMNS} FROM scores WHERE deployment = ? AND model = ?{where}",
            [deployment, model, *params],
        )
        return [score_record(row) for row in rows]

    def requests(
        self,
        deployment: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[RequestRecord]:
        where, params = _window("received_at", since, until, limit)
        rows = self._query(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE deployment = ?{where}",
            [deployment, *params],
        )
        return [request_record(row) for row in rows]

    def decoy_inputs(self, request_id: str) -> list[DecoyInput]:
        rows = self._query(
            f"SELECT {_INPUT_COLUMNS} FROM decoy_inputs WHERE request_id = ? ORDER BY rowid",
            [request_id],
        )
        return [input_record(row) for row in rows]

    def counts(self, deployment: str) -> dict[str, int]:
        (row,) = self._query(
            "SELECT (SELECT count(*) FROM requests WHERE deployment = :d),"
            " (SELECT count(*) FROM scores WHERE deployment = :d),"
            " (SELECT count(*) FROM decoy_inputs WHERE deployment = :d),"
            " (SELECT count(*) FROM examples WHERE deployment = :d)",
            {"d": deployment},
        )
        return {"requests": row[0], "scores": row[1], "inputs": row[2], "examples": row[3]}

    # -- labelled examples ------------------------------------------------------------------

    def store_examples(self, examples: Sequence[Example]) -> list[Example]:
        if not examples:
            return []
        try:
            rows = [example_row(example) for example in examples]
        except (TypeError, ValueError) as exc:
            raise ArchiveError(f"{self!r}: cannot store an example: {exc}") from exc
        try:
            seqs = self._write_durably(_INSERT_EXAMPLE, rows, "examples")
        except sqlite3.Error as exc:
            raise ArchiveError(f"{self!r}: storing examples failed: {exc}") from exc
        return [
            msgspec.structs.replace(example, seq=seq)
            for example, seq in zip(examples, seqs, strict=True)
            if seq is not None
        ]

    def examples(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Example]:
        sql = f"SELECT {_EXAMPLE_COLUMNS} FROM examples WHERE deployment = ? AND seq > ?"
        params: list[Any] = [deployment, after_seq]
        if since is not None:
            sql += " AND received_at >= ?"
            params.append(since)
        if until is not None:
            sql += " AND received_at < ?"
            params.append(until)
        sql += " ORDER BY seq"
        if limit is not None:
            if limit < 0:  # SQLite would read it as "no limit"
                raise ArchiveError(f"limit must be 0 or more, got {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        return [example_record(row) for row in self._query(sql, params)]

    def _write_durably(self, sql: str, rows: list[tuple[Any, ...]], what: str) -> list[int | None]:
        """Run ``sql`` (``… RETURNING seq``) on each row in one synced transaction."""
        # The writer connection is the base class's to serialise: holding its lock keeps
        # this transaction from interleaving with a batch the writer thread is storing.
        if not self._flush_lock.acquire(timeout=_WRITER_WAIT_S):
            raise ArchiveError(
                f"{self!r}: the archive writer has been busy for {_WRITER_WAIT_S:g} s"
                f" (is the database failing?); {what} not stored"
            )
        try:
            conn = self._writer
            if conn is None:
                raise ArchiveError(f"{self!r} is not open: start() it before storing {what}")
            return _insert_returning_seq(conn, sql, rows)
        finally:
            self._flush_lock.release()

    def labels_for(self, request_ids: Sequence[str]) -> dict[str, Any]:
        labels: dict[str, Any] = {}
        unique = list(dict.fromkeys(request_ids))
        for start in range(0, len(unique), _IDS_PER_QUERY):
            chunk = unique[start : start + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            rows = self._query(
                f"SELECT request_id, label FROM examples WHERE request_id IN ({marks})"
                " ORDER BY seq",
                chunk,
            )
            for request_id, label in rows:
                # An id labelled in two deployments: the first label stored answers, as in
                # every backend.
                labels.setdefault(request_id, orjson.loads(label))
        return labels

    # -- events -------------------------------------------------------------------------------

    def record_event(self, event: Event) -> Event:
        try:
            row = event_row(event)
        except (TypeError, ValueError) as exc:
            raise ArchiveError(f"{self!r}: cannot store an event: {exc}") from exc
        try:
            (seq,) = self._write_durably(_INSERT_EVENT, [row], "events")
        except sqlite3.Error as exc:
            raise ArchiveError(f"{self!r}: storing an event failed: {exc}") from exc
        # No conflict clause: every insert returns its seq.
        return event_record((seq, *row))

    def events(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE deployment = ? AND seq > ?"
        params: list[Any] = [deployment, after_seq]
        if kinds is not None:
            wanted = list(kinds)
            sql += f" AND kind IN ({', '.join('?' * len(wanted))})" if wanted else " AND 0"
            params.extend(wanted)
        sql += " ORDER BY seq"
        if limit is not None:
            if limit < 0:  # SQLite would read it as "no limit"
                raise ArchiveError(f"limit must be 0 or more, got {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        return [event_record(row) for row in self._query(sql, params)]

    def _query(self, sql: str, params: list[Any] | dict[str, Any]) -> list[Any]:
        with self._read_lock:
            conn = self._reader
            if conn is None:
                raise ArchiveError(f"{self!r} is not open: start() it before querying")
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise ArchiveError(f"{self!r}: query failed: {exc}") from exc


# Rows are built in Python while holding the GIL, which the serving event loop needs too:
# build and insert in small chunks and yield between them, so the loop waits for at most
# one chunk (~0.2 ms) instead of a whole batch (or a full GIL switch interval).
_CHUNK = 64


def _insert_all(
    conn: sqlite3.Connection,
    sql: str,
    to_row: Callable[[_R], tuple[Any, ...]],
    records: Sequence[_R],
) -> None:
    for start in range(0, len(records), _CHUNK):
        conn.executemany(sql, [to_row(r) for r in records[start : start + _CHUNK]])
        time.sleep(0)  # hand the GIL over if anyone waits for it


def _insert_returning_seq(
    conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]
) -> list[int | None]:
    """Each row's new seq, or None for a duplicate, committed and synced to disk."""
    # Batches of buffered records may be lost to a power cut (synchronous=NORMAL); an
    # example or an event must not be once its caller was told it is stored, so this
    # commit syncs.
    conn.execute("PRAGMA synchronous=FULL")
    try:
        # IMMEDIATE: take the write lock now, so seqs are handed out in commit order even
        # with other processes writing the same file.
        conn.execute("BEGIN IMMEDIATE")
        try:
            seqs: list[int | None] = []
            for row in rows:
                hit = conn.execute(sql, row).fetchall()
                seqs.append(hit[0][0] if hit else None)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
    finally:
        conn.execute("PRAGMA synchronous=NORMAL")
    return seqs


def _window(
    column: str, since: float | None, until: float | None, limit: int | None
) -> tuple[str, list[Any]]:
    """SQL for ``column`` in ``[since, until)``, oldest first (ties in insertion order)."""
    sql, params = "", []
    if since is not None:
        sql += f" AND {column} >= ?"
        params.append(since)
    if until is not None:
        sql += f" AND {column} < ?"
        params.append(until)
    sql += f" ORDER BY {column}, rowid"
    if limit is not None:
        if limit < 0:  # SQLite would read it as "no limit"
            raise ArchiveError(f"limit must be 0 or more, got {limit}")
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params
