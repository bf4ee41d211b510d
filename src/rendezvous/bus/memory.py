"""The in-process bus: the embedded default and the fastest way to test everything above it.

A group is a bounded deque; a consumer waits on an :class:`asyncio.Event`. All of it lives
on one event loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection, Sequence

from ..errors import BusError
from ..messages import Request, Score
from .base import Bus, DropHandler, ScoreHandler

__all__ = ["MemoryBus"]


class _Group:
    __slots__ = ("capacity", "dropped", "event", "on_drop", "queue")

    def __init__(self, capacity: int, on_drop: DropHandler | None) -> None:
        self.queue: deque[Request] = deque()
        self.capacity = capacity
        self.on_drop = on_drop
        self.event = asyncio.Event()
        self.dropped = 0

    def put(self, request: Request) -> None:
        queue = self.queue
        if len(queue) >= self.capacity:
            old = queue.popleft()
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(old)
        queue.append(request)
        self.event.set()


class MemoryBus(Bus):
    url = "memory"

    def __init__(self) -> None:
        self._groups: dict[str, dict[str, _Group]] = {}
        self._handlers: dict[str, ScoreHandler] = {}
        self._all: list[tuple[ScoreHandler, frozenset[str] | None]] = []

    def __repr__(self) -> str:
        return "MemoryBus()"

    async def join(
        self,
        deployment: str,
        group: str,
        *,
        capacity: int = 1000,
        on_drop: DropHandler | None = None,
    ) -> None:
        if capacity < 1:
            raise BusError(f"capacity must be at least 1, got {capacity}")
        groups = self._groups.setdefault(deployment, {})
        if group not in groups:
            groups[group] = _Group(capacity, on_drop)

    async def publish(self, request: Request) -> None:
        for group in self._groups.get(request.deployment, {}).values():
            group.put(request)

    def _group(self, deployment: str, group: str) -> _Group:
        try:
            return self._groups[deployment][group]
        except KeyError:
            raise BusError(f"group '{group}' has not joined deployment '{deployment}'") from None

    async def receive(
        self,
        deployment: str,
        group: str,
        consumer: str,
        *,
        max_items: int,
        timeout: float,
    ) -> list[Request]:
        g = self._group(deployment, group)
        queue = g.queue
        if not queue:
            g.event.clear()
            try:
                async with asyncio.timeout(timeout):
                    await g.event.wait()
            except TimeoutError:
                return []
        n = min(max_items, len(queue))
        batch = [queue.popleft() for _ in range(n)]
        if not queue:
            g.event.clear()
        return batch

    async def publish_scores(self, scores: Sequence[Score]) -> None:
        if not scores:
            return
        first = scores[0].reply_to
        if all(s.reply_to == first for s in scores):  # the usual case: one executor batch
            by_reply: dict[str, Sequence[Score]] = {first: scores}
        else:
            split: dict[str, list[Score]] = {}
            for s in scores:
                split.setdefault(s.reply_to, []).append(s)
            by_reply = dict(split)
        for reply_to, batch in by_reply.items():
            handler = self._handlers.get(reply_to)
            if handler is not None:
                handler(batch)
        for h, only in self._all:
            if only is None:
                h(scores)
            else:
                mine = [s for s in scores if s.deployment in only]
                if mine:
                    h(mine)

    def subscribe(
        self,
        handler: ScoreHandler,
        *,
        reply_to: str | None,
        deployments: Collection[str] | None = None,
    ) -> None:
        if reply_to is None:
            self._all.append((handler, None if deployments is None else frozenset(deployments)))
        else:
            self._handlers[reply_to] = handler

    def backlog(self, deployment: str, group: str) -> int:
        g = self._groups.get(deployment, {}).get(group)
        return len(g.queue) if g is not None else 0

    def dropped(self, deployment: str, group: str) -> int:
        g = self._groups.get(deployment, {}).get(group)
        return g.dropped if g is not None else 0
