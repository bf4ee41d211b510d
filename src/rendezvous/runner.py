"""How one model's calls run: a batch of requests in, one score per request out.

Shared by everything that computes a model: the executors of the serving process (fed by
the bus) and the lanes of the model process (fed by ``Work`` frames), so both compute,
time, fail and version their scores the same way.

Synchronous models run on the runner's own thread, so a slow model (or one that sleeps)
never holds the event loop; ``inline`` models run on the loop itself, which saves a thread
hand-off, always or while they prove fast (``inline.py``). A model exception becomes an
error score, and one bad row does not fail its neighbours: a failed batch is retried row
by row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .call_cost import CallCost, usage
from .inline import InlinePolicy
from .messages import Request, Score
from .metrics import Metrics
from .models.base import AsyncModel, Matrix, Model, Output, as_matrix, check_output

__all__ = ["AnyModel", "ModelRunner", "matrix_of"]

AnyModel = Model | AsyncModel


def matrix_of(requests: Sequence[Request]) -> Matrix:
    """The requests' features as one float matrix, a row per request."""
    return as_matrix([r.features for r in requests])


class ModelRunner:
    """Calls one model (swappable for a new version) over batches of requests."""

    def __init__(
        self, deployment: str, model: AnyModel, *, metrics: Metrics, inline: bool | None
    ) -> None:
        self.deployment = deployment
        self.name = model.name
        self._model: AnyModel = model
        self._inline = InlinePolicy(inline)  # None: on the loop while the model is fast
        self._pool: ThreadPoolExecutor | None = None
        self._score_latency = metrics.score_latency.labels(deployment, model.name)
        self._errors = metrics.model_errors.labels(deployment, model.name)

    @property
    def model(self) -> AnyModel:
        return self._model

    def swap(self, model: AnyModel) -> None:
        """Replace the model; the next batch uses the new object. Assignment is atomic."""
        self._model = model
        self._inline.reset()

    async def close(self) -> None:
        model = self._model
        if isinstance(model, AsyncModel):
            await model.aclose()
        else:
            model.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def scores(self, requests: Sequence[Request], rows: Matrix | None = None) -> list[Score]:
        """One score per request, in order; ``rows`` are their features when already built."""
        model = self._model  # one object computes the whole batch and names the version
        started = time.time()
        t0 = time.perf_counter()
        try:
            if rows is None:
                rows = matrix_of(requests)
            output = await self._predict(model, rows, len(requests))
            return self._scores(model, requests, output, started, time.perf_counter() - t0)
        except Exception as exc:
            if len(requests) == 1:
                return [self._failed(model, requests[0], exc, started, t0)]
        # one bad row must not fail its neighbours: retry them one by one
        scores: list[Score] = []
        for r in requests:
            t1 = time.perf_counter()
            try:
                out = await self._predict(model, matrix_of([r]), 1)
                scores += self._scores(model, [r], out, started, time.perf_counter() - t1)
            except Exception as row_exc:
                scores.append(self._failed(model, r, row_exc, started, t1))
        return scores

    def dropped(self, request: Request, why: str) -> Score:
        """The error score for work this model never computed."""
        return self.error_score(request, f"dropped: {why}", time.time(), 0.0, 1)

    async def _predict(self, model: AnyModel, rows: Matrix, n: int) -> Output:
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
        return check_output(out, n, model.info)

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
        return self.error_score(
            request, message, started, (time.perf_counter() - t0) * 1000.0, 1, model.version
        )

    def error_score(
        self,
        request: Request,
        message: str,
        started: float,
        latency_ms: float,
        batch_size: int,
        version: str | None = None,
    ) -> Score:
        """An error score for ``request`` (by default from the current version)."""
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


def _timed(model: Model, rows: Matrix) -> tuple[Output, CallCost]:
    """On the model's thread: its output for ``rows`` and what the call cost the thread."""
    before = usage()
    out = model.predict(rows)
    return out, CallCost.between(before, usage())
