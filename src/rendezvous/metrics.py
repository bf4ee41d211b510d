"""Prometheus metrics for the request path, one registry per service.

Each service gets its own :class:`~prometheus_client.CollectorRegistry`, so several services
(in tests, or several deployments files in one process) never collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Every metric the serving path exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rendezvous_requests",
            "Requests answered, by how the rendezvous answered them",
            ["deployment", "outcome"],
            registry=r,
        )
        self.rejected = Counter(
            "rendezvous_rejected_requests",
            "Requests refused before reaching the models (bad input, overload)",
            ["deployment", "reason"],
            registry=r,
        )
        self.bus_errors = Counter(
            "rendezvous_bus_errors",
            "Accepted requests the bus could not carry to the models (answered by the default)",
            ["deployment"],
            registry=r,
        )
        self.latency = Histogram(
            "rendezvous_request_latency_seconds",
            "Time from acceptance to answer, per deployment",
            ["deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.score_latency = Histogram(
            "rendezvous_model_latency_seconds",
            "Model compute time per batch",
            ["deployment", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.model_errors = Counter(
            "rendezvous_model_errors",
            "Scores that were errors (the model raised or returned something invalid)",
            ["deployment", "model"],
            registry=r,
        )
        self.fallbacks = Counter(
            "rendezvous_fallbacks",
            "Requests answered by a model other than the champion",
            ["deployment", "model"],
            registry=r,
        )
        self.dropped = Counter(
            "rendezvous_dropped_work",
            "Requests a model never computed because its queue was full (oldest dropped)",
            ["deployment", "model"],
            registry=r,
        )
        self.batch_size = Histogram(
            "rendezvous_batch_size",
            "Rows per model call (micro-batching)",
            ["deployment", "model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "rendezvous_queue_depth",
            "Requests waiting for a model",
            ["deployment", "model"],
            registry=r,
        )
        self.waiting = Gauge(
            "rendezvous_waiting_requests",
            "Requests accepted and waiting for their answer",
            ["deployment"],
            registry=r,
        )
        self.archive_waits = Counter(
            "rendezvous_archive_waits",
            "Requests that waited for the archive writer to catch up before acceptance",
            ["deployment"],
            registry=r,
        )
        self.archive_backlog = Gauge(
            "rendezvous_archive_backlog",
            "Requests accepted but not yet written to the archive",
            ["deployment"],
            registry=r,
        )
