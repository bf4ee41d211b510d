"""The ASGI app: native API, Open Inference Protocol V2, metrics, OpenAPI and docs.

The app starts and stops the :class:`~rendezvous.service.Rendezvous` it wraps in its
lifespan, so ``uvicorn`` (or any ASGI server) owns the whole lifecycle.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..priority import request_slice
from ..service import Rendezvous
from . import admin, compare, dashboard, feedback, learning, native, oip
from .fastpath import PredictFastPath
from .http import JSONResponse
from .openapi import DOCS_HTML, openapi_document

__all__ = ["create_app"]

log = logging.getLogger("rendezvous.api")

DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: thousands of rows; larger batches belong in files
# The time slice the event loop's thread asks the kernel for (Linux 6.12+, see
# priority.request_slice), instead of the default (1.4 ms here): the loop is not preempted
# in the middle of a burst of requests unless it has run this long. Measured with
# `perf sched` over 5 s at 867 requests/s, one CPU, two shadows in the model process beside
# it: the model process's preemptions of the loop (~1 ms each) fell from 44 to 13-17 ms,
# the loop's time runnable but not running from 151 to 103-110 ms (with the champion
# alone, 95 ms before and 73-105 ms after: host noise). As long as Python's GIL switch
# interval: a thread of the process that wants the CPU meanwhile waits no longer than it
# would for the GIL.
LOOP_SLICE_S = 0.005


async def metrics(request: Request) -> Response:
    service: Rendezvous = request.app.state.rendezvous
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(DOCS_HTML)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def create_app(
    service: Rendezvous, *, max_body_bytes: int = DEFAULT_MAX_BODY, fast_path: bool = True
) -> Starlette:
    """An ASGI app serving ``service``; its lifespan starts and stops the service.

    With ``fast_path`` (the default) predict calls skip Starlette's middleware and router
    (see :mod:`rendezvous.api.fastpath`); the answers are the same either way.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # On the event loop's thread: see LOOP_SLICE_S
        if not request_slice(LOOP_SLICE_S):
            log.debug("this kernel keeps the event loop's default time slice")
        await service.start()
        # Everything loaded so far (models, libraries) lives as long as the process: move it
        # out of the collector's sight, so full collections stay short while serving.
        gc.freeze()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(
        routes=[
            *native.routes,
            *feedback.routes,
            *compare.routes,
            *admin.routes,
            *learning.routes,
            *oip.routes,
            *dashboard.routes,
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.rendezvous = service
    app.state.max_body_bytes = max_body_bytes
    if fast_path:
        # the wrapper forwards attribute access, so it still looks like the Starlette app
        return PredictFastPath(app, service, max_body_bytes)  # type: ignore[return-value]
    return app
