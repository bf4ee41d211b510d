"""The PostgreSQL archive: one database shared by every process and host of a deployment.

Same tables, same JSON and same query answers as the SQLite archive (it reuses its
row encoding), so a deployment can move from one to the other and compare like with like.

* JSON columns are ``json``, not ``jsonb``: ``json`` keeps the text exactly as written, so
  ``-0.0``, key order and ``"\\u0000"`` read back as they went in (``jsonb`` normalises
  numbers and refuses ``\\u0000``), and it can still be queried or cast to ``jsonb``.
* A ``seq`` identity column keeps the order rows were stored in: SQLite's ``rowid``.
* Each batch is one transaction of binary ``COPY``, the fastest way in (two to three times the
  rows a second of ``executemany`` in a pipeline). Requests go through a temporary table
  and ``INSERT … ON CONFLICT DO NOTHING``: a batch retried after a commit whose answer was
  lost must not fail on the primary key for ever.
* The schema is created or migrated on start under a transaction-scoped advisory lock, so
  processes starting together neither race nor wait on each other for long.
* A connection that breaks is replaced on the next attempt; the base class keeps the
  batch and retries it, so a server restart loses nothing accepted.

``schema`` (the constructor's, or ``?schema=`` in the URL) names the PostgreSQL schema the
tables live in, created if missing; without it the server's ``search_path`` decides.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, LiteralString, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader

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

__all__ = ["SCHEMA_VERSION", "PostgresArchive"]

log = logging.getLogger("rendezvous.archive")

_R = TypeVar("_R", RequestRecord, Score, DecoyInput)
_Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]

# Each version's statements, applied in order; {s} is the schema prefix ("" or "name.").
_MIGRATIONS: dict[int, tuple[LiteralString, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS {s}requests (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            id text PRIMARY KEY,
            deployment text NOT NULL,
            received_at double precision NOT NULL,
            features json NOT NULL,
            model text,
            version text,
            reason text NOT NULL,
            prediction json,
            latency_ms double precision NOT NULL
        )""",
        """CREATE INDEX IF NOT EXISTS requests_deployment_received
            ON {s}requests (deployment, received_at, seq)""",
        """CREATE TABLE IF NOT EXISTS {s}scores (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id text NOT NULL,
            deployment text NOT NULL,
            model text NOT NULL,
            version text NOT NULL,
            prediction json,
            probabilities json,
            error text,
            latency_ms double precision NOT NULL,
            queue_ms double precision NOT NULL,
            batch_size bigint NOT NULL,
            computed_at double precision NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS scores_request ON {s}scores (request_id)",
        """CREATE INDEX IF NOT EXISTS scores_model_computed
            ON {s}scores (deployment, model, computed_at, seq)""",
        """CREATE TABLE IF NOT EXISTS {s}decoy_inputs (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            request_id text NOT NULL,
            deployment text NOT NULL,
            model text NOT NULL,
            features json NOT NULL,
            received_at double precision NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS decoy_inputs_request ON {s}decoy_inputs (request_id)",
        "CREATE INDEX IF NOT EXISTS decoy_inputs_deployment ON {s}decoy_inputs (deployment)",
    ),
    2: (
        # One label per prediction. NULLs are distinct in a UNIQUE constraint, so standalone
        # examples (no request id) are never taken for duplicates of each other.
        """CREATE TABLE IF NOT EXISTS {s}examples (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            deployment text NOT NULL,
            request_id text,
            features json NOT NULL,
            label json NOT NULL,
            received_at double precision NOT NULL,
            CONSTRAINT examples_request UNIQUE (deployment, request_id)
        )""",
        "CREATE INDEX IF NOT EXISTS examples_request_id ON {s}examples (request_id)",
        "CREATE INDEX IF NOT EXISTS examples_deployment_seq ON {s}examples (deployment, seq)",
    ),
    3: (
        """CREATE TABLE IF NOT EXISTS {s}events (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            deployment text NOT NULL,
            kind text NOT NULL,
            model text,
            detail json NOT NULL,
            at double precision NOT NULL,
            origin text NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS events_deployment_seq ON {s}events (deployment, seq)",
    ),
}
SCHEMA_VERSION = max(_MIGRATIONS)

# Errors that may depend on the rows, not on the server (see _is_row_error).
_ROW_ERRORS = (
    psycopg.DataError,
    psycopg.IntegrityError,
    psycopg.ProgrammingError,
    OverflowError,
    TypeError,
    ValueError,
)

_REQUEST_COLUMNS: LiteralString = (
    "id, deployment, received_at, features, model, version, reason, prediction, latency_ms"
)
_SCORE_COLUMNS: LiteralString = (
    "request_id, deployment, model, version, prediction, probabilities, error,"
    " latency_ms, queue_ms, batch_size, computed_at"
)
_INPUT_COLUMNS: LiteralString = "request_id, deployment, model, features, received_at"
_EXAMPLE_COLUMNS: LiteralString = "seq, deployment, request_id, features, label, received_at"
_EVENT_COLUMNS: LiteralString = "seq, deployment, kind, model, detail, at, origin"

# Binary COPY needs each column's type up front. json's binary form is its text, so the
# JSON the row encoder already wrote goes as text.
_REQUEST_TYPES = ["text", "text", "float8", "text", "text", "text", "text", "text", "float8"]
_SCORE_TYPES = [*["text"] * 7, "float8", "float8", "int8", "float8"]
_INPUT_TYPES = ["text", "text", "text", "text", "float8"]

# Session-local staging for requests, so the COPY cannot fail on a key already stored.
_STAGING = """CREATE TEMPORARY TABLE IF NOT EXISTS rendezvous_requests_in (
    n bigint, id text, deployment text, received_at double precision, features text,
    model text, version text, reason text, prediction text, latency_ms double precision
) ON COMMIT DELETE ROWS"""

# Keepalives: a server that vanished without a word (a network partition) must fail the
# write within a minute or so, to be retried, not block the writer thread for ever.
_CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 10,
    "application_name": "rendezvous-archive",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}

_COPY_STAGING = f"COPY rendezvous_requests_in (n, {_REQUEST_COLUMNS}) FROM STDIN (FORMAT BINARY)"


class PostgresArchive(Archive):
    """Archive in a PostgreSQL database, shared by any number of processes."""

    def __init__(
        self,
        url: str,
        *,
        max_buffer: int = 100_000,
        flush_interval: float = 0.1,
        schema: str | None = None,
    ) -> None:
        super().__init__(max_buffer=max_buffer, flush_interval=flush_interval)
        self.url, url_schema = _split_schema(url)
        if schema is not None and url_schema is not None and schema != url_schema:
            raise ArchiveError(
                f"PostgreSQL archive: schema {schema!r} given, but the URL says {url_schema!r}"
            )
        self.schema = schema if schema is not None else url_schema
        if self.schema == "":
            raise ArchiveError("PostgreSQL archive: the schema name is empty")
        try:
            given = conninfo_to_dict(self.url)
        except psycopg.Error as exc:
            raise ArchiveError(f"PostgreSQL archive: bad URL: {_message(exc)}") from exc
        # Defaults only: whatever the URL says wins.
        self._defaults = {k: v for k, v in _CONNECT_DEFAULTS.items() if k not in given}
        self._sql = _Statements(self.schema)
        self._lock_key = _lock_key(self.schema)
        self._examples_key = _lock_key(self.schema, "examples")
        self._events_key = _lock_key(self.schema, "events")
        self._writer: _Connection | None = None
        # Queries come from any thread: one connection behind a lock, like SQLite's reader.
        self._reader: _Connection | None = None
        self._read_lock = threading.Lock()
        self._is_open = False
        # Examples are stored synchronously, by callers that wait for them: a connection
        # of their own, so they never queue behind a large batch of the writer thread.
        self._examples_conn: _Connection | None = None
        self._examples_lock = threading.Lock()

    def __repr__(self) -> str:
        schema = f", schema={self.schema!r}" if self.schema is not None else ""
        return f"PostgresArchive({_without_password(self.url)!r}{schema})"

    # -- backend verbs ----------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._writer = self._connect_writer(migrate=True)
            with self._read_lock:
                self._reader = self._connect()
                self._is_open = True
        except psycopg.Error as exc:
            self._close()
            raise ArchiveError(f"cannot open archive {self!r}: {_message(exc)}") from exc
        except BaseException:
            self._close()
            raise

    def _connect(self) -> _Connection:
        conn = psycopg.connect(self.url, autocommit=True, **self._defaults)
        # JSON comes back as its text and is decoded like SQLite's, by the shared row code.
        conn.adapters.register_loader("json", TextLoader)
        return conn

    def _connect_writer(self, *, migrate: bool = False) -> _Connection:
        conn = self._connect()
        try:
            if migrate:
                self._migrate(conn)
            conn.execute(_STAGING)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: _Connection) -> None:
        # The lock goes with the transaction: no process can hold it after a crash.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [self._lock_key])
            current = self._schema_version(conn)
            if current > SCHEMA_VERSION:
                raise ArchiveError(
                    f"{self!r} has schema version {current}, newer than this rendezvous-ml"
                    f" understands ({SCHEMA_VERSION}): upgrade rendezvous-ml"
                )
            if current == SCHEMA_VERSION:
                return  # nothing to create: a user without CREATE rights can still archive
            if self.schema is not None:
                conn.execute(self._sql.create_schema)
            conn.execute(self._sql.create_version_table)
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    conn.execute(self._sql.format(statement))
                conn.execute(self._sql.insert_version, [version, time.time()])

    def _schema_version(self, conn: _Connection) -> int:
        cur = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_tables"
            " WHERE schemaname = coalesce(%s, current_schema()) AND tablename = 'schema_version'",
            [self.schema],
        )
        if cur.fetchone() is None:
            return 0
        row = conn.execute(self._sql.max_version).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def _store(
        self,
        requests: Sequence[RequestRecord],
        scores: Sequence[Score],
        inputs: Sequence[DecoyInput],
    ) -> None:
        conn = self._writer
        try:
            if conn is None or conn.closed:
                if not self._is_open:
                    raise ArchiveError(f"{self!r} is not open")
                # The last one broke (server restart, terminated backend): start afresh.
                conn = self._writer = self._connect_writer()
            try:
                self._copy_batch(conn, requests, scores, inputs)
            except _ROW_ERRORS as exc:
                if conn.broken or not _is_row_error(exc):
                    raise
                # A row the schema cannot hold fails the same way on every retry, and the
                # base class retries until it succeeds: store the others, log the bad ones.
                self._insert_one_by_one(conn, requests, scores, inputs)
        except psycopg.Error as exc:
            if conn is not None and conn.broken:
                conn.close()  # replaced on the next attempt
            raise ArchiveError(f"{self!r}: write failed: {_message(exc)}") from exc

    def _copy_batch(
        self,
        conn: _Connection,
        requests: Sequence[RequestRecord],
        scores: Sequence[Score],
        inputs: Sequence[DecoyInput],
    ) -> None:
        with conn.transaction(), conn.cursor() as cur:
            if requests:
                with cur.copy(_COPY_STAGING) as copy:
                    copy.set_types(["int8", *_REQUEST_TYPES])
                    for n, record in enumerate(requests):
                        copy.write_row((n, *request_row(record)))
                cur.execute(self._sql.insert_staged)
            if scores:
                with cur.copy(self._sql.copy_scores) as copy:
                    copy.set_types(_SCORE_TYPES)
                    for item in scores:
                        copy.write_row(score_row(item))
            if inputs:
                with cur.copy(self._sql.copy_inputs) as copy:
                    copy.set_types(_INPUT_TYPES)
                    for decoy in inputs:
                        copy.write_row(input_row(decoy))

    def _insert_one_by_one(
        self,
        conn: _Connection,
        requests: Sequence[RequestRecord],
        scores: Sequence[Score],
        inputs: Sequence[DecoyInput],
    ) -> None:
        with conn.transaction():
            self._insert_each(conn, self._sql.insert_request, request_row, requests)
            self._insert_each(conn, self._sql.insert_score, score_row, scores)
            self._insert_each(conn, self._sql.insert_input, input_row, inputs)

    def _insert_each(
        self,
        conn: _Connection,
        statement: sql.Composed,
        to_row: Callable[[_R], tuple[Any, ...]],
        records: Sequence[_R],
    ) -> None:
        for record in records:
            try:
                row = to_row(record)
                with conn.transaction():  # a savepoint: a failed row is undone on its own
                    conn.execute(statement, row)
            except _ROW_ERRORS as exc:
                if conn.broken or not _is_row_error(exc):
                    raise
                log.error("%r: skipped a record it cannot store (%s): %r", self, exc, record)

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        with self._examples_lock:
            examples, self._examples_conn = self._examples_conn, None
        if examples is not None:
            examples.close()
        with self._read_lock:
            reader, self._reader = self._reader, None
            self._is_open = False
        if reader is not None:
            reader.close()

    # -- queries ------------------------------------------------------------------------------

    def get_request(self, request_id: str) -> RequestRecord | None:
        rows = self._query(self._sql.get_request, [request_id])
        return request_record(rows[0]) if rows else None

    def scores_for_request(self, request_id: str) -> list[Score]:
        rows = self._query(self._sql.scores_for_request, [request_id])
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
        rows = self._query(self._sql.select_scores + where, [deployment, model, *params])
        return [score_record(row) for row in rows]

    def requests(
        self,
        deployment: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[RequestRecord]:
        where, params = _window("received_at", since, until, limit)
        rows = self._query(self._sql.select_requests + where, [deployment, *params])
        return [request_record(row) for row in rows]

    def decoy_inputs(self, request_id: str) -> list[DecoyInput]:
        return [input_record(row) for row in self._query(self._sql.decoy_inputs, [request_id])]

    def counts(self, deployment: str) -> dict[str, int]:
        (row,) = self._query(self._sql.counts, {"d": deployment})
        return {"requests": row[0], "scores": row[1], "inputs": row[2], "examples": row[3]}

    # -- labelled examples ------------------------------------------------------------------

    def store_examples(self, examples: Sequence[Example]) -> list[Example]:
        if not examples:
            return []
        try:
            rows = [example_row(example) for example in examples]
        except (TypeError, ValueError) as exc:
            raise ArchiveError(f"{self!r}: cannot store an example: {exc}") from exc
        seqs = self._write_durably(self._insert_examples, rows, "examples")
        return [
            msgspec.structs.replace(example, seq=seq)
            for example, seq in zip(examples, seqs, strict=True)
            if seq is not None
        ]

    def _write_durably(
        self,
        insert: Callable[[_Connection, list[tuple[Any, ...]]], list[int | None]],
        rows: list[tuple[Any, ...]],
        what: str,
    ) -> list[int | None]:
        """``insert(conn, rows)`` on the connection for synchronous writes."""
        with self._examples_lock:
            if not self._is_open:
                raise ArchiveError(f"{self!r} is not open: start() it before storing {what}")
            conn = self._examples_conn
            try:
                if conn is None or conn.closed:
                    conn = self._examples_conn = self._connect()
                return insert(conn, rows)
            except psycopg.Error as exc:
                # Not retried here: a commit whose answer was lost would store a standalone
                # example (or an event) twice. The caller sees the error; the next call
                # reconnects.
                if conn is not None and conn.broken:
                    conn.close()
                raise ArchiveError(f"{self!r}: storing {what} failed: {_message(exc)}") from exc

    def _insert_examples(self, conn: _Connection, rows: list[tuple[Any, ...]]) -> list[int | None]:
        """Each row's new seq, or None for a duplicate."""
        return self._insert_in_turn(conn, self._examples_key, self._sql.insert_example, rows)

    def _insert_events(self, conn: _Connection, rows: list[tuple[Any, ...]]) -> list[int | None]:
        return self._insert_in_turn(conn, self._events_key, self._sql.insert_event, rows)

    @staticmethod
    def _insert_in_turn(
        conn: _Connection, lock_key: int, statement: sql.Composed, rows: list[tuple[Any, ...]]
    ) -> list[int | None]:
        seqs: list[int | None] = []
        with conn.transaction():
            # An identity hands out numbers when rows are inserted, not when they commit:
            # two writers could commit seq 6 before seq 5, and a reader that read up to 6
            # would never see 5. Taking turns makes seq order commit order.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key])
            for row in rows:
                hit = conn.execute(statement, row).fetchone()
                seqs.append(int(hit[0]) if hit is not None else None)
        return seqs

    def examples(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Example]:
        text: LiteralString = ""
        params: list[Any] = [deployment, after_seq]
        if since is not None:
            text += " AND received_at >= %s"
            params.append(since)
        if until is not None:
            text += " AND received_at < %s"
            params.append(until)
        text += " ORDER BY seq"
        if limit is not None:
            if limit < 0:
                raise ArchiveError(f"limit must be 0 or more, got {limit}")
            text += " LIMIT %s"
            params.append(limit)
        rows = self._query(self._sql.select_examples + sql.SQL(text), params)
        return [example_record(row) for row in rows]

    def labels_for(self, request_ids: Sequence[str]) -> dict[str, Any]:
        if not request_ids:
            return {}
        labels: dict[str, Any] = {}
        for request_id, label in self._query(self._sql.labels_for, [list(request_ids)]):
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
        (seq,) = self._write_durably(self._insert_events, [row], "events")
        return event_record((seq, *row))

    def events(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        text: LiteralString = ""
        params: list[Any] = [deployment, after_seq]
        if kinds is not None:
            text += " AND kind = ANY(%s)"
            params.append(list(kinds))
        text += " ORDER BY seq"
        if limit is not None:
            if limit < 0:
                raise ArchiveError(f"limit must be 0 or more, got {limit}")
            text += " LIMIT %s"
            params.append(limit)
        rows = self._query(self._sql.select_events + sql.SQL(text), params)
        return [event_record(row) for row in rows]

    def _query(
        self, statement: sql.Composed, params: Sequence[Any] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        with self._read_lock:
            if not self._is_open:
                raise ArchiveError(f"{self!r} is not open: start() it before querying")
            try:
                try:
                    return self._fetch(statement, params)
                except psycopg.OperationalError:
                    if self._reader is None or not self._reader.closed:
                        raise
                    # The server restarted or dropped this connection: a read can be
                    # retried, once, on a fresh one.
                    return self._fetch(statement, params)
            except psycopg.Error as exc:
                raise ArchiveError(f"{self!r}: query failed: {_message(exc)}") from exc

    def _fetch(
        self, statement: sql.Composed, params: Sequence[Any] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        conn = self._reader
        if conn is None or conn.closed:
            conn = self._reader = self._connect()
        return conn.execute(statement, params).fetchall()


class _Statements:
    """Every statement, with the table names qualified by the schema when there is one."""

    def __init__(self, schema: str | None) -> None:
        self._prefix = sql.SQL("{}.").format(sql.Identifier(schema)) if schema else sql.SQL("")
        f = self.format
        self.create_schema = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(schema or "")
        )
        self.create_version_table = f(
            "CREATE TABLE IF NOT EXISTS {s}schema_version"
            " (version integer PRIMARY KEY, applied_at double precision NOT NULL)"
        )
        self.max_version = f("SELECT max(version) FROM {s}schema_version")
        self.insert_version = f("INSERT INTO {s}schema_version VALUES (%s, %s)")
        # First write of a request id wins, in the order the batch holds them.
        self.insert_staged = f(
            f"INSERT INTO {{s}}requests ({_REQUEST_COLUMNS})"
            " SELECT id, deployment, received_at, features::json, model, version, reason,"
            " prediction::json, latency_ms FROM rendezvous_requests_in ORDER BY n"
            " ON CONFLICT (id) DO NOTHING"
        )
        self.copy_scores = f(f"COPY {{s}}scores ({_SCORE_COLUMNS}) FROM STDIN (FORMAT BINARY)")
        self.copy_inputs = f(
            f"COPY {{s}}decoy_inputs ({_INPUT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        )
        self.insert_request = f(
            f"INSERT INTO {{s}}requests ({_REQUEST_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING"
        )
        self.insert_score = f(
            f"INSERT INTO {{s}}scores ({_SCORE_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
        self.insert_input = f(
            f"INSERT INTO {{s}}decoy_inputs ({_INPUT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)"
        )
        self.get_request = f(f"SELECT {_REQUEST_COLUMNS} FROM {{s}}requests WHERE id = %s")
        self.scores_for_request = f(
            f"SELECT {_SCORE_COLUMNS} FROM {{s}}scores WHERE request_id = %s"
            " ORDER BY computed_at, seq"
        )
        self.select_scores = f(
            f"SELECT {_SCORE_COLUMNS} FROM {{s}}scores WHERE deployment = %s AND model = %s"
        )
        self.select_requests = f(
            f"SELECT {_REQUEST_COLUMNS} FROM {{s}}requests WHERE deployment = %s"
        )
        self.decoy_inputs = f(
            f"SELECT {_INPUT_COLUMNS} FROM {{s}}decoy_inputs WHERE request_id = %s ORDER BY seq"
        )
        self.counts = f(
            "SELECT (SELECT count(*) FROM {s}requests WHERE deployment = %(d)s),"
            " (SELECT count(*) FROM {s}scores WHERE deployment = %(d)s),"
            " (SELECT count(*) FROM {s}decoy_inputs WHERE deployment = %(d)s),"
            " (SELECT count(*) FROM {s}examples WHERE deployment = %(d)s)"
        )
        # No row comes back for a duplicate: that is how store_examples tells new from
        # repeated.
        self.insert_example = f(
            "INSERT INTO {s}examples (deployment, request_id, features, label, received_at)"
            " VALUES (%s, %s, %s::json, %s::json, %s)"
            " ON CONFLICT (deployment, request_id) DO NOTHING RETURNING seq"
        )
        self.select_examples = f(
            f"SELECT {_EXAMPLE_COLUMNS} FROM {{s}}examples WHERE deployment = %s AND seq > %s"
        )
        self.labels_for = f(
            "SELECT request_id, label FROM {s}examples WHERE request_id = ANY(%s) ORDER BY seq"
        )
        self.insert_event = f(
            "INSERT INTO {s}events (deployment, kind, model, detail, at, origin)"
            " VALUES (%s, %s, %s, %s::json, %s, %s) RETURNING seq"
        )
        self.select_events = f(
            f"SELECT {_EVENT_COLUMNS} FROM {{s}}events WHERE deployment = %s AND seq > %s"
        )

    def format(self, template: LiteralString) -> sql.Composed:
        return sql.SQL(template).format(s=self._prefix)


def _window(
    column: LiteralString, since: float | None, until: float | None, limit: int | None
) -> tuple[sql.SQL, list[Any]]:
    """SQL for ``column`` in ``[since, until)``, oldest first (ties in insertion order)."""
    text, params = "", []
    if since is not None:
        text += f" AND {column} >= %s"
        params.append(since)
    if until is not None:
        text += f" AND {column} < %s"
        params.append(until)
    text += f" ORDER BY {column}, seq"
    if limit is not None:
        if limit < 0:
            raise ArchiveError(f"limit must be 0 or more, got {limit}")
        text += " LIMIT %s"
        params.append(limit)
    return sql.SQL(text), params


def _split_schema(url: str) -> tuple[str, str | None]:
    """``url`` without its ``schema`` query parameter (libpq would refuse it), and its value."""
    if not url.startswith(("postgresql://", "postgres://")):
        return url, None  # a "key=value" conninfo: no URL query to read
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if not schemas:
        return url, None
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[-1]


def _without_password(url: str) -> str:
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _lock_key(schema: str | None, purpose: str = "") -> int:
    """An advisory lock of one schema (its creation, or a ``purpose``), stable everywhere."""
    name = f"rendezvous-ml archive {schema or ''}" + (f" {purpose}" if purpose else "")
    digest = hashlib.blake2b(name.encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _is_row_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about a row (skip it) rather than the database (retry the batch)."""
    if isinstance(exc, psycopg.ProgrammingError):
        # From the server (a missing table, a missing privilege) it is about the database,
        # and skipping the rows would lose them. psycopg's own, with no SQLSTATE, means a
        # value it cannot send.
        return exc.sqlstate is None
    return True


def _message(exc: BaseException) -> str:
    # psycopg's messages can span lines (DETAIL, CONTEXT): the first one says what happened.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
