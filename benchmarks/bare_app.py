"""Baseline (a): the plainest Starlette endpoint that serves the model, one predict per request.

What a team writes on day one; every rendezvous figure is a ratio against it.
"""

from __future__ import annotations

import os

import joblib
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

model = joblib.load(os.environ["BARE_MODEL"])


async def predict(request: Request) -> Response:
    body = orjson.loads(await request.body())
    prediction = model.predict(np.array([body["input"]], dtype=np.float64))
    return Response(orjson.dumps({"prediction": prediction.tolist()[0]}),
                    media_type="application/json")  # fmt: skip


async def health(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health)])
