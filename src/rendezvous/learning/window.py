"""Which examples the next candidate trains on: the data policy of ``LearningConfig.window``.

* ``sliding`` — the last ``size`` examples;
* ``since_drift`` — the examples since the last drift alarm, at most the last ``size``;
* ``all`` — every example ever added (unbounded: the user's explicit choice).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .config import WindowPolicy
from .rows import Row

__all__ = ["TrainingWindow"]


class TrainingWindow:
    def __init__(self, policy: WindowPolicy, size: int) -> None:
        self.policy = policy
        self._examples: deque[tuple[Row, Any]] = deque(maxlen=None if policy == "all" else size)

    def __len__(self) -> int:
        return len(self._examples)

    def add(self, row: Row, target: Any) -> None:
        self._examples.append((row, target))

    def on_drift(self) -> bool:
        """Forget what a drift made obsolete; ``True`` if anything was forgotten."""
        if self.policy != "since_drift" or not self._examples:
            return False
        self._examples.clear()
        return True

    def data(self) -> tuple[list[Row], list[Any]]:
        """Rows and targets, oldest first, as two lists ready for ``fit``."""
        rows = [row for row, _ in self._examples]
        targets = [target for _, target in self._examples]
        return rows, targets
