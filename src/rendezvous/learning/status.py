"""What ``Engine.get_model_info`` reports about one model: a frozen, readable record."""

from __future__ import annotations

from dataclasses import dataclass

from .drift import DriftEvent
from .rows import Task
from .validation import ValidationDecision

__all__ = ["ModelStatus"]


@dataclass(frozen=True)
class ModelStatus:
    """One model at one moment.

    ``version`` is the serving version (``None`` until the first is published) and
    ``versions`` those still reachable through ``Engine.get_snapshot``. ``n_examples_seen``
    counts labelled examples the learner took from the queue; ``n_training_examples`` and
    ``n_validation_examples`` are what the next training would fit and validate on.
    ``queue_size`` examples still wait; ``dropped_examples`` were dropped by the
    ``drop_oldest`` policy and ``rejected_examples`` refused with ``Overloaded``.
    ``live_error`` is the serving versions' recent prequential error (``live_metric``: the
    error rate, or the mean absolute error for regressors). ``validations`` and
    ``drift_events`` are the most recent, oldest first; ``last_error`` is the last failure
    of a training; ``notes`` come from the serving version's training.
    """

    name: str
    kind: str
    task: Task
    n_features: int | None
    version: int | None
    versions: tuple[int, ...]
    n_examples_seen: int
    n_training_examples: int
    n_validation_examples: int
    queue_size: int
    dropped_examples: int
    rejected_examples: int
    trainings: int
    last_training_time: float | None
    live_metric: str
    live_error: float | None
    validations: tuple[ValidationDecision, ...]
    drift_events: tuple[DriftEvent, ...]
    last_error: str | None
    notes: tuple[str, ...]
