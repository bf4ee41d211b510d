"""The bounded queue of labelled examples waiting for the learner, one per model.

Producers (``add_training_example``, any thread) put; the learner drains everything at once.
When the queue is full the policy decides, and nothing is ever lost silently: dropped
examples are counted, blocked or rejected ones raise :class:`~rendezvous.errors.Overloaded`.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, NamedTuple

from ..errors import Overloaded
from .config import QueueFullPolicy
from .rows import Row

__all__ = ["Example", "ExampleQueue"]


class Example(NamedTuple):
    row: Row
    target: Any
    is_validation: bool


class ExampleQueue:
    def __init__(self, name: str, maxsize: int, policy: QueueFullPolicy, timeout: float) -> None:
        self._name = name
        self._maxsize = maxsize
        self._policy = policy
        self._timeout = timeout
        self._items: deque[Example] = deque()
        self._not_full = threading.Condition(threading.Lock())
        self.dropped = 0
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, example: Example) -> None:
        with self._not_full:
            if len(self._items) >= self._maxsize:
                if self._policy == "drop_oldest":
                    self._items.popleft()
                    self.dropped += 1
                elif self._policy == "reject" or not self._not_full.wait_for(
                    lambda: len(self._items) < self._maxsize, self._timeout
                ):
                    self.rejected += 1
                    raise Overloaded(self._full_message())
            self._items.append(example)

    def drain(self) -> list[Example]:
        with self._not_full:
            items = list(self._items)
            self._items.clear()
            self._not_full.notify_all()
        return items

    def _full_message(self) -> str:
        waited = f" after waiting {self._timeout:g} s" if self._policy == "block" else ""
        return (
            f"model '{self._name}': the training queue is full ({self._maxsize} examples)"
            f"{waited}; queue_full={self._policy!r}: raise max_queue_size or let the learner "
            "catch up"
        )
