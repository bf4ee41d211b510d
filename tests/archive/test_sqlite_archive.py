"""What only the SQLite archive promises: the file, its schema, and what JSON cannot hold."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rendezvous.archive import RequestRecord, SQLiteArchive
from rendezvous.archive.base import Event, Example
from rendezvous.archive.sqlite import SCHEMA_VERSION
from rendezvous.errors import ArchiveError
from rendezvous.messages import Score


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "a" / "b" / "archive.db"


@pytest.fixture
def archive(path: Path) -> Iterator[SQLiteArchive]:
    archive = SQLiteArchive(path)
    archive.start()
    yield archive
    archive.stop()


def inspect(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_file_and_its_parents_are_created_in_wal_mode(
    archive: SQLiteArchive, path: Path
) -> None:
    assert path.is_file()
    assert inspect(path, "PRAGMA journal_mode") == [("wal",)]
    assert archive._writer is not None
    assert archive._writer.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_the_schema_is_versioned_and_indexed(archive: SQLiteArchive, path: Path) -> None:
    versions = inspect(path, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    names = {name for (name,) in inspect(path, "SELECT name FROM sqlite_master")}
    assert {"requests", "scores", "decoy_inputs", "examples", "events", "schema_version"} <= names
    assert {"scores_request", "scores_model_computed", "requests_deployment_received"} <= names
    assert {"examples_request", "examples_request_id", "examples_deployment_seq"} <= names
    assert "events_deployment_seq" in names


def test_reopening_keeps_the_schema_and_the_data(path: Path) -> None:
    with SQLiteArchive(path) as first:
        first.put_scores([Score("r1", "fraud", "m", "1")])
    with SQLiteArchive(path) as second:
        assert second.counts("fraud")["scores"] == 1
    assert inspect(path, "SELECT count(*) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_a_version_1_file_gains_the_examples_table_and_keeps_its_data(path: Path) -> None:
    with SQLiteArchive(path) as first:
        first.put_scores([Score("r1", "fraud", "m", "1")])
    conn = sqlite3.connect(path)  # back to what rendezvous-ml with schema version 1 wrote
    with conn:
        conn.execute("DROP TABLE events")
        conn.execute("DROP TABLE examples")
        conn.execute("DELETE FROM schema_version WHERE version > 1")
    conn.close()

    with SQLiteArchive(path) as again:
        example = Example("fraud", "r1", [1.0], 1, 0.0)
        assert [e.seq for e in again.store_examples([example])] == [1]
        assert again.counts("fraud") == {"requests": 0, "scores": 1, "inputs": 0, "examples": 1}


def test_a_version_2_file_gains_the_events_table_and_keeps_its_data(path: Path) -> None:
    with SQLiteArchive(path) as first:
        first.store_examples([Example("fraud", "r1", [1.0], 1, 0.0)])
    conn = sqlite3.connect(path)  # back to what rendezvous-ml with schema version 2 wrote
    with conn:
        conn.execute("DROP TABLE events")
        conn.execute("DELETE FROM schema_version WHERE version > 2")
    conn.close()

    with SQLiteArchive(path) as again:
        stored = again.record_event(Event("fraud", "promote", "m", {}, 0.0))
        assert stored.seq == 1
        assert again.events("fraud") == [stored]
        assert again.counts("fraud")["examples"] == 1


def test_recording_an_event_syncs_then_goes_back_to_normal(archive: SQLiteArchive) -> None:
    archive.record_event(Event("fraud", "promote", "m", {}, 0.0))
    assert archive._writer is not None
    assert archive._writer.execute("PRAGMA synchronous").fetchone() == (1,)


def test_storing_examples_syncs_then_goes_back_to_normal(archive: SQLiteArchive) -> None:
    # FULL for the examples' commit (durable once stored), NORMAL again for the batches.
    archive.store_examples([Example("fraud", "r1", [1.0], 1, 0.0)])
    assert archive._writer is not None
    assert archive._writer.execute("PRAGMA synchronous").fetchone() == (1,)


def test_a_file_from_a_newer_version_is_refused(path: Path) -> None:
    with SQLiteArchive(path):
        pass
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    conn.close()

    archive = SQLiteArchive(path)
    with pytest.raises(ArchiveError, match="newer"):
        archive.start()
    archive.stop()  # harmless: it never started


def test_a_file_that_is_not_a_database_is_an_archive_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not sqlite, just some bytes " * 100)
    with pytest.raises(ArchiveError, match="cannot open archive"):
        SQLiteArchive(path).start()


def test_queries_before_start_say_so(path: Path) -> None:
    with pytest.raises(ArchiveError, match="not open"):
        SQLiteArchive(path).counts("fraud")


def test_json_columns_are_readable_with_sqlite_itself(archive: SQLiteArchive, path: Path) -> None:
    archive.put_scores([Score("r1", "fraud", "m", "1", prediction="yes", probabilities=[0.2, 0.8])])
    archive.flush()
    assert inspect(path, "SELECT prediction, json_extract(probabilities, '$[1]') FROM scores") == [
        ('"yes"', 0.8)
    ]


def test_numpy_values_are_stored_as_plain_numbers(archive: SQLiteArchive) -> None:
    # sqlite3 would otherwise store numpy scalars as BLOBs of their bytes.
    archive.put_scores(
        [
            Score(
                "r1",
                "fraud",
                "m",
                "1",
                prediction=np.int64(1),
                probabilities=np.array([0.25, 0.75]),  # type: ignore[arg-type]
                latency_ms=np.float64(1.5),
                batch_size=np.int64(8),  # type: ignore[arg-type]
                computed_at=np.float32(2.0),  # type: ignore[arg-type]
            )
        ]
    )
    archive.flush()
    (got,) = archive.scores_for_request("r1")
    assert got == Score(
        "r1", "fraud", "m", "1", prediction=1, probabilities=[0.25, 0.75], latency_ms=1.5,
        batch_size=8, computed_at=2.0,
    )  # fmt: skip
    assert type(got.prediction) is int
    assert type(got.batch_size) is int


def test_what_json_cannot_hold_is_kept_as_text(archive: SQLiteArchive) -> None:
    odd = [2**80, {"a", "set"}, object()]
    archive.put_scores([Score(f"r{i}", "fraud", "m", "1", prediction=p) for i, p in enumerate(odd)])
    archive.flush()
    got = [archive.scores_for_request(f"r{i}")[0].prediction for i in range(len(odd))]
    assert got[0] == str(2**80)
    assert all(isinstance(p, str) for p in got)


def test_a_bad_row_is_skipped_and_logged(
    archive: SQLiteArchive, caplog: pytest.LogCaptureFixture
) -> None:
    good = RequestRecord("r1", "fraud", 1.0, [1.0], "m", "1", "champion")
    bad = RequestRecord("r2", "fraud", 1.0, [1.0], "m", "1", None)  # type: ignore[arg-type]
    archive.put_request(bad)
    archive.put_request(good)
    archive.flush()

    assert archive.requests("fraud") == [good]
    assert "skipped a record" in caplog.text
    assert "r2" in caplog.text


def test_queries_from_other_threads_while_the_writer_writes(path: Path) -> None:
    archive = SQLiteArchive(path, flush_interval=0.001)
    archive.start()
    give_up = threading.Event()
    seen: list[list[int]] = [[], [], []]
    errors: list[BaseException] = []

    def reader(counts: list[int]) -> None:
        try:
            while not give_up.is_set() and (not counts or counts[-1] < 2000):
                counts.append(archive.counts("fraud")["scores"])
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(counts,)) for counts in seen]
    for thread in readers:
        thread.start()
    for i in range(2000):
        archive.put_scores([Score(f"r{i}", "fraud", "m", "1")])
    archive.flush()
    for thread in readers:
        thread.join(10)
    give_up.set()
    archive.stop()

    assert errors == []
    for counts in seen:
        assert counts == sorted(counts)  # whole batches appear, never go away
        assert counts[-1] == 2000


def test_repr_names_the_file(path: Path) -> None:
    assert repr(SQLiteArchive(path)) == f"SQLiteArchive({str(path)!r})"
