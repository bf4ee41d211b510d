"""Executors: one per model, reading the model's group of the input stream.

Adaptive micro-batching: whatever queued while the model was busy forms the next batch (up
to ``max_size``), so under load one model call serves many requests, and a lone request is
computed at once. ``max_wait_ms`` lets a batch that already has company wait a little for
more; a single request never waits for it. Only models nobody waits on first (challengers,
canaries) ``linger``: they let a lone request wait a little for company, so their model
calls come in batches and leave the CPU to the champion.

How a batch is computed (on the loop, on the model's thread, or awaited; a model exception
becomes an error score, never a dead executor) is the :class:`~rendezvous.runner.ModelRunner`'s
business, shared with the model process.
"""

from __future__ import annotations

import asyncio
import logging

from .archive.base import Archive, DecoyInput
from .bus.base import Bus
from .config import BatchConfig
from .messages import Request, Score
from .metrics import Metrics
from .runner import AnyModel, ModelRunner

__all__ = ["DecoyExecutor", "Executor", "ModelExecutor"]

log = logging.getLogger("rendezvous.executor")


class Executor:
    """The receive loop shared by every kind of executor; subclasses handle a batch."""

    def __init__(
        self,
        bus: Bus,
        deployment: str,
        name: str,
        *,
        batch: BatchConfig,
        capacity: int,
        metrics: Metrics,
        consumer: str = "0",
        linger_ms: float = 0.0,
        poll_s: float = 0.25,
    ) -> None:
        self.bus = bus
        self.linger = linger_ms / 1000.0
        self.deployment = deployment
        self.name = name
        self.batch = batch
        self.capacity = capacity
        self.metrics = metrics
        self.consumer = consumer
        self.poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = False
        self.handled = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.deployment}/{self.name}#{self.consumer}>"

    async def start(self) -> None:
        if self._task is not None:
            return
        await self.bus.join(
            self.deployment, self.name, capacity=self.capacity, on_drop=self._on_drop
        )
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"executor:{self.name}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Finish the batch in hand and whatever is queued (within ``timeout``), then stop."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        try:
            await asyncio.wait_for(task, timeout)
        except TimeoutError:
            log.warning("%r did not drain within %.1fs", self, timeout)
        self._task = None
        await self._close()

    async def _close(self) -> None:
        """Release what the executor holds (subclasses)."""

    @property
    def idle(self) -> bool:
        """No batch in hand and nothing queued."""
        return not self._busy and self.bus.backlog(self.deployment, self.name) == 0

    def _on_drop(self, request: Request) -> None:
        self.metrics.dropped.labels(self.deployment, self.name).inc()

    async def _run(self) -> None:
        bus, dep, name, consumer = self.bus, self.deployment, self.name, self.consumer
        max_size = self.batch.max_size
        max_wait = self.batch.max_wait_ms / 1000.0
        batch_hist = self.metrics.batch_size.labels(dep, name)
        while True:
            timeout = 0.0 if self._stopping else self.poll_s
            try:
                requests = await bus.receive(
                    dep, name, consumer, max_items=max_size, timeout=timeout
                )
                if not requests:
                    if self._stopping:
                        return
                    continue
                self._busy = True
                try:
                    room = max_size - len(requests)
                    if room > 0 and (self.linger or (max_wait and len(requests) > 1)):
                        requests += await self._more(room, max(self.linger, max_wait))
                    batch_hist.observe(len(requests))
                    await bus.complete(dep, name, requests, await self._handle(requests))
                finally:
                    self._busy = False
                self.handled += len(requests)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The loop must survive anything (a bus hiccup, a bug in a handler): log,
                # breathe, go on. Model errors never get here; they become error scores.
                log.exception("%r: error in receive loop", self)
                await asyncio.sleep(0.05)

    async def _more(self, room: int, wait: float) -> list[Request]:
        # Sleep, then take what came: waking on every arrival would cost a task switch per
        # request, which is what batching is meant to save.
        await asyncio.sleep(wait)
        return await self.bus.receive(
            self.deployment, self.name, self.consumer, max_items=room, timeout=0.0
        )

    async def _handle(self, requests: list[Request]) -> list[Score]:
        """Handle a batch; return the scores to publish before it is acknowledged."""
        raise NotImplementedError


class ModelExecutor(Executor):
    """Runs one model over batches and publishes one score per request."""

    def __init__(
        self,
        bus: Bus,
        deployment: str,
        model: AnyModel,
        *,
        batch: BatchConfig,
        capacity: int,
        metrics: Metrics,
        consumer: str = "0",
        inline: bool | None = False,
        linger_ms: float = 0.0,
    ) -> None:
        super().__init__(
            bus,
            deployment,
            model.name,
            batch=batch,
            capacity=capacity,
            metrics=metrics,
            consumer=consumer,
            linger_ms=linger_ms,
        )
        self.runner = ModelRunner(deployment, model, metrics=metrics, inline=inline)

    @property
    def model(self) -> AnyModel:
        return self.runner.model

    def swap(self, model: AnyModel) -> None:
        """Replace the model; the next batch uses the new object."""
        self.runner.swap(model)

    async def _close(self) -> None:
        await self.runner.close()

    def _on_drop(self, request: Request) -> None:
        super()._on_drop(request)
        # Dropped work still leaves a trace in the archive: an error score, never silence.
        score = self.runner.dropped(request, "model queue full")
        task = asyncio.ensure_future(self.bus.publish_scores([score]))
        task.add_done_callback(_log_failure)

    async def _handle(self, requests: list[Request]) -> list[Score]:
        return await self.runner.scores(requests)


class DecoyExecutor(Executor):
    """Computes nothing: archives each input exactly as it came off the input stream."""

    def __init__(
        self,
        bus: Bus,
        deployment: str,
        name: str,
        archive: Archive,
        *,
        batch: BatchConfig,
        capacity: int,
        metrics: Metrics,
        consumer: str = "0",
        linger_ms: float = 0.0,
    ) -> None:
        super().__init__(
            bus,
            deployment,
            name,
            batch=batch,
            capacity=capacity,
            metrics=metrics,
            consumer=consumer,
            linger_ms=linger_ms,
        )
        self.archive = archive

    async def _handle(self, requests: list[Request]) -> list[Score]:
        dep, name = self.deployment, self.name
        self.archive.put_inputs(
            [DecoyInput(r.id, dep, name, r.features, r.received_at) for r in requests]
        )
        return []


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("publishing a dropped-work score failed: %s", task.exception())
