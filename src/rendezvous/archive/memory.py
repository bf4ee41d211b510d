"""The in-process archive: plain lists and dicts, gone when the process exits.

First-class like every other backend (``archive: memory``, and the fastest way to test
everything above the archive): it passes the same conformance suite as SQLite, so code
tested against it behaves the same on disk.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, TypeVar

import msgspec
import orjson

from ..errors import ArchiveError
from ..messages import Score
from .base import Archive, DecoyInput, Event, Example, RequestRecord
from .rows import detail_json

__all__ = ["MemoryArchive"]

_T = TypeVar("_T")


class MemoryArchive(Archive):
    """Keeps every record in memory; survives stop()/start() but not the process."""

    def __init__(self, *, max_buffer: int = 100_000, flush_interval: float = 0.1) -> None:
        super().__init__(max_buffer=max_buffer, flush_interval=flush_interval)
        # The writer thread stores while queries arrive from other threads.
        self._data_lock = threading.Lock()
        self._by_id: dict[str, RequestRecord] = {}
        self._requests_of: defaultdict[str, list[RequestRecord]] = defaultdict(list)
        self._scores_of_request: defaultdict[str, list[Score]] = defaultdict(list)
        self._scores_of_model: defaultdict[tuple[str, str], list[Score]] = defaultdict(list)
        self._inputs_of_request: defaultdict[str, list[DecoyInput]] = defaultdict(list)
        self._counts: defaultdict[str, dict[str, int]] = defaultdict(_zero_counts)
        self._examples_of: defaultdict[str, list[Example]] = defaultdict(list)
        self._labelled: set[tuple[str, str]] = set()  # (deployment, request_id)
        self._label_of: dict[str, Any] = {}
        self._last_seq = 0
        self._events_of: defaultdict[str, list[Event]] = defaultdict(list)
        self._last_event_seq = 0

    def __repr__(self) -> str:
        return "MemoryArchive()"

    # -- backend verbs ----------------------------------------------------------------------

    def _open(self) -> None:
        pass  # the data lives in the object, so a restarted archive still has it

    def _close(self) -> None:
        pass

    def _store(
        self,
        requests: Sequence[RequestRecord],
        scores: Sequence[Score],
        inputs: Sequence[DecoyInput],
    ) -> None:
        with self._data_lock:
            for record in requests:
                # First write wins, as in SQL backends: a retried batch must not duplicate.
                if record.id in self._by_id:
                    continue
                self._by_id[record.id] = record
                self._requests_of[record.deployment].append(record)
                self._counts[record.deployment]["requests"] += 1
            for score in scores:
                if score.reply_to:
                    # Where the answer was routed is not archived; drop it so a score
                    # reads back the same from every backend.
                    score = msgspec.structs.replace(score, reply_to="")
                self._scores_of_request[score.request_id].append(score)
                self._scores_of_model[score.deployment, score.model].append(score)
                self._counts[score.deployment]["scores"] += 1
            for item in inputs:
                self._inputs_of_request[item.request_id].append(item)
                self._counts[item.deployment]["inputs"] += 1

    # -- queries ------------------------------------------------------------------------------

    def get_request(self, request_id: str) -> RequestRecord | None:
        with self._data_lock:
            return self._by_id.get(request_id)

    def scores_for_request(self, request_id: str) -> list[Score]:
        with self._data_lock:
            scores = list(self._scores_of_request.get(request_id, ()))
        return sorted(scores, key=_computed_at)

    def scores_for_model(
        self,
        deployment: str,
        model: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Score]:
        _check_limit(limit)
        with self._data_lock:
            scores = list(self._scores_of_model.get((deployment, model), ()))
        return _window(scores, _computed_at, since, until, limit)

    def requests(
        self,
        deployment: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[RequestRecord]:
        _check_limit(limit)
        with self._data_lock:
            records = list(self._requests_of.get(deployment, ()))
        return _window(records, _received_at, since, until, limit)

    def decoy_inputs(self, request_id: str) -> list[DecoyInput]:
        with self._data_lock:
            return list(self._inputs_of_request.get(request_id, ()))

    def counts(self, deployment: str) -> dict[str, int]:
        with self._data_lock:
            counts = self._counts.get(deployment)
            return dict(counts) if counts is not None else _zero_counts()

    # -- labelled examples ------------------------------------------------------------------

    def store_examples(self, examples: Sequence[Example]) -> list[Example]:
        stored: list[Example] = []
        with self._data_lock:
            for example in examples:
                key = example.request_id
                if key is not None:
                    if (example.deployment, key) in self._labelled:
                        continue
                    self._labelled.add((example.deployment, key))
                    self._label_of.setdefault(key, example.label)
                self._last_seq += 1
                # A copy of the features, as a SQL backend would read back: the caller's
                # list may change after the call.
                kept = msgspec.structs.replace(
                    example, features=list(example.features), seq=self._last_seq
                )
                self._examples_of[kept.deployment].append(kept)
                self._counts[kept.deployment]["examples"] += 1
                stored.append(kept)
        return stored

    def examples(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[Example]:
        _check_limit(limit)
        with self._data_lock:
            stored = self._examples_of.get(deployment, [])
            # Stored in seq order: a learner resuming late in a long list skips to its place.
            start = bisect_right(stored, after_seq, key=_seq)
            chosen = [
                e
                for e in stored[start:]
                if (since is None or e.received_at >= since)
                and (until is None or e.received_at < until)
            ]
        return chosen if limit is None else chosen[:limit]

    def labels_for(self, request_ids: Sequence[str]) -> dict[str, Any]:
        with self._data_lock:
            return {i: self._label_of[i] for i in request_ids if i in self._label_of}

    # -- events -------------------------------------------------------------------------------

    def record_event(self, event: Event) -> Event:
        # Through JSON and back, as a SQL backend stores it: the caller's dict may change
        # after the call, and a detail JSON cannot hold must fail here too, not only on disk.
        try:
            detail = orjson.loads(detail_json(event.detail))
        except TypeError as exc:
            raise ArchiveError(f"{self!r}: cannot store an event: {exc}") from exc
        with self._data_lock:
            self._last_event_seq += 1
            kept = msgspec.structs.replace(event, detail=detail, seq=self._last_event_seq)
            self._events_of[kept.deployment].append(kept)
        return kept

    def events(
        self,
        deployment: str,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        _check_limit(limit)
        with self._data_lock:
            stored = self._events_of.get(deployment, [])
            start = bisect_right(stored, after_seq, key=_seq)
            chosen = [e for e in stored[start:] if kinds is None or e.kind in kinds]
        return chosen if limit is None else chosen[:limit]


_computed_at = attrgetter("computed_at")
_received_at = attrgetter("received_at")
_seq = attrgetter("seq")


def _zero_counts() -> dict[str, int]:
    return {"requests": 0, "scores": 0, "inputs": 0, "examples": 0}


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ArchiveError(f"limit must be 0 or more, got {limit}")


def _window(
    items: Iterable[_T],
    time_of: Callable[[_T], float],
    since: float | None,
    until: float | None,
    limit: int | None,
) -> list[_T]:
    """Items timed in ``[since, until)``, oldest first; ties keep the order they were stored."""
    chosen = [
        item
        for item in items
        if (since is None or time_of(item) >= since) and (until is None or time_of(item) < until)
    ]
    chosen.sort(key=time_of)  # stable, so ties stay in insertion order like SQL's rowid
    return chosen if limit is None else chosen[:limit]
