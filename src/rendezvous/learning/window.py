"""Which examples the next candidate trains on: the data policy of ``LearningConfig.window``.

* ``sliding`` — the last ``size`` examples;
* ``since_drift`` — the examples since the last drift alarm, at most the last ``size``;
* ``all`` — every example ever added (unbounded: the user's explicit choice).
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from .config import WindowPolicy
from .rows import Row

__all__ = ["Mark", "TrainingWindow"]


class Mark(NamedTuple):
    """Where an example sits in a durable log: its ``seq`` and when it arrived."""

    seq: int
    at: float


_NO_MARK = Mark(0, 0.0)


class TrainingWindow:
    """Examples in arrival order; a ``mark`` places each in the log it came from, if any."""

    def __init__(self, policy: WindowPolicy, size: int) -> None:
        self.policy = policy
        self._examples: deque[tuple[Row, Any, Mark]] = deque(
            maxlen=None if policy == "all" else size
        )

    def __len__(self) -> int:
        return len(self._examples)

    def add(self, row: Row, target: Any, mark: Mark = _NO_MARK) -> None:
        self._examples.append((row, target, mark))

    def span(self) -> tuple[Mark, Mark] | None:
        """The marks of the oldest and of the newest example, ``None`` when empty."""
        if not self._examples:
            return None
        return self._examples[0][2], self._examples[-1][2]

    def on_drift(self) -> bool:
        """Forget what a drift made obsolete; ``True`` if anything was forgotten."""
        if self.policy != "since_drift" or not self._examples:
            return False
        self._examples.clear()
        return True

    def between(self, after: int, upto: int | None = None) -> tuple[list[Row], list[Any]]:
        """Rows and targets of the examples marked ``after < seq <= upto``, oldest first."""
        chosen = [
            (row, target)
            for row, target, mark in self._examples
            if mark.seq > after and (upto is None or mark.seq <= upto)
        ]
        return [row for row, _ in chosen], [target for _, target in chosen]

    def data(self) -> tuple[list[Row], list[Any]]:
        """Rows and targets, oldest first, as two lists ready for ``fit``."""
        rows = [row for row, _, _ in self._examples]
        targets = [target for _, target, _ in self._examples]
        return rows, targets
