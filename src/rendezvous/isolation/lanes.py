"""A model's lane in the model process: the requests of ``Work`` frames, cut into batches.

Requests reach the model process already in batches (a ``Work`` frame per hand-over
window), for every model at once. So the child needs no bus: each frame's feature matrix is
built once, and each model's lane queues slices of the frames, takes up to the model's
``batch.max_size`` rows per call and computes them with a
:class:`~rendezvous.runner.ModelRunner` (the serving process's executors use the same one).
What an executor guarantees holds here too: a lane's queue is bounded, and past its
``queue_size`` the oldest rows become dropped-work error scores; a failing call becomes error
scores, row by row; each score names the version that computed it; one slow model delays
no other (each lane is its own task, and a synchronous model computes on its own thread
unless it proves fast).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from ..config import BatchConfig
from ..messages import Request, Score
from ..models.base import Matrix
from ..runner import ModelRunner, matrix_of

__all__ = ["Frame", "Lane"]

log = logging.getLogger("rendezvous.isolation")

ScoreSink = Callable[[Sequence[Score]], None]


class Frame:
    """The requests of one ``Work`` frame and their features, shared by every lane."""

    __slots__ = ("requests", "rows")

    def __init__(self, requests: list[Request]) -> None:
        self.requests = requests
        try:
            self.rows: Matrix | None = matrix_of(requests)
        except (ValueError, TypeError):
            self.rows = None  # ragged rows: each batch tries its own, and fails row by row


class _Part:
    """What a lane still has to compute of one frame: its rows from ``start`` on."""

    __slots__ = ("frame", "start")

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.start = 0


class Lane:
    """One model's bounded queue of frame slices and the task computing them."""

    def __init__(
        self, runner: ModelRunner, *, batch: BatchConfig, capacity: int, emit: ScoreSink
    ) -> None:
        self.runner = runner
        self.name = runner.name
        self.max_size = batch.max_size
        self.max_wait = batch.max_wait_ms / 1000.0
        self.capacity = capacity
        self._emit = emit
        self._parts: deque[_Part] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Lane {self.name} queued={self._queued}>"

    @property
    def backlog(self) -> int:
        """Requests queued and not yet in a call."""
        return self._queued

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"lane:{self.name}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Compute what is queued (within ``timeout``), then stop."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(task, timeout)
        except TimeoutError:
            # what is left is the serving process's to fail: it tracks every request
            log.warning("%r did not drain within %.1fs", self, timeout)
        self._task = None
        await self.runner.close()

    def put(self, frame: Frame) -> None:
        """Queue every request of ``frame``; past the capacity the oldest are dropped."""
        self._parts.append(_Part(frame))
        self._queued += len(frame.requests)
        over = self._queued - self.capacity
        if over > 0:
            dropped, _ = self._take(over, with_rows=False)
            self._emit([self.runner.dropped(r, "model queue full") for r in dropped])
        self._wake.set()

    def _take(self, limit: int, *, with_rows: bool = True) -> tuple[list[Request], Matrix | None]:
        """Up to ``limit`` of the oldest queued requests, and their rows."""
        requests: list[Request] = []
        blocks: list[Matrix] | None = [] if with_rows else None
        parts = self._parts
        while parts and len(requests) < limit:
            part = parts[0]
            frame, start = part.frame, part.start
            stop = min(len(frame.requests), start + limit - len(requests))
            requests += frame.requests[start:stop]
            if blocks is not None:
                if frame.rows is None:
                    blocks = None
                else:
                    blocks.append(frame.rows[start:stop])
            if stop == len(frame.requests):
                parts.popleft()
            else:
                part.start = stop
        self._queued -= len(requests)
        if not blocks:
            return requests, None
        # a matrix of the lane's own (the frame's is shared): a model that changes its
        # input in place must not change what the other models see
        return requests, np.concatenate(blocks) if len(blocks) > 1 else blocks[0].copy()

    async def _run(self) -> None:
        while True:
            if not self._parts:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            requests, rows = self._take(self.max_size)
            room = self.max_size - len(requests)
            if room > 0 and self.max_wait and len(requests) > 1 and not self._stopping:
                # company for a batch that has some already, as an executor's max_wait_ms
                await asyncio.sleep(self.max_wait)
                more, more_rows = self._take(room)
                if more:
                    requests += more
                    rows = _stack(rows, more_rows)
            try:
                scores = await self.runner.scores(requests, rows)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug, not the model's doing: still a score per request
                log.exception("%r: a batch failed", self)
                why = f"ModelError: the model process failed to compute this ({exc})"
                now = time.time()
                scores = [self.runner.error_score(r, why, now, 0.0, 1) for r in requests]
            self._emit(scores)


def _stack(rows: Matrix | None, more: Matrix | None) -> Matrix | None:
    return None if rows is None or more is None else np.concatenate([rows, more])
