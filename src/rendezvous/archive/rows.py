"""Records ↔ table rows, one encoding for every SQL backend.

Both SQL archives store the same columns the same way (JSON text for features, predictions
and probabilities), so both answer every query with equal records.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..messages import Score
from .base import DecoyInput, Event, Example, RequestRecord

__all__ = [
    "detail_json",
    "dumps",
    "dumps_optional",
    "event_record",
    "event_row",
    "example_record",
    "example_row",
    "input_record",
    "input_row",
    "loads_optional",
    "request_record",
    "request_row",
    "score_record",
    "score_row",
]


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except orjson.JSONEncodeError:
        # e.g. an integer beyond 64 bits: keep its text (see the module docstring)
        return orjson.dumps(str(value)).decode()


def dumps_optional(value: Any) -> str | None:
    return None if value is None else dumps(value)


def loads_optional(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


# Numbers go through float()/int(): sqlite3 would silently store a numpy scalar as a BLOB.


def request_row(r: RequestRecord) -> tuple[Any, ...]:
    return (
        r.id,
        r.deployment,
        float(r.received_at),
        dumps(r.features),
        r.model,
        r.version,
        r.reason,
        dumps_optional(r.prediction),
        float(r.latency_ms),
    )


def request_record(row: Any) -> RequestRecord:
    return RequestRecord(
        id=row[0],
        deployment=row[1],
        received_at=row[2],
        features=orjson.loads(row[3]),
        model=row[4],
        version=row[5],
        reason=row[6],
        prediction=loads_optional(row[7]),
        latency_ms=row[8],
    )


def score_row(s: Score) -> tuple[Any, ...]:
    return (
        s.request_id,
        s.deployment,
        s.model,
        s.version,
        dumps_optional(s.prediction),
        dumps_optional(s.probabilities),
        s.error,
        float(s.latency_ms),
        float(s.queue_ms),
        int(s.batch_size),
        float(s.computed_at),
    )


def score_record(row: Any) -> Score:
    # reply_to is where the answer was routed, not part of the record: it reads back "".
    return Score(
        request_id=row[0],
        deployment=row[1],
        model=row[2],
        version=row[3],
        prediction=loads_optional(row[4]),
        probabilities=loads_optional(row[5]),
        error=row[6],
        latency_ms=row[7],
        queue_ms=row[8],
        batch_size=row[9],
        computed_at=row[10],
    )


def input_row(i: DecoyInput) -> tuple[Any, ...]:
    return (i.request_id, i.deployment, i.model, dumps(i.features), float(i.received_at))


def input_record(row: Any) -> DecoyInput:
    return DecoyInput(
        request_id=row[0],
        deployment=row[1],
        model=row[2],
        features=orjson.loads(row[3]),
        received_at=row[4],
    )


# Labels go as JSON text, not as a typed column: a label may be an int, a float, a string or
# a bool, and JSON keeps which (1, 1.0, "1" and true all read back as they were given).


def example_row(e: Example) -> tuple[Any, ...]:
    """Every column but ``seq``, which the database assigns."""
    return (e.deployment, e.request_id, dumps(e.features), dumps(e.label), float(e.received_at))


def example_record(row: Any) -> Example:
    """From ``seq, deployment, request_id, features, label, received_at``."""
    return Example(
        seq=row[0],
        deployment=row[1],
        request_id=row[2],
        features=orjson.loads(row[3]),
        label=orjson.loads(row[4]),
        received_at=row[5],
    )


# An event's detail is strict JSON, unlike a prediction: it is written by our own code (the
# evidence of a promotion, a drift statistic), so anything JSON cannot hold is a bug to report,
# not a value to keep as its text.


def detail_json(detail: dict[str, Any]) -> str:
    """``detail`` as JSON text; TypeError when JSON cannot hold it."""
    if not isinstance(detail, dict):
        raise TypeError(f"an event's detail must be a dict, got {type(detail).__name__}")
    return orjson.dumps(detail, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def event_row(e: Event) -> tuple[Any, ...]:
    """Every column but ``seq``, which the database assigns."""
    return (e.deployment, e.kind, e.model, detail_json(e.detail), float(e.at), e.origin)


def event_record(row: Any) -> Event:
    """From ``seq, deployment, kind, model, detail, at, origin``."""
    return Event(
        seq=row[0],
        deployment=row[1],
        kind=row[2],
        model=row[3],
        detail=orjson.loads(row[4]),
        at=row[5],
        origin=row[6],
    )
