"""Labels for the learner: feedback on earlier predictions, and standalone examples.

Feedback names a request by its id; its label is joined to the input exactly as the models
saw it (the archived request) and stored with :meth:`Archive.store_examples`, durably, once
per request: repeated feedback is reported as a duplicate, never stored twice, and the
first label stays. A standalone example brings its own input, validated and enriched like a
predict call's.

Which labels a deployment accepts (:func:`check_label`):

* its champion has classes (a classifier): one of them, compared by value, so ``1`` and
  ``1.0`` both name class ``1`` but ``"1"`` and ``true`` do not; the class is stored.
* otherwise, a label of the kind the deployment answers with: a number (never a boolean)
  when it answered the request with a number (regression), a string when with a string (a
  business rule answering ``"high"``/``"low"``), a boolean when with a boolean. When there
  is no answer to go by (a standalone example, or a request nobody answered), any number,
  string or boolean is accepted.

Every item of a call is checked before any is stored: one bad item refuses the whole call.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from prometheus_client import Counter

from .archive.base import Archive, Example, RequestRecord
from .errors import InputError, NotFound
from .metrics import Metrics
from .runtime import DeploymentRuntime

__all__ = [
    "FeedbackResult",
    "check_label",
    "count_rejected",
    "record_examples",
    "record_feedback",
]

Kind = Literal["number", "string", "boolean"]


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """What became of one item of feedback."""

    request_id: str
    label: Any  # the label stored for the request: the first one given, not a repeat's
    duplicate: bool  # the request had a label already; nothing was stored
    seq: int | None  # the stored example's seq; None for a duplicate


async def record_feedback(
    runtime: DeploymentRuntime,
    items: Sequence[tuple[Any, Any]],
    *,
    loc: str | None = "feedback",
) -> list[FeedbackResult]:
    """Store ``(request_id, label)`` pairs as labelled examples of ``runtime``'s deployment.

    Errors name ``{loc}[i].request_id`` or ``{loc}[i].label``; with ``loc=None`` (one item
    given as the body's own fields) just ``request_id`` or ``label``. An unknown request id
    is :class:`NotFound`; a bad label :class:`InputError`. Either way nothing is stored.
    """
    counter = _counter(runtime.metrics)
    try:
        _check_count(runtime, items, loc or "body")
        ids = [_request_id(item[0], _loc(loc, i, "request_id")) for i, item in enumerate(items)]
        records = await asyncio.to_thread(_find_requests, runtime.archive, runtime.name, ids)
        unknown = list(dict.fromkeys(i for i in ids if i not in records))
        if unknown:
            raise NotFound(f"deployment '{runtime.name}' has no archived request {unknown}")
        classes = runtime.champion.info.classes
        received_at = time.time()
        examples = [
            Example(
                deployment=runtime.name,
                request_id=request_id,
                features=records[request_id].features,
                label=check_label(
                    label, classes, records[request_id].prediction, _loc(loc, i, "label")
                ),
                received_at=received_at,
            )
            for i, (request_id, (_, label)) in enumerate(zip(ids, items, strict=True))
        ]
    except (InputError, NotFound):
        counter.labels(runtime.name, "feedback", "rejected").inc(max(1, len(items)))
        raise
    stored = await asyncio.to_thread(runtime.archive.store_examples, examples)
    new = {e.request_id: e for e in stored}
    # Labelled before this call: report the label that stays, not the one just refused.
    earlier = list(dict.fromkeys(i for i in ids if i not in new))
    kept = await asyncio.to_thread(runtime.archive.labels_for, earlier) if earlier else {}
    results: list[FeedbackResult] = []
    for example in examples:
        request_id = example.request_id
        assert request_id is not None
        first = new.pop(request_id, None)  # popped: a repeat later in this call is a duplicate
        if first is not None:
            results.append(FeedbackResult(request_id, first.label, False, first.seq))
        else:
            label = kept[request_id] if request_id in kept else _first_label(results, request_id)
            results.append(FeedbackResult(request_id, label, True, None))
    n_new = sum(not r.duplicate for r in results)
    if n_new:
        counter.labels(runtime.name, "feedback", "accepted").inc(n_new)
    if len(results) > n_new:
        counter.labels(runtime.name, "feedback", "duplicate").inc(len(results) - n_new)
    return results


async def record_examples(
    runtime: DeploymentRuntime,
    items: Sequence[tuple[Any, Any]],
    *,
    loc: str = "examples",
) -> list[Example]:
    """Store ``(row, label)`` pairs as standalone examples; each comes back with its seq.

    A row is validated and enriched as a predict call's would be; errors name
    ``{loc}[i].input…`` or ``{loc}[i].label`` and nothing is stored.
    """
    counter = _counter(runtime.metrics)
    try:
        _check_count(runtime, items, loc)
        classes = runtime.champion.info.classes
        received_at = time.time()
        examples = [
            Example(
                deployment=runtime.name,
                request_id=None,
                features=runtime.parser.parse(row, f"{loc}[{i}].input"),
                label=check_label(label, classes, None, f"{loc}[{i}].label"),
                received_at=received_at,
            )
            for i, (row, label) in enumerate(items)
        ]
    except InputError:
        counter.labels(runtime.name, "example", "rejected").inc(max(1, len(items)))
        raise
    stored = await asyncio.to_thread(runtime.archive.store_examples, examples)
    counter.labels(runtime.name, "example", "accepted").inc(len(stored))
    return stored


def check_label(label: Any, classes: Sequence[Any] | None, answer: Any, loc: str) -> Any:
    """The label to store for ``label``, or :class:`InputError` saying what was expected.

    ``classes`` are the champion's (None without), ``answer`` what the deployment answered
    the labelled request with (None when unknown). See the module docstring for the rule.
    """
    # numpy scalars (sklearn's classes_, an in-process caller's labels) as Python values:
    # JSON-able, and typed as JSON types them.
    label, answer = _plain(label), _plain(answer)
    kind = _kind(label)
    if classes:
        plain = [_plain(c) for c in classes]
        for cls in plain:
            # == alone would let True name class 1, and 1 name class True.
            if kind is not None and kind == _kind(cls) and label == cls:
                return cls
        raise InputError(f"expected one of the classes {plain}, got {_describe(label)}", loc)
    expected = _kind(answer)
    if expected is None:
        if kind is None:
            raise InputError(
                f"expected a number, a string or a boolean, got {_describe(label)}", loc
            )
    elif kind != expected:
        raise InputError(
            f"expected a {expected}, as the deployment answered with {_describe(answer)};"
            f" got {_describe(label)}",
            loc,
        )
    return label


# -- helpers ------------------------------------------------------------------------------


def _find_requests(
    archive: Archive, deployment: str, ids: Sequence[str]
) -> dict[str, RequestRecord]:
    """The archived requests of ``deployment`` among ``ids`` (blocking: run in a thread)."""
    found: dict[str, RequestRecord] = {}

    def look(wanted: Sequence[str]) -> None:
        for request_id in wanted:
            record = archive.get_request(request_id)
            if record is not None and record.deployment == deployment:
                found[request_id] = record

    look(list(dict.fromkeys(ids)))
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    if missing:
        # Feedback can follow its answer within milliseconds, while the request still
        # waits in the archive's write buffer: write it out and look again.
        archive.flush()
        look(missing)
    return found


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _kind(value: Any) -> Kind | None:
    if isinstance(value, bool):  # before int: bool is an int to Python, not to a label
        return "boolean"
    if isinstance(value, int):
        return "number"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    return None


def _request_id(value: Any, loc: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"expected a request id (a non-empty string), got {_describe(value)}", loc)
    return value


def _check_count(runtime: DeploymentRuntime, items: Sequence[Any], loc: str) -> None:
    most = runtime.deployment.max_batch_rows
    if not items:
        raise InputError("expected at least one item", loc)
    if len(items) > most:
        raise InputError(f"at most {most} items per request, got {len(items)}", loc)


def _loc(loc: str | None, i: int, name: str) -> str:
    return name if loc is None else f"{loc}[{i}].{name}"


def _first_label(results: Sequence[FeedbackResult], request_id: str) -> Any:
    """The label stored by an earlier item of this call for ``request_id``."""
    return next((r.label for r in results if r.request_id == request_id), None)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


# -- metrics ------------------------------------------------------------------------------


def count_rejected(runtime: DeploymentRuntime, source: Literal["feedback", "example"]) -> None:
    """Count a call refused before its items could be read (a malformed body, say)."""
    _counter(runtime.metrics).labels(runtime.name, source, "rejected").inc()


# One counter per service registry, made on first use (registering twice would fail).
_counters: weakref.WeakKeyDictionary[Metrics, Counter] = weakref.WeakKeyDictionary()
_counters_lock = threading.Lock()


def _counter(metrics: Metrics) -> Counter:
    with _counters_lock:
        counter = _counters.get(metrics)
        if counter is None:
            counter = _counters[metrics] = Counter(
                "rendezvous_labels",
                "Labels received, per item: feedback on a prediction or a standalone example,"
                " accepted, duplicate (the request had a label) or rejected (bad or unknown)",
                ["deployment", "source", "outcome"],
                registry=metrics.registry,
            )
        return counter
