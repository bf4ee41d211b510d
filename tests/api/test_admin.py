"""Champion changes over HTTP: promote, rollback, and the events they leave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rendezvous.api.app import create_app
from rendezvous.api.openapi import openapi_document
from rendezvous.archive.base import Event
from rendezvous.config import parse_deployment
from rendezvous.service import Rendezvous

HERE = Path(__file__).parent


def _model(name: str, role: str, **over: Any) -> dict[str, Any]:
    return {"name": name, "kind": "python", "source": "_api_models:is_big", "role": role, **over}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Rendezvous]:
    dep = parse_deployment(
        {
            "name": "fraud",
            "schema": {"features": ["amount"]},
            "archive": f"sqlite:///{tmp_path / 'fraud.db'}",
            "deadline_ms": 5000,
            "models": [
                _model("rules", "champion"),
                _model("xgb", "challenger"),
                _model("reference", "canary"),
                {"name": "inputs", "kind": "decoy", "role": "decoy"},
                _model("trial", "split", share=0.05),
            ],
        },
        base_dir=HERE,
    )
    async with Rendezvous([dep]) as rv:
        yield rv


@pytest.fixture
async def client(service: Rendezvous) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://rendezvous") as c:
        yield c


def conforms(body: Any, name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    components = openapi_document()["components"]
    schema = {"$ref": f"#/components/schemas/{name}", "components": components}
    jsonschema.Draft202012Validator(schema).validate(body)


async def champion_answers(client: httpx.AsyncClient) -> set[str]:
    response = await client.post(
        "/v1/deployments/fraud/predict", json={"inputs": [{"amount": 500}] * 30}
    )
    assert response.status_code == 200, response.text
    return {p["model"] for p in response.json()["predictions"] if p["reason"] == "champion"}


async def test_promote_answers_the_event_and_the_champion_changes(
    client: httpx.AsyncClient, service: Rendezvous
) -> None:
    response = await client.post("/v1/deployments/fraud/promote", json={"model": "xgb"})

    assert response.status_code == 200, response.text
    event = response.json()
    conforms(event, "Event")
    assert event["kind"] == "promote"
    assert event["model"] == "xgb"
    assert event["deployment"] == "fraud"
    assert event["detail"] == {"previous": "rules", "evidence": {}, "by": "admin"}
    assert event["origin"] == service.instance
    assert service.get("fraud").champion_name == "xgb"
    assert await champion_answers(client) == {"xgb"}
    described = (await client.get("/v1/deployments/fraud")).json()
    assert {m["name"]: m["role"] for m in described["models"]}["rules"] == "challenger"


async def test_promote_keeps_the_evidence_given(client: httpx.AsyncClient) -> None:
    body = {"model": "xgb", "evidence": {"ticket": "OPS-7", "accuracy": 0.93}}
    response = await client.post("/v1/deployments/fraud/promote", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["detail"]["evidence"] == body["evidence"]


async def test_rollback_goes_back_then_has_nothing_to_undo(client: httpx.AsyncClient) -> None:
    promoted = (await client.post("/v1/deployments/fraud/promote", json={"model": "xgb"})).json()

    response = await client.post("/v1/deployments/fraud/rollback")

    assert response.status_code == 200, response.text
    event = response.json()
    conforms(event, "Event")
    assert (event["kind"], event["model"]) == ("rollback", "rules")
    assert event["detail"] == {"previous": "xgb", "undoes": promoted["seq"], "by": "admin"}
    assert await champion_answers(client) == {"rules"}

    again = await client.post("/v1/deployments/fraud/rollback")
    assert again.status_code == 409
    assert "nothing to roll back" in again.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "reference"}, 422, "canary"),
        ({"model": "inputs"}, 422, "decoy"),
        ({"model": "trial"}, 422, "split"),
        ({"model": "nope"}, 404, "no model 'nope'"),
        ({"model": ""}, 422, "expected the name of a model"),
        ({"model": 3}, 422, "expected the name of a model"),
        ({}, 422, "expected the name of a model"),
        ({"model": "xgb", "why": "x"}, 422, "unknown field(s) ['why']"),
        ({"model": "xgb", "evidence": [1]}, 422, "expected an object"),
        (["xgb"], 422, "expected a JSON object"),
    ],
)
async def test_bad_promotions_are_refused_and_change_nothing(
    client: httpx.AsyncClient, service: Rendezvous, body: Any, status: int, says: str
) -> None:
    response = await client.post("/v1/deployments/fraud/promote", json=body)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    assert service.get("fraud").champion_name == "rules"
    assert (await client.get("/v1/deployments/fraud/events")).json() == {"events": []}


async def test_malformed_body_and_unknown_deployment(client: httpx.AsyncClient) -> None:
    bad = await client.post("/v1/deployments/fraud/promote", content=b"{not json")
    assert bad.status_code == 400
    for path in ("promote", "rollback", "events"):
        method = client.get if path == "events" else client.post
        kwargs: dict[str, Any] = {} if path != "promote" else {"json": {"model": "xgb"}}
        response = await method(f"/v1/deployments/nope/{path}", **kwargs)
        assert response.status_code == 404, path
        assert "unknown deployment 'nope'" in response.json()["error"]


async def test_events_page_after_a_seq_and_filter_by_kind(
    client: httpx.AsyncClient, service: Rendezvous
) -> None:
    for model in ("xgb", "rules", "xgb"):
        await client.post("/v1/deployments/fraud/promote", json={"model": model})
    await client.post("/v1/deployments/fraud/rollback")
    drift = Event("fraud", "drift", None, {"detector": "adwin"}, 0.0, "learner")
    service.get("fraud").archive.record_event(drift)

    everything = (await client.get("/v1/deployments/fraud/events")).json()
    conforms(everything, "EventList")
    kinds = [e["kind"] for e in everything["events"]]
    assert kinds == ["promote", "promote", "promote", "rollback", "drift"]
    seqs = [e["seq"] for e in everything["events"]]
    assert seqs == sorted(seqs)

    after = await client.get("/v1/deployments/fraud/events", params={"after": seqs[1]})
    assert [e["seq"] for e in after.json()["events"]] == seqs[2:]
    page = await client.get("/v1/deployments/fraud/events", params={"after": seqs[0], "limit": 2})
    assert [e["seq"] for e in page.json()["events"]] == seqs[1:3]
    some = await client.get("/v1/deployments/fraud/events", params={"kinds": "rollback, drift"})
    assert [e["kind"] for e in some.json()["events"]] == ["rollback", "drift"]
    assert some.json()["events"][1]["model"] is None


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"after": "x"}, "expected an integer"),
        ({"limit": "-1"}, "expected 0 or more"),
        ({"since": "1"}, "unknown parameter(s) ['since']"),
    ],
)
async def test_bad_event_queries_say_what_is_wrong(
    client: httpx.AsyncClient, params: dict[str, str], says: str
) -> None:
    response = await client.get("/v1/deployments/fraud/events", params=params)
    assert response.status_code == 422
    assert says in response.json()["error"]
