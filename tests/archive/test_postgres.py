"""What only the PostgreSQL archive promises: a shared schema, redelivery, outages, speed.

Against a real server (tests/pg_server.py), each test in a schema of its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql
from test_archive_conformance import T0, decoy, req, score

from pg_server import PostgresServer, drop_schema
from rendezvous.archive import Archive, PostgresArchive, SQLiteArchive, open_archive
from rendezvous.archive.postgres import SCHEMA_VERSION
from rendezvous.errors import ArchiveError
from rendezvous.messages import Score


@pytest.fixture
def schema(pg_url: str) -> str:
    name = PostgresArchive(pg_url).schema
    assert name is not None
    return name


@pytest.fixture
def archive(pg_url: str) -> Iterator[PostgresArchive]:
    archive = PostgresArchive(pg_url)
    archive.start()
    yield archive
    archive.stop()


def inspect(server: PostgresServer, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


# -- the schema -----------------------------------------------------------------------------


def test_the_schema_is_created_versioned_and_indexed(
    archive: PostgresArchive, postgres_server: PostgresServer, schema: str
) -> None:
    tables = inspect(
        postgres_server, "SELECT tablename FROM pg_tables WHERE schemaname = %s", schema
    )
    assert {t for (t,) in tables} == {
        "requests",
        "scores",
        "decoy_inputs",
        "examples",
        "events",
        "schema_version",
    }
    indexes = inspect(
        postgres_server, "SELECT indexname FROM pg_indexes WHERE schemaname = %s", schema
    )
    assert {
        "scores_request",
        "scores_model_computed",
        "requests_deployment_received",
        "events_deployment_seq",
    } <= {i for (i,) in indexes}
    version = sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
    with psycopg.connect(postgres_server.url) as conn:
        versions = conn.execute(version + sql.SQL(" ORDER BY version")).fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_starting_again_is_idempotent_and_keeps_the_data(
    pg_url: str, postgres_server: PostgresServer, schema: str
) -> None:
    for i in range(3):
        with PostgresArchive(pg_url) as archive:
            archive.put_request(req(i))
    with PostgresArchive(pg_url) as archive:
        assert archive.counts("fraud")["requests"] == 3
    rows = inspect(
        postgres_server,
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_version'",
        schema,
    )
    assert rows == [(1,)]


def test_archives_started_at_once_on_one_new_schema_all_work(pg_url: str) -> None:
    # Separate connections are separate sessions to the server, as separate processes
    # would be: without the advisory lock, CREATE … IF NOT EXISTS races and fails.
    n_archives = 6
    archives = [PostgresArchive(pg_url, flush_interval=0.01) for _ in range(n_archives)]
    barrier = threading.Barrier(n_archives)
    errors: list[BaseException] = []

    def start(archive: Archive) -> None:
        try:
            barrier.wait()
            archive.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(a,)) for a in archives]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        for n, archive in enumerate(archives):
            for i in range(100):
                archive.put_request(req(f"{n}-{i}"))
    finally:
        for archive in archives:
            archive.stop()
    with PostgresArchive(pg_url) as again:
        assert again.counts("fraud")["requests"] == n_archives * 100


def test_a_schema_newer_than_this_version_is_refused(pg_url: str, schema: str) -> None:
    with PostgresArchive(pg_url) as archive, psycopg.connect(archive.url) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {}.schema_version VALUES (%s, 0)").format(sql.Identifier(schema)),
            [SCHEMA_VERSION + 1],
        )
    with pytest.raises(ArchiveError, match="newer"):
        PostgresArchive(pg_url).start()


def test_an_odd_schema_name_is_quoted(postgres_server: PostgresServer) -> None:
    odd = 'Odd "schema"; DROP TABLE x'
    try:
        with PostgresArchive(postgres_server.url, schema=odd) as archive:
            archive.put_request(req(1))
            archive.flush()
            assert archive.get_request("r1") == req(1)
        names = inspect(postgres_server, "SELECT 1 FROM pg_namespace WHERE nspname = %s", odd)
        assert names == [(1,)]
    finally:
        drop_schema(postgres_server.url, odd)


# -- redelivery -------------------------------------------------------------------------------


def test_a_redelivered_batch_neither_fails_nor_duplicates_requests(
    archive: PostgresArchive, caplog: pytest.LogCaptureFixture
) -> None:
    batch = [req(i) for i in range(100)]
    scores = [score(f"r{i}") for i in range(100)]
    archive._store(batch, scores, [])
    # Delivered again (a commit whose answer was lost), with a new request and an id twice
    # in one batch: the first write of each id wins, and the new one goes in.
    again = [*[req(i, prediction="changed") for i in range(100)], req(100), req(100, reason="x")]
    archive._store(again, [], [])
    for record in batch:
        archive.put_request(record)
    archive.flush()

    assert archive.counts("fraud") == {"requests": 101, "scores": 100, "inputs": 0, "examples": 0}
    assert archive.requests("fraud") == [*batch, req(100)]
    assert "failed" not in caplog.text
    assert "skipped" not in caplog.text


# -- exact round trips and what PostgreSQL cannot hold ----------------------------------------


def test_json_is_kept_exactly_and_is_queryable(
    archive: PostgresArchive, postgres_server: PostgresServer, schema: str
) -> None:
    # json, not jsonb: the sign of -0.0, key order and \u0000 survive.
    record = req(1, features=[-0.0, 5e-324, 0.1 + 0.2], prediction={"b": "\u0000", "a": -0.0})
    archive.put_request(record)
    archive.put_scores([score("r1", prediction="yes", probabilities=[0.2, 0.8])])
    archive.flush()

    got = archive.get_request("r1")
    assert got == record
    assert got is not None and math.copysign(1, got.features[0]) == -1
    assert list(got.prediction) == ["b", "a"]
    query = sql.SQL("SELECT prediction #>> '{{}}', probabilities -> 1 FROM {}.scores").format(
        sql.Identifier(schema)
    )
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute(query).fetchall() == [("yes", 0.8)]


def test_numpy_values_are_stored_as_plain_numbers(archive: PostgresArchive) -> None:
    archive.put_scores(
        [
            Score(
                "r1", "fraud", "m", "1", prediction=np.int64(1),
                probabilities=np.array([0.25, 0.75]),  # type: ignore[arg-type]
                latency_ms=np.float64(1.5), batch_size=np.int64(8),  # type: ignore[arg-type]
                computed_at=np.float32(2.0),  # type: ignore[arg-type]
            )
        ]
    )  # fmt: skip
    archive.flush()
    (got,) = archive.scores_for_request("r1")
    assert got == Score(
        "r1", "fraud", "m", "1", prediction=1, probabilities=[0.25, 0.75], latency_ms=1.5,
        batch_size=8, computed_at=2.0,
    )  # fmt: skip
    assert (type(got.prediction), type(got.batch_size)) == (int, int)


def test_text_postgresql_cannot_hold_is_skipped_and_logged(
    archive: PostgresArchive, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL text has no NUL character (in JSON it is the escape \u0000, which is fine).
    good = [score("r1", m) for m in ("a", "b")]
    bad = score("r1", "c", error="nul \x00 inside")
    huge = score("r1", "d", batch_size=2**70)
    archive.put_scores([good[0], bad, huge, good[1]])
    archive.flush()

    assert archive.scores_for_request("r1") == good
    assert caplog.text.count("skipped a record") == 2


def test_a_database_problem_is_retried_not_taken_for_bad_rows(
    archive: PostgresArchive,
    postgres_server: PostgresServer,
    schema: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A missing table (or privilege) fails every row: skipping them all would lose them.
    def rename(old: str, new: str) -> None:
        statement = sql.SQL("ALTER TABLE {}.{} RENAME TO {}").format(
            sql.Identifier(schema), sql.Identifier(old), sql.Identifier(new)
        )
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute(statement)

    rename("scores", "scores_away")
    archive.put_scores([score("r1", m) for m in "abc"])
    flusher = threading.Thread(target=archive.flush)
    try:
        flusher.start()
        deadline = time.monotonic() + 30
        while archive._failures < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert archive._failures >= 2
    finally:
        rename("scores_away", "scores")
        flusher.join(30)

    assert [s.model for s in archive.scores_for_request("r1")] == ["a", "b", "c"]
    assert 'relation "' in caplog.text
    assert "skipped" not in caplog.text


# -- the server going away --------------------------------------------------------------------


def _backend_pids(archive: PostgresArchive) -> list[int]:
    conns = [archive._writer, archive._reader]
    return [c.info.backend_pid for c in conns if c is not None and not c.closed]


def test_terminated_connections_are_replaced_and_nothing_is_lost(
    pg_url: str, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    archive = PostgresArchive(pg_url, flush_interval=3600)
    archive.start()
    try:
        archive.put_request(req(0))
        archive.flush()
        pids = _backend_pids(archive)
        assert len(pids) == 2
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])

        for i in range(1, 50):
            archive.put_request(req(i))
        archive.put_scores([score("r1", m) for m in "abc"])
        archive.flush()  # the first attempt meets the dead connection; a retry reconnects

        assert "archive write failed (attempt 1)" in caplog.text
        assert archive.counts("fraud") == {"requests": 50, "scores": 3, "inputs": 0, "examples": 0}
        assert set(_backend_pids(archive)).isdisjoint(pids)
    finally:
        archive.stop()


def test_writes_wait_out_a_server_restart_and_nothing_accepted_is_lost(
    pg_url: str, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    if not postgres_server.owned:
        pytest.skip("only a throwaway server can be stopped (this one is shared)")
    archive = PostgresArchive(pg_url, flush_interval=0.01)
    archive.start()
    try:
        for i in range(100):
            archive.put_request(req(i))
        archive.flush()

        postgres_server.stop()
        try:
            for i in range(100, 300):
                archive.put_request(req(i))
                archive.put_scores([score(f"r{i}")])
                archive.put_inputs([decoy(f"r{i}")])
            deadline = time.monotonic() + 30
            while archive._failures < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert archive._failures >= 3  # the writer keeps trying...
            assert archive.backlog == 200  # ...and keeps every request it accepted
            with pytest.raises(ArchiveError, match="query failed"):
                archive.counts("fraud")
        finally:
            postgres_server.start()

        deadline = time.monotonic() + 30
        while archive.backlog and time.monotonic() < deadline:
            time.sleep(0.05)
        assert archive.backlog == 0
        assert archive.counts("fraud") == {
            "requests": 300,
            "scores": 200,
            "inputs": 200,
            "examples": 0,
        }
        assert "archive write failed" in caplog.text
    finally:
        archive.stop()


def test_a_server_that_is_not_there_is_an_archive_error_on_start() -> None:
    archive = PostgresArchive("postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")
    with pytest.raises(ArchiveError, match="cannot open archive"):
        archive.start()
    archive.stop()  # harmless: it never started


# -- URLs -------------------------------------------------------------------------------------


def test_the_schema_comes_from_the_url_or_the_constructor() -> None:
    from_url = PostgresArchive("postgresql://u@db:5433/rv?sslmode=disable&schema=fraud")
    assert from_url.schema == "fraud"
    assert from_url.url == "postgresql://u@db:5433/rv?sslmode=disable"  # libpq refuses schema
    assert PostgresArchive("postgres://db/rv", schema="x").schema == "x"
    assert PostgresArchive("postgres://db/rv?schema=x", schema="x").schema == "x"
    assert PostgresArchive("host=db dbname=rv", schema="x").schema == "x"
    assert PostgresArchive("postgres://db/rv").schema is None
    with pytest.raises(ArchiveError, match="schema 'y' given, but the URL says 'x'"):
        PostgresArchive("postgres://db/rv?schema=x", schema="y")
    with pytest.raises(ArchiveError, match="schema name is empty"):
        PostgresArchive("postgres://db/rv?schema=")


def test_a_bad_url_is_refused_at_construction() -> None:
    with pytest.raises(ArchiveError, match="bad URL"):
        PostgresArchive("postgresql://db/rv?no_such_option=1")


def test_repr_hides_the_password() -> None:
    archive = open_archive("postgresql://rv:s3cret@db/rv?schema=a", max_buffer=7)
    assert isinstance(archive, PostgresArchive)
    assert repr(archive) == "PostgresArchive('postgresql://rv:***@db/rv', schema='a')"
    assert archive.max_buffer == 7


def test_queries_before_start_say_so() -> None:
    with pytest.raises(ArchiveError, match="not open"):
        PostgresArchive("postgresql://db/rv").counts("fraud")


# -- speed ----------------------------------------------------------------------------------


def _bulk(archive: Archive, n: int) -> float:
    """Rows a second to put and store ``n`` requests and ``3 n`` scores, 1000 at a time."""
    started = time.perf_counter()
    archive.start()
    for chunk in range(0, n, 1000):
        for i in range(chunk, chunk + 1000):
            archive.put_request(req(i))
        archive.put_scores(
            [
                score(f"r{i}", m, at=T0 + i, probabilities=[0.5, 0.5])
                for i in range(chunk, chunk + 1000)
                for m in "abc"
            ]
        )
        archive.flush()
    archive.stop()
    return 4 * n / (time.perf_counter() - started)


def test_bulk_write_20k_requests_60k_scores(pg_url: str, tmp_path: Path) -> None:
    n = 20_000
    sqlite_rate = _bulk(SQLiteArchive(tmp_path / "bulk.db"), n)
    postgres_rate = _bulk(PostgresArchive(pg_url), n)
    with PostgresArchive(pg_url) as again:
        assert again.counts("fraud") == {"requests": n, "scores": 3 * n, "inputs": 0, "examples": 0}
    # A figure to read with -s, not to assert on: it depends on the machine.
    print(
        f"\nbulk write of {n} requests + {3 * n} scores:"
        f" SQLite {sqlite_rate:,.0f} rows/s, PostgreSQL {postgres_rate:,.0f} rows/s"
        f" ({postgres_rate / sqlite_rate:.2f}x SQLite's rate)"
    )
