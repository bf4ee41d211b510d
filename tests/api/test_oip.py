"""The Open Inference Protocol V2: a real Triton client against a live server, and details
in process."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from rendezvous.service import Rendezvous

Data = tuple[np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def tc(server: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=server.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def matrix_input(X: np.ndarray, *, binary: bool = True) -> triton.InferInput:
    dtype = {np.dtype(np.float64): "FP64", np.dtype(np.float32): "FP32"}[X.dtype]
    return triton.InferInput("input", list(X.shape), dtype).set_data_from_numpy(
        X, binary_data=binary
    )


def champion_version(http: httpx.Client, name: str) -> str:
    models = http.get(f"/v1/deployments/{name}").json()["models"]
    version: str = next(m["version"] for m in models if m["role"] == "champion")
    return version


# -- a Triton client against a live server -------------------------------------------------


def test_server_health_and_metadata(tc: triton.InferenceServerClient) -> None:
    assert tc.is_server_live()
    assert tc.is_server_ready()
    meta = tc.get_server_metadata()
    assert meta["name"] == "rendezvous-ml"
    assert meta["version"]
    assert "binary_tensor_data" in meta["extensions"]


def test_model_metadata(tc: triton.InferenceServerClient, http: httpx.Client) -> None:
    version = champion_version(http, "cancer")
    meta = tc.get_model_metadata("cancer")
    assert meta["name"] == "cancer"
    assert meta["versions"] == [version]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert meta["parameters"]["classes"] == [0, 1]
    assert tc.get_model_metadata("cancer", model_version=version) == meta
    rules = tc.get_model_metadata("rules")
    assert [o["name"] for o in rules["outputs"]] == ["predict"]  # no classes, no probabilities
    assert rules["parameters"]["features"] == ["amount", "age"]


def test_model_ready(tc: triton.InferenceServerClient, http: httpx.Client) -> None:
    assert tc.is_model_ready("cancer")
    assert tc.is_model_ready("cancer", model_version=champion_version(http, "cancer"))
    assert not tc.is_model_ready("cancer", model_version="not-a-version")
    assert not tc.is_model_ready("nope")


def test_binary_infer_matches_native_api(
    tc: triton.InferenceServerClient, http: httpx.Client, cancer: Data, cancer_model: Any
) -> None:
    X = cancer[0][:20]
    result = tc.infer("cancer", [matrix_input(X)])  # binary in, binary out: the defaults
    predict = result.as_numpy("predict")
    probabilities = result.as_numpy("probabilities")
    assert predict.dtype == np.int64
    assert probabilities.shape == (20, 2)
    native = http.post("/v1/deployments/cancer/predict", json={"inputs": X.tolist()}).json()
    answers = native["predictions"]
    assert predict.tolist() == [a["prediction"] for a in answers]
    expected = [[a["probabilities"]["0"], a["probabilities"]["1"]] for a in answers]
    np.testing.assert_allclose(probabilities, expected)
    model = cancer_model[0]
    assert predict.tolist() == model.predict(X).tolist()
    np.testing.assert_allclose(probabilities, model.predict_proba(X))
    response = result.get_response()
    assert response["model_name"] == "cancer"
    assert response["model_version"] == champion_version(http, "cancer")
    assert response["parameters"]["reasons"] == ["champion"] * 20
    assert response["parameters"]["models"] == ["logreg"] * 20
    assert len(set(response["parameters"]["request_ids"])) == 20


def test_json_infer_with_json_outputs_and_id(
    tc: triton.InferenceServerClient, cancer: Data, cancer_model: Any
) -> None:
    X = cancer[0][:5]
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=False),
    ]
    result = tc.infer("cancer", [matrix_input(X, binary=False)], outputs=outputs, request_id="r-1")
    response = result.get_response()
    assert response["id"] == "r-1"
    assert all("data" in o and "parameters" not in o for o in response["outputs"])
    assert result.as_numpy("predict").tolist() == cancer_model[0].predict(X).tolist()
    np.testing.assert_allclose(result.as_numpy("probabilities"), cancer_model[0].predict_proba(X))


def test_requested_outputs_restrict_the_answer(
    tc: triton.InferenceServerClient, cancer: Data
) -> None:
    X = cancer[0][:3]
    result = tc.infer(
        "cancer", [matrix_input(X)], outputs=[triton.InferRequestedOutput("probabilities")]
    )
    assert result.as_numpy("predict") is None
    assert result.as_numpy("probabilities").shape == (3, 2)
    mixed = tc.infer(
        "cancer",
        [matrix_input(X)],
        outputs=[
            triton.InferRequestedOutput("predict", binary_data=False),
            triton.InferRequestedOutput("probabilities", binary_data=True),
        ],
    )
    kinds = {o["name"]: "data" in o for o in mixed.get_response()["outputs"]}
    assert kinds == {"predict": True, "probabilities": False}
    np.testing.assert_allclose(mixed.as_numpy("probabilities"), result.as_numpy("probabilities"))


def test_infer_at_the_served_version(
    tc: triton.InferenceServerClient, http: httpx.Client, cancer: Data
) -> None:
    version = champion_version(http, "cancer")
    result = tc.infer("cancer", [matrix_input(cancer[0][:2])], model_version=version)
    assert result.get_response()["model_version"] == version


def test_fp32_input_and_one_row_shape(
    tc: triton.InferenceServerClient, cancer: Data, cancer_model: Any
) -> None:
    X = cancer[0][:4].astype(np.float32)
    result = tc.infer("cancer", [matrix_input(X)])
    assert result.as_numpy("predict").tolist() == cancer_model[0].predict(X.astype(float)).tolist()
    one = tc.infer("cancer", [matrix_input(cancer[0][7])])  # shape [30]: one row
    assert one.as_numpy("predict").tolist() == cancer_model[0].predict(cancer[0][7:8]).tolist()


def test_compressed_request_and_response(
    tc: triton.InferenceServerClient, cancer: Data, cancer_model: Any
) -> None:
    X = cancer[0][:200]
    expected = cancer_model[0].predict(X).tolist()
    for algorithm in ("gzip", "deflate"):
        result = tc.infer(
            "cancer",
            [matrix_input(X)],
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
        assert result.as_numpy("predict").tolist() == expected


def test_per_feature_tensors_and_string_predictions(
    tc: triton.InferenceServerClient, http: httpx.Client
) -> None:
    amount = np.array([50.0, 5000.0, 5000.0])
    age = np.array([25, 25, 60], dtype=np.int64)
    for binary in (True, False):
        inputs = [
            triton.InferInput("amount", [3], "FP64").set_data_from_numpy(amount, binary),
            triton.InferInput("age", [3], "INT64").set_data_from_numpy(age, binary),
        ]
        outputs = [triton.InferRequestedOutput("predict", binary_data=binary)]
        result = tc.infer("rules", inputs, outputs=outputs)
        assert result.get_output("predict")["datatype"] == "BYTES"
        assert result.as_numpy("predict").tolist() in (
            [b"low", b"high", b"low"],  # binary BYTES come back as bytes
            ["low", "high", "low"],
        )
    rows = [{"amount": a, "age": int(g)} for a, g in zip(amount, age, strict=True)]
    native = http.post("/v1/deployments/rules/predict", json={"inputs": rows}).json()
    assert [a["prediction"] for a in native["predictions"]] == ["low", "high", "low"]


def test_boolean_predictions(tc: triton.InferenceServerClient) -> None:
    amounts = np.array([[10.0], [1000.0]])  # shape [n, 1] names its one feature
    result = tc.infer(
        "big", [triton.InferInput("amount", [2, 1], "FP64").set_data_from_numpy(amounts)]
    )
    assert result.as_numpy("predict").tolist() == [False, True]
    assert result.get_output("predict")["datatype"] == "BOOL"


def test_the_client_sees_the_error_message(tc: triton.InferenceServerClient, cancer: Data) -> None:
    with pytest.raises(InferenceServerException) as info:
        tc.infer("cancer", [matrix_input(cancer[0][:2, :29])])
    assert info.value.status() == "422"
    assert "expected 30 features per row, got 29" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        tc.infer("nope", [matrix_input(cancer[0][:2])])
    assert info.value.status() == "404"
    assert "unknown deployment 'nope'" in info.value.message()


def _json_tensor(shape: list[int], data: list[Any], datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]}


ROW = [1.0] * 30
SHORT_BINARY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64",
                 "parameters": {"binary_data_size": 240}}]}
).encode()  # fmt: skip
BAD_REQUESTS = [
    # (path, body, headers, status, words the error must contain)
    ("cancer/infer", _json_tensor([1, 1, 30], ROW), {}, 422, ["shape [n, 30]", "[1, 1, 30]"]),
    ("cancer/infer", _json_tensor([2, 29], ROW[:29] * 2), {}, 422, ["30 features", "got 29"]),
    ("cancer/infer", _json_tensor([2, 30], ROW * 2 + [1.0]), {}, 422, ["60 values", "has 61"]),
    ("cancer/infer", _json_tensor([1, 30], ROW, "BF16"), {}, 422, ["unsupported datatype"]),
    ("cancer/infer", _json_tensor([1, 30], ROW, "COMPLEX"), {}, 422, ["'COMPLEX'", "FP64"]),
    ("cancer/infer", _json_tensor([1, 30], ["a"] * 30), {}, 422, ["inputs[0].data[0]", "string"]),
    ("cancer/infer", _json_tensor([1, 30], [True] * 30), {}, 422, ["boolean"]),
    ("cancer/infer", _json_tensor([1, 30], ROW, "INT64"), {}, 422, ["INT64", "float"]),
    ("cancer/infer", {"inputs": []}, {}, 422, ["inputs", "non-empty"]),
    ("cancer/infer", {"input": ROW}, {}, 422, ["inputs"]),
    ("cancer/infer", b'{"inputs": [', {}, 400, ["malformed JSON"]),
    ("cancer/infer", b"", {}, 400, ["empty body"]),
    ("cancer/infer", b"[1, 2]", {}, 422, ["JSON object", "list"]),
    ("nope/infer", _json_tensor([1, 30], ROW), {}, 404, ["unknown deployment 'nope'"]),
    ("cancer/versions/v0/infer", _json_tensor([1, 30], ROW), {}, 404, ["'v0'", "serves version"]),
    (
        "cancer/infer",
        {**_json_tensor([1, 30], ROW), "outputs": [{"name": "scores"}]},
        {},
        422,
        ["unknown output 'scores'", "probabilities"],
    ),
    (
        "cancer/infer",
        {**_json_tensor([1, 30], ROW), "id": 7},
        {},
        422,
        ["id: expected a string"],
    ),
    (
        "cancer/infer",
        SHORT_BINARY + b"\0" * 8,
        {"Inference-Header-Content-Length": str(len(SHORT_BINARY))},
        422,
        ["binary_data_size", "240 bytes asked for, 8 left"],
    ),
    (
        "cancer/infer",
        json.dumps(_json_tensor([1, 30], ROW)).encode() + b"\0\0",
        {"Inference-Header-Content-Length": "nine"},
        400,
        ["inference-header-content-length", "'nine'"],
    ),
    ("cancer/infer", b"not gzip", {"Content-Encoding": "gzip"}, 400, ["not valid gzip"]),
    ("cancer/infer", b"x", {"Content-Encoding": "br"}, 400, ["unsupported encoding 'br'"]),
    ("broken/infer", _json_tensor([1, 2], [1.0, 2.0]), {}, 503, ["no model answered", "fails"]),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "words"),
    BAD_REQUESTS,
    ids=[f"{i}-{r[3]}" for i, r in enumerate(BAD_REQUESTS)],
)
def test_bad_requests_are_named_and_the_server_keeps_serving(
    http: httpx.Client,
    tc: triton.InferenceServerClient,
    cancer: Data,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    words: list[str],
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = http.post(f"/v2/models/{path}", content=content, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error
    good = tc.infer("cancer", [matrix_input(cancer[0][:2])])
    assert good.as_numpy("predict").shape == (2,)


def test_unknown_routes_answer_json(http: httpx.Client) -> None:
    response = http.get("/v2/models/cancer/config")
    assert response.status_code == 404
    assert "error" in response.json()


# -- details, in process -------------------------------------------------------------------


async def _infer(client: httpx.AsyncClient, name: str, body: Any, **kw: Any) -> httpx.Response:
    return await client.post(f"/v2/models/{name}/infer", json=body, **kw)


async def test_ready_follows_the_service(make_deployments: Any, tmp_path: Any) -> None:
    from rendezvous.api.app import create_app

    service = Rendezvous(make_deployments(tmp_path))
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://rv") as client:
        assert (await client.get("/v2/health/live")).status_code == 200
        response = await client.get("/v2/health/ready")
        assert response.status_code == 503
        assert response.json()["ready"] is False
        async with service:
            assert (await client.get("/v2/health/ready")).json() == {"ready": True}
            assert (await client.get("/v2/models/cancer/ready")).status_code == 200
        assert (await client.get("/v2/health/ready")).status_code == 503


async def test_nested_and_flat_data_agree(client: httpx.AsyncClient, cancer: Data) -> None:
    X = cancer[0][:3]
    flat = await _infer(client, "cancer", _json_tensor([3, 30], X.ravel().tolist()))
    nested = await _infer(client, "cancer", _json_tensor([3, 30], X.tolist()))
    assert flat.status_code == nested.status_code == 200
    assert flat.json()["outputs"] == nested.json()["outputs"]
    assert flat.headers["content-type"] == "application/json"


async def test_empty_outputs_list_means_all(client: httpx.AsyncClient) -> None:
    response = await _infer(client, "cancer", {**_json_tensor([30], ROW), "outputs": []})
    assert [o["name"] for o in response.json()["outputs"]] == ["predict", "probabilities"]


@pytest.mark.parametrize("datatype", ["INT32", "INT64", "UINT8", "FP16", "FP32", "BOOL"])
async def test_numeric_datatypes(client: httpx.AsyncClient, datatype: str) -> None:
    values: list[Any] = [True, False] if datatype == "BOOL" else [1, 0]
    response = await _infer(client, "cancer", _json_tensor([1, 30], values * 15, datatype))
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"] == [1]


async def test_binary_layout_by_hand(client: httpx.AsyncClient, cancer: Data) -> None:
    X = cancer[0][:2]
    raw = X.astype("<f8").tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 30],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    response = await client.post(
        "/v2/models/cancer/infer",
        content=head + raw,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    n = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:n])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [2 * 8, 2 * 2 * 8]
    body = response.content[n:]
    assert len(body) == sum(sizes)
    predict = np.frombuffer(body[:16], "<i8")
    probabilities = np.frombuffer(body[16:], "<f8").reshape(2, 2)
    assert predict.tolist() == probabilities.argmax(axis=1).tolist()


async def test_binary_bytes_input_and_output(client: httpx.AsyncClient) -> None:
    raw = struct.pack("<2d", 10.0, 2000.0)
    head = json.dumps(
        {
            "inputs": [
                {"name": "amount", "shape": [2], "datatype": "FP64",
                 "parameters": {"binary_data_size": 16}},
                {"name": "age", "shape": [2], "datatype": "INT64", "data": [20, 20]},
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    ).encode()  # fmt: skip
    response = await client.post(
        "/v2/models/rules/infer",
        content=head + raw,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert response.status_code == 200, response.text
    n = int(response.headers["inference-header-content-length"])
    body = response.content[n:]
    assert body == struct.pack("<I", 3) + b"low" + struct.pack("<I", 4) + b"high"


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        (
            [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]}],
            ["missing tensor", "'age'"],
        ),
        (
            [
                {"name": "amount", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                {"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ],
            ["inputs[1].shape", "1 rows", "have 2"],
        ),
        (
            [
                {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ],
            ["'amount'", "more than once"],
        ),
        (
            [
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "y", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ],
            ["one tensor per feature", "['amount', 'age']"],
        ),
        (
            [
                {"name": "amount", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]},
                {"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ],
            ["[n] or [n, 1]"],
        ),
        (
            [
                {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "zip", "shape": [1], "datatype": "BYTES", "data": ["x"]},
            ],
            ["unknown field", "'zip'"],
        ),
        (
            [{"name": "input", "shape": [1, 2], "datatype": "BYTES", "data": ["1", "2"]}],
            ["features are numbers"],
        ),
    ],
)
async def test_per_feature_errors(
    client: httpx.AsyncClient, inputs: list[dict[str, Any]], words: list[str]
) -> None:
    response = await _infer(client, "rules", {"inputs": inputs})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error


async def test_non_finite_binary_values_are_refused(client: httpx.AsyncClient) -> None:
    raw = struct.pack("<2d", 1.0, float("nan"))
    head = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64",
                     "parameters": {"binary_data_size": 16}}]}
    ).encode()  # fmt: skip
    response = await client.post(
        "/v2/models/broken/infer",
        content=head + raw,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert response.status_code == 422
    assert "inputs[0].data[1]: expected a finite number, got nan" in response.json()["error"]


async def test_leftover_binary_bytes_are_refused(client: httpx.AsyncClient) -> None:
    head = json.dumps(_json_tensor([1, 30], ROW)).encode()
    response = await client.post(
        "/v2/models/cancer/infer",
        content=head + b"\0" * 5,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert response.status_code == 400
    assert "5 bytes after" in response.json()["error"]


async def test_compressed_body_limit(client: httpx.AsyncClient) -> None:
    # the client fixture's limit is 64 KiB: a 1 MiB body compresses to about 1 KiB
    bomb = gzip.compress(b" " * (1 << 20))
    response = await client.post(
        "/v2/models/cancer/infer", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "over the limit" in response.json()["error"]
    ok = zlib.compress(json.dumps(_json_tensor([1, 30], ROW)).encode())
    response = await client.post(
        "/v2/models/cancer/infer", content=ok, headers={"Content-Encoding": "deflate"}
    )
    assert response.status_code == 200, response.text


async def test_response_compression_when_asked(client: httpx.AsyncClient, cancer: Data) -> None:
    body = _json_tensor([100, 30], cancer[0][:100].tolist())
    response = await _infer(client, "cancer", body, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.json()["outputs"][0]["shape"] == [100]  # httpx decompresses
    refused = await _infer(client, "cancer", body, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    small = await _infer(client, "cancer", _json_tensor([30], ROW))
    assert "content-encoding" not in small.headers  # not worth it below 1 KiB


async def test_bad_input_is_counted(client: httpx.AsyncClient, service: Rendezvous) -> None:
    await _infer(client, "cancer", _json_tensor([2, 29], ROW[:29] * 2))
    metrics = (await client.get("/metrics")).text
    assert 'rendezvous_rejected_requests_total{deployment="cancer",reason="bad_input"} 1.0' in (
        metrics
    )
