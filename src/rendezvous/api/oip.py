"""The Open Inference Protocol V2 (KServe V2, Triton's HTTP API), so existing clients work.

Each deployment is one OIP model named after it, whose only version is its champion's
current version. Inputs are one tensor of shape ``[n, n_features]`` (or ``[n_features]``
for one row), or one tensor per feature named after it with shape ``[n]``. Outputs are
``predict`` and, for classifiers, ``probabilities`` (``[n, n_classes]``, in the champion's
class order); the rendezvous details (request ids, reasons, answering models) travel in the
response's ``parameters``. JSON and the binary tensor extension are both spoken, as are
gzip and deflate bodies.
"""

from __future__ import annotations

import functools
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..collector import Answer
from ..errors import InputError, NotFound
from ..runtime import DeploymentRuntime
from ..service import Rendezvous
from .encoding import compress, decompress
from .http import JSONResponse, error_response, parse_json, read_body
from .tensors import (
    BYTES,
    DATATYPES,
    HEADER_LENGTH,
    Tensor,
    decode_inputs,
    encode_outputs,
    split_body,
)

__all__ = ["SERVER_NAME", "model_metadata", "routes", "server_version"]

SERVER_NAME = "rendezvous-ml"
PREDICT, PROBABILITIES = "predict", "probabilities"


@functools.cache  # reading package metadata scans sys.path: once is enough
def server_version() -> str:
    try:
        return metadata.version(SERVER_NAME)
    except metadata.PackageNotFoundError:
        import rendezvous

        return str(getattr(rendezvous, "__version__", "0.1.0"))


def _service(request: Request) -> Rendezvous:
    service: Rendezvous = request.app.state.rendezvous
    return service


def _runtime(request: Request) -> DeploymentRuntime:
    """The deployment named in the path, checking the version when the path has one."""
    runtime = _service(request).get(request.path_params["name"])
    version = request.path_params.get("version")
    if version is not None:
        served = runtime.champion.version
        if version != served:
            raise NotFound(
                f"model '{runtime.name}' has no version '{version}'; it serves version '{served}'"
            )
    return runtime


# -- health and metadata -------------------------------------------------------------------


async def server_metadata(request: Request) -> JSONResponse:
    return JSONResponse(
        {"name": SERVER_NAME, "version": server_version(), "extensions": ["binary_tensor_data"]}
    )


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"live": True})


async def ready(request: Request) -> JSONResponse:
    if _service(request).ready:
        return JSONResponse({"ready": True})
    return JSONResponse({"ready": False, "error": "the server is not ready"}, status_code=503)


async def model_ready(request: Request) -> JSONResponse:
    try:
        runtime = _runtime(request)
    except Exception as exc:
        return error_response(exc)
    if not _service(request).ready:
        return JSONResponse(
            {"name": runtime.name, "ready": False, "error": "the server is not ready"},
            status_code=503,
        )
    return JSONResponse({"name": runtime.name, "ready": True})


def model_metadata(runtime: DeploymentRuntime) -> dict[str, Any]:
    """The deployment as an OIP model: one FP64 input, ``predict`` (+ ``probabilities``).

    ``predict``'s datatype follows the champion's class labels; a model without classes is
    announced as FP64 (a score), though a rule answering strings will answer BYTES.
    """
    champion = runtime.champion
    schema = runtime.deployment.input_schema
    classes = champion.info.classes
    outputs: list[dict[str, Any]] = [
        {"name": PREDICT, "datatype": _datatype(list(classes or ())), "shape": [-1]}
    ]
    parameters: dict[str, Any] = {"features": schema.names}
    if classes:
        outputs.append({"name": PROBABILITIES, "datatype": "FP64", "shape": [-1, len(classes)]})
        parameters["classes"] = list(classes)
    return {
        "name": runtime.name,
        "versions": [champion.version],
        "platform": SERVER_NAME,
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, schema.width]}],
        "outputs": outputs,
        "parameters": parameters,
    }


async def show_model(request: Request) -> JSONResponse:
    try:
        return JSONResponse(model_metadata(_runtime(request)))
    except Exception as exc:
        return error_response(exc)


# -- inference -----------------------------------------------------------------------------


async def infer(request: Request) -> Response:
    service = _service(request)
    try:
        runtime = _runtime(request)
        limit: int = request.app.state.max_body_bytes
        body = decompress(
            await read_body(request, limit), request.headers.get("content-encoding"), limit
        )
        head, binary = split_body(body, request.headers.get(HEADER_LENGTH))
        payload = parse_json(head)
        if not isinstance(payload, dict):
            raise InputError(f"expected a JSON object, got {type(payload).__name__}", "body")
        request_id = payload.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise InputError("expected a string", "id")
        params = _params(payload)
        wanted = _requested_outputs(payload, runtime)
        tensors = decode_inputs(payload.get("inputs"), binary)
        rows = _rows(tensors, runtime)
        answers = await runtime.predict(rows, loc="rows")
    except Exception as exc:
        name = request.path_params.get("name", "")
        if name in service.runtimes and isinstance(exc, InputError):
            service.metrics.rejected.labels(name, "bad_input").inc()
        return error_response(exc)
    if all(a.reason == "error" for a in answers):
        detail = "; ".join(sorted({a.detail for a in answers if a.detail}))
        message = "no model answered by the deadline and no default is configured"
        return JSONResponse(
            {"error": f"{message} ({detail})" if detail else message}, status_code=503
        )
    out: dict[str, Any] = {"model_name": runtime.name, "model_version": _version(answers, runtime)}
    if request_id is not None:
        out["id"] = request_id
    out["parameters"] = {
        "request_ids": [a.request_id for a in answers],
        "reasons": [a.reason for a in answers],
        "models": [a.model for a in answers],
        "model_versions": [a.version for a in answers],
    }
    outputs = [t for t in _outputs(answers, runtime) if wanted is None or t.name in wanted]
    as_bytes = _binary_outputs(outputs, wanted, params.get("binary_data_output") is True)
    out["outputs"], raw = encode_outputs(outputs, as_bytes)
    return _response(out, raw, request.headers.get("accept-encoding"))


def _params(payload: dict[str, Any], loc: str = "parameters") -> dict[str, Any]:
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise InputError("expected an object", loc)
    return params


def _requested_outputs(
    payload: dict[str, Any], runtime: DeploymentRuntime
) -> dict[str, bool | None] | None:
    """Output name → binary flag (None: the request's default); None asks for all."""
    specs = payload.get("outputs")
    if specs is None or specs == []:
        return None
    if not isinstance(specs, list):
        raise InputError("expected a list of {name, parameters} objects", "outputs")
    available = [o["name"] for o in model_metadata(runtime)["outputs"]]
    wanted: dict[str, bool | None] = {}
    for i, spec in enumerate(specs):
        loc = f"outputs[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InputError("expected an object with a 'name'", loc)
        if spec["name"] not in available:
            raise InputError(f"unknown output '{spec['name']}'; available: {available}", loc)
        params = _params(spec, f"{loc}.parameters")
        if "shared_memory_region" in params:
            raise InputError("shared memory is not supported", f"{loc}.parameters")
        if "classification" in params:
            raise InputError("the classification extension is not supported", f"{loc}.parameters")
        binary = params.get("binary_data")
        wanted[spec["name"]] = binary if isinstance(binary, bool) else None
    return wanted


def _binary_outputs(
    outputs: list[Tensor], wanted: dict[str, bool | None] | None, default: bool
) -> set[str]:
    """Outputs to send as bytes: an output's own "binary_data" wins over the request's."""
    names = set()
    for t in outputs:
        flag = wanted.get(t.name) if wanted else None
        if default if flag is None else flag:
            names.add(t.name)
    return names


def _rows(tensors: list[Tensor], runtime: DeploymentRuntime) -> list[Any]:
    """The request's rows: lists of numbers from one matrix, or objects from named columns."""
    schema = runtime.deployment.input_schema
    names, width = schema.names, schema.width
    if len(tensors) == 1 and tensors[0].name not in names:
        return _matrix_rows(tensors[0], width)
    if not any(t.name in names for t in tensors):
        raise InputError(
            f"expected one input tensor of shape [n, {width}], or one tensor per feature "
            f"named {names}; got tensors {[t.name for t in tensors]}",
            "inputs",
        )
    seen = [t.name for t in tensors]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise InputError(f"tensor(s) {dupes} given more than once", "inputs")
    if not runtime.deployment.enrichers:
        # without enrichers every feature must come as a tensor; enrichers may compute some
        missing = [n for n in names if n not in seen]
        if missing:
            raise InputError(f"missing tensor(s) for feature(s) {missing}", "inputs")
    columns: list[list[Any]] = []
    n_rows: int | None = None
    for i, t in enumerate(tensors):
        loc = f"inputs[{i}]"
        if len(t.shape) not in (1, 2) or (len(t.shape) == 2 and t.shape[1] != 1):
            raise InputError(
                f"a per-feature tensor has shape [n] or [n, 1], got {list(t.shape)}",
                f"{loc}.shape",
            )
        if n_rows is not None and t.shape[0] != n_rows:
            raise InputError(
                f"{t.shape[0]} rows, but the tensors before it have {n_rows}", f"{loc}.shape"
            )
        n_rows = t.shape[0]
        columns.append(t.data.tolist() if t.datatype == BYTES else _finite(t.data, loc).tolist())
    return [dict(zip(seen, values, strict=True)) for values in zip(*columns, strict=True)]


def _matrix_rows(t: Tensor, width: int) -> list[Any]:
    if t.datatype == BYTES:
        raise InputError(
            "features are numbers: send FP64, FP32, INT64, INT32 or BOOL data", "inputs[0].datatype"
        )
    if len(t.shape) == 1:
        n, f = 1, t.shape[0]
    elif len(t.shape) == 2:
        n, f = t.shape
    else:
        raise InputError(
            f"expected shape [n, {width}] (n rows) or [{width}] (one row), got {list(t.shape)}",
            "inputs[0].shape",
        )
    if f != width:
        raise InputError(
            f"expected {width} features per row, got {f} (shape {list(t.shape)})",
            "inputs[0].shape",
        )
    rows: list[Any] = _finite(t.data, "inputs[0]").reshape(n, f).tolist()
    return rows


def _finite(data: npt.NDArray[Any], loc: str) -> npt.NDArray[np.float64]:
    """Float64 values; NaN and infinities cannot come from JSON, so binary data must not
    smuggle them past the native API's rules either."""
    values = data.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        j = int(np.argmin(finite))
        raise InputError(f"expected a finite number, got {values[j]}", f"{loc}.data[{j}]")
    return values


# -- answers → output tensors --------------------------------------------------------------


def _outputs(answers: list[Answer], runtime: DeploymentRuntime) -> list[Tensor]:
    n = len(answers)
    values = [a.prediction for a in answers]
    datatype = _datatype(values)
    data: npt.NDArray[Any]
    if datatype == BYTES:
        data = np.array([_text(v) for v in values], dtype=object)
    else:
        # None (no answer for that row: see parameters.reasons) becomes NaN
        data = np.array([np.nan if v is None else v for v in values], dtype=DATATYPES[datatype])
    out = [Tensor(PREDICT, datatype, (n,), data.ravel())]
    probs = _probabilities(answers, runtime)
    if probs is not None:
        out.append(Tensor(PROBABILITIES, "FP64", probs.shape, probs.ravel()))
    return out


def _datatype(values: list[Any]) -> str:
    if any(v is not None and not isinstance(v, int | float) for v in values):
        return BYTES
    if any(v is None for v in values):
        return "FP64"
    if values and all(type(v) is bool for v in values):
        return "BOOL"
    if values and all(type(v) is int and -(2**63) <= v < 2**63 for v in values):
        return "INT64"
    return "FP64"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _probabilities(
    answers: list[Answer], runtime: DeploymentRuntime
) -> npt.NDArray[np.float64] | None:
    """``[n, k]`` in the champion's class order; NaN for rows answered otherwise."""
    classes = runtime.champion.info.classes
    if classes:
        k = len(classes)
    else:
        widths = {len(a.probabilities) if a.probabilities is not None else -1 for a in answers}
        if len(widths) != 1 or -1 in widths:
            return None
        k = widths.pop()
    out = np.full((len(answers), k), np.nan)
    same: dict[str | None, bool] = {}
    for i, a in enumerate(answers):
        if a.probabilities is None or len(a.probabilities) != k:
            continue
        if classes:
            # a fallback model may order (or name) its classes differently
            if a.model not in same:
                model = runtime.current_model(a.model) if a.model else None
                same[a.model] = model is not None and model.info.classes == classes
            if not same[a.model]:
                continue
        out[i] = a.probabilities
    return out


def _version(answers: list[Answer], runtime: DeploymentRuntime) -> str:
    versions = {a.version for a in answers}
    if len(versions) == 1:
        (version,) = versions
        if version is not None:
            return version
    return runtime.champion.version


def _response(out: dict[str, Any], raw: bytes, accept_encoding: str | None) -> Response:
    """JSON alone, or with binary outputs the JSON header and then the tensors' bytes."""
    head = orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)
    headers = {}
    if raw:
        headers[HEADER_LENGTH] = str(len(head))
        media_type = "application/octet-stream"
    else:
        media_type = "application/json"
    body, encoding = compress(head + raw, accept_encoding)
    headers.update(encoding)
    return Response(body, media_type=media_type, headers=headers)


routes = [
    Route("/v2", server_metadata, methods=["GET"]),
    Route("/v2/health/live", live, methods=["GET"]),
    Route("/v2/health/ready", ready, methods=["GET"]),
    Route("/v2/models/{name}", show_model, methods=["GET"]),
    Route("/v2/models/{name}/versions/{version}", show_model, methods=["GET"]),
    Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{name}/infer", infer, methods=["POST"]),
    Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
]
