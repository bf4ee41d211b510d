"""The native JSON API, through the raw-ASGI fast path and through Starlette alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rendezvous.api.app import create_app
from rendezvous.service import Rendezvous

LIMIT = 64 * 1024


@pytest.fixture(params=[True, False], ids=["fast-path", "starlette"])
async def api(
    service: Rendezvous, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service, max_body_bytes=LIMIT, fast_path=request.param)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rendezvous") as c:
        yield c


async def test_one_row_gets_a_full_answer(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/deployments/rules/predict", json={"input": [5000, 25]})
    assert response.status_code == 200
    body = response.json()
    assert body["prediction"] == "high"
    assert body["model"] == "risk"
    assert body["reason"] == "champion"
    assert body["fallback"] is False
    assert isinstance(body["model_version"], str) and body["model_version"]
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert body["latency_ms"] >= 0


async def test_a_batch_gets_one_answer_per_row_in_order(api: httpx.AsyncClient) -> None:
    rows = [[5000, 25], {"amount": 10, "age": 50}, [2000, 20]]
    response = await api.post("/v1/deployments/rules/predict", json={"inputs": rows})
    assert response.status_code == 200
    answers = response.json()["predictions"]
    assert [a["prediction"] for a in answers] == ["high", "low", "high"]
    assert len({a["request_id"] for a in answers}) == 3


async def test_classifier_probabilities_are_keyed_by_class(
    api: httpx.AsyncClient, cancer: Any, cancer_model: Any
) -> None:
    X, _ = cancer
    model, _ = cancer_model
    response = await api.post("/v1/deployments/cancer/predict", json={"input": X[0].tolist()})
    body = response.json()
    expected = model.predict_proba(X[:1])[0]
    assert body["prediction"] == int(model.predict(X[:1])[0])
    assert body["probabilities"] == pytest.approx({"0": expected[0], "1": expected[1]})


async def test_no_answer_and_no_default_is_a_503_that_says_why(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/deployments/broken/predict", json={"input": [1, 2]})
    assert response.status_code == 503
    body = response.json()
    assert body["reason"] == "error"
    assert "no model answered" in body["error"]
    assert "this model always fails" in body["detail"]


BAD: list[tuple[str, Any, int, str]] = [
    ("/v1/deployments/rules/predict", b"{not json", 400, "malformed JSON"),
    ("/v1/deployments/rules/predict", b"", 400, "empty body"),
    ("/v1/deployments/rules/predict", [1, 2], 422, "expected a JSON object, got list"),
    ("/v1/deployments/rules/predict", {"rows": []}, 422, "unknown key(s) ['rows']"),
    ("/v1/deployments/rules/predict", {"input": [1], "inputs": []}, 422, "exactly one of"),
    ("/v1/deployments/rules/predict", {"input": [1]}, 422, "input: expected 2 features, got 1"),
    ("/v1/deployments/rules/predict", {"input": [1, "x"]}, 422, "input[1]: expected a number"),
    ("/v1/deployments/rules/predict", {"input": {"amount": 1}}, 422, "input.age: missing"),
    ("/v1/deployments/rules/predict", {"inputs": {"a": 1}}, 422, "inputs: expected a list"),
    ("/v1/deployments/rules/predict", {"inputs": []}, 422, "expected at least one row"),
    ("/v1/deployments/rules/predict", {"inputs": [[1, 2], [3]]}, 422, "inputs[1]: expected 2"),
    ("/v1/deployments/nope/predict", {"input": [1, 2]}, 404, "unknown deployment 'nope'"),
    ("/v1/deployments/rules/predict", {"input": [1.0] * (LIMIT // 4)}, 413, "over the limit"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD)
async def test_bad_input_is_a_4xx_naming_the_problem_and_serving_goes_on(
    api: httpx.AsyncClient, path: str, body: Any, status: int, message: str
) -> None:
    if isinstance(body, bytes):
        response = await api.post(path, content=body)
    else:
        response = await api.post(path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error
    assert "Traceback" not in response.text
    after = await api.post("/v1/deployments/rules/predict", json={"input": [1, 2]})
    assert after.status_code == 200


async def test_a_whole_batch_is_refused_when_one_row_is_bad(
    api: httpx.AsyncClient, service: Rendezvous
) -> None:
    response = await api.post("/v1/deployments/rules/predict", json={"inputs": [[1, 2], [1]]})
    assert response.status_code == 422
    assert response.json()["loc"] == "inputs[1]"
    service.get("rules").archive.flush()
    assert service.get("rules").archive.counts("rules")["requests"] == 0  # nothing half-done


async def test_deployments_are_listed_and_described(api: httpx.AsyncClient) -> None:
    listing = (await api.get("/v1/deployments")).json()["deployments"]
    assert {d["name"] for d in listing} == {"cancer", "rules", "big", "broken"}
    rules = (await api.get("/v1/deployments/rules")).json()
    assert rules["features"] == ["amount", "age"]
    assert rules["models"][0]["name"] == "risk"
    assert rules["models"][0]["role"] == "champion"
    missing = await api.get("/v1/deployments/nope")
    assert missing.status_code == 404
    assert "unknown deployment 'nope'" in missing.json()["error"]


async def test_unknown_routes_and_methods_answer_json(api: httpx.AsyncClient) -> None:
    missing = await api.get("/v1/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong = await api.get("/v1/deployments/rules/predict")
    assert wrong.status_code == 405


async def test_metrics_count_answers_rejections_and_latency(api: httpx.AsyncClient) -> None:
    for _ in range(3):
        await api.post("/v1/deployments/rules/predict", json={"input": [1, 2]})
    await api.post("/v1/deployments/rules/predict", json={"input": [1]})
    await api.post("/v1/deployments/broken/predict", json={"input": [1, 2]})
    text = (await api.get("/metrics")).text
    assert 'rendezvous_requests_total{deployment="rules",outcome="champion"} 3.0' in text
    assert 'rendezvous_rejected_requests_total{deployment="rules",reason="bad_input"} 1.0' in text
    assert 'rendezvous_requests_total{deployment="broken",outcome="error"} 1.0' in text
    assert 'rendezvous_model_errors_total{deployment="broken",model="explode"} 1.0' in text
    assert 'rendezvous_request_latency_seconds_count{deployment="rules"} 3.0' in text
    assert 'rendezvous_batch_size_count{deployment="rules",model="risk"}' in text
    assert 'rendezvous_queue_depth{deployment="rules",model="risk"} 0.0' in text


async def test_openapi_and_docs_are_served(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/deployments/{name}/predict" in spec["paths"]
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


def test_the_live_server_answers_over_real_http(server: str) -> None:
    with httpx.Client(base_url=server) as http:
        good = http.post("/v1/deployments/rules/predict", json={"input": [5000, 20]})
        assert good.json()["prediction"] == "high"
        # a body sent in chunks (no content-length) goes through the same checks
        chunks = iter([b'{"input": ', b"[1, 2]}"])
        chunked = http.post("/v1/deployments/rules/predict", content=chunks)
        assert chunked.status_code == 200
        too_big = http.post(
            "/v1/deployments/rules/predict", content=iter([b'{"input": [', b"1," * 600_000, b"1]}"])
        )
        assert too_big.status_code == 413
        assert http.post("/v1/deployments/rules/predict", json={"input": [1, 2]}).status_code == 200
