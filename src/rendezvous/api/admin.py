"""Champion changes over HTTP: promote, roll back, and the deployment's event history.

``POST /v1/deployments/{name}/promote``   ``{"model": name}`` (and optional ``"evidence"``,
                                          an object kept with the event) → the event
``POST /v1/deployments/{name}/rollback``  no body → the event; 409 with nothing to roll back
``GET  /v1/deployments/{name}/events``    ``?after=seq&kinds=promote,rollback&limit=n``
                                          → ``{"events": [...]}`` in seq order

A change takes effect in this process before the answer, and in every other process of the
deployment within about a second (see :mod:`rendezvous.promotion`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..archive.base import Event
from ..errors import InputError
from ..promotion import promote, rollback
from ..service import Rendezvous
from .http import JSONResponse, error_response, read_json

__all__ = ["routes"]

EVENTS_PARAMS = {"after", "kinds", "limit"}
DEFAULT_LIMIT = 1000  # a page; callers go on with ?after= the last seq they got


def event_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(event)
    return out


async def promote_model(request: Request) -> Response:
    try:
        service: Rendezvous = request.app.state.rendezvous
        runtime = service.get(request.path_params["name"])
        data = await read_json(request, request.app.state.max_body_bytes)
        if not isinstance(data, dict):
            raise InputError('expected a JSON object like {"model": name}', "body")
        unknown = sorted(set(data) - {"model", "evidence"})
        if unknown:
            raise InputError(f"unknown field(s) {unknown}; expected 'model' and 'evidence'", "body")
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise InputError(f"expected the name of a model, got {model!r}", "model")
        evidence = data.get("evidence")
        if evidence is not None and not isinstance(evidence, dict):
            raise InputError("expected an object", "evidence")
        event = await promote(runtime, model, evidence=evidence, by="admin")
    except Exception as exc:
        return error_response(exc)
    return JSONResponse(event_json(event))


async def rollback_champion(request: Request) -> Response:
    try:
        service: Rendezvous = request.app.state.rendezvous
        event = await rollback(service.get(request.path_params["name"]), by="admin")
    except Exception as exc:
        return error_response(exc)
    return JSONResponse(event_json(event))


async def list_events(request: Request) -> Response:
    try:
        service: Rendezvous = request.app.state.rendezvous
        runtime = service.get(request.path_params["name"])
        q = request.query_params
        unknown = sorted(set(q) - EVENTS_PARAMS)
        if unknown:
            raise InputError(
                f"unknown parameter(s) {unknown}; expected any of {sorted(EVENTS_PARAMS)}"
            )
        after = _count(q.get("after"), "after", 0)
        limit = _count(q.get("limit"), "limit", DEFAULT_LIMIT)
        raw = q.get("kinds")
        kinds = [k.strip() for k in raw.split(",") if k.strip()] if raw is not None else None
        events = await asyncio.to_thread(
            runtime.archive.events, runtime.name, after_seq=after, kinds=kinds, limit=limit
        )
    except Exception as exc:
        return error_response(exc)
    return JSONResponse({"events": [event_json(e) for e in events]})


def _count(raw: str | None, loc: str, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"expected an integer, got {raw!r}", loc) from None
    if value < 0:
        raise InputError(f"expected 0 or more, got {value}", loc)
    return value


routes = [
    Route("/v1/deployments/{name}/promote", promote_model, methods=["POST"]),
    Route("/v1/deployments/{name}/rollback", rollback_champion, methods=["POST"]),
    Route("/v1/deployments/{name}/events", list_events, methods=["GET"]),
]
