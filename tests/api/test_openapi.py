"""The OpenAPI document: valid, complete, and true to what the routes really send."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from rendezvous.api.app import create_app
from rendezvous.api.openapi import DOCS_HTML, openapi_document
from rendezvous.service import Rendezvous

UNDOCUMENTED = {"/openapi.json", "/docs"}  # the documentation itself


def test_the_document_is_valid_openapi() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validator.validate(document)


def test_every_route_is_documented(service: Rendezvous) -> None:
    paths = openapi_document()["paths"]
    for route in create_app(service).routes:
        assert isinstance(route, Route)
        if route.path in UNDOCUMENTED:
            continue
        assert route.path in paths, route.path
        for method in route.methods or ():
            if method != "HEAD":  # starlette adds HEAD to every GET
                assert method.lower() in paths[route.path], (method, route.path)
        params = set(re.findall(r"{(\w+)}", route.path))
        for op in paths[route.path].values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == params, route.path


def test_callers_get_their_own_copy() -> None:
    openapi_document()["paths"].clear()
    assert openapi_document()["paths"]


async def test_served_document_and_docs_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document()
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert docs.text == DOCS_HTML
    assert "/openapi.json" in DOCS_HTML


class Conforms:
    """Checks bodies against the document's component schemas."""

    def __init__(self) -> None:
        jsonschema = pytest.importorskip("jsonschema")
        self.document = openapi_document()
        self.validator = jsonschema.Draft202012Validator

    def __call__(self, body: Any, schema: dict[str, Any] | str) -> None:
        if isinstance(schema, str):
            schema = {"$ref": f"#/components/schemas/{schema}"}
        root = {**schema, "components": self.document["components"]}
        self.validator(root).validate(body)

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any]:
        response = self.document["paths"][path][method]["responses"][str(status)]
        schema: dict[str, Any] = response["content"]["application/json"]["schema"]
        return schema


async def test_real_answers_match_their_schemas(client: httpx.AsyncClient) -> None:
    conforms = Conforms()
    conforms((await client.get("/v1/deployments")).json(), "DeploymentList")
    conforms((await client.get("/v1/deployments/cancer")).json(), "DeploymentSummary")
    predict = conforms.response_schema("/v1/deployments/{name}/predict", "post", 200)
    one = await client.post("/v1/deployments/cancer/predict", json={"input": [1.0] * 30})
    conforms(one.json(), predict)
    conforms(one.json(), "Prediction")
    many = await client.post(
        "/v1/deployments/rules/predict", json={"inputs": [[1.0, 2.0], {"amount": 5, "age": 9}]}
    )
    conforms(many.json(), "Predictions")
    bad = await client.post("/v1/deployments/rules/predict", json={"input": [1.0]})
    assert bad.status_code == 422
    conforms(bad.json(), "Error")

    conforms((await client.get("/v2")).json(), "ServerMetadata")
    conforms((await client.get("/v2/health/live")).json(), "Health")
    conforms((await client.get("/v2/health/ready")).json(), "Health")
    conforms((await client.get("/v2/models/cancer/ready")).json(), "Health")
    conforms((await client.get("/v2/models/cancer")).json(), "ModelMetadata")
    request = {
        "id": "x",
        "inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64", "data": [1.0] * 30}],
    }
    conforms(request, "InferRequest")
    infer = await client.post("/v2/models/cancer/infer", json=request)
    conforms(infer.json(), "InferResponse")
    missing = await client.post("/v2/models/nope/infer", json=request)
    assert missing.status_code == 404
    conforms(missing.json(), "Error")
