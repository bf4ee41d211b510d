"""``GET /v1/deployments/{name}/compare`` on a small app built from the routes module."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from compare_data import DEP, deployment
from starlette.applications import Starlette

from rendezvous.api import compare as compare_api
from rendezvous.archive.base import Example
from rendezvous.service import Rendezvous


@pytest.fixture
async def served(start: Callable[..., Any]) -> AsyncIterator[tuple[httpx.AsyncClient, float]]:
    service: Rendezvous = await start(deployment())
    runtime = service.get(DEP)
    before = time.time()
    answers = await runtime.predict([[a / 4, 0.0] for a in range(-20, 20)])
    await runtime.stop()  # drains the shadows, so every model has scored every request
    runtime.archive.flush()
    runtime.archive.store_examples(
        [Example(DEP, a.request_id, [], int(a.prediction), time.time()) for a in answers[::2]]
    )
    app = Starlette(routes=compare_api.routes)
    app.state.rendezvous = service
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rendezvous") as client:
        yield client, before


async def test_the_last_requests(served: tuple[httpx.AsyncClient, float]) -> None:
    client, _ = served
    response = await client.get(f"/v1/deployments/{DEP}/compare", params={"last": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window"] == {"last": 30}
    assert body["requests"] == 30 and body["labelled"] == 15
    assert [m["model"] for m in body["models"]] == ["champ", "better", "worse", "canary"]
    champ = body["models"][0]
    assert champ["operations"]["scored"] == 30 and champ["quality"]["accuracy"] == 1.0
    better = body["models"][1]
    assert better["agreement"]["on"] == "probability"
    assert 0 < better["agreement"]["agreement"] < 1
    assert better["decision"] is None


async def test_a_span_with_a_policy_and_chosen_models(
    served: tuple[httpx.AsyncClient, float],
) -> None:
    client, before = served
    params: dict[str, Any] = {
        "since": before - 1, "until": time.time() + 1, "models": "better, canary",
        "metric": "accuracy", "min_pairs": 5, "alpha": 0.1, "top_k": 2, "positive": "1",
    }  # fmt: skip
    response = await client.get(f"/v1/deployments/{DEP}/compare", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["requests"] == 40 and body["positive"] == 1
    assert body["policy"] == {"metric": "accuracy", "min_pairs": 5, "alpha": 0.1}
    assert [m["model"] for m in body["models"]] == ["champ", "better", "canary"]
    decision = body["models"][1]["decision"]
    assert decision["n"] == 20 and decision["promote"] is False  # the champion made the labels
    assert len(body["models"][1]["agreement"]["top_disagreements"]) <= 2


@pytest.mark.parametrize(
    ("path", "params", "status", "loc"),
    [
        ("/v1/deployments/nope/compare", {"last": 5}, 404, None),
        (f"/v1/deployments/{DEP}/compare", {}, 422, "window"),
        (f"/v1/deployments/{DEP}/compare", {"last": "many"}, 422, "last"),
        (f"/v1/deployments/{DEP}/compare", {"last": 5, "since": 1}, 422, "last"),
        (f"/v1/deployments/{DEP}/compare", {"since": "yesterday"}, 422, "since"),
        (f"/v1/deployments/{DEP}/compare", {"last": 5, "lats": 5}, 422, None),
        (f"/v1/deployments/{DEP}/compare", {"last": 5, "metric": "auc"}, 422, "metric"),
        (f"/v1/deployments/{DEP}/compare", {"last": 5, "alpha": "2"}, 422, "alpha"),
        (f"/v1/deployments/{DEP}/compare", {"last": 5, "task": "ranking"}, 422, "task"),
        (f"/v1/deployments/{DEP}/compare", {"last": 5, "top_k": -1}, 422, "top_k"),
    ],
)
async def test_errors_are_json(
    served: tuple[httpx.AsyncClient, float],
    path: str,
    params: dict[str, Any],
    status: int,
    loc: str | None,
) -> None:
    client, _ = served
    response = await client.get(path, params=params)
    assert response.status_code == status
    body = response.json()
    assert body["error"]
    assert body.get("loc") == loc
