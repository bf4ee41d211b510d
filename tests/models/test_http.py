"""The http kind against a real local server: both protocols, and every way a call fails."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from rendezvous.config import Deployment, parse_deployment
from rendezvous.errors import ModelError, ModelLoadError
from rendezvous.models import HttpModel
from rendezvous.models.http import load_http

from .conftest import Data
from .helpers import load


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[list[HttpModel]]:
    models: list[HttpModel] = []
    yield models
    for m in models:
        await m.aclose()


def http_model(tmp_path: Path, opened: list[HttpModel], url: str, **options: Any) -> HttpModel:
    model = load(tmp_path, {"kind": "http", "source": url, "options": options})
    assert isinstance(model, HttpModel)
    opened.append(model)
    return model


async def test_a_bare_list_answer(
    tmp_path: Path, opened: list[HttpModel], server: str, data: Data, reference: Pipeline
) -> None:
    model = http_model(tmp_path, opened, f"{server}/bare")
    out = await model.predict(data.X[:10])
    assert out.predictions == reference.predict(data.X[:10]).tolist()
    assert out.probabilities is None


async def test_the_protocol_follows_the_url(
    tmp_path: Path, opened: list[HttpModel], server: str
) -> None:
    assert (
        http_model(tmp_path, opened, f"{server}/v2/models/lr/infer").info.extra["protocol"] == "oip"
    )
    assert http_model(tmp_path, opened, f"{server}/invocations").info.extra["protocol"] == "mlflow"


async def test_version_is_remote_unless_given(tmp_path: Path, server: str) -> None:
    model = load(tmp_path, {"kind": "http", "source": f"{server}/bare", "version": "mlflow-12"})
    assert model.version == "mlflow-12"
    assert isinstance(model, HttpModel)
    await model.aclose()
    assert model.client.is_closed


async def test_headers_are_sent(
    tmp_path: Path, opened: list[HttpModel], server: str, data: Data
) -> None:
    anonymous = http_model(tmp_path, opened, f"{server}/guarded")
    with pytest.raises(ModelError, match="answered HTTP 401: who are you"):
        await anonymous.predict(data.X[:2])
    known = http_model(tmp_path, opened, f"{server}/guarded", headers={"x-api-key": "s3cret"})
    assert len((await known.predict(data.X[:2])).predictions) == 2


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("/fail", {}, r"at http://127\.0\.0\.1:\d+/fail: answered HTTP 500: model exploded"),
        ("/slow", {"timeout_ms": 100}, "no answer within 100 ms"),
        ("/garbage", {}, "answered malformed JSON"),
        ("/short", {}, "answered 1 predictions for 3 rows"),
        ("/invocations", {"protocol": "oip"}, "answered HTTP 400: expected a body with 'dat"),
        ("/v2/models/lr/infer", {"protocol": "mlflow"}, "answered HTTP 400: expected a body"),
    ],
    ids=["500", "timeout", "malformed", "short", "wrong-protocol-oip", "wrong-protocol-mlflow"],
)
async def test_failures_are_model_errors(
    tmp_path: Path,
    opened: list[HttpModel],
    server: str,
    data: Data,
    path: str,
    options: dict[str, Any],
    message: str,
) -> None:
    model = http_model(tmp_path, opened, f"{server}{path}", **options)
    with pytest.raises(ModelError, match=message):
        await model.predict(data.X[:3])


async def test_nobody_listening_is_a_model_error(
    tmp_path: Path, opened: list[HttpModel], data: Data
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = http_model(tmp_path, opened, f"http://127.0.0.1:{port}/invocations")
    with pytest.raises(ModelError, match="request failed: ConnectError"):
        await model.predict(data.X[:1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"protocol": "grpc"}, "options.protocol must be one of"),
        ({"timeout_ms": 0}, "options.timeout_ms must be a positive number"),
        ({"headers": {"x-n": 1}}, "options.headers must map names to strings"),
    ],
)
def test_bad_options(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load(tmp_path, {"kind": "http", "source": "http://127.0.0.1:9/x", "options": options})


def mocked(tmp_path: Path, url: str, handler: Any, **options: Any) -> HttpModel:
    """An http model whose server is a function: for answer forms the test server lacks."""
    entry = {"name": "r", "kind": "http", "source": url, "role": "champion", "options": options}
    dep: Deployment = parse_deployment(
        {"name": "t", "schema": {"n_features": 2}, "models": [entry]}, base_dir=tmp_path
    )
    return load_http(dep.models[0], dep, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("answer", "predictions", "probabilities"),
    [
        ({"predictions": [[1], [0]]}, [1, 0], None),
        (
            [
                {"prediction": "a", "probabilities": [0.4, 0.6]},
                {"prediction": "b", "probabilities": [1, 0]},
            ],
            ["a", "b"],
            [[0.4, 0.6], [1.0, 0.0]],
        ),
    ],
    ids=["one-column", "objects"],
)
async def test_mlflow_answer_forms(
    tmp_path: Path, answer: Any, predictions: list[Any], probabilities: Any
) -> None:
    model = mocked(
        tmp_path, "http://mlflow/invocations", lambda _: httpx.Response(200, json=answer)
    )
    out = await model.predict(np.zeros((2, 2)))
    await model.aclose()
    assert out.predictions == predictions
    assert out.probabilities == probabilities


async def test_oip_request_body(tmp_path: Path) -> None:
    seen: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "outputs": [
                    {"name": "label", "shape": [2, 1], "datatype": "BYTES", "data": ["x", "y"]}
                ]
            },
        )

    model = mocked(tmp_path, "http://kserve/v2/models/m/infer", answer, input_name="features")
    out = await model.predict(np.array([[1.0, 2.0], [3.0, 4.0]]))
    await model.aclose()
    assert out.predictions == ["x", "y"]
    assert seen == [
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [2, 2],
                    "datatype": "FP64",
                    "data": [1.0, 2.0, 3.0, 4.0],
                }
            ]
        }
    ]
