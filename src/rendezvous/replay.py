"""Replay: score archived traffic with a model that was never deployed.

``replay(archive, deployment, model_cfg, since=…, until=…)`` loads the model, runs every
archived request of the window through it (features exactly as the deployed models saw
them) and writes its scores beside theirs, so :func:`rendezvous.compare.compare` sets it
against the champion as if it had been a shadow all along.

Idempotent: a request that already has a score from this model name and version is
skipped, so a replay interrupted half way is finished by running it again, and running it
twice writes nothing the second time. Scores are flushed batch by batch: a crash loses at
most the batch being computed. Synchronous (a batch job): call it from a thread, not from
a running event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .archive.base import Archive, RequestRecord
from .compare.joined import CLOCK_SKEW_S
from .compare.window import pages
from .config import Deployment, ModelConfig
from .errors import InputError
from .messages import Score
from .models import AsyncModel, Model, Output, check_output, load_model

__all__ = ["ReplayResult", "replay"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    model: str
    version: str
    requests: int  # archived requests in the window
    skipped: int  # already scored by this model name and version
    scored: int  # scores written now (good or failed)
    errors: int  # of which failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def replay(
    archive: Archive,
    deployment: Deployment,
    model_cfg: ModelConfig,
    *,
    since: float | None = None,
    until: float | None = None,
    batch_size: int = 256,
    clock: Callable[[], float] = time.time,
) -> ReplayResult:
    """Score the requests archived in ``[since, until)`` with ``model_cfg``'s model.

    ``archive`` must be started. Raises :class:`~rendezvous.errors.ModelLoadError` when the
    model cannot be loaded; a failing prediction becomes an error score, as when serving.
    """
    if batch_size < 1:
        raise InputError(f"expected at least 1, got {batch_size}", loc="batch_size")
    if since is not None and until is not None and since >= until:
        raise InputError(f"'since' ({since}) must be before 'until' ({until})", loc="since")
    model = load_model(model_cfg, deployment)
    runner = asyncio.Runner() if isinstance(model, AsyncModel) else None
    try:
        return _Replay(archive, deployment.name, model, runner, clock).run(since, until, batch_size)
    finally:
        if isinstance(model, AsyncModel):
            assert runner is not None
            runner.run(model.aclose())
            runner.close()
        else:
            model.close()


class _Replay:
    def __init__(
        self,
        archive: Archive,
        deployment: str,
        model: Model | AsyncModel,
        runner: asyncio.Runner | None,
        clock: Callable[[], float],
    ) -> None:
        self.archive = archive
        self.deployment = deployment
        self.model = model
        self.runner = runner
        self.clock = clock

    def run(self, since: float | None, until: float | None, batch_size: int) -> ReplayResult:
        done = self._already_scored(since)
        total = skipped = scored = errors = 0
        for page in pages(self.archive, self.deployment, since, until):
            total += len(page)
            todo = [r for r in page if r.id not in done]
            skipped += len(page) - len(todo)
            for start in range(0, len(todo), batch_size):
                scores = self._score(todo[start : start + batch_size])
                self.archive.put_scores(scores)
                self.archive.flush()
                scored += len(scores)
                errors += sum(1 for s in scores if not s.ok)
                done.update(s.request_id for s in scores)
        return ReplayResult(self.model.name, self.model.version, total, skipped, scored, errors)

    def _already_scored(self, since: float | None) -> set[str]:
        self.archive.flush()  # scores still buffered count as written
        # A score is computed after its request was received (live), or much later (replayed).
        after = None if since is None else since - CLOCK_SKEW_S
        found = self.archive.scores_for_model(self.deployment, self.model.name, since=after)
        return {s.request_id for s in found if s.version == self.model.version}

    def _score(self, batch: Sequence[RequestRecord]) -> list[Score]:
        t0 = time.perf_counter()
        try:
            output = self._predict(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [self._failed(batch[0], exc, t0)]
            # One bad row (a stored row of another width, a value the model rejects) must
            # not fail its neighbours: retry them one by one, as the executor does.
            out: list[Score] = []
            for record in batch:
                t1 = time.perf_counter()
                try:
                    out += self._scores([record], self._predict([record]), t1)
                except Exception as row_exc:
                    out.append(self._failed(record, row_exc, t1))
            return out
        return self._scores(batch, output, t0)

    def _predict(self, batch: Sequence[RequestRecord]) -> Output:
        rows = np.array([r.features for r in batch], dtype=np.float64)
        if isinstance(self.model, AsyncModel):
            assert self.runner is not None
            output = self.runner.run(self.model.predict(rows))
        else:
            output = self.model.predict(rows)
        return check_output(output, len(batch), self.model.info)

    def _scores(self, batch: Sequence[RequestRecord], output: Output, t0: float) -> list[Score]:
        latency_ms = (time.perf_counter() - t0) * 1000.0
        now = self.clock()
        probs = output.probabilities
        return [
            Score(
                request_id=record.id,
                deployment=self.deployment,
                model=self.model.name,
                version=self.model.version,
                prediction=output.predictions[i],
                probabilities=probs[i] if probs is not None else None,
                latency_ms=latency_ms,
                queue_ms=0.0,  # nothing queued: the request waited in the archive, not a queue
                batch_size=len(batch),
                reply_to="",
                computed_at=now,
            )
            for i, record in enumerate(batch)
        ]

    def _failed(self, record: RequestRecord, exc: Exception, t0: float) -> Score:
        return Score(
            request_id=record.id,
            deployment=self.deployment,
            model=self.model.name,
            version=self.model.version,
            error=f"{type(exc).__name__}: {exc}",
            latency_ms=(time.perf_counter() - t0) * 1000.0,
            queue_ms=0.0,
            batch_size=1,
            reply_to="",
            computed_at=self.clock(),
        )
