"""Models for the model-process tests.

The deployments in test_model_process.py use this directory as their base_dir, so the
loader puts it on ``sys.path``; the model process gets the parent's ``sys.path`` and
unpickles these functions and classes by reference.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rendezvous.models.base import Matrix, Model, ModelInfo, Output

SLEEP_S = 0.2  # one call of ``slow_batch``


def sign(row: dict[str, float]) -> int:
    return 1 if row["a"] > 0 else 0


def negated(row: dict[str, float]) -> int:
    return 0 if row["a"] > 0 else 1


def boom(row: dict[str, float]) -> int:
    raise ValueError("boom")


def glacial(row: dict[str, float]) -> int:
    """A champion slow without failing: it answers long after any deadline."""
    time.sleep(1.0)
    return 1


def slow_batch(rows: Matrix) -> list[int]:
    """A batch function (``options.mode: batch``) that takes SLEEP_S per call."""
    time.sleep(SLEEP_S)
    return [1] * len(rows)


def steady_batch(rows: Matrix) -> list[int]:
    """20 ms per call: there is always work in the model process while traffic flows."""
    time.sleep(0.02)
    return [1] * len(rows)


class LockedRule:
    """An estimator-like object holding a lock: it cannot be pickled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def predict(self, rows: Any) -> list[int]:
        with self._lock:
            return [1] * len(rows)


locked = LockedRule()


class Versioned(Model):
    """Predicts its own version: a score shows which object computed it."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__(ModelInfo(name, version, "test", ("a", "b")))

    def predict(self, rows: Matrix) -> Output:
        return Output([self.version] * len(rows))


class LockedVersioned(Versioned):
    """A new version that cannot be pickled: it holds a lock."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__(name, version)
        self._lock = threading.Lock()

    def predict(self, rows: Matrix) -> Output:
        with self._lock:
            return super().predict(rows)
