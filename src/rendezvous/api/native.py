"""The native JSON API: ``/v1/deployments`` and ``/v1/deployments/{name}/predict``.

A predict body is ``{"input": row}`` for one row or ``{"inputs": [row, …]}`` for a batch;
a row is a list of numbers in schema order or an object keyed by feature name.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..collector import Answer
from ..errors import InputError
from ..runtime import DeploymentRuntime
from ..service import Rendezvous
from .http import JSONResponse, error_payload, error_response, parse_json, read_body

__all__ = ["NO_ANSWER", "answer_json", "predict_payload", "routes"]

NO_ANSWER = "no model answered by the deadline and no default is configured"


def _service(request: Request) -> Rendezvous:
    service: Rendezvous = request.app.state.rendezvous
    return service


def answer_json(runtime: DeploymentRuntime, answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "request_id": answer.request_id,
        "prediction": answer.prediction,
        "model": answer.model,
        "model_version": answer.version,
        "latency_ms": round(answer.latency_ms, 3),
        "reason": answer.reason,
        "fallback": answer.fallback,
    }
    probs = answer.probabilities
    if probs is not None:
        model = runtime.current_model(answer.model) if answer.model else None
        classes = model.info.classes if model is not None else None
        if classes is not None and len(classes) == len(probs):
            out["probabilities"] = {str(c): p for c, p in zip(classes, probs, strict=True)}
        else:
            out["probabilities"] = probs
    if answer.detail:
        out["detail"] = answer.detail
    return out


async def predict_payload(service: Rendezvous, name: str, body: bytes) -> tuple[int, Any]:
    """Status and JSON payload for a predict call; errors become their JSON answers.

    Shared by the Starlette route and the ASGI fast path, so both answer identically.
    """
    try:
        runtime = service.get(name)
        data = parse_json(body)
        if not isinstance(data, dict):
            raise InputError(f"expected a JSON object, got {type(data).__name__}", loc="body")
        unknown = sorted(set(data) - {"input", "inputs"})
        if unknown:
            raise InputError(f"unknown key(s) {unknown}; expected 'input' or 'inputs'", "body")
        if "input" in data and "inputs" not in data:
            answer = await runtime.predict_one(data["input"], loc="input")
            out = answer_json(runtime, answer)
            if answer.reason == "error":
                out["error"] = NO_ANSWER
                return 503, out
            return 200, out
        if "inputs" in data and "input" not in data:
            rows = data["inputs"]
            if not isinstance(rows, list):
                raise InputError(f"expected a list of rows, got {type(rows).__name__}", "inputs")
            answers = await runtime.predict(rows, loc="inputs")
            status = 503 if all(a.reason == "error" for a in answers) else 200
            return status, {"predictions": [answer_json(runtime, a) for a in answers]}
        raise InputError("expected exactly one of 'input' (one row) or 'inputs' (rows)", "body")
    except Exception as exc:
        if isinstance(exc, InputError) and name in service.runtimes:
            service.metrics.rejected.labels(name, "bad_input").inc()
        return error_payload(exc)


async def predict(request: Request) -> Response:
    service = _service(request)
    try:
        body = await read_body(request, request.app.state.max_body_bytes)
    except Exception as exc:
        return error_response(exc)
    status, payload = await predict_payload(service, request.path_params["name"], body)
    return JSONResponse(payload, status_code=status)


async def list_deployments(request: Request) -> JSONResponse:
    service = _service(request)
    return JSONResponse({"deployments": [r.describe() for r in service.runtimes.values()]})


async def show_deployment(request: Request) -> JSONResponse:
    try:
        runtime = _service(request).get(request.path_params["name"])
    except Exception as exc:
        return error_response(exc)
    return JSONResponse(runtime.describe())


routes = [
    Route("/v1/deployments", list_deployments, methods=["GET"]),
    Route("/v1/deployments/{name}", show_deployment, methods=["GET"]),
    Route("/v1/deployments/{name}/predict", predict, methods=["POST"]),
]
