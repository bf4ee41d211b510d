"""Operational health per model: latency, errors, missing scores, answers served.

Rates are shares of the window's requests, so for each model
``error_rate + timeout_rate`` plus the share of good scores is 1. A request with no score
at all from a model counts as a timeout: the model never answered it (too slow for its
queue, or down), whichever the cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .joined import Joined

__all__ = ["Operations", "operations", "outcomes"]


@dataclass(frozen=True, slots=True)
class Operations:
    requests: int  # requests in the window
    scored: int  # of which the model returned a score for (good or failed)
    errors: int  # failed scores
    missing: int  # no score at all
    error_rate: float | None
    timeout_rate: float | None
    p50_ms: float | None  # queue + compute time, over every score (a failure also takes time)
    p99_ms: float | None
    served: int  # answers the rendezvous returned from this model
    fallbacks: int  # of which as a fallback for a model earlier in the schedule
    fallback_rate: float | None


def operations(joined: Joined, model: str) -> Operations:
    scores = joined.scores[model]
    n = len(joined.requests)
    scored = sum(1 for r in joined.requests if r.id in scores)
    errors = sum(1 for r in joined.requests if r.id in scores and not scores[r.id].ok)
    latencies = [s.queue_ms + s.latency_ms for s in scores.values()]
    p50 = p99 = None
    if latencies:
        q50, q99 = np.percentile(np.array(latencies, dtype=np.float64), [50, 99])
        p50, p99 = float(q50), float(q99)
    name = model.partition("@")[0]
    version = model.partition("@")[2] or None
    served = fallbacks = 0
    for r in joined.requests:
        if r.model != name or (version is not None and r.version != version):
            continue
        served += 1
        if r.reason.startswith("fallback:"):
            fallbacks += 1
    return Operations(
        requests=n,
        scored=scored,
        errors=errors,
        missing=n - scored,
        error_rate=errors / n if n else None,
        timeout_rate=(n - scored) / n if n else None,
        p50_ms=p50,
        p99_ms=p99,
        served=served,
        fallbacks=fallbacks,
        fallback_rate=fallbacks / n if n else None,
    )


def outcomes(joined: Joined) -> dict[str, int]:
    """How the window's requests were answered: champion, fallback, default, error, …"""
    counts: dict[str, int] = {}
    for r in joined.requests:
        kind = "fallback" if r.reason.startswith("fallback:") else r.reason
        counts[kind] = counts.get(kind, 0) + 1
    return counts
