"""Executors: one per model, reading the model's group of the input stream.

Adaptive micro-batching: whatever queued while the model was busy forms the next batch (up
to ``max_size``), so under load one model call serves many requests, and a lone request is
computed at once. ``max_wait_ms`` lets a batch that already has company wait a little for
more; a single request never waits for it. Only models nobody waits on first (challengers,
canaries) ``linger``: they let a lone request wait a little for company, so their model
calls come in batches and leave the CPU to the champion.

Synchronous models run on the executor's own thread, so a slow shadow (or one that sleeps)
never holds the event loop that answers users; ``inline`` models run on the loop itself,
which saves a thread hand-off, always or while they prove fast (``inline.py``). A model
exception becomes an error score, never a dead executor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .archive.base import Archive, DecoyInput
from .bus.base import Bus
from .call_cost import CallCost, usage
from .config import BatchConfig
from .inline import InlinePolicy
from .messages import Request, Score
from .metrics import Metrics
from .models.base import AsyncModel, Matrix, Model, Output, check_output

__all__ = ["DecoyExecutor", "Executor", "ModelExecutor"]

log = logging.getLogger("rendezvous.executor")

AnyModel = Model | AsyncModel


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
        self._model: AnyModel = model
        self._inline = InlinePolicy(inline)  # None: on the loop while the model is fast
        self._pool: ThreadPoolExecutor | None = None
        self._score_latency = self.metrics.score_latency.labels(deployment, model.name)
        self._errors = self.metrics.model_errors.labels(deployment, model.name)

    @property
    def model(self) -> AnyModel:
        return self._model

    def swap(self, model: AnyModel) -> None:
        """Replace the model; the next batch uses the new object. Assignment is atomic."""
        self._model = model
        self._inline.reset()

    async def _close(self) -> None:
        model = self._model
        if isinstance(model, AsyncModel):
            await model.aclose()
        else:
            model.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _on_drop(self, request: Request) -> None:
        super()._on_drop(request)
        # Dropped work still leaves a trace in the archive: an error score, never silence.
        score = self._error_score(request, "dropped: model queue full", time.time(), 0.0, 1)
        task = asyncio.ensure_future(self.bus.publish_scores([score]))
        task.add_done_callback(_log_failure)

    async def _handle(self, requests: list[Request]) -> list[Score]:
        model = self._model  # one object computes the whole batch and names the version
        started = time.time()
        t0 = time.perf_counter()
        try:
            output = await self._predict(model, requests)
            scores = self._scores(model, requests, output, started, time.perf_counter() - t0)
        except Exception as exc:
            if len(requests) > 1:
                # one bad row must not fail its neighbours: retry them one by one
                scores = []
                for r in requests:
                    t1 = time.perf_counter()
                    try:
                        out = await self._predict(model, [r])
                        scores += self._scores(model, [r], out, started, time.perf_counter() - t1)
                    except Exception as row_exc:
                        scores.append(self._failed(model, r, row_exc, started, t1))
            else:
                scores = [self._failed(model, requests[0], exc, started, t0)]
        return scores

    async def _predict(self, model: AnyModel, requests: Sequence[Request]) -> Output:
        rows = np.array([r.features for r in requests], dtype=np.float64)
        if isinstance(model, AsyncModel):
            out = await model.predict(rows)
        elif self._inline.fixed:  # always on the loop: nothing to judge, nothing to time
            out = model.predict(rows)
        elif self._inline.on_loop:
            before = usage()
            try:
                out = model.predict(rows)
            finally:  # a slow raise counts too: it held the loop as long
                self._inline.observe(*CallCost.between(before, usage()))
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"model-{self.name}")
            loop = asyncio.get_running_loop()
            if self._inline.fixed is False:  # always on its thread: nothing to time either
                out = await loop.run_in_executor(self._pool, model.predict, rows)
            else:
                out, cost = await loop.run_in_executor(self._pool, _timed, model, rows)
                self._inline.observe(*cost)
        return check_output(out, len(requests), model.info)

    def _scores(
        self,
        model: AnyModel,
        requests: Sequence[Request],
        output: Output,
        started: float,
        elapsed: float,
    ) -> list[Score]:
        latency_ms = elapsed * 1000.0
        self._score_latency.observe(elapsed)
        n = len(requests)
        version = model.version
        dep, name = self.deployment, self.name
        probs = output.probabilities
        done = time.time()
        return [
            Score(
                r.id,
                dep,
                name,
                version,
                output.predictions[i],
                probs[i] if probs is not None else None,
                None,
                latency_ms,
                (started - r.received_at) * 1000.0,
                n,
                r.reply_to,
                done,
            )
            for i, r in enumerate(requests)
        ]

    def _failed(
        self, model: AnyModel, request: Request, exc: Exception, started: float, t0: float
    ) -> Score:
        self._errors.inc()
        message = f"{type(exc).__name__}: {exc}"
        return self._error_score(
            request, message, started, (time.perf_counter() - t0) * 1000.0, 1, model.version
        )

    def _error_score(
        self,
        request: Request,
        message: str,
        started: float,
        latency_ms: float,
        batch_size: int,
        version: str | None = None,
    ) -> Score:
        return Score(
            request.id,
            self.deployment,
            self.name,
            version if version is not None else self._model.version,
            None,
            None,
            message,
            latency_ms,
            (started - request.received_at) * 1000.0,
            batch_size,
            request.reply_to,
            time.time(),
        )


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


def _timed(model: Model, rows: Matrix) -> tuple[Output, CallCost]:
    """On the model's thread: its output for ``rows`` and what the call cost the thread."""
    before = usage()
    out = model.predict(rows)
    return out, CallCost.between(before, usage())


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("publishing a dropped-work score failed: %s", task.exception())
