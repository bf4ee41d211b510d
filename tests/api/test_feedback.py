"""Feedback and examples: labels joined to what the models saw, stored once and durably."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from rendezvous.api.openapi import openapi_document
from rendezvous.archive import SQLiteArchive
from rendezvous.errors import InputError, NotFound
from rendezvous.feedback import check_label, record_examples, record_feedback
from rendezvous.service import Rendezvous

Cancer = tuple[np.ndarray, np.ndarray]


async def predict(client: httpx.AsyncClient, deployment: str, *rows: Any) -> list[str]:
    """Request ids of one predict call per row."""
    ids = []
    for row in rows:
        response = await client.post(f"/v1/deployments/{deployment}/predict", json={"input": row})
        assert response.status_code == 200, response.text
        ids.append(response.json()["request_id"])
    return ids


async def feedback(client: httpx.AsyncClient, deployment: str, body: Any) -> httpx.Response:
    return await client.post(f"/v1/deployments/{deployment}/feedback", json=body)


def labelled(service: Rendezvous, deployment: str) -> list[Any]:
    """(request_id, label) of every stored example of ``deployment``, in seq order."""
    archive = service.get(deployment).archive
    return [(e.request_id, e.label) for e in archive.examples(deployment)]


def label_count(
    service: Rendezvous, source: str, outcome: str, deployment: str = "cancer"
) -> float:
    value = service.metrics.registry.get_sample_value(
        "rendezvous_labels_total",
        {"deployment": deployment, "source": source, "outcome": outcome},
    )
    return value or 0.0


# -- feedback ------------------------------------------------------------------------------


async def test_feedback_is_joined_to_the_input_the_models_saw(
    client: httpx.AsyncClient, service: Rendezvous, cancer: Cancer
) -> None:
    X, _ = cancer
    (request_id,) = await predict(client, "cancer", X[0].tolist())
    # No flush: the request may still sit in the archive's write buffer.
    response = await feedback(client, "cancer", {"request_id": request_id, "label": 1})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"request_id": request_id, "label": 1, "duplicate": False, "seq": body["seq"]}
    assert isinstance(body["seq"], int) and body["seq"] > 0
    (example,) = service.get("cancer").archive.examples("cancer")
    assert example.request_id == request_id
    assert example.features == X[0].tolist()
    assert (example.label, type(example.label)) == (1, int)
    assert example.seq == body["seq"]


async def test_a_batch_of_feedback_is_stored_in_order(
    client: httpx.AsyncClient, service: Rendezvous, cancer: Cancer
) -> None:
    X, _ = cancer
    ids = await predict(client, "cancer", *(x.tolist() for x in X[:3]))
    # 1.0 names class 1 (JSON does not tell 1 from 1.0); the class itself is stored.
    items = [{"request_id": i, "label": label} for i, label in zip(ids, [0, 1.0, 1], strict=True)]
    response = await feedback(client, "cancer", {"feedback": items})

    assert response.status_code == 200, response.text
    results = response.json()["feedback"]
    assert [(r["request_id"], r["label"], r["duplicate"]) for r in results] == [
        (ids[0], 0, False),
        (ids[1], 1, False),
        (ids[2], 1, False),
    ]
    assert [r["seq"] for r in results] == sorted({r["seq"] for r in results})
    stored = service.get("cancer").archive.examples("cancer")
    assert [e.features for e in stored] == [x.tolist() for x in X[:3]]
    assert [type(e.label) for e in stored] == [int, int, int]


async def test_repeated_feedback_is_a_duplicate_not_an_error(
    client: httpx.AsyncClient, service: Rendezvous, cancer: Cancer
) -> None:
    X, _ = cancer
    first, second = await predict(client, "cancer", X[0].tolist(), X[1].tolist())
    assert (await feedback(client, "cancer", {"request_id": first, "label": 1})).status_code == 200

    again = await feedback(client, "cancer", {"request_id": first, "label": 0})
    assert again.status_code == 200
    # The first label stays, and the answer says which one that is.
    assert again.json() == {"request_id": first, "label": 1, "duplicate": True, "seq": None}

    items = [
        {"request_id": first, "label": 0},
        {"request_id": second, "label": 0},
        {"request_id": second, "label": 1},
    ]
    batch = await feedback(client, "cancer", {"feedback": items})
    assert batch.status_code == 200
    results = batch.json()["feedback"]
    assert [(r["label"], r["duplicate"]) for r in results] == [(1, True), (0, False), (0, True)]
    assert labelled(service, "cancer") == [(first, 1), (second, 0)]
    assert service.get("cancer").archive.counts("cancer")["examples"] == 2
    assert label_count(service, "feedback", "accepted") == 2
    assert label_count(service, "feedback", "duplicate") == 3


async def test_concurrent_feedback_for_one_request_is_stored_once(
    client: httpx.AsyncClient, service: Rendezvous, cancer: Cancer
) -> None:
    X, _ = cancer
    (request_id,) = await predict(client, "cancer", X[0].tolist())
    body = {"request_id": request_id, "label": 0}
    responses = await asyncio.gather(*(feedback(client, "cancer", body) for _ in range(10)))

    assert {r.status_code for r in responses} == {200}
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 9
    assert labelled(service, "cancer") == [(request_id, 0)]


async def test_an_unknown_request_id_is_404_and_nothing_is_stored(
    client: httpx.AsyncClient, service: Rendezvous, cancer: Cancer
) -> None:
    X, _ = cancer
    (known,) = await predict(client, "cancer", X[0].tolist())
    # (Each runtime numbers its requests from 0 under the service's instance id, so the
    # first ids of two deployments coincide: take one "cancer" never issued.)
    elsewhere = (await predict(client, "rules", [5000, 25], [5000, 25]))[-1]
    assert elsewhere != known

    single = await feedback(client, "cancer", {"request_id": "no-such-id", "label": 1})
    assert single.status_code == 404
    assert "no-such-id" in single.json()["error"]

    items = [
        {"request_id": known, "label": 1},
        {"request_id": "nope-1", "label": 1},
        {"request_id": elsewhere, "label": 1},  # another deployment's request
    ]
    batch = await feedback(client, "cancer", {"feedback": items})
    assert batch.status_code == 404
    error = batch.json()["error"]
    assert "nope-1" in error and elsewhere in error and known not in error
    assert labelled(service, "cancer") == []
    assert label_count(service, "feedback", "rejected") == 4


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("1", "expected one of the classes [0, 1], got str '1'"),
        (True, "got bool True"),
        (2, "got int 2"),
        (0.5, "got float 0.5"),
        (None, "got null"),
        ([1], "got list"),
    ],
)
async def test_a_classifier_takes_only_its_classes(
    client: httpx.AsyncClient, service: Rendezvous, cancer: Cancer, label: Any, expected: str
) -> None:
    X, _ = cancer
    (request_id,) = await predict(client, "cancer", X[0].tolist())
    response = await feedback(client, "cancer", {"request_id": request_id, "label": label})

    assert response.status_code == 422
    assert response.json()["loc"] == "label"
    assert expected in response.json()["error"]
    assert labelled(service, "cancer") == []


async def test_one_bad_label_in_a_batch_refuses_the_batch(
    client: httpx.AsyncClient, service: Rendezvous, cancer: Cancer
) -> None:
    X, _ = cancer
    ids = await predict(client, "cancer", *(x.tolist() for x in X[:3]))
    items = [{"request_id": i, "label": label} for i, label in zip(ids, [1, 0, "0"], strict=True)]
    response = await feedback(client, "cancer", {"feedback": items})

    assert response.status_code == 422
    assert response.json()["loc"] == "feedback[2].label"
    assert labelled(service, "cancer") == []


async def test_a_rule_answering_strings_takes_string_labels(
    client: httpx.AsyncClient, service: Rendezvous
) -> None:
    high, low = await predict(client, "rules", [5000, 25], {"amount": 10, "age": 50})

    ok = await feedback(client, "rules", {"request_id": high, "label": "low"})
    assert ok.status_code == 200, ok.text
    bad = await feedback(client, "rules", {"request_id": low, "label": 0})
    assert bad.status_code == 422
    assert bad.json()["loc"] == "label"
    assert "expected a string" in bad.json()["error"]
    assert labelled(service, "rules") == [(high, "low")]


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ([1, 2], 422, "body"),
        ({"request_id": "x"}, 422, "label"),
        ({"label": 1}, 422, "request_id"),
        ({"request_id": "x", "label": 1, "extra": 2}, 422, "body"),
        ({"request_id": 7, "label": 1}, 422, "request_id"),
        ({"request_id": "", "label": 1}, 422, "request_id"),
        ({"feedback": {"request_id": "x", "label": 1}}, 422, "feedback"),
        ({"feedback": []}, 422, "feedback"),
        ({"feedback": [{"request_id": "x"}]}, 422, "feedback[0].label"),
        ({"feedback": ["x"]}, 422, "feedback[0]"),
        ({"feedback": [{"request_id": None, "label": 1}]}, 422, "feedback[0].request_id"),
        ({"feedback": [], "label": 1}, 422, "body"),
    ],
)
async def test_malformed_feedback_names_the_field(
    client: httpx.AsyncClient, service: Rendezvous, body: Any, status: int, loc: str
) -> None:
    response = await feedback(client, "cancer", body)
    assert response.status_code == status, response.text
    assert response.json()["loc"] == loc
    assert label_count(service, "feedback", "rejected") == 1


async def test_bad_json_and_unknown_deployments(client: httpx.AsyncClient) -> None:
    broken = await client.post("/v1/deployments/cancer/feedback", content=b'{"request_id": ')
    assert broken.status_code == 400
    assert "malformed JSON" in broken.json()["error"]
    unknown = await feedback(client, "nope", {"request_id": "x", "label": 1})
    assert unknown.status_code == 404
    examples = await client.post("/v1/deployments/nope/examples", json={"examples": []})
    assert examples.status_code == 404


async def test_feedback_is_durable_once_answered(client: httpx.AsyncClient, tmp_path: Path) -> None:
    # "rules" archives to tmp_path/rules.db: another archive on that file, opened while the
    # service still runs (nothing stopped or flushed), sees the label.
    (request_id,) = await predict(client, "rules", [5000, 25])
    response = await feedback(client, "rules", {"request_id": request_id, "label": "high"})
    assert response.status_code == 200

    with SQLiteArchive(tmp_path / "rules.db") as other:
        (example,) = other.examples("rules")
        assert (example.request_id, example.features, example.label) == (
            request_id,
            [5000, 25],
            "high",
        )
        assert other.labels_for([request_id]) == {request_id: "high"}


# -- examples ------------------------------------------------------------------------------


async def test_examples_are_validated_enriched_and_stored(
    client: httpx.AsyncClient, service: Rendezvous
) -> None:
    rows = [[5000, 25], {"age": 50, "amount": 10}]
    body = {"examples": [{"input": rows[0], "label": "high"}, {"input": rows[1], "label": "low"}]}
    response = await client.post("/v1/deployments/rules/examples", json=body)

    assert response.status_code == 200, response.text
    seqs = response.json()["seqs"]
    assert len(seqs) == 2 and seqs[0] < seqs[1]
    stored = service.get("rules").archive.examples("rules")
    assert [(e.request_id, e.features, e.label, e.seq) for e in stored] == [
        (None, [5000, 25], "high", seqs[0]),
        (None, [10, 50], "low", seqs[1]),  # in the schema's order
    ]
    # Standalone examples are never duplicates of each other.
    again = await client.post("/v1/deployments/rules/examples", json=body)
    assert len(again.json()["seqs"]) == 2
    assert label_count(service, "example", "accepted", "rules") == 4


@pytest.mark.parametrize(
    ("deployment", "examples", "loc"),
    [
        ("rules", [{"input": [1, 2], "label": "a"}, {"input": {"amount": 1}, "label": "b"}],
         "examples[1].input.age"),
        ("rules", [{"input": [1, "x"], "label": "a"}], "examples[0].input[1]"),
        ("rules", [{"input": [1, 2], "label": None}], "examples[0].label"),
        ("rules", [{"input": [1, 2]}], "examples[0].label"),
        ("rules", [{"row": [1, 2], "label": 1}], "examples[0]"),
        ("cancer", [{"input": [0.0] * 30, "label": "1"}], "examples[0].label"),
        ("cancer", [{"input": [0.0] * 29, "label": 1}], "examples[0].input"),
        ("cancer", [], "examples"),
    ],
)  # fmt: skip
async def test_bad_examples_name_the_field_and_store_nothing(
    client: httpx.AsyncClient,
    service: Rendezvous,
    deployment: str,
    examples: list[Any],
    loc: str,
) -> None:
    response = await client.post(
        f"/v1/deployments/{deployment}/examples", json={"examples": examples}
    )
    assert response.status_code == 422, response.text
    assert response.json()["loc"] == loc
    assert service.get(deployment).archive.counts(deployment)["examples"] == 0
    assert label_count(service, "example", "rejected", deployment) >= 1


async def test_examples_for_a_classifier_store_its_classes(
    client: httpx.AsyncClient, service: Rendezvous
) -> None:
    body = {"examples": [{"input": [0.0] * 30, "label": 1.0}, {"input": [1.0] * 30, "label": 0}]}
    response = await client.post("/v1/deployments/cancer/examples", json=body)

    assert response.status_code == 200, response.text
    assert labelled(service, "cancer") == [(None, 1), (None, 0)]
    assert [type(label) for _, label in labelled(service, "cancer")] == [int, int]


# -- in process and over a real connection ---------------------------------------------------


async def test_the_same_logic_without_http(service: Rendezvous, cancer: Cancer) -> None:
    X, _ = cancer
    runtime = service.get("cancer")
    answer = await runtime.predict_one(X[0].tolist())

    (result,) = await record_feedback(runtime, [(answer.request_id, np.int64(1))])
    assert (result.label, result.duplicate) == (1, False)
    (again,) = await record_feedback(runtime, [(answer.request_id, 0)])
    assert (again.label, again.duplicate, again.seq) == (1, True, None)
    with pytest.raises(NotFound, match="missing"):
        await record_feedback(runtime, [("missing", 1)])
    with pytest.raises(InputError) as excinfo:
        await record_examples(runtime, [(X[1].tolist(), "0")])
    assert excinfo.value.loc == "examples[0].label"
    (example,) = await record_examples(runtime, [(X[1].tolist(), 0)])
    assert example.seq > result.seq  # type: ignore[operator]


def test_feedback_over_a_real_connection(server: str, cancer: Cancer) -> None:
    X, _ = cancer
    with httpx.Client(base_url=server, timeout=30) as http:
        answer = http.post("/v1/deployments/cancer/predict", json={"input": X[5].tolist()})
        request_id = answer.json()["request_id"]
        first = http.post(
            "/v1/deployments/cancer/feedback", json={"request_id": request_id, "label": 0}
        )
        again = http.post(
            "/v1/deployments/cancer/feedback", json={"request_id": request_id, "label": 0}
        )
        examples = http.post(
            "/v1/deployments/cancer/examples",
            json={"examples": [{"input": X[6].tolist(), "label": 1}]},
        )
    assert (first.status_code, first.json()["duplicate"]) == (200, False)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert examples.status_code == 200
    assert examples.json()["seqs"][0] > first.json()["seq"]


# -- the label rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "classes", "answer", "stored"),
    [
        (1, [0, 1], None, 1),
        (1.0, [np.int64(0), np.int64(1)], None, 1),
        ("yes", ["no", "yes"], None, "yes"),
        (True, [False, True], None, True),
        (2.5, None, 1.5, 2.5),  # regression
        (3, None, np.float64(1.5), 3),
        ("high", None, "low", "high"),
        (False, None, True, False),
        ("anything", None, None, "anything"),  # nothing to go by
        (7, None, None, 7),
    ],
)
def test_labels_that_fit(label: Any, classes: Any, answer: Any, stored: Any) -> None:
    got = check_label(label, classes, answer, "label")
    assert (got, type(got)) == (stored, type(stored))


@pytest.mark.parametrize(
    ("label", "classes", "answer"),
    [
        (True, [0, 1], None),
        (1, [False, True], None),
        ("1", [0, 1], None),
        (True, None, 1.5),  # a boolean is not a number
        ("1.5", None, 1.5),
        (1, None, "low"),
        (float("nan"), None, 1.5),
        (None, None, None),
        ({"a": 1}, None, None),
    ],
)
def test_labels_that_do_not_fit(label: Any, classes: Any, answer: Any) -> None:
    with pytest.raises(InputError) as excinfo:
        check_label(label, classes, answer, "feedback[3].label")
    assert excinfo.value.loc == "feedback[3].label"


async def test_answers_match_the_openapi_document(
    client: httpx.AsyncClient, cancer: Cancer
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    document = openapi_document()

    def conforms(body: Any, path: str) -> None:
        ok = document["paths"][path]["post"]["responses"]["200"]
        schema = ok["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator({**schema, "components": document["components"]}).validate(
            body
        )

    X, _ = cancer
    ids = await predict(client, "cancer", X[0].tolist(), X[1].tolist())
    one = await feedback(client, "cancer", {"request_id": ids[0], "label": 1})
    many = await feedback(
        client, "cancer", {"feedback": [{"request_id": i, "label": 0} for i in ids]}
    )
    examples = await client.post(
        "/v1/deployments/cancer/examples", json={"examples": [{"input": X[2].tolist(), "label": 1}]}
    )
    conforms(one.json(), "/v1/deployments/{name}/feedback")
    conforms(many.json(), "/v1/deployments/{name}/feedback")
    conforms(examples.json(), "/v1/deployments/{name}/examples")
