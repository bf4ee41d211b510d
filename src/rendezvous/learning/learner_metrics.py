"""Prometheus metrics of a deployment learner, in whatever registry its process exports.

The learner process exports them with ``rendezvous learner --metrics-port``; a learner run
inside a serving process can share that process's registry instead.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["LearnerMetrics"]


class LearnerMetrics:
    """The learner's metrics in ``registry`` (a new one when ``None``); use
    :meth:`for_registry` to share a registry that may already hold them."""

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> LearnerMetrics:
        # Registering the same names twice in one registry fails: one set per registry.
        with _lock:
            metrics = _by_registry.get(registry)
            if metrics is None:
                metrics = _by_registry[registry] = cls(registry)
            return metrics

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        labels = ["deployment", "model"]
        self.examples = Counter(
            "rendezvous_learner_examples",
            "Labelled examples the learner took in (each once, whatever restarts)",
            labels,
            registry=r,
        )
        self.live_error = Gauge(
            "rendezvous_learner_live_error",
            "Recent prequential error of the model's answers: error rate for classifiers, "
            "mean absolute error for regressors",
            labels,
            registry=r,
        )
        self.drifts = Counter(
            "rendezvous_learner_drifts",
            "Drift alarms: concept (the model's error rose) or data (a feature's distribution "
            "moved away from the serving version's training data)",
            [*labels, "type"],
            registry=r,
        )
        self.trainings = Counter(
            "rendezvous_learner_trainings",
            "Trainings by trigger and outcome (accepted, rejected, failed)",
            [*labels, "trigger", "outcome"],
            registry=r,
        )
        self.version = Gauge(
            "rendezvous_learner_serving_version",
            "The registry version the learner treats as serving (the champion)",
            labels,
            registry=r,
        )
        self.rollbacks = Counter(
            "rendezvous_learner_rollbacks",
            "New versions the guard rolled back for a live error beyond its bound",
            labels,
            registry=r,
        )
        self.cursor = Gauge(
            "rendezvous_learner_cursor",
            "The seq of the last labelled example the learner processed",
            ["deployment"],
            registry=r,
        )


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, LearnerMetrics] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
