"""``POST …/train`` and ``GET …/drift``: requests the learner carries out, drift it found."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from deploy_learning_helpers import Driver, deployment, driven, regression_spec

from rendezvous.api.app import create_app
from rendezvous.archive.base import Event


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[Driver]:
    spec = regression_spec(
        tmp_path, learning={"min_samples": None, "drift": "adwin", "tolerance": 1.0}
    )
    spec["models"].append(
        {"name": "plain", "kind": "sklearn", "source": "lin.joblib", "role": "challenger"}
    )
    async with driven(deployment(spec, tmp_path)) as d:
        yield d


@pytest.fixture
async def client(driver: Driver) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(driver.service))
    async with httpx.AsyncClient(transport=transport, base_url="http://rendezvous") as c:
        yield c


URL = "/v1/deployments/prices"


async def test_a_training_request_is_carried_out_by_the_learner(
    driver: Driver, client: httpx.AsyncClient
) -> None:
    rng = np.random.default_rng(1)
    xs = rng.uniform(0, 10, 50)
    await driver.label([[x] for x in xs.tolist()], (2 * xs).tolist())
    report = await driver.step()
    assert report.decisions == []  # min_samples: null, only asked trainings

    response = await client.post(f"{URL}/train", json={"model": "lin"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["kind"], body["model"], body["deployment"]) == ("train", "lin", "prices")
    assert body["seq"] > 0

    (decision,) = (await driver.step()).decisions
    assert (decision["model"], decision["trigger"], decision["accepted"]) == ("lin", "manual", True)
    assert driver.follower.serving == {"lin": "2"}
    answer = (await client.post(f"{URL}/predict", json={"input": [3.0]})).json()
    assert answer["model_version"] == "2"
    assert answer["prediction"] == pytest.approx(6.0)
    assert (await driver.step()).decisions == []  # a request is carried out once


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ({"model": "nope"}, 404, None),
        ({"model": "plain"}, 422, "model"),  # a model without a learning: block
        ({}, 422, "model"),
        ({"model": 3}, 422, "model"),
        ({"model": "lin", "now": True}, 422, "body"),
        (["lin"], 422, "body"),
    ],
)
async def test_bad_training_requests(
    client: httpx.AsyncClient, driver: Driver, body: Any, status: int, loc: str | None
) -> None:
    response = await client.post(f"{URL}/train", json=body)
    assert response.status_code == status, response.text
    assert response.json().get("loc") == loc
    assert driver.runtime.archive.events("prices", kinds=["train"]) == []


async def test_training_requests_need_a_deployment_and_json(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/v1/deployments/nope/train", json={"model": "lin"})
    assert unknown.status_code == 404
    malformed = await client.post(f"{URL}/train", content=b"{")
    assert malformed.status_code == 400


async def test_drift_lists_drift_events(client: httpx.AsyncClient, driver: Driver) -> None:
    archive = driver.runtime.archive
    recorded = [
        archive.record_event(
            Event("prices", kind, model, {"type": "concept", "seq": i}, at=time.time())
        )
        for i, (kind, model) in enumerate(
            [("drift", "lin"), ("train", "lin"), ("drift", "plain"), ("drift", "lin")]
            + [("drift", "lin")] * 3
        )
    ]
    drift = [e for e in recorded if e.kind == "drift"]

    async def seqs(**params: Any) -> list[int]:
        response = await client.get(f"{URL}/drift", params=params)
        assert response.status_code == 200, response.text
        return [e["seq"] for e in response.json()["drift"]]

    assert await seqs() == [e.seq for e in drift]
    assert await seqs(limit=2) == [e.seq for e in drift[-2:]]  # the latest
    assert await seqs(after=drift[0].seq, limit=2) == [e.seq for e in drift[1:3]]  # a page
    assert await seqs(model="plain") == [drift[1].seq]
    (first,) = (await client.get(f"{URL}/drift", params={"limit": 1})).json()["drift"]
    assert first["detail"] == {"type": "concept", "seq": 6}
    assert first["kind"] == "drift"

    for params, status in [
        ({"model": "nope"}, 404),
        ({"limit": 0}, 422),
        ({"limit": "x"}, 422),
        ({"after": -1}, 422),
        ({"since": 1}, 422),
    ]:
        response = await client.get(f"{URL}/drift", params=params)
        assert response.status_code == status, (params, response.text)
    assert (await client.get("/v1/deployments/nope/drift")).status_code == 404


async def test_data_drift_is_found_against_the_training_inputs(
    client: httpx.AsyncClient, driver: Driver
) -> None:
    rng = np.random.default_rng(2)
    xs = rng.uniform(0, 10, 100)
    await driver.label([[x] for x in xs.tolist()], xs.tolist())
    await driver.step()
    await client.post(f"{URL}/train", json={"model": "lin"})
    assert (await driver.step()).decisions[0]["version"] == "2"  # trained on x in [0, 10]

    for _ in range(3):  # the same relation, but inputs the model never learnt from
        xs = rng.uniform(20, 30, 100)
        await driver.label([[x] for x in xs.tolist()], xs.tolist())
        await driver.step()

    (event,) = (await client.get(f"{URL}/drift")).json()["drift"]  # once, not every batch
    detail = event["detail"]
    assert (event["model"], detail["type"], detail["feature"]) == ("lin", "data", "x")
    assert detail["p_value"] < 0.01
    assert detail["statistic"] > 0.9  # the two samples do not overlap at all
    assert detail["version"] == "2"
    drifts = driver.learner.metrics.registry.get_sample_value(
        "rendezvous_learner_drifts_total", {"deployment": "prices", "model": "lin", "type": "data"}
    )
    assert drifts == 1
