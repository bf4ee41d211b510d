"""The OpenAPI 3.1 document of the HTTP API, and a Swagger UI page that shows it.

Schemas are generated from the msgspec structs below, which mirror what the routes send
and accept; the routes build plain dicts on the hot path, and a test checks that every
route of the app is described here.
"""

from __future__ import annotations

import copy
import functools
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .oip import SERVER_NAME, server_version
from .tensors import HEADER_LENGTH, SUPPORTED

__all__ = ["DOCS_HTML", "openapi_document"]

# -- the native API ------------------------------------------------------------------------

Row = Annotated[
    list[float] | dict[str, Any],
    Meta(
        description="One row: numbers in the schema's feature order, or an object keyed by "
        "feature name (which may carry fields enrichers use, such as a lookup key)"
    ),
]
Reason = Annotated[
    str,
    Meta(
        pattern=r"^(champion|default|error|fallback:.+)$",
        description="Who answered: the champion, a fallback model, the configured default, "
        "or nobody (error)",
    ),
]


class PredictOne(Struct, forbid_unknown_fields=True):
    """Predict one row."""

    input: Row


class PredictMany(Struct, forbid_unknown_fields=True):
    """Predict a batch of rows; every row is validated before any is accepted."""

    inputs: list[Row]


class Prediction(Struct):
    """The answer for one row."""

    request_id: Annotated[str, Meta(description="Id of the request in the archive")]
    prediction: Annotated[Any, Meta(description="The answering model's prediction")]
    model: Annotated[str | None, Meta(description="Answering model; null for the default")]
    model_version: str | None
    latency_ms: Annotated[float, Meta(description="From acceptance to answer")]
    reason: Reason
    fallback: Annotated[bool, Meta(description="Whether anyone but the champion answered")]
    probabilities: Annotated[
        dict[str, float] | list[float] | UnsetType,
        Meta(description="Class probabilities, keyed by class label when the model has them"),
    ] = UNSET
    detail: Annotated[
        str | UnsetType, Meta(description="Why the preferred models did not answer")
    ] = UNSET
    error: Annotated[str | UnsetType, Meta(description="Set when nobody answered")] = UNSET


class Predictions(Struct):
    predictions: list[Prediction]


class Error(Struct):
    """Every error: a message naming the problem and, for bad input, where it is."""

    error: str
    loc: Annotated[str | UnsetType, Meta(description="Field path, e.g. inputs[2].amount")] = UNSET


class Step(Struct):
    model: str
    wait_ms: float | None


class ModelSummary(Struct):
    name: str
    kind: str
    role: Literal["champion", "challenger", "canary", "decoy"]
    queue: Annotated[int, Meta(description="Requests waiting for this model")]
    version: str | UnsetType = UNSET
    classes: list[Any] | UnsetType | None = UNSET


class DeploymentSummary(Struct):
    name: str
    features: list[str]
    deadline_ms: float
    schedule: list[Step]
    default: dict[str, Any] | None
    models: list[ModelSummary]


class DeploymentList(Struct):
    deployments: list[DeploymentSummary]


Label = Annotated[
    float | str | bool,
    Meta(
        description="One of the champion's classes when it has classes; otherwise of the kind "
        "the deployment answers with (a number for regression, a string, a boolean)"
    ),
]


class FeedbackOne(Struct, forbid_unknown_fields=True):
    """The true label of an earlier prediction, named by its request id."""

    request_id: str
    label: Label


class FeedbackMany(Struct, forbid_unknown_fields=True):
    """Labels for many predictions; every item is checked before any is stored."""

    feedback: list[FeedbackOne]


class FeedbackResult(Struct):
    """What became of one label."""

    request_id: str
    label: Annotated[Any, Meta(description="The label stored: the first one given")]
    duplicate: Annotated[bool, Meta(description="The request had a label already")]
    seq: Annotated[int | None, Meta(description="The stored example's seq; null if duplicate")]


class FeedbackResults(Struct):
    feedback: list[FeedbackResult]


class LabelledRow(Struct, forbid_unknown_fields=True):
    input: Row
    label: Label


class Examples(Struct, forbid_unknown_fields=True):
    """Labelled examples with no prediction behind them; every row is checked first."""

    examples: list[LabelledRow]


class StoredExamples(Struct):
    seqs: Annotated[list[int], Meta(description="Each example's seq, in the order given")]


# -- champion changes ----------------------------------------------------------------------


class Promote(Struct, forbid_unknown_fields=True):
    """Make a challenger (or the champion itself) the champion, in every process."""

    model: str
    evidence: Annotated[
        dict[str, Any] | UnsetType, Meta(description="Why: kept with the event")
    ] = UNSET


class Event(Struct):
    """Something that happened to a deployment, in the order it was recorded."""

    seq: Annotated[int, Meta(description="Increasing; page on with ?after=seq")]
    deployment: str
    kind: Annotated[
        str, Meta(description="promote, rollback, promotion-check, drift, train, version, …")
    ]
    model: Annotated[str | None, Meta(description="For promote and rollback: the new champion")]
    detail: Annotated[
        dict[str, Any],
        Meta(description="promote: previous, evidence, by; rollback: previous, undoes, by"),
    ]
    at: Annotated[float, Meta(description="When, in seconds since the epoch")]
    origin: Annotated[str, Meta(description="The process or command that recorded it")]


class EventList(Struct):
    events: list[Event]


# -- continuous learning -------------------------------------------------------------------


class TrainRequest(Struct, forbid_unknown_fields=True):
    """Ask the deployment's learner to train a model now (it must have a learning: block)."""

    model: str


class DriftList(Struct):
    """Drift events: ``detail.type`` is ``concept`` (the model's live error rose: detector,
    live_error) or ``data`` (a feature moved away from the serving version's training data:
    feature, statistic, p_value); ``detail.seq`` is the labelled example that raised it."""

    drift: list[Event]


# -- the Open Inference Protocol -----------------------------------------------------------

Datatype = Annotated[str, Meta(description=f"One of {', '.join(SUPPORTED)}")]
Shape = list[Annotated[int, Meta(ge=-1)]]
Parameters = dict[str, Any]


class ServerMetadata(Struct):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(Struct):
    name: str
    datatype: Datatype
    shape: Shape


class ModelMetadata(Struct):
    """A deployment as an OIP model; its only version is its champion's current version."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Annotated[Parameters, Meta(description="Feature names and class labels")]


class InferInput(Struct):
    """One [n, n_features] tensor (or [n_features] for one row), or one [n] tensor per feature."""

    name: str
    shape: list[Annotated[int, Meta(ge=0)]]
    datatype: Datatype
    parameters: Annotated[
        Parameters | UnsetType,
        Meta(description="binary_data_size: the tensor's bytes follow the JSON header"),
    ] = UNSET
    data: Annotated[list[Any] | UnsetType, Meta(description="Row-major values, flat or nested")] = (
        UNSET
    )


class RequestedOutput(Struct):
    name: Literal["predict", "probabilities"]
    parameters: Annotated[
        Parameters | UnsetType, Meta(description="binary_data: return this output as bytes")
    ] = UNSET


class InferRequest(Struct):
    inputs: list[InferInput]
    id: str | UnsetType = UNSET
    parameters: Annotated[
        Parameters | UnsetType,
        Meta(description="binary_data_output: return every output as bytes"),
    ] = UNSET
    outputs: Annotated[
        list[RequestedOutput] | UnsetType, Meta(description="Which outputs to return")
    ] = UNSET


class InferOutput(Struct):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | UnsetType = UNSET
    data: list[Any] | UnsetType = UNSET


class InferParameters(Struct):
    """The rendezvous, row by row."""

    request_ids: list[str]
    reasons: list[Reason]
    models: list[str | None]
    model_versions: list[str | None]


class InferResponse(Struct):
    model_name: str
    model_version: str
    parameters: InferParameters
    outputs: list[InferOutput]
    id: str | UnsetType = UNSET


class Health(Struct):
    live: bool | UnsetType = UNSET
    ready: bool | UnsetType = UNSET
    name: str | UnsetType = UNSET
    error: str | UnsetType = UNSET


_TYPES: tuple[Any, ...] = (
    PredictOne, PredictMany, Prediction, Predictions, Error, DeploymentList, DeploymentSummary,
    FeedbackOne, FeedbackMany, FeedbackResult, FeedbackResults, Examples, StoredExamples,
    Promote, Event, EventList, TrainRequest, DriftList,
    ServerMetadata, ModelMetadata, InferRequest, InferResponse, Health,
)  # fmt: skip


# -- paths ---------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _op(
    summary: str,
    tag: str,
    ok: dict[str, Any],
    errors: dict[int, str],
    *,
    path: tuple[str, ...] = (),
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    for status, why in errors.items():
        responses[str(status)] = _json("Error", why)
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if path:
        op["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path
        ]
    if body is not None:
        op["requestBody"] = body
    return op


_PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [_ref("PredictOne"), _ref("PredictMany")]},
            "examples": {
                "one": {"value": {"input": [120.0, 42, 0.3]}},
                "batch": {"value": {"inputs": [{"amount": 120.0, "age": 42, "country_risk": 0.3}]}},
            },
        }
    },
}
_PREDICT_OK = {
    "description": "The answer (for input) or answers (for inputs)",
    "content": {
        "application/json": {"schema": {"oneOf": [_ref("Prediction"), _ref("Predictions")]}}
    },
}
_INFER_BODY = {
    "required": True,
    "description": f"JSON, or with the binary tensor extension a JSON header of "
    f"{HEADER_LENGTH} bytes followed by the tensors' raw little-endian bytes. "
    "Content-Encoding gzip or deflate is accepted.",
    "content": {
        "application/json": {"schema": _ref("InferRequest")},
        "application/octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
        },
    },
}
_HEADER_LENGTH = {
    "name": HEADER_LENGTH,
    "in": "header",
    "required": False,
    "description": "Length of the JSON header when binary tensor data follows it",
    "schema": {"type": "integer", "minimum": 0},
}
_INFER_OK = {
    "description": "Outputs; with binary outputs the body is the JSON header "
    f"({HEADER_LENGTH} bytes) followed by the tensors' bytes",
    "headers": {HEADER_LENGTH: {"schema": {"type": "integer"}}},
    "content": {
        "application/json": {"schema": _ref("InferResponse")},
        "application/octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
        },
    },
}
_FEEDBACK_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [_ref("FeedbackOne"), _ref("FeedbackMany")]},
            "examples": {
                "one": {"value": {"request_id": "3f2a9c81d0e4-17", "label": 1}},
                "batch": {"value": {"feedback": [{"request_id": "3f2a9c81d0e4-17", "label": 0}]}},
            },
        }
    },
}
_FEEDBACK_OK = {
    "description": "What became of the label (for one) or of each label (for many)",
    "content": {
        "application/json": {"schema": {"oneOf": [_ref("FeedbackResult"), _ref("FeedbackResults")]}}
    },
}
_LABEL_BAD = {
    400: "Malformed body",
    404: "Unknown deployment, or a request id it never archived",
    413: "Body too large",
    422: "A label or a row that does not fit the deployment",
}
_BAD = {
    400: "Malformed body",
    404: "Unknown deployment or version",
    413: "Body too large",
    422: "Input does not fit the schema",
    503: "Overloaded, or nobody answered",
}


def _paths() -> dict[str, Any]:
    native, oip = "native", "Open Inference Protocol V2"
    paths: dict[str, Any] = {
        "/v1/deployments": {
            "get": _op("List deployments", native, _json("DeploymentList", "Every deployment"), {})
        },
        "/v1/deployments/{name}": {
            "get": _op(
                "Describe a deployment",
                native,
                _json("DeploymentSummary", "The deployment"),
                {404: "Unknown deployment"},
                path=("name",),
            )
        },
        "/v1/deployments/{name}/predict": {
            "post": _op(
                "Predict one row or a batch",
                native,
                _PREDICT_OK,
                _BAD,
                path=("name",),
                body=_PREDICT_BODY,
            )
        },
        "/v1/deployments/{name}/feedback": {
            "post": _op(
                "Label earlier predictions",
                native,
                _FEEDBACK_OK,
                _LABEL_BAD,
                path=("name",),
                body=_FEEDBACK_BODY,
            )
        },
        "/v1/deployments/{name}/examples": {
            "post": _op(
                "Add labelled examples",
                native,
                _json("StoredExamples", "The examples' seqs"),
                _LABEL_BAD,
                path=("name",),
                body={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Examples")}},
                },
            )
        },
        "/v2": {"get": _op("Server metadata", oip, _json("ServerMetadata", "The server"), {})},
        "/v2/health/live": {"get": _op("Liveness", oip, _json("Health", "Live"), {})},
        "/v2/health/ready": {
            "get": _op("Readiness", oip, _json("Health", "Ready"), {503: "Not ready"})
        },
    }
    for prefix, params in (
        ("/v2/models/{name}", ("name",)),
        ("/v2/models/{name}/versions/{version}", ("name", "version")),
    ):
        paths[prefix] = {
            "get": _op(
                "Model metadata",
                oip,
                _json("ModelMetadata", "The deployment as a model"),
                {404: "Unknown deployment or version"},
                path=params,
            )
        }
        paths[f"{prefix}/ready"] = {
            "get": _op(
                "Model readiness",
                oip,
                _json("Health", "Ready"),
                {404: "Unknown deployment or version", 503: "Not ready"},
                path=params,
            )
        }
        infer = _op("Infer", oip, _INFER_OK, _BAD, path=params, body=_INFER_BODY)
        infer["parameters"].append(_HEADER_LENGTH)
        paths[f"{prefix}/infer"] = {"post": infer}
    _OBJECT = {"type": "object", "additionalProperties": True}
    compare_op = _op(
        "Compare the models over a window of archived traffic",
        "comparison",
        {"description": "Per model: operations, quality, agreement, decision",
         "content": {"application/json": {"schema": _OBJECT}}},
        {404: "Unknown deployment", 422: "Bad window or parameter"},
        path=("name",),
    )  # fmt: skip
    compare_op["parameters"] += [
        {"name": q, "in": "query", "required": False, "schema": {"type": kind}}
        for q, kind in (("last", "integer"), ("since", "number"), ("until", "number"),
                        ("models", "string"), ("metric", "string"), ("alpha", "number"),
                        ("min_pairs", "integer"), ("top_k", "integer"),
                        ("large_diff", "number"), ("task", "string"), ("positive", "string"))
    ]  # fmt: skip
    paths["/v1/deployments/{name}/compare"] = {"get": compare_op}
    admin = "champion"
    paths["/v1/deployments/{name}/promote"] = {
        "post": _op(
            "Promote a model to champion, in every process of the deployment",
            admin,
            _json("Event", "The promotion, as recorded"),
            {400: "Malformed body", 404: "Unknown deployment or model",
             422: "A model that cannot answer (canary, decoy, split)", 503: "Archive failed"},
            path=("name",),
            body={"required": True, "content": {"application/json": {"schema": _ref("Promote")}}},
        )
    }  # fmt: skip
    paths["/v1/deployments/{name}/rollback"] = {
        "post": _op(
            "Go back to the champion before the latest promotion",
            admin,
            _json("Event", "The rollback, as recorded"),
            {404: "Unknown deployment", 409: "Nothing to roll back", 503: "Archive failed"},
            path=("name",),
        )
    }
    events_op = _op(
        "The deployment's events, in seq order",
        admin,
        _json("EventList", "At most limit events after the seq given"),
        {404: "Unknown deployment", 422: "Bad parameter"},
        path=("name",),
    )
    events_op["parameters"] += [
        {"name": "after", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0, "default": 0}},
        {"name": "kinds", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Comma-separated kinds, e.g. promote,rollback"},
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0, "default": 1000}},
    ]  # fmt: skip
    paths["/v1/deployments/{name}/events"] = {"get": events_op}
    paths.update(_learning_paths())
    paths["/v1/live"] = {
        "get": _op(
            "Live figures for the dashboard (from the Prometheus registry)",
            "operations",
            {
                "description": "Per deployment and model",
                "content": {"application/json": {"schema": _OBJECT}},
            },
            {},
        )
    }
    paths["/dashboard"] = {
        "get": {
            "summary": "Live dashboard page",
            "tags": ["operations"],
            "responses": {
                "200": {
                    "description": "HTML",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "tags": ["operations"],
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    return paths


def _learning_paths() -> dict[str, Any]:
    tag = "learning"
    train = _op(
        "Ask the learner to train a model now; its decision becomes a validation event",
        tag,
        _json("Event", "The training request, as recorded"),
        {400: "Malformed body", 404: "Unknown deployment or model",
         422: "A model without a learning: block", 503: "Archive failed"},
        path=("name",),
        body={"required": True,
              "content": {"application/json": {"schema": _ref("TrainRequest")}}},
    )  # fmt: skip
    train["responses"] = {"202": train["responses"].pop("200"), **train["responses"]}
    drift = _op(
        "Drift the learner found, in seq order",
        tag,
        _json("DriftList", "The latest limit drift events, or the first limit after ?after="),
        {404: "Unknown deployment or model", 422: "Bad parameter"},
        path=("name",),
    )
    drift["parameters"] += [
        {"name": "model", "in": "query", "required": False, "schema": {"type": "string"}},
        {"name": "after", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0}},
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}},
    ]  # fmt: skip
    return {
        "/v1/deployments/{name}/train": {"post": train},
        "/v1/deployments/{name}/drift": {"get": drift},
    }


@functools.cache
def _document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        _TYPES, ref_template="#/components/schemas/{name}"
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": SERVER_NAME,
            "version": server_version(),
            "description": "Real-time model serving on the Rendezvous architecture: every "
            "model sees every request, the collector answers by a deadline.",
        },
        "paths": _paths(),
        "components": {"schemas": components},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())


DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>rendezvous-ml API</title>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>
    SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""
