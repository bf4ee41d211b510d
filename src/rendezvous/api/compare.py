"""``GET /v1/deployments/{name}/compare``: the deployment's models compared over a window.

Query parameters (unknown ones are refused, so a typo never silently changes the window):

``last=N`` or ``since=T&until=T``   the window (seconds since the epoch, ``[since, until)``)
``models=a,b@v2``                   models to set against the champion (default: all)
``metric=…&alpha=…&min_pairs=…``    a promotion policy: each challenger gets a decision
``top_k``, ``large_diff``, ``task``, ``positive``   see :func:`rendezvous.compare.compare`

The answer is ``Comparison.to_dict()``. The archive is read on a worker thread: a long
window never holds up predictions served by the same event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..compare import PromotionPolicy, Window, compare
from ..compare.stats import METRICS
from ..compare.task import TASK_KINDS
from ..errors import InputError
from ..service import Rendezvous
from .http import JSONResponse, error_response

__all__ = ["routes"]

PARAMS = {
    "last", "since", "until", "models", "metric", "alpha", "min_pairs",
    "top_k", "large_diff", "task", "positive",
}  # fmt: skip

_T = TypeVar("_T")


async def compare_deployment(request: Request) -> Response:
    try:
        service: Rendezvous = request.app.state.rendezvous
        runtime = service.get(request.path_params["name"])
        q = request.query_params
        unknown = sorted(set(q) - PARAMS)
        if unknown:
            raise InputError(f"unknown parameter(s) {unknown}; expected any of {sorted(PARAMS)}")
        window = Window(
            last=_get(q, "last", int), since=_get(q, "since", float), until=_get(q, "until", float)
        )
        models = q.get("models")
        names = [m.strip() for m in models.split(",") if m.strip()] if models else None
        policy = None
        if any(k in q for k in ("metric", "alpha", "min_pairs")):
            metric = q.get("metric", "accuracy")
            if metric not in METRICS:
                raise InputError(f"expected one of {list(METRICS)}, got {metric!r}", "metric")
            options: dict[str, Any] = {"metric": metric}
            for key, kind in (("min_pairs", int), ("alpha", float)):
                value = _get(q, key, kind)
                if value is not None:
                    options[key] = value
            policy = PromotionPolicy(**options)
        task = q.get("task")
        if task is not None and task not in TASK_KINDS:
            raise InputError(f"expected one of {list(TASK_KINDS)}, got {task!r}", "task")
        top_k = _get(q, "top_k", int)
        deployment = runtime.deployment
        classes: dict[str, Any] = {}
        for cfg in deployment.models:
            model = runtime.current_model(cfg.name)
            if model is not None and model.info.classes is not None:
                classes[cfg.name] = model.info.classes
        comparison = await asyncio.to_thread(
            compare,
            runtime.archive,
            deployment,
            window,
            models=names,
            classes=classes,
            task=task,
            positive=_label(q.get("positive")),
            large_diff=_get(q, "large_diff", float),
            top_k=10 if top_k is None else top_k,
            policy=policy,
            champion_name=runtime.champion_name,
        )
    except Exception as exc:
        return error_response(exc)
    return JSONResponse(comparison.to_dict())


def _get(q: QueryParams, key: str, kind: Callable[[str], _T]) -> _T | None:
    raw = q.get(key)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise InputError(f"expected {expected}, got {raw!r}", loc=key) from None


def _label(raw: str | None) -> Any:
    # Labels are JSON values: "positive=1" means the number 1, "positive=fraud" the string.
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


routes = [Route("/v1/deployments/{name}/compare", compare_deployment, methods=["GET"])]
