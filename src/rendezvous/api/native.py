"""The native JSON API: ``/v1/deployments`` and ``/v1/deployments/{name}/predict``.

A predict body is ``{"input": row}`` for one row or ``{"inputs": [row, …]}`` for a batch;
a row is a list of numbers in schema order or an object keyed by feature name.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..collector import Answer
from ..errors import InputError
from ..runtime import DeploymentRuntime
from ..service import Rendezvous
from .http import JSONResponse, error_response, read_json

__all__ = ["answer_json", "routes"]


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


def _status(answer: Answer) -> int:
    return 503 if answer.reason == "error" else 200


async def predict(request: Request) -> JSONResponse:
    try:
        runtime = _service(request).get(request.path_params["name"])
        body = await read_json(request, request.app.state.max_body_bytes)
        if not isinstance(body, dict):
            raise InputError(f"expected a JSON object, got {type(body).__name__}", loc="body")
        unknown = sorted(set(body) - {"input", "inputs"})
        if unknown:
            raise InputError(f"unknown key(s) {unknown}; expected 'input' or 'inputs'", "body")
        if "input" in body and "inputs" not in body:
            answer = await runtime.predict_one(body["input"], loc="input")
            out = answer_json(runtime, answer)
            if answer.reason == "error":
                out["error"] = "no model answered by the deadline and no default is configured"
            return JSONResponse(out, status_code=_status(answer))
        if "inputs" in body and "input" not in body:
            rows = body["inputs"]
            if not isinstance(rows, list):
                raise InputError(f"expected a list of rows, got {type(rows).__name__}", "inputs")
            answers = await runtime.predict(rows, loc="inputs")
            status = 503 if all(a.reason == "error" for a in answers) else 200
            return JSONResponse(
                {"predictions": [answer_json(runtime, a) for a in answers]}, status_code=status
            )
        raise InputError("expected exactly one of 'input' (one row) or 'inputs' (rows)", "body")
    except Exception as exc:
        runtime_name = request.path_params.get("name", "")
        service = _service(request)
        if runtime_name in service.runtimes and isinstance(exc, InputError):
            service.metrics.rejected.labels(runtime_name, "bad_input").inc()
        return error_response(exc)


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
