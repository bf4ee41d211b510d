"""Labels over HTTP: ``POST /v1/deployments/{name}/feedback`` and ``…/{name}/examples``.

Feedback is ``{"request_id": id, "label": label}`` for one prediction, or ``{"feedback":
[{"request_id": id, "label": label}, …]}`` for many; examples are ``{"examples": [{"input":
row, "label": label}, …]}``. What is checked and stored is :mod:`rendezvous.feedback`'s
business; this module reads bodies and writes answers.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import InputError
from ..feedback import FeedbackResult, count_rejected, record_examples, record_feedback
from ..runtime import DeploymentRuntime
from ..service import Rendezvous
from .http import JSONResponse, error_response, read_json

__all__ = ["routes"]


async def feedback(request: Request) -> Response:
    try:
        runtime = _runtime(request)
        data = await read_json(request, request.app.state.max_body_bytes)
        try:
            batch = isinstance(data, dict) and "feedback" in data
            if batch:
                entries = _list(_fields(data, "body", {"feedback"}), "feedback")
                items = [
                    _pair(e, f"feedback[{i}]", "request_id", "label") for i, e in enumerate(entries)
                ]
            else:
                items = [_pair(data, None, "request_id", "label")]
        except InputError:
            count_rejected(runtime, "feedback")
            raise
        if batch:
            results = await record_feedback(runtime, items)
            return JSONResponse({"feedback": [_result(r) for r in results]})
        (result,) = await record_feedback(runtime, items, loc=None)
        return JSONResponse(_result(result))
    except Exception as exc:
        return error_response(exc)


async def examples(request: Request) -> Response:
    try:
        runtime = _runtime(request)
        data = await read_json(request, request.app.state.max_body_bytes)
        try:
            entries = _list(_fields(data, "body", {"examples"}), "examples")
            items = [_pair(e, f"examples[{i}]", "input", "label") for i, e in enumerate(entries)]
        except InputError:
            count_rejected(runtime, "example")
            raise
        stored = await record_examples(runtime, items)
        return JSONResponse({"seqs": [e.seq for e in stored]})
    except Exception as exc:
        return error_response(exc)


def _runtime(request: Request) -> DeploymentRuntime:
    service: Rendezvous = request.app.state.rendezvous
    return service.get(request.path_params["name"])


def _fields(data: Any, loc: str, keys: Collection[str]) -> dict[str, Any]:
    """``data`` as an object of exactly ``keys``, or an error naming what is wrong."""
    expected = " and ".join(repr(k) for k in keys)
    if not isinstance(data, dict):
        raise InputError(f"expected an object with {expected}, got {type(data).__name__}", loc)
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise InputError(f"unknown key(s) {unknown}; expected {expected}", loc)
    for key in keys:
        if key not in data:
            raise InputError("missing", key if loc == "body" else f"{loc}.{key}")
    return data


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise InputError(f"expected a list, got {type(value).__name__}", key)
    return value


def _pair(entry: Any, loc: str | None, first: str, second: str) -> tuple[Any, Any]:
    fields = _fields(entry, loc or "body", (first, second))
    return fields[first], fields[second]


def _result(result: FeedbackResult) -> dict[str, Any]:
    return {
        "request_id": result.request_id,
        "label": result.label,
        "duplicate": result.duplicate,
        "seq": result.seq,
    }


routes = [
    Route("/v1/deployments/{name}/feedback", feedback, methods=["POST"]),
    Route("/v1/deployments/{name}/examples", examples, methods=["POST"]),
]
