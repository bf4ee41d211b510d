"""A model's live error, and the guard that rolls a bad new version back.

The live error is prequential: each labelled example is compared with what the model
answered for it (the archived score) before anyone learnt from it, so it is the error users
actually got. Absolute errors for regressors, 0/1 mistakes for classifiers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..config import GuardBlock
from .rows import Task

__all__ = ["GuardVerdict", "LiveErrors", "VersionGuard", "error_of"]


def error_of(task: Task, prediction: Any, target: Any) -> float | None:
    """The error of one answer, ``None`` when there is no answer to judge."""
    if prediction is None:
        return None
    if task == "classification":
        return 0.0 if prediction == target else 1.0
    try:
        error = abs(float(prediction) - float(target))
    except (TypeError, ValueError):
        return None
    return error if math.isfinite(error) else None


class LiveErrors:
    """The mean of the last ``size`` errors: the live error a dashboard shows."""

    def __init__(self, size: int = 200) -> None:
        self._recent: deque[float] = deque(maxlen=size)

    def add(self, error: float) -> None:
        self._recent.append(error)

    @property
    def mean(self) -> float | None:
        recent = self._recent
        return math.fsum(recent) / len(recent) if recent else None


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """``live_error`` of ``version`` against the ``baseline`` its parent makes on the same
    ``n`` examples."""

    version: str
    rollback: bool
    live_error: float
    baseline: float
    n: int


class VersionGuard:
    """Watches a freshly published version's first ``min_samples`` live errors.

    The comparison is paired: for every example the new version answered, the version it
    replaced (``parent``, still at hand in the learner) is asked too, and the guard compares
    both errors on the very same examples. Comparing with the parent's error before the
    swap would compare different traffic: the examples that triggered the retraining (a
    drift, a burst of odd data) make that error anything but a fair baseline.

    Once enough errors are in, the verdict says whether the new version is worse than its
    parent by more than ``max_error_increase`` (relative), and the watch ends either way.
    """

    def __init__(self, block: GuardBlock) -> None:
        self.block = block
        self._version: str | None = None
        self.parent: Any = None
        self._errors: list[float] = []
        self._baseline: list[float] = []

    @property
    def watching(self) -> str | None:
        return self._version

    def watch(self, version: str | None, parent: Any = None) -> None:
        """Judge ``version`` against the ``parent`` estimator; ``None`` stops watching."""
        self._version = version
        self.parent = parent
        self._errors = []
        self._baseline = []

    def observe(self, version: str, error: float, parent_error: float) -> GuardVerdict | None:
        if version != self._version:
            return None
        self._errors.append(error)
        self._baseline.append(parent_error)
        if len(self._errors) < self.block.min_samples:
            return None
        n = len(self._errors)
        live, baseline = math.fsum(self._errors) / n, math.fsum(self._baseline) / n
        self.watch(None)
        rollback = live > baseline * (1.0 + self.block.max_error_increase)
        return GuardVerdict(version, rollback, live, baseline, n)
