"""Continuous learning over HTTP: ask for a training, read the drift the learner found.

``POST /v1/deployments/{name}/train``  ``{"model": name}`` → 202 and the ``train`` event;
                                       the deployment's learner carries it out at its next
                                       poll and records the decision as a ``validation``
                                       event (``GET …/events?kinds=validation``)
``GET  /v1/deployments/{name}/drift``  ``?model=name&after=seq&limit=n`` → ``{"drift":
                                       [...]}``, drift events in seq order: the latest
                                       ``limit`` without ``after``, else the first after it

The request is an archive event, not a call into the learner: the learner runs in another
process (or on another host) and may be restarting; a request it has not seen yet waits
in the archive, durably.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..archive.base import Event
from ..config import ModelConfig
from ..errors import InputError, NotFound
from ..runtime import DeploymentRuntime
from ..service import Rendezvous
from .http import JSONResponse, error_response, read_json

__all__ = ["routes"]

DRIFT_PARAMS = {"model", "after", "limit"}
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def _runtime(request: Request) -> DeploymentRuntime:
    service: Rendezvous = request.app.state.rendezvous
    return service.get(request.path_params["name"])


def _model(runtime: DeploymentRuntime, name: Any) -> ModelConfig:
    if not isinstance(name, str) or not name:
        raise InputError(f"expected the name of a model, got {name!r}", "model")
    for cfg in runtime.deployment.models:
        if cfg.name == name:
            return cfg
    known = [m.name for m in runtime.deployment.models]
    raise NotFound(f"deployment '{runtime.name}' has no model '{name}' (models: {known})")


async def train(request: Request) -> Response:
    try:
        runtime = _runtime(request)
        data = await read_json(request, request.app.state.max_body_bytes)
        if not isinstance(data, dict):
            raise InputError('expected a JSON object like {"model": name}', "body")
        unknown = sorted(set(data) - {"model"})
        if unknown:
            raise InputError(f"unknown field(s) {unknown}; expected 'model'", "body")
        cfg = _model(runtime, data.get("model"))
        if cfg.learning is None:
            raise InputError(
                f"model '{cfg.name}' does not learn: its entry has no learning: block", "model"
            )
        event = Event(
            runtime.name,
            "train",
            cfg.name,
            {"requested_by": "api"},
            at=time.time(),
            origin=f"api:{runtime.instance}",
        )
        stored = await asyncio.to_thread(runtime.archive.record_event, event)
    except Exception as exc:
        return error_response(exc)
    return JSONResponse(msgspec.to_builtins(stored), status_code=202)


async def drift(request: Request) -> Response:
    try:
        runtime = _runtime(request)
        q = request.query_params
        unknown = sorted(set(q) - DRIFT_PARAMS)
        if unknown:
            raise InputError(
                f"unknown parameter(s) {unknown}; expected any of {sorted(DRIFT_PARAMS)}"
            )
        model = _model(runtime, q["model"]).name if "model" in q else None
        after = _count(q.get("after"), "after", 0, 0)
        limit = _count(q.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        events = await asyncio.to_thread(
            runtime.archive.events, runtime.name, after_seq=after, kinds=["drift"]
        )
        chosen = [e for e in events if model is None or e.model == model]
        # Without a starting point the caller wants what is recent; with one, the next page.
        page = chosen[:limit] if "after" in q else chosen[-limit:]
    except Exception as exc:
        return error_response(exc)
    return JSONResponse({"drift": [msgspec.to_builtins(e) for e in page]})


def _count(raw: str | None, loc: str, default: int, least: int, most: int | None = None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"expected an integer, got {raw!r}", loc) from None
    if value < least:
        raise InputError(f"expected {least} or more, got {value}", loc)
    if most is not None and value > most:
        raise InputError(f"expected at most {most}, got {value}", loc)
    return value


routes = [
    Route("/v1/deployments/{name}/train", train, methods=["POST"]),
    Route("/v1/deployments/{name}/drift", drift, methods=["GET"]),
]
