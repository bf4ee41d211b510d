"""The live dashboard: ``GET /dashboard`` (a page) and ``GET /v1/live`` (its data).

The data is read from the process's Prometheus registry, so the page shows exactly what
``/metrics`` exports: counters as totals (the page turns them into rates between polls)
and latency quantiles estimated from the histogram buckets.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ...service import Rendezvous
from ..http import JSONResponse

__all__ = ["live_data", "routes"]


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile from cumulative buckets [(upper bound, count)], as Prometheus'
    histogram_quantile does: linear within the bucket that holds it."""
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            width = count - lower_count
            frac = (rank - lower_count) / width if width else 1.0
            return lower_bound + (bound - lower_bound) * frac
        lower_bound, lower_count = bound, count
    return lower_bound


def _histograms(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], Any]:
    """{label values: {"buckets": [...], "count": n}} for one histogram family."""
    out: dict[tuple[str, ...], Any] = {}
    for family in registry.collect():
        if family.name != name:
            continue
        for s in family.samples:
            key = tuple(v for k, v in sorted(s.labels.items()) if k != "le")
            entry = out.setdefault(key, {"buckets": [], "count": 0.0})
            if s.name.endswith("_bucket"):
                entry["buckets"].append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                entry["count"] = s.value
    return out


def _values(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    """{label values: value} for a counter (its _total sample) or gauge family."""
    out: dict[tuple[str, ...], float] = {}
    for family in registry.collect():
        if family.name != name:
            continue
        for s in family.samples:
            if s.name.endswith(("_created",)):
                continue
            out[tuple(v for _, v in sorted(s.labels.items()))] = s.value
    return out


def live_data(service: Rendezvous) -> dict[str, Any]:
    r = service.metrics.registry
    requests = _values(r, "rendezvous_requests")
    latency = _histograms(r, "rendezvous_request_latency_seconds")
    model_latency = _histograms(r, "rendezvous_model_latency_seconds")
    errors = _values(r, "rendezvous_model_errors")
    dropped = _values(r, "rendezvous_dropped_work")
    fallbacks = _values(r, "rendezvous_fallbacks")
    queues = _values(r, "rendezvous_queue_depth")
    deployments = []
    for name, runtime in service.runtimes.items():
        lat = latency.get((name,), {"buckets": [], "count": 0})
        outcomes = {o: v for (d, o), v in requests.items() if d == name}
        models = []
        for cfg in runtime.deployment.models:
            key = (name, cfg.name)
            hist = model_latency.get(key, {"buckets": [], "count": 0})
            models.append(
                {
                    "name": cfg.name,
                    "role": runtime.role(cfg),
                    "version": getattr(runtime.current_model(cfg.name), "version", None),
                    "batches": hist["count"],
                    "batch_p50_ms": _ms(_quantile(hist["buckets"], 0.5)),
                    "batch_p99_ms": _ms(_quantile(hist["buckets"], 0.99)),
                    "errors": errors.get(key, 0.0),
                    "dropped": dropped.get(key, 0.0),
                    "fallbacks": fallbacks.get(key, 0.0),
                    "queue": queues.get(key, 0.0),
                }
            )
        deployments.append(
            {
                "name": name,
                "champion": runtime.champion_name,
                "answered": lat["count"],
                "outcomes": outcomes,
                "p50_ms": _ms(_quantile(lat["buckets"], 0.5)),
                "p99_ms": _ms(_quantile(lat["buckets"], 0.99)),
                "models": models,
            }
        )
    return {"ready": service.ready, "deployments": deployments}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


async def live(request: Request) -> JSONResponse:
    return JSONResponse(live_data(request.app.state.rendezvous))


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(resources.files(__package__).joinpath("page.html").read_text())


routes = [
    Route("/dashboard", page, methods=["GET"]),
    Route("/v1/live", live, methods=["GET"]),
]
