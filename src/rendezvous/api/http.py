"""HTTP plumbing shared by the API's routes: bounded bodies, JSON in and out, errors as JSON.

Every error leaves as ``{"error": message}`` with a 4xx/5xx status and never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import InputError, MalformedBody, PayloadTooLarge, RendezvousError

__all__ = [
    "JSONResponse",
    "error_payload",
    "error_response",
    "parse_json",
    "read_body",
    "read_json",
]

log = logging.getLogger("rendezvous.api")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InputError("content-length: expected an integer") from None
        if size > limit:
            raise PayloadTooLarge(f"request body of {size} bytes is over the limit of {limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    if not body:
        raise MalformedBody("empty body: expected a JSON object", loc="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"malformed JSON: {exc}", loc="body") from None


async def read_json(request: Request, limit: int) -> Any:
    return parse_json(await read_body(request, limit))


def error_payload(exc: Exception) -> tuple[int, dict[str, Any]]:
    """Status and JSON body for any exception that reached a route."""
    if isinstance(exc, RendezvousError):
        body: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, InputError) and exc.loc:
            body["loc"] = exc.loc
        return exc.status, body
    log.exception("unexpected error while serving a request")
    return 500, {"error": f"internal error: {type(exc).__name__}"}


def error_response(exc: Exception) -> JSONResponse:
    """The JSON answer for any exception that reached a route."""
    status, body = error_payload(exc)
    return JSONResponse(body, status_code=status)
