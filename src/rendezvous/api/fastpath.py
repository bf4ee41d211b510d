"""The hot route without the framework: ``POST /v1/deployments/{name}/predict`` in raw ASGI.

Starlette's middleware stack, router and Request object cost about as much CPU per request
as the whole rendezvous (measured with py-spy under load: ~40% of the event loop's time).
Predict calls are answered here directly, with exactly the same logic and JSON as the
Starlette route (:func:`~rendezvous.api.native.predict_payload`); every other path, and any
predict call this layer cannot handle, goes to the Starlette app unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from ..errors import PayloadTooLarge
from ..service import Rendezvous
from .http import error_payload
from .native import predict_payload

__all__ = ["PredictFastPath"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX, SUFFIX = "/v1/deployments/", "/predict"
JSON_HEADERS = [(b"content-type", b"application/json")]


class PredictFastPath:
    """ASGI middleware answering predict calls itself; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp, service: Rendezvous, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    def __getattr__(self, name: str) -> Any:
        # behave like the wrapped app for callers that look at it (state, routes, …)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                name = path[len(PREFIX) : -len(SUFFIX)]
                if name and "/" not in name:
                    await self._predict(name, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _predict(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._body(scope, receive)
        except Exception as exc:
            status, payload = error_payload(exc)
        else:
            status, payload = await predict_payload(self.service, name, body)
        content = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = [*JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                if value.isdigit() and int(value) > limit:
                    raise PayloadTooLarge(
                        f"request body of {int(value)} bytes is over the limit of {limit}"
                    )
                break
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):  # the usual case: one message
            if len(body) > limit:
                raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
            return body
        chunks = [body]
        total = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
