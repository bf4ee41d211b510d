"""A real HTTP model server for the http adapter: Starlette on uvicorn, in a thread.

It wraps the same scikit-learn model as the other adapters, speaking MLflow's scoring
protocol and the Open Inference Protocol, plus routes that fail on purpose.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


async def field(request: Request, key: str) -> Any:
    """The body's ``key``, or a 400 as a real model server would answer a foreign protocol."""
    body = await request.json()
    if not isinstance(body, dict) or key not in body:
        raise HTTPException(400, f"expected a body with {key!r}")
    return body[key]


def make_app(model: Any) -> Starlette:
    def score(rows: Any) -> tuple[list[Any], list[list[float]]]:
        x = np.asarray(rows, dtype=np.float64)
        return model.predict(x).tolist(), model.predict_proba(x).tolist()

    async def invocations(request: Request) -> Response:
        split = await field(request, "dataframe_split")
        assert len(split["columns"]) == len(split["data"][0])
        labels, proba = score(split["data"])
        items = [{"prediction": p, "probabilities": q} for p, q in zip(labels, proba, strict=True)]
        return JSONResponse({"predictions": items})

    async def bare(request: Request) -> Response:
        labels, _ = score((await field(request, "dataframe_split"))["data"])
        return JSONResponse(labels)

    async def infer(request: Request) -> Response:
        tensor = (await field(request, "inputs"))[0]
        assert tensor["datatype"] == "FP64"
        labels, proba = score(np.asarray(tensor["data"]).reshape(tensor["shape"]))
        n = len(labels)
        outputs = [
            {"name": "predict", "shape": [n], "datatype": "INT64", "data": labels},
            {
                "name": "predict_proba",
                "shape": [n, 2],
                "datatype": "FP64",
                "data": [v for row in proba for v in row],
            },
        ]
        return JSONResponse({"model_name": "lr", "outputs": outputs})

    async def fail(request: Request) -> Response:
        return PlainTextResponse("model exploded", status_code=500)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.5)
        return JSONResponse([0])

    async def garbage(request: Request) -> Response:
        return PlainTextResponse("{not json", status_code=200)

    async def short(request: Request) -> Response:
        return JSONResponse({"predictions": [1]})

    async def guarded(request: Request) -> Response:
        if request.headers.get("x-api-key") != "s3cret":
            return PlainTextResponse("who are you?", status_code=401)
        return await bare(request)

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/bare", bare, methods=["POST"]),
        Route("/v2/models/lr/infer", infer, methods=["POST"]),
        Route("/fail", fail, methods=["POST"]),
        Route("/slow", slow, methods=["POST"]),
        Route("/garbage", garbage, methods=["POST"]),
        Route("/short", short, methods=["POST"]),
        Route("/guarded", guarded, methods=["POST"]),
    ]
    return Starlette(routes=routes)


class ServerThread:
    """uvicorn on a free 127.0.0.1 port, in a daemon thread; ``url`` once started."""

    def __init__(self, app: Starlette) -> None:
        # Port 0: the kernel picks a free port, read back once the server listens.
        # (A socket bound here and handed to ``Server.run(sockets=...)`` answered every
        # request ~40 ms late, which would hide the adapter's own latency.)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            ws="none",
            loop="asyncio",
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
