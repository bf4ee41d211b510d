"""One suite for every archive backend: a new backend is done when this passes.

To add one, write a factory like ``_sqlite`` below and list it in ``BACKENDS``. A factory
asks for the fixtures it needs, so the memory and SQLite runs never need a PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rendezvous.archive import (
    Archive,
    DecoyInput,
    MemoryArchive,
    PostgresArchive,
    RequestRecord,
    SQLiteArchive,
)
from rendezvous.archive import base as archive_base
from rendezvous.archive.base import Event, Example
from rendezvous.errors import ArchiveError
from rendezvous.messages import Score

T0 = 1_700_000_000.0


@dataclass
class Backend:
    name: str
    new: Callable[..., Archive]  # an archive not started yet, on this test's storage
    reopen_: Callable[[Archive], Archive]
    opened: list[Archive] = field(default_factory=list)

    def make(self, **options: Any) -> Archive:
        archive = self.new(**options)
        self.opened.append(archive)
        return archive

    def reopen(self, stopped: Archive) -> Archive:
        """A started archive on the storage ``stopped`` wrote to: what survives a restart."""
        archive = self.reopen_(stopped)
        self.opened.append(archive)
        return archive


def _memory(request: pytest.FixtureRequest) -> Backend:
    def reopen(stopped: Archive) -> Archive:
        stopped.start()  # the data lives in the object: restarting it must keep it
        return stopped

    return Backend("memory", lambda **kw: MemoryArchive(**kw), reopen)


def _sqlite(request: pytest.FixtureRequest) -> Backend:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    path = tmp_path / "not-yet-there" / "archive.db"  # the parent is created on start

    def reopen(stopped: Archive) -> Archive:
        archive = SQLiteArchive(path)
        archive.start()
        return archive

    return Backend("sqlite", lambda **kw: SQLiteArchive(path, **kw), reopen)


def _postgres(request: pytest.FixtureRequest) -> Backend:
    url: str = request.getfixturevalue("pg_url")  # a schema of this test's own

    def reopen(stopped: Archive) -> Archive:
        archive = PostgresArchive(url)
        archive.start()
        return archive

    return Backend("postgres", lambda **kw: PostgresArchive(url, **kw), reopen)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Backend]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    backend = BACKENDS[request.param](request)
    yield backend
    for archive in backend.opened:
        archive.stop()


@pytest.fixture
def archive(backend: Backend) -> Archive:
    archive = backend.make()
    archive.start()
    return archive


# -- records --------------------------------------------------------------------------------


def req(
    i: int | str, deployment: str = "fraud", at: float | None = None, **kw: Any
) -> RequestRecord:
    n = i if isinstance(i, int) else 0
    fields: dict[str, Any] = {
        "features": [0.1 * n, -2.5, 1e-300],
        "model": "xgb",
        "version": "3",
        "reason": "champion",
        "prediction": n % 2,
        "latency_ms": 1.25,
    }
    fields.update(kw)
    return RequestRecord(
        id=f"r{i}", deployment=deployment, received_at=T0 + n if at is None else at, **fields
    )


def score(
    request_id: str, model: str = "xgb", at: float = T0, deployment: str = "fraud", **kw: Any
) -> Score:
    fields: dict[str, Any] = {"version": "3", "prediction": 1, "latency_ms": 0.5}
    fields.update(kw)
    return Score(
        request_id=request_id, deployment=deployment, model=model, computed_at=at, **fields
    )


def decoy(request_id: str, model: str = "decoy", deployment: str = "fraud") -> DecoyInput:
    return DecoyInput(
        request_id=request_id,
        deployment=deployment,
        model=model,
        features=[0.1, 0.2, 1e-300],
        received_at=T0 + 0.001,
    )


def archived(score: Score) -> Score:
    """What an archive gives back: where the answer was routed is not archived."""
    return msgspec.structs.replace(score, reply_to="")


def same(got: Sequence[Any], want: Sequence[Any]) -> None:
    assert list(got) == list(want)
    # == says True == 1 and 1.0 == 1: the types of predictions must survive too.
    for g, w in zip(got, want, strict=True):
        assert type(g.prediction) is type(w.prediction)


# -- round trips ----------------------------------------------------------------------------


def test_requests_round_trip(archive: Archive) -> None:
    records = [
        req(1, at=T0 + 0.123456789, latency_ms=12.345678901234),
        req(2, prediction="approve", reason="fallback:rules", model="rules", version="v1"),
        req(3, model=None, version=None, reason="default", prediction=None),
        req(4, prediction=0.1 + 0.2, features=[-0.0, 1.7976931348623157e308, 5e-324]),
        req(5, prediction=True, reason="error"),
    ]
    for record in records:
        archive.put_request(record)
    archive.flush()

    same([archive.get_request(r.id) for r in records], records)
    assert archive.get_request("unknown") is None


def test_scores_round_trip(archive: Archive) -> None:
    scores = [
        score(
            "r1",
            "xgb",
            at=T0 + 0.2,
            probabilities=[0.25, 0.75],
            latency_ms=0.123456789,
            queue_ms=4.5,
            batch_size=16,
            reply_to="collector-a",
        ),
        score("r1", "broken", at=T0 + 0.1, prediction=None, error="ValueError: boom"),
        score("r1", "rules", at=T0 + 0.3, prediction="approve", probabilities=None),
        score("r1", "reg", at=T0 + 0.4, prediction=0.1 + 0.2, probabilities=[]),
        score("r1", "flag", at=T0 + 0.5, prediction=False),
        score("r2", "xgb", at=T0 + 0.2),
    ]
    archive.put_scores(scores)
    archive.flush()

    # oldest first, whatever order they were put in
    same(
        archive.scores_for_request("r1"),
        [archived(s) for s in [scores[i] for i in (1, 0, 2, 3, 4)]],
    )
    same(archive.scores_for_request("r2"), [scores[5]])
    assert archive.scores_for_request("unknown") == []
    error = archive.scores_for_request("r1")[0]
    assert (error.prediction, error.error, error.ok) == (None, "ValueError: boom", False)


def test_decoy_inputs_round_trip(archive: Archive) -> None:
    inputs = [decoy("r1", "decoy-a"), decoy("r2", "decoy-a"), decoy("r1", "decoy-b")]
    archive.put_inputs(inputs)
    archive.flush()

    assert archive.decoy_inputs("r1") == [inputs[0], inputs[2]]
    assert archive.decoy_inputs("r2") == [inputs[1]]
    assert archive.decoy_inputs("unknown") == []


def test_a_request_id_is_archived_once_first_write_wins(archive: Archive) -> None:
    # A batch retried after a write that half-succeeded must not fail on the key forever.
    first, second = req(1, prediction=1), req(1, prediction=0)
    archive.put_request(first)
    archive.flush()
    archive.put_request(second)
    archive.flush()

    assert archive.get_request("r1") == first
    assert archive.counts("fraud")["requests"] == 1
    assert archive.requests("fraud") == [first]


def test_nothing_is_visible_before_it_is_written(backend: Backend) -> None:
    archive = backend.make(flush_interval=3600)
    archive.start()
    archive.put_request(req(1))
    assert archive.get_request("r1") is None
    assert archive.counts("fraud") == {"requests": 0, "scores": 0, "inputs": 0, "examples": 0}
    archive.flush()
    assert archive.get_request("r1") == req(1)


# -- queries --------------------------------------------------------------------------------


def test_scores_for_model_in_a_window_oldest_first(archive: Archive) -> None:
    mine = [score(f"r{i}", "a", at=T0 + i) for i in range(10)]
    others = [
        score("r1", "b", at=T0 + 1),  # another model
        score("r1", "a", at=T0 + 1, deployment="other"),  # same model name, other deployment
    ]
    shuffled = mine + others
    random.Random(7).shuffle(shuffled)
    archive.put_scores(shuffled)
    archive.flush()

    def times(**window: Any) -> list[float]:
        return [s.computed_at - T0 for s in archive.scores_for_model("fraud", "a", **window)]

    assert archive.scores_for_model("fraud", "a") == mine
    assert times(since=T0 + 3, until=T0 + 7) == [3, 4, 5, 6]  # [since, until)
    assert times(since=T0 + 7) == [7, 8, 9]
    assert times(until=T0 + 2) == [0, 1]
    assert times(limit=2) == [0, 1]
    assert times(since=T0 + 5, limit=3) == [5, 6, 7]
    assert times(limit=0) == []
    assert times(since=T0 + 20) == []
    assert archive.scores_for_model("fraud", "b") == [others[0]]
    assert archive.scores_for_model("other", "a") == [others[1]]
    assert archive.scores_for_model("fraud", "unknown") == []


def test_ties_in_time_keep_the_order_they_were_put(archive: Archive) -> None:
    tied = [score(f"r{i}", "a", at=T0) for i in (3, 1, 2)]
    archive.put_scores(tied)
    archive.put_request(req("x", at=T0))
    archive.put_request(req("y", at=T0))
    archive.flush()

    assert archive.scores_for_model("fraud", "a") == tied
    assert [r.id for r in archive.requests("fraud")] == ["rx", "ry"]


def test_requests_of_a_deployment_in_a_window_oldest_first(archive: Archive) -> None:
    mine = [req(i) for i in range(10)]
    shuffled = [*mine, req(100, deployment="other", at=T0 + 5)]
    random.Random(3).shuffle(shuffled)
    for record in shuffled:
        archive.put_request(record)
    archive.flush()

    def ids(**window: Any) -> list[str]:
        return [r.id for r in archive.requests("fraud", **window)]

    assert archive.requests("fraud") == mine
    assert ids(since=T0 + 2, until=T0 + 5) == ["r2", "r3", "r4"]
    assert ids(since=T0 + 8) == ["r8", "r9"]
    assert ids(until=T0 + 1) == ["r0"]
    assert ids(since=T0 + 4, limit=2) == ["r4", "r5"]
    assert ids(limit=0) == []
    assert [r.id for r in archive.requests("other")] == ["r100"]
    assert archive.requests("unknown") == []


@pytest.mark.parametrize("query", ["scores_for_model", "requests"])
def test_a_negative_limit_is_an_error(archive: Archive, query: str) -> None:
    args = ("fraud", "a") if query == "scores_for_model" else ("fraud",)
    with pytest.raises(ArchiveError, match="limit"):
        getattr(archive, query)(*args, limit=-1)


def test_counts_per_deployment_are_isolated(archive: Archive) -> None:
    for i in range(3):
        archive.put_request(req(i, deployment="a"))
        archive.put_scores([score(f"r{i}", m, deployment="a") for m in ("x", "y")])
    archive.put_inputs([decoy("r0", deployment="a"), decoy("r1", deployment="a")])
    archive.put_request(req(9, deployment="b"))
    archive.put_scores([score("r9", m, deployment="b") for m in ("x", "y")])
    archive.flush()

    assert archive.counts("a") == {"requests": 3, "scores": 6, "inputs": 2, "examples": 0}
    assert archive.counts("b") == {"requests": 1, "scores": 2, "inputs": 0, "examples": 0}
    assert archive.counts("c") == {"requests": 0, "scores": 0, "inputs": 0, "examples": 0}


# -- lifecycle and buffering ----------------------------------------------------------------


def put_many(archive: Archive, n: int, deployment: str = "fraud", prefix: str = "") -> None:
    for i in range(n):
        archive.put_request(req(f"{prefix}{i}", deployment=deployment))
        archive.put_scores(
            [score(f"r{prefix}{i}", m, deployment=deployment) for m in ("a", "b", "c")]
        )
        archive.put_inputs([decoy(f"r{prefix}{i}", deployment=deployment)])


def test_stop_flushes_everything_accepted(backend: Backend) -> None:
    archive = backend.make(flush_interval=3600)  # only stop() will write
    archive.start()
    put_many(archive, 1000)
    archive.stop()

    assert archive.written == {"requests": 1000, "scores": 3000, "inputs": 1000}
    assert archive.backlog == 0
    again = backend.reopen(archive)
    assert again.counts("fraud") == {
        "requests": 1000,
        "scores": 3000,
        "inputs": 1000,
        "examples": 0,
    }
    assert again.scores_for_request("r999") == [score("r999", m) for m in ("a", "b", "c")]


def test_stop_is_idempotent_and_stop_before_start_is_harmless(backend: Backend) -> None:
    archive = backend.make()
    archive.stop()
    archive.start()
    archive.stop()
    archive.stop()


def test_the_writer_thread_writes_without_being_asked(backend: Backend) -> None:
    archive = backend.make(flush_interval=0.01)
    archive.start()
    archive.put_request(req(1))
    done = threading.Event()
    for _ in range(500):  # up to 5 s on a very slow machine; usually one interval
        if archive.get_request("r1") is not None:
            done.set()
            break
        done.wait(0.01)
    assert done.is_set()


def test_backlog_and_full_follow_max_buffer(backend: Backend) -> None:
    archive = backend.make(max_buffer=3, flush_interval=3600)
    assert (archive.backlog, archive.full) == (0, False)
    archive.put_request(req(1))
    archive.put_request(req(2))
    archive.put_scores([score("r1"), score("r2")])  # the bound counts requests only
    assert (archive.backlog, archive.full) == (2, False)
    archive.put_request(req(3))
    assert (archive.backlog, archive.full) == (3, True)

    archive.start()
    archive.flush()
    assert (archive.backlog, archive.full) == (0, False)
    assert archive.counts("fraud") == {"requests": 3, "scores": 2, "inputs": 0, "examples": 0}


def test_behind_at_half_the_buffer(backend: Backend) -> None:
    archive = backend.make(max_buffer=4, flush_interval=3600)
    archive.put_request(req(1))
    assert (archive.behind, archive.full) == (False, False)
    archive.put_request(req(2))
    assert (archive.behind, archive.full) == (True, False)  # requests should wait now
    archive.start()
    archive.flush()
    assert archive.behind is False


def test_batches_are_capped_and_flush_writes_them_all_in_order(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_base, "BATCH_REQUESTS", 2)
    archive = backend.make(flush_interval=3600)
    archive.start()
    batches: list[tuple[int, int, int]] = []
    real_store = archive._store

    def counting_store(reqs: Any, scores: Any, inputs: Any) -> None:
        batches.append((len(reqs), len(scores), len(inputs)))
        real_store(reqs, scores, inputs)

    monkeypatch.setattr(archive, "_store", counting_store)
    put_many(archive, 5)  # 5 requests, 15 scores, 5 inputs
    archive.flush()
    # at most 2 requests, 8 scores and 2 inputs a batch, until nothing is left
    assert batches == [(2, 8, 2), (2, 7, 2), (1, 0, 1)]
    assert archive.backlog == 0
    assert [r.id for r in archive.requests("fraud")] == [f"r{i}" for i in range(5)]
    assert archive.counts("fraud") == {"requests": 5, "scores": 15, "inputs": 5, "examples": 0}


def test_the_writer_thread_writes_capped_batches_back_to_back(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_base, "BATCH_REQUESTS", 2)
    archive = backend.make(flush_interval=3600)  # only a left-over batch may skip the wait
    put_many(archive, 5)
    archive.start()
    archive._wake.set()  # one pass: it must not stop after the first capped batch
    done = threading.Event()
    for _ in range(500):
        if archive.backlog == 0:
            done.set()
            break
        done.wait(0.01)
    assert done.is_set()
    assert archive.counts("fraud")["requests"] == 5


def test_a_batch_being_written_still_counts_in_the_backlog(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = backend.make(max_buffer=3, flush_interval=3600)
    archive.start()
    entered, release = threading.Event(), threading.Event()
    real_store = archive._store

    def slow_store(*batch: Any) -> None:
        entered.set()
        release.wait(10)
        real_store(*batch)

    monkeypatch.setattr(archive, "_store", slow_store)
    for i in range(3):
        archive.put_request(req(i))
    flusher = threading.Thread(target=archive.flush)
    flusher.start()
    assert entered.wait(10)
    assert (archive.backlog, archive.full) == (3, True)  # taken, not yet written
    release.set()
    flusher.join(10)
    assert (archive.backlog, archive.full) == (0, False)


def test_stores_never_overlap(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    # flush() may be called from any thread while the writer thread runs; the backend must
    # still see one batch at a time, in order (one connection, one transaction).
    archive = backend.make(flush_interval=0.001)
    archive.start()
    active, most = [0], [0]
    real_store = archive._store

    def watched_store(*batch: Any) -> None:
        active[0] += 1
        most[0] = max(most[0], active[0])
        threading.Event().wait(0.002)  # widen the window an overlap would need
        real_store(*batch)
        active[0] -= 1

    monkeypatch.setattr(archive, "_store", watched_store)

    def work(t: int) -> None:
        for i in range(50):
            archive.put_request(req(f"{t}-{i}"))
            archive.flush()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    archive.flush()

    assert most[0] == 1
    assert archive.counts("fraud")["requests"] == 200


def test_a_failed_store_is_retried_and_nothing_is_lost(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = backend.make(flush_interval=3600)
    archive.start()
    calls = []
    real_store = archive._store

    def flaky_store(*batch: Any) -> None:
        calls.append(len(batch[0]))
        if len(calls) <= 2:
            raise OSError("disk I/O error")
        real_store(*batch)

    monkeypatch.setattr(archive, "_store", flaky_store)
    put_many(archive, 50)
    archive.flush()

    assert calls == [50, 50, 50]  # the same batch, whole, each time
    assert archive.counts("fraud") == {"requests": 50, "scores": 150, "inputs": 50, "examples": 0}
    assert archive.written == {"requests": 50, "scores": 150, "inputs": 50}


def test_a_store_failing_during_stop_is_retried(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = backend.make(flush_interval=3600)
    archive.start()
    calls = []
    real_store = archive._store

    def flaky_store(*batch: Any) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise OSError("disk I/O error")
        real_store(*batch)

    monkeypatch.setattr(archive, "_store", flaky_store)
    put_many(archive, 20)
    archive.stop()

    assert len(calls) == 3
    assert backend.reopen(archive).counts("fraud")["requests"] == 20


def test_a_store_that_keeps_failing_on_stop_is_reported_and_keeps_the_batch(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = backend.make(flush_interval=3600)
    archive.start()

    def broken_store(*batch: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(archive, "_store", broken_store)
    put_many(archive, 10)
    # Reported to whoever stops the archive, not lost in the writer thread.
    with pytest.raises(ArchiveError, match="disk full"):
        archive.stop()
    assert archive.backlog == 10


def test_a_record_the_backend_cannot_hold_does_not_block_the_others(archive: Archive) -> None:
    # The writer retries a failed batch until it succeeds, so one bad record must not make
    # the whole batch fail for ever. (A backend may keep the bad record or drop it.)
    good = [score("r1", m) for m in ("a", "b")]
    bad = msgspec.structs.replace(score("r1", "c"), version=None, batch_size=None)
    archive.put_scores([good[0], bad, good[1]])
    flusher = threading.Thread(target=archive.flush, daemon=True)
    flusher.start()
    flusher.join(10)

    assert not flusher.is_alive()
    assert [s for s in archive.scores_for_request("r1") if s.model != "c"] == good


def test_concurrent_puts_while_the_writer_runs(backend: Backend) -> None:
    archive = backend.make(flush_interval=0.002)
    archive.start()
    n_threads, n_each = 8, 500
    barrier = threading.Barrier(n_threads + 1)
    errors: list[BaseException] = []

    def producer(t: int) -> None:
        try:
            barrier.wait()
            put_many(archive, n_each, deployment=f"d{t % 2}", prefix=f"{t}-")
        except BaseException as exc:
            errors.append(exc)

    def flusher() -> None:  # flush() from another thread races the writer thread
        barrier.wait()
        while any(t.is_alive() for t in producers):
            archive.flush()

    producers = [threading.Thread(target=producer, args=(t,)) for t in range(n_threads)]
    threads = [*producers, threading.Thread(target=flusher)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    archive.stop()

    assert errors == []
    per_deployment = n_threads // 2 * n_each
    expected = {"requests": per_deployment, "scores": 3 * per_deployment, "inputs": per_deployment}
    again = backend.reopen(archive)
    assert again.counts("d0") == {**expected, "examples": 0}
    assert again.counts("d1") == {**expected, "examples": 0}
    assert archive.written == {k: 2 * v for k, v in expected.items()}


def test_bulk_20k_requests_60k_scores(backend: Backend) -> None:
    archive = backend.make()
    archive.start()
    n = 20_000
    for start in range(0, n, 200):
        chunk = range(start, start + 200)
        for i in chunk:
            archive.put_request(req(i))
        archive.put_scores(
            [score(f"r{i}", m, at=T0 + i, probabilities=[0.5, 0.5]) for i in chunk for m in "abc"]
        )
    archive.stop()

    again = backend.reopen(archive)
    assert again.counts("fraud") == {"requests": n, "scores": 3 * n, "inputs": 0, "examples": 0}
    assert [s.model for s in again.scores_for_request("r12345")] == ["a", "b", "c"]
    assert len(again.scores_for_model("fraud", "b", limit=1000)) == 1000
    assert [r.id for r in again.requests("fraud", since=T0 + n - 2)] == [
        f"r{n - 2}",
        f"r{n - 1}",
    ]


# -- labelled examples ----------------------------------------------------------------------


def ex(
    request_id: str | None,
    label: Any = 1,
    deployment: str = "fraud",
    at: float = T0,
    features: list[float] | None = None,
) -> Example:
    return Example(
        deployment=deployment,
        request_id=request_id,
        features=[0.1, -2.5, 1e-300] if features is None else features,
        label=label,
        received_at=at,
    )


def stored_as(given: Sequence[Example], stored: Sequence[Example]) -> None:
    """``stored`` is ``given`` with seqs assigned, labels of the same types."""
    assert [msgspec.structs.replace(e, seq=0) for e in stored] == list(given)
    for g, s in zip(given, stored, strict=True):
        assert type(s.label) is type(g.label)


def increasing(seqs: Sequence[int]) -> bool:
    """Positive and strictly increasing (not necessarily consecutive)."""
    return all(a < b for a, b in zip([0, *seqs], seqs, strict=False))


def test_examples_round_trip_with_their_label_types(archive: Archive) -> None:
    # == says True == 1 == 1.0: a classifier's label 1 must not come back as True or 1.0.
    given = [
        ex("r1", 1),
        ex("r2", 1.0),
        ex("r3", True),
        ex("r4", "1"),
        ex("r5", 0.1 + 0.2, features=[-0.0, 1.7976931348623157e308, 5e-324]),
        ex("r6", False, at=T0 + 0.123456789),
        ex(None, -3, at=T0 + 1),
        ex(None, "approve", at=T0 + 2),
    ]
    stored = archive.store_examples(given)

    stored_as(given, stored)
    assert increasing([e.seq for e in stored])
    got = archive.examples("fraud")
    assert got == stored
    stored_as(given, got)
    assert archive.store_examples([]) == []


def test_stored_examples_are_durable_without_a_flush_or_stop(backend: Backend) -> None:
    # Unlike requests and scores, examples are never buffered: once store_examples returns
    # another process (here, another archive object) sees them.
    archive = backend.make(flush_interval=3600)
    archive.start()
    stored = archive.store_examples([ex("r1", 0), ex(None, 2.5)])

    other = backend.reopen(archive)
    assert other.examples("fraud") == stored
    assert other.labels_for(["r1"]) == {"r1": 0}
    assert other.counts("fraud")["examples"] == 2


def test_feedback_for_a_request_is_stored_once(archive: Archive) -> None:
    first = archive.store_examples([ex("r1", 1)])
    # Only the new ones come back: that is how a caller tells new from repeated.
    again = archive.store_examples([ex("r1", 0), ex("r2", 0)])
    assert [e.request_id for e in again] == ["r2"]
    # A repeat inside one call counts too: the first of the call wins.
    within = archive.store_examples([ex("r3", "a"), ex("r3", "b")])
    assert [(e.request_id, e.label) for e in within] == [("r3", "a")]
    # The key is (deployment, request id); standalone examples are never duplicates.
    elsewhere = archive.store_examples([ex("r1", 5, deployment="other")])
    standalone = archive.store_examples([ex(None, 1), ex(None, 1)])
    assert len(elsewhere) == 1
    assert len(standalone) == 2

    assert archive.labels_for(["r1", "r2", "r3"]) == {"r1": 1, "r2": 0, "r3": "a"}
    assert archive.examples("fraud") == [*first, *again, *within, *standalone]
    assert archive.examples("other") == elsewhere
    assert archive.counts("fraud")["examples"] == 5


def test_seq_increases_across_calls_and_across_archive_objects(backend: Backend) -> None:
    one = backend.make()
    one.start()
    two = backend.reopen(one)  # another archive object on the same database
    stored: list[Example] = []
    for i in range(6):
        writer = one if i % 2 == 0 else two
        stored += writer.store_examples([ex(f"r{i}", i), ex(None, i, deployment=f"d{i % 2}")])

    assert increasing([e.seq for e in stored])
    assert one.examples("fraud") == two.examples("fraud") == [e for e in stored if e.request_id]


def test_reading_in_pages_after_seq_neither_skips_nor_repeats(archive: Archive) -> None:
    stored: list[Example] = []
    for call in range(5):
        stored += archive.store_examples([ex(f"r{call}-{i}", i) for i in range(5)])
        archive.store_examples([ex(f"o{call}", deployment="other")])  # gaps in fraud's seqs

    def read_all(after: int, page: int) -> list[Example]:
        got: list[Example] = []
        while chunk := archive.examples("fraud", after_seq=after, limit=page):
            assert len(chunk) <= page
            got += chunk
            after = chunk[-1].seq
        return got

    assert read_all(0, 7) == stored
    assert read_all(0, 1) == stored
    assert read_all(stored[11].seq, 4) == stored[12:]
    assert archive.examples("fraud", after_seq=stored[-1].seq) == []
    assert archive.examples("fraud", limit=0) == []
    later = archive.store_examples([ex("late", 9)])
    assert archive.examples("fraud", after_seq=stored[-1].seq) == later


def test_examples_in_a_time_window_stay_in_seq_order(archive: Archive) -> None:
    times = [5, 1, 8, 3, 9, 0, 4]
    stored = archive.store_examples([ex(f"r{t}", t, at=T0 + t) for t in times])

    def labels(**query: Any) -> list[int]:
        return [e.label for e in archive.examples("fraud", **query)]

    assert labels(since=T0 + 3, until=T0 + 8) == [5, 3, 4]  # [since, until), by seq
    assert labels(since=T0 + 8) == [8, 9]
    assert labels(until=T0 + 1) == [0]
    assert labels(since=T0 + 1, limit=2) == [5, 1]
    assert labels(since=T0 + 1, after_seq=stored[2].seq) == [3, 9, 4]
    assert labels(since=T0 + 20) == []
    assert archive.examples("unknown") == []


def test_a_negative_limit_of_examples_is_an_error(archive: Archive) -> None:
    with pytest.raises(ArchiveError, match="limit"):
        archive.examples("fraud", limit=-1)


def test_labels_for_many_ids_answers_only_the_labelled(archive: Archive) -> None:
    n = 1_200  # more ids than one SQL statement may take parameters
    archive.store_examples([ex(f"r{i}", i % 3, at=T0 + i) for i in range(n)])
    archive.store_examples([ex(None, 7)])

    asked = [f"r{i}" for i in range(0, n + 100, 2)] + ["unknown", "r0"]
    assert archive.labels_for(asked) == {f"r{i}": i % 3 for i in range(0, n, 2)}
    assert archive.labels_for([]) == {}


def test_counts_include_examples_per_deployment(archive: Archive) -> None:
    archive.put_request(req(1))
    archive.flush()
    archive.store_examples([ex("r1"), ex(None), ex("r1", deployment="b")])

    assert archive.counts("fraud") == {"requests": 1, "scores": 0, "inputs": 0, "examples": 2}
    assert archive.counts("b") == {"requests": 0, "scores": 0, "inputs": 0, "examples": 1}


def test_concurrent_store_examples_while_batches_are_written(backend: Backend) -> None:
    # Several threads and two archive objects store examples, racing each other, the writer
    # thread's batches, and a learner reading after the last seq it saw: every example gets
    # its own seq, each contested request id is stored once, and the learner misses none.
    one = backend.make(flush_interval=0.002)
    one.start()
    two = backend.reopen(one)
    n_threads, n_calls = 6, 20
    barrier = threading.Barrier(n_threads + 2)
    stored: list[list[Example]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            archive = one if t % 2 == 0 else two
            barrier.wait()
            for c in range(n_calls):
                batch = [ex(f"t{t}-{c}", t), ex(f"shared-{c}", t), ex(None, t)]
                stored[t] += archive.store_examples(batch)
        except BaseException as exc:
            errors.append(exc)

    def producer() -> None:
        barrier.wait()
        put_many(one, 300)

    learned: list[Example] = []

    def learner() -> None:
        barrier.wait()
        while any(thread.is_alive() for thread in writers):
            after = learned[-1].seq if learned else 0
            learned.extend(two.examples("fraud", after_seq=after, limit=50))

    writers = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    others = [threading.Thread(target=producer), threading.Thread(target=learner)]
    for thread in [*writers, *others]:
        thread.start()
    for thread in [*writers, *others]:
        thread.join(120)
    one.flush()

    assert errors == []
    everything = sorted((e for s in stored for e in s), key=lambda e: e.seq)
    seqs = [e.seq for e in everything]
    assert len(set(seqs)) == len(seqs) == n_threads * n_calls * 2 + n_calls
    assert [e.request_id for e in everything].count("shared-3") == 1
    assert one.examples("fraud") == everything
    after = learned[-1].seq if learned else 0
    learned.extend(one.examples("fraud", after_seq=after))
    assert learned == everything
    assert one.counts("fraud")["examples"] == len(everything)
    assert one.counts("fraud")["requests"] == 300


# -- events ---------------------------------------------------------------------------------


def event(
    kind: str = "promote",
    model: str | None = "xgb",
    deployment: str = "fraud",
    at: float = T0,
    origin: str = "host-1:123",
    **detail: Any,
) -> Event:
    return Event(deployment=deployment, kind=kind, model=model, detail=detail, at=at, origin=origin)


def test_events_round_trip_with_their_detail(archive: Archive) -> None:
    detail: dict[str, Any] = {
        "previous": "rules",
        "by": "policy",
        "evidence": {"n": 250, "p_value": 0.0123, "metric": {"xgb": 0.91, "rules": 0.84}},
        "flags": [True, False, None],
        "ints_stay_ints": 1,
        "floats_stay_floats": 1.0,
        "text": 'é "quoted" \u0000',
    }
    given = Event("fraud", "promote", "xgb", detail, T0 + 0.123456789, "host-1:123")
    stored = archive.record_event(given)

    assert stored.seq > 0
    assert msgspec.structs.replace(stored, seq=0) == given
    (got,) = archive.events("fraud")
    assert got == stored
    assert type(got.detail["ints_stay_ints"]) is int
    assert type(got.detail["floats_stay_floats"]) is float
    # A model-less event (a drift of the inputs) and an empty detail are fine too.
    none = archive.record_event(event("drift", model=None))
    assert archive.events("fraud", after_seq=stored.seq) == [none]
    assert none.model is None and none.detail == {}


def test_a_detail_json_cannot_hold_is_an_archive_error(archive: Archive) -> None:
    with pytest.raises(ArchiveError, match="event"):
        archive.record_event(event(bad=object()))
    assert archive.events("fraud") == []


def test_recorded_events_are_durable_without_a_flush_or_stop(backend: Backend) -> None:
    archive = backend.make(flush_interval=3600)
    archive.start()
    stored = [archive.record_event(event()), archive.record_event(event("rollback", "rules"))]

    other = backend.reopen(archive)
    assert other.events("fraud") == stored


def test_event_seqs_increase_across_archive_objects_on_one_database(backend: Backend) -> None:
    one = backend.make()
    one.start()
    two = backend.reopen(one)
    stored = [
        (one if i % 2 == 0 else two).record_event(event(at=T0 + i, origin=f"p{i % 2}", i=i))
        for i in range(8)
    ]

    assert increasing([e.seq for e in stored])
    assert one.events("fraud") == two.events("fraud") == stored


def test_reading_events_in_pages_after_seq_neither_skips_nor_repeats(archive: Archive) -> None:
    stored: list[Event] = []
    for i in range(9):
        stored.append(archive.record_event(event(i=i)))
        archive.record_event(event(deployment="other"))  # gaps in fraud's seqs

    def read_all(after: int, page: int) -> list[Event]:
        got: list[Event] = []
        while chunk := archive.events("fraud", after_seq=after, limit=page):
            assert len(chunk) <= page
            got += chunk
            after = chunk[-1].seq
        return got

    assert read_all(0, 4) == stored
    assert read_all(0, 1) == stored
    assert read_all(stored[4].seq, 2) == stored[5:]
    assert archive.events("fraud", after_seq=stored[-1].seq) == []
    assert archive.events("fraud", limit=0) == []
    assert archive.events("unknown") == []
    with pytest.raises(ArchiveError, match="limit"):
        archive.events("fraud", limit=-1)


def test_events_of_some_kinds_only(archive: Archive) -> None:
    kinds = ["promote", "drift", "rollback", "train", "promote", "version"]
    stored = [archive.record_event(event(kind)) for kind in kinds]

    def got(**query: Any) -> list[str]:
        return [e.kind for e in archive.events("fraud", **query)]

    assert got(kinds=["promote", "rollback"]) == ["promote", "rollback", "promote"]
    assert got(kinds=("drift",)) == ["drift"]
    assert got(kinds=["promote"], after_seq=stored[0].seq) == ["promote"]
    assert got(kinds=["promote", "rollback"], limit=2) == ["promote", "rollback"]
    assert got(kinds=["unknown"]) == []
    assert got(kinds=[]) == []
    assert got() == kinds
