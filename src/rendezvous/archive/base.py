"""The Archive: every request as the models saw it, every score, every rendezvous choice.

Writes never happen on the request path: ``put_*`` appends to a buffer in memory and a
writer thread stores it in batches (``_store``). The buffer is bounded by the number of
requests waiting to be written. Once the writer falls behind by half the buffer
(:attr:`Archive.behind`), the API makes new requests wait for it (backpressure: the serving
loop idles, and the writer gets the CPU it was lowered off); when the buffer is full the API
refuses new requests (503) rather than accept work it might lose. ``stop()`` flushes
everything accepted.

A backend implements the storage verbs (``_open``, ``_store``, ``_close``) and the queries;
the :class:`Archive` base class owns buffering, the writer thread and the lifecycle.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import msgspec

from ..errors import ArchiveError
from ..messages import Score
from ..priority import lower_priority

__all__ = ["Archive", "DecoyInput", "Event", "Example", "RequestRecord"]

log = logging.getLogger("rendezvous.archive")

# The writer thread's priority (see rendezvous.priority): lowered, never idle, so that a busy
# machine still writes the archive while the thread holds the GIL it shares with serving.
WRITER_PRIORITY = "nice:10"
# Requests per batch written (scores: four times as many). A whole buffer in one batch would
# hold the backlog at its peak until the last row is in; capped batches shrink it every few
# tens of ms, so requests waiting for room move on steadily.
BATCH_REQUESTS = 2048


class RequestRecord(msgspec.Struct, frozen=True, gc=False):
    """A request as the models saw it, and the rendezvous choice that answered it."""

    id: str
    deployment: str
    received_at: float
    features: list[float]
    model: str | None  # the model whose score was returned; None when the default answered
    version: str | None
    reason: str  # champion | fallback:<model> | default | error
    prediction: Any = None
    latency_ms: float = 0.0


class DecoyInput(msgspec.Struct, frozen=True, gc=False):
    """An input exactly as a decoy received it from the input stream."""

    request_id: str
    deployment: str
    model: str
    features: list[float]
    received_at: float


class Example(msgspec.Struct, frozen=True, gc=False):
    """A labelled example: feedback on an earlier prediction, or a standalone example.

    ``seq`` is assigned by the archive when the example is stored: it increases with every
    stored example of the archive, so a learner can resume after the last ``seq`` it
    processed and neither lose nor repeat an example.
    """

    deployment: str
    request_id: str | None  # the prediction this labels; None for a standalone example
    features: list[float]  # as the models saw them (copied from the archived request)
    label: Any
    received_at: float
    seq: int = 0


class Event(msgspec.Struct, frozen=True, gc=False):
    """Something that happened to a deployment: a promotion, a rollback, a drift, a
    training request or decision, a new model version. Durable and ordered by ``seq``, so
    every process of a deployment can follow them (and a restarted one can catch up).
    """

    deployment: str
    kind: str  # promote | rollback | drift | train | validation | version | …
    model: str | None
    detail: dict[str, Any]
    at: float  # wall clock when it happened
    origin: str = ""  # the process that recorded it
    seq: int = 0


class Archive(ABC):
    """Buffered, batched archive. Subclasses store batches and answer queries."""

    def __init__(self, *, max_buffer: int = 100_000, flush_interval: float = 0.1) -> None:
        self.max_buffer = max_buffer
        self.flush_interval = flush_interval
        self._lock = threading.Lock()  # guards the buffers; held only to swap or append
        # One batch in flight at a time, whoever flushes (writer thread, flush(), stop()):
        # batches reach the backend in the order they were accepted, and a backend only
        # ever sees one writer at a time.
        self._flush_lock = threading.Lock()
        self._inflight = 0  # requests taken from the buffer but not yet stored
        self._wake = threading.Event()
        self._requests: list[RequestRecord] = []
        self._scores: list[Score] = []
        self._inputs: list[DecoyInput] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failures = 0
        self.written = {"requests": 0, "scores": 0, "inputs": 0}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        try:
            self._open()
        except ArchiveError:
            raise
        except Exception as exc:
            raise ArchiveError(f"cannot open archive {self!r}: {exc}") from exc
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="archive-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush everything accepted, then close. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)
        self._thread = None
        try:
            self.flush()  # anything that raced the writer's last pass
        finally:
            self._close()

    def __enter__(self) -> Archive:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- writing (called from the event loop; must stay cheap) ------------------------------

    @property
    def backlog(self) -> int:
        """Requests accepted but not yet written (including a batch being written)."""
        return len(self._requests) + self._inflight

    @property
    def full(self) -> bool:
        return self.backlog >= self.max_buffer

    @property
    def behind(self) -> bool:
        """Whether the writer is half a buffer behind: new requests should wait for it."""
        return 2 * self.backlog >= self.max_buffer

    def put_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def put_scores(self, scores: Sequence[Score]) -> None:
        with self._lock:
            self._scores.extend(scores)

    def put_inputs(self, inputs: Sequence[DecoyInput]) -> None:
        with self._lock:
            self._inputs.extend(inputs)

    def flush(self) -> None:
        """Write everything buffered now (from any thread)."""
        while self._flush():
            pass

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        # The writer's SQLite and socket work runs without the GIL, on the CPU the event
        # loop needs too: lowered, it yields that CPU the moment a request comes in.
        lower_priority(WRITER_PRIORITY)
        more = False
        while not self._stopping:
            if not more:  # a capped batch left rows behind: no pause before the next
                self._wake.wait(self.flush_interval)
                self._wake.clear()
            try:
                more = self._flush()
            except ArchiveError:
                # Only raised once stopping: the batch is back in the buffer, and stop()'s
                # own flush retries it and reports the failure to its caller, not to a
                # thread nobody joins.
                return

    def _flush(self) -> bool:
        """Write one batch (at most ``BATCH_REQUESTS``); whether rows were left behind."""
        with self._flush_lock:
            with self._lock:
                reqs, self._requests = _split(self._requests, BATCH_REQUESTS)
                scores, self._scores = _split(self._scores, 4 * BATCH_REQUESTS)
                inputs, self._inputs = _split(self._inputs, BATCH_REQUESTS)
                self._inflight = len(reqs)
                more = bool(self._requests or self._scores or self._inputs)
            if not (reqs or scores or inputs):
                return False
            try:
                self._store_retrying(reqs, scores, inputs)
            except ArchiveError:
                with self._lock:  # in front of anything accepted since, to keep the order
                    self._requests[:0] = reqs
                    self._scores[:0] = scores
                    self._inputs[:0] = inputs
                raise
            finally:
                self._inflight = 0
            self.written["requests"] += len(reqs)
            self.written["scores"] += len(scores)
            self.written["inputs"] += len(inputs)
            return more

    def _store_retrying(
        self,
        reqs: list[RequestRecord],
        scores: list[Score],
        inputs: list[DecoyInput],
    ) -> None:
        while True:
            try:
                self._store(reqs, scores, inputs)
                self._failures = 0
                return
            except Exception as exc:
                # Keep the batch: nothing accepted may be lost. Back off and try again.
                self._failures += 1
                log.error("archive write failed (attempt %d): %s", self._failures, exc)
                if self._stopping and self._failures >= 5:
                    raise ArchiveError(f"archive write failed on shutdown: {exc}") from exc
                time.sleep(min(2.0, 0.05 * 2**self._failures))

    # -- backend verbs ----------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Connect and create or migrate the schema."""

    @abstractmethod
    def _store(
        self,
        requests: Sequence[RequestRecord],
        scores: Sequence[Score],
        inputs: Sequence[DecoyInput],
    ) -> None:
        """Store one batch atomically (all or nothing)."""

    @abstractmethod
    def _close(self) -> None:
        """Release connections."""

    # -- queries ------------------------------------------------------------------------------

    @abstractmethod
    def get_request(self, request_id: str) -> RequestRecord | None:
        """The archived request, or None."""

    @abstractmethod
    def scores_for_request(self, request_id: str) -> list[Score]:
        """Every model's score for one request."""

    @abstractmethod
    def scores_for_model(
        self,
        deployment: str,
        model: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Score]:
        """One model's scores, oldest first, computed in ``[since, until)`` (wall clock)."""

    @abstractmethod
    def requests(
        self,
        deployment: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[RequestRecord]:
        """Archived requests of a deployment, oldest first, received in ``[since, until)``."""

    @abstractmethod
    def decoy_inputs(self, request_id: str) -> list[DecoyInput]:
        """What each decoy archived for one request."""

    @abstractmethod
    def counts(self, deployment: str) -> dict[str, int]:
        """``{"requests": n, "scores": n, "inputs": n, "examples": n}`` for one deployment."""

    # -- labelled examples (durable: stored synchronously, never buffered) ----------------------

    @abstractmethod
    def store_examples(self, examples: Sequence[Example]) -> list[Example]:
        """Store examples durably before returning (a crash afterwards loses none).

        Idempotent by ``(deployment, request_id)``: feedback for a request that already has
        a label is not stored again. Returns the examples stored now, with their ``seq``.
        Call it off the event loop (it waits for the database).
        """

    @abstractmethod
    def examples(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Example]:
        """Stored examples of a deployment with ``seq > after_seq``, received in
        ``[since, until)``, in ``seq`` order."""

    @abstractmethod
    def labels_for(self, request_ids: Sequence[str]) -> dict[str, Any]:
        """The label of each of ``request_ids`` that has one."""

    # -- events (durable: stored synchronously, never buffered) ----------------------------

    @abstractmethod
    def record_event(self, event: Event) -> Event:
        """Store ``event`` durably before returning; returns it with its ``seq``.
        Call it off the event loop."""

    @abstractmethod
    def events(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events of a deployment with ``seq > after_seq`` (of ``kinds``), in ``seq`` order."""


def _split(items: list[Any], n: int) -> tuple[list[Any], list[Any]]:
    """The first ``n`` of ``items`` and the rest (``items`` itself when it is short)."""
    if len(items) <= n:
        return items, []
    return items[:n], items[n:]
