"""Candidate against serving version on held-out recent labelled data, and the decision kept.

Both are scored by one loss, lower is better, comparable across models and data sets so one
``tolerance`` means the same everywhere: the error rate for classifiers, the relative
absolute error for regressors (the sum of absolute errors over that of always predicting the
mean: 0 is perfect, 1 no better than the mean). A candidate is published unless its loss
exceeds the serving version's by more than ``tolerance``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .rows import Row, Task

__all__ = ["HeldOut", "ValidationDecision", "decide", "loss", "metric_name"]


@dataclass(frozen=True)
class ValidationDecision:
    """Why a training did or did not publish a version.

    ``version`` is the version published (``None`` if rejected); ``serving_version`` the one
    compared against. Scores are losses (``metric``), ``None`` where there was nothing to
    score; ``n_examples`` held-out examples scored them.
    """

    time: float
    trigger: str
    accepted: bool
    reason: str
    metric: str
    candidate_score: float | None
    serving_score: float | None
    n_examples: int
    version: int | None
    serving_version: int | None
    trained_on: int


def metric_name(task: Task) -> str:
    return "error_rate" if task == "classification" else "relative_absolute_error"


def loss(task: Task, predictions: Sequence[Any], targets: Sequence[Any]) -> float:
    if task == "classification":
        return float(sum(p != y for p, y in zip(predictions, targets, strict=True)) / len(targets))
    mean = sum(targets) / len(targets)
    spread = sum(abs(y - mean) for y in targets)
    errors = sum(abs(y - p) for p, y in zip(predictions, targets, strict=True))
    # Constant targets leave no spread to compare with: fall back to the mean absolute error.
    return float(errors / spread if spread > 0 else errors / len(targets))


def decide(candidate: float, serving: float, tolerance: float) -> tuple[bool, str]:
    if candidate <= serving + tolerance:
        return True, "not worse than the serving version beyond the tolerance"
    return False, f"worse than the serving version by {candidate - serving:.4g} > {tolerance}"


class HeldOut:
    """Recent labelled examples no candidate trains on: those the user flagged
    ``is_validation=True`` and the ones held out of the training stream, the last ``size``
    of each."""

    def __init__(self, size: int) -> None:
        self._flagged: deque[tuple[Row, Any]] = deque(maxlen=size)
        self._holdout: deque[tuple[Row, Any]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._flagged) + len(self._holdout)

    def add(self, row: Row, target: Any, flagged: bool) -> None:
        (self._flagged if flagged else self._holdout).append((row, target))

    def clear(self) -> None:
        self._flagged.clear()
        self._holdout.clear()

    def data(self) -> tuple[list[Row], list[Any]]:
        examples = [*self._flagged, *self._holdout]
        return [row for row, _ in examples], [target for _, target in examples]
