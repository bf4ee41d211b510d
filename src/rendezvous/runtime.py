"""One deployment, running: enrichers, executors on the bus, the collector, the archive.

``predict`` is the request path: validate and enrich each row, publish it to every model,
wait for the collector's answer, archive the request with the rendezvous choice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from .admission import Admission
from .archive.base import Archive, RequestRecord
from .bus.base import Bus
from .bus.memory import MemoryBus
from .collector import Answer, Collector, ScheduleStep
from .config import Deployment, ModelConfig, Role
from .enrich import build_enrichers
from .errors import BusError, ConfigError, InputError, ModelLoadError, NotFound, Problem
from .executor import DecoyExecutor, Executor, ModelExecutor
from .inputs import RowParser
from .isolation.host import ModelProcess
from .messages import Request, Score
from .metrics import Metrics
from .models import load_model
from .models.base import AsyncModel, Model
from .roles import Roles
from .traffic import SplitRouter

__all__ = ["DeploymentRuntime", "load_models"]

log = logging.getLogger("rendezvous.runtime")

AnyModel = Model | AsyncModel


def load_models(dep: Deployment) -> dict[str, AnyModel]:
    """Load every computing model of ``dep``; all failures are reported together."""
    models: dict[str, AnyModel] = {}
    problems: list[Problem] = []
    for i, cfg in enumerate(dep.models):
        if not cfg.computes:
            continue
        try:
            models[cfg.name] = load_model(cfg, dep)
        except Exception as exc:
            message = (
                str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
            )
            problems.append(Problem(f"models[{i}].source", message))
    if problems:
        raise ConfigError(dep.name, problems)
    return models


class DeploymentRuntime:
    """A deployment wired to a bus and an archive. Start it, then ``await predict(rows)``."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        bus: Bus,
        archive: Archive,
        metrics: Metrics,
        instance: str | None = None,
        models: dict[str, AnyModel] | None = None,
        roles: Roles | None = None,
        sole_executor: bool = False,
    ) -> None:
        self.deployment = dep = deployment
        self.name = dep.name
        self.bus = bus
        self.archive = archive
        self.metrics = metrics
        self.instance = instance or uuid.uuid4().hex[:12]
        self.reply_to = f"{self.instance}/{dep.name}"
        allowed = [dep.split_key] if dep.split_key else []
        self.parser = RowParser(dep.input_schema, build_enrichers(dep), allowed=allowed)
        self.router = SplitRouter(
            [(m.name, m.share) for m in dep.models if m.role is Role.SPLIT and m.share]
        )
        self.collector = Collector(
            [
                ScheduleStep(e.model, e.wait_ms / 1000.0 if e.wait_ms else None)
                for e in dep.schedule_entries()
            ],
            champion=dep.champion.name,
            deadline_s=dep.deadline_ms / 1000.0,
            default=dep.default,
        )
        self.admission = Admission(
            dep.name,
            archive,
            max_wait_s=dep.deadline_ms / 1000.0,
            waits=metrics.archive_waits.labels(dep.name),
            refusals=metrics.rejected.labels(dep.name, "overloaded"),
        )
        self.roles = roles or Roles()
        # The process runs one executor and nothing else (a worker of one model): its model
        # computes on the event loop, since a thread hand-off costs a wake-up per batch and
        # there is nobody for a model call to hold up.
        self.sole_executor = sole_executor
        self._preloaded = models
        # every computing model is loaded, even where it does not run: the API describes
        # models (versions, classes) that may compute in other processes
        self.models: dict[str, AnyModel] = {}
        self.executors: dict[str, Executor] = {}  # the first replica of each model
        self.replicas: list[Executor] = []
        self._ids = itertools.count()
        self._started = False
        # the model process, when some models compute there (see isolation/)
        self.model_process: ModelProcess | None = None
        self._background: set[asyncio.Task[None]] = set()  # moves and installs under way
        name = dep.name
        self._latency = metrics.latency.labels(name)
        self._outcomes = {o: metrics.requests.labels(name, o) for o in _OUTCOMES}
        self._fallbacks = {
            m.name: metrics.fallbacks.labels(name, m.name) for m in dep.models if m.computes
        }

    def __repr__(self) -> str:
        return f"<DeploymentRuntime {self.name} models={list(self.executors)}>"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        dep = self.deployment
        if self._preloaded is not None:
            self.models = dict(self._preloaded)
        else:
            self.models = await asyncio.to_thread(load_models, dep)
        if self.roles.api:
            self.bus.subscribe(self._deliver, reply_to=self.reply_to)
        isolated = await self._start_model_process()
        for cfg in dep.models:
            if not self.roles.runs(cfg.name) or cfg.name in isolated:
                continue
            for i in range(self.roles.replicas):
                consumer = self.instance if i == 0 else f"{self.instance}-{i}"
                executor = self._executor(cfg, consumer)
                await executor.start()
                self.replicas.append(executor)
                self.executors.setdefault(cfg.name, executor)
        m = self.metrics
        m.waiting.labels(self.name).set_function(lambda: self.collector.waiting)
        m.archive_backlog.labels(self.name).set_function(lambda: self.archive.backlog)
        for cfg in dep.models:
            m.queue_depth.labels(self.name, cfg.name).set_function(self._backlog_of(cfg.name))
        self._started = True

    async def _start_model_process(self) -> set[str]:
        """Start the model process for the models that compute there; returns their names.

        Only the embedded mode has one: over Redis, worker processes isolate models.
        """
        if not (isinstance(self.bus, MemoryBus) and self.roles.is_everything):
            return set()
        isolated: dict[str, Model] = {}
        for cfg in self.deployment.models:
            model = self.models.get(cfg.name)
            if isinstance(model, Model) and cfg.in_model_process(Role(self.role(cfg))):
                isolated[cfg.name] = model
        if not isolated:
            return set()
        process = ModelProcess(
            self.deployment,
            metrics=self.metrics,
            deliver=self.collector.deliver,
            wanted=self.collector.waits_for_any,
            archive=self.archive.put_scores,
            archive_in_child=self.deployment.archive != "memory",
            on_lost=self._lost,
        )
        try:
            placed = await process.start(isolated)
        except Exception as exc:
            # serving without isolation beats not serving: they compute on threads here
            log.error("deployment '%s': no model process (%s): %s compute in this process",
                      self.name, exc, sorted(isolated))  # fmt: skip
            return set()
        if placed:
            self.model_process = process
        return set(placed)

    def _deliver(self, scores: Sequence[Score]) -> None:
        self.collector.deliver(scores)
        process = self.model_process
        if process is not None:
            for score in scores:
                if score.error is not None:
                    # a model here failed: a fallback in the model process may be needed
                    # now, not when the hand-over window closes
                    process.hand_over()
                    break

    def _lost(self, name: str, why: str) -> None:
        log.error("deployment '%s': model '%s' moves into the serving process: %s",
                  self.name, name, why)  # fmt: skip
        self._move_in(name)

    def _move_in(self, name: str) -> None:
        """Compute ``name`` here from now on (a promotion, or a model the child lost)."""
        self._in_background(self._start_here(name))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start_here(self, name: str) -> None:
        executor = self._executor(self.deployment.model(name), self.instance)
        # No await between joining the bus and leaving the model process: every request
        # goes to exactly one of the two.
        await executor.start()
        if self.model_process is not None:
            self.model_process.remove(name)
        self.replicas.append(executor)
        self.executors.setdefault(name, executor)

    def _backlog_of(self, model: str) -> Callable[[], float]:
        def backlog() -> float:
            process = self.model_process
            if process is not None and model in process.assigned:
                return process.backlog.get(model, 0)
            return self.bus.backlog(self.name, model)

        return backlog

    @property
    def idle(self) -> bool:
        """Nothing queued or in hand for any model, here or in the model process."""
        process = self.model_process
        return all(e.idle for e in self.replicas) and (process is None or process.idle)

    def _executor(self, cfg: ModelConfig, consumer: str) -> Executor:
        common: dict[str, Any] = {
            "batch": cfg.batch,
            "capacity": cfg.queue_size,
            "metrics": self.metrics,
            "consumer": consumer,
            "linger_ms": cfg.linger_ms,
        }
        if cfg.role is Role.DECOY:
            return DecoyExecutor(self.bus, self.name, cfg.name, self.archive, **common)
        return ModelExecutor(
            self.bus,
            self.name,
            self.models[cfg.name],
            inline=self._inline(cfg),
            **common,
        )

    def _inline(self, cfg: ModelConfig) -> bool | None:
        """Where ``cfg``'s calls run (see ``ModelConfig.inline``): True on the loop, False on
        its thread, None on the loop while they prove fast."""
        if self.sole_executor and cfg.inline is not False:
            return True
        if cfg.inline is None and self.roles.api and cfg.role not in (Role.CHAMPION, Role.SPLIT):
            return False  # a shadow here: even a fast call on the loop delays an answer
        return cfg.inline

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the executors once they have drained what is queued. Idempotent."""
        if not self._started:
            return
        self._started = False
        await self.admission.stop()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(e.stop(timeout) for e in self.replicas))
        self.executors.clear()
        self.replicas.clear()
        process, self.model_process = self.model_process, None
        if process is not None:
            await process.stop(timeout)

    # -- the request path -----------------------------------------------------------------

    async def predict(self, rows: Sequence[Any], *, loc: str = "inputs") -> list[Answer]:
        """Answer each row. All rows are validated before any is accepted."""
        if len(rows) > self.deployment.max_batch_rows:
            raise InputError(
                f"at most {self.deployment.max_batch_rows} rows per request, got {len(rows)}", loc
            )
        if not rows:
            raise InputError("expected at least one row", loc)
        vectors = [self.parser.parse(row, f"{loc}[{i}]") for i, row in enumerate(rows)]
        keys = [self._key(r) for r in rows]
        return await asyncio.gather(*(self._one(v, k) for v, k in zip(vectors, keys, strict=True)))

    async def predict_one(self, row: Any, *, loc: str = "input") -> Answer:
        return await self._one(self.parser.parse(row, loc), self._key(row))

    def _key(self, row: Any) -> str | None:
        """The split key of a raw row, when the deployment splits traffic by one."""
        key = self.deployment.split_key
        if key is None or not isinstance(row, dict) or row.get(key) is None:
            return None
        return str(row[key])

    async def _one(self, features: list[float], key: str | None = None) -> Answer:
        if not self.roles.api:
            raise RuntimeError(f"this process does not serve requests for '{self.name}'")
        await self.admission.admit()
        request = Request(
            f"{self.instance}-{self.name}-{next(self._ids)}",  # unique across deployments
            self.name,
            features,
            time.time(),
            self.reply_to,
        )
        split = self.router.assign(key or request.id) if self.router else None
        future = self.collector.open(request.id, split=split)
        answer: Answer | None = None
        try:
            try:
                if isinstance(self.bus, MemoryBus):
                    await self.bus.publish(request)  # never blocks
                    if self.model_process is not None:
                        self.model_process.submit(request)
                else:
                    # not awaited: a failure reported later answers at once, like one
                    # raised now; a stalled broker holds nothing past the deadline
                    self.bus.publish_nowait(request, partial(self._undeliverable, request.id))
            except BusError as exc:
                self._undeliverable(request.id, exc)  # answers at once
            answer = await future
        finally:
            if answer is None:  # the caller went away: the request was still accepted
                self.collector.close(request.id)
                self._archive(request, None)
        self._archive(request, answer)
        return answer

    def _undeliverable(self, request_id: str, exc: BusError) -> None:
        """An accepted request the bus cannot carry: the schedule's last resort answers at
        once, unless the request was answered meanwhile (by its deadline, say)."""
        self.metrics.bus_errors.labels(self.name).inc()
        if self.collector.is_open(request_id):
            self.collector.abandon(request_id, f"bus unavailable: {exc}")

    def _archive(self, request: Request, answer: Answer | None) -> None:
        if answer is None:
            record = RequestRecord(
                request.id, self.name, request.received_at, request.features,
                None, None, "cancelled",
            )  # fmt: skip
            self._outcomes["cancelled"].inc()
        else:
            record = RequestRecord(
                request.id, self.name, request.received_at, request.features,
                answer.model, answer.version, answer.reason, answer.prediction,
                answer.latency_ms,
            )  # fmt: skip
            reason = answer.reason
            if reason == "champion":
                self._outcomes["champion"].inc()
            elif reason.startswith("split:"):
                self._outcomes["split"].inc()
            elif answer.model is not None:
                self._outcomes["fallback"].inc()
                self._fallbacks[answer.model].inc()
            else:
                self._outcomes[reason].inc()
            self._latency.observe(answer.latency_ms / 1000.0)
        self.archive.put_request(record)

    # -- introspection --------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        dep = self.deployment
        return {
            "name": dep.name,
            "features": dep.input_schema.names,
            "deadline_ms": dep.deadline_ms,
            "champion": self.champion_name,
            "schedule": [
                {"model": s.model, "wait_ms": s.wait_s * 1000 if s.wait_s else None}
                for s in self.collector.schedule
            ],
            "default": dep.default,
            "models": [self._describe_model(cfg) for cfg in dep.models],
        }

    def _describe_model(self, cfg: ModelConfig) -> dict[str, Any]:
        out: dict[str, Any] = {"name": cfg.name, "kind": cfg.kind.value, "role": self.role(cfg)}
        model = self.current_model(cfg.name)
        if model is not None:
            out["version"] = model.version
            out["classes"] = list(model.info.classes) if model.info.classes else None
        out["queue"] = self.bus.backlog(self.name, cfg.name)
        return out

    def current_model(self, name: str) -> AnyModel | None:
        return self.models.get(name)

    def swap(self, name: str, model: AnyModel) -> None:
        """Serve ``model`` as ``name`` from the next batch on, in every replica here."""
        if name not in self.models:
            raise NotFound(f"deployment '{self.name}' has no model '{name}'")
        self.models[name] = model
        process = self.model_process
        if process is not None and name in process.assigned and isinstance(model, Model):
            self._in_background(process.install(name, model))
            return
        for executor in self.replicas:
            if isinstance(executor, ModelExecutor) and executor.name == name:
                executor.swap(model)

    def role(self, cfg: ModelConfig) -> str:
        """The role a model plays now: promotions move the champion's role."""
        if cfg.name == self.champion_name:
            return Role.CHAMPION.value
        if cfg.role is Role.CHAMPION:
            return Role.CHALLENGER.value  # a demoted champion stays on as a fallback
        return cfg.role.value

    @property
    def champion_name(self) -> str:
        return self.collector.champion

    @property
    def champion(self) -> AnyModel:
        model = self.current_model(self.champion_name)
        assert model is not None
        return model

    def set_champion(self, model: str) -> str:
        """Make ``model`` the champion here and now; returns the previous champion.

        Only a model that may answer (the champion or a challenger) can be promoted.
        """
        cfg = next((m for m in self.deployment.models if m.name == model), None)
        if cfg is None:
            raise NotFound(f"deployment '{self.name}' has no model '{model}'")
        if cfg.role not in (Role.CHAMPION, Role.CHALLENGER):
            raise InputError(
                f"'{model}' is a {cfg.role.value}; only a challenger can be promoted", "model"
            )
        previous = self.champion_name
        self.collector.set_champion(model)
        process = self.model_process
        if process is not None and model in process.assigned:
            self._move_in(model)  # the champion computes at full priority, here
        return previous


_OUTCOMES = ("champion", "split", "fallback", "default", "error", "cancelled")
