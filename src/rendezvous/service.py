"""The service: every deployment of a process, sharing buses, archives and metrics.

This is the in-process API of the request path (no HTTP)::

    async with Rendezvous.from_files(["fraud.yaml"]) as rv:
        answer = await rv.get("fraud").predict_one({"amount": 120.0, ...})

The HTTP app wraps exactly this object.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from .archive import open_archive
from .archive.base import Archive
from .auto_promotion import PromotionWatcher
from .bus import open_bus
from .bus.base import Bus
from .config import Deployment, load_deployment
from .errors import ConfigError, NotFound, Problem
from .learning.follow import VersionFollower, follow_registry
from .messages import Score
from .metrics import Metrics
from .promotion import EventFollower
from .roles import Roles
from .runtime import DeploymentRuntime

__all__ = ["Rendezvous"]


class Rendezvous:
    """All deployments served by one process. ``async with`` it, or ``start()``/``stop()``."""

    def __init__(
        self,
        deployments: Sequence[Deployment],
        *,
        metrics: Metrics | None = None,
        instance: str | None = None,
        roles: Roles | None = None,
        follow_interval: float = 1.0,
    ) -> None:
        names = [d.name for d in deployments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError("deployments", [Problem("name", f"served twice: {dupes}")])
        if not deployments:
            raise ConfigError("deployments", [Problem("", "no deployment to serve")])
        self.roles = roles or Roles()
        if not self.roles.is_everything:
            local = sorted({d.name for d in deployments if d.bus == "memory"})
            if local:
                raise ConfigError(
                    "deployments",
                    [Problem("bus", f"{local}: a memory bus runs every part in one process; "
                             "use a redis:// bus to run parts in separate processes")],
                )  # fmt: skip
        self.deployments = list(deployments)
        self.metrics = metrics or Metrics()
        self.instance = instance or uuid.uuid4().hex[:12]
        self.buses: dict[str, Bus] = {}
        self.archives: dict[str, Archive] = {}
        self.runtimes: dict[str, DeploymentRuntime] = {}
        # API processes follow champion changes recorded by the others (and by the CLI)
        self.follow_interval = follow_interval
        self._loops: list[EventFollower | PromotionWatcher] = []
        # per deployment with learning models: serves the registry's champion versions
        self.followers: dict[str, VersionFollower] = {}
        # scores keep arriving while executors drain on stop: route them by deployment
        # to archives that outlive the runtimes
        self._archive_of: dict[str, Archive] = {}
        self._started = False

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], **kw: object) -> Rendezvous:
        return cls([load_deployment(p) for p in paths], **kw)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Rendezvous {list(self.runtimes) or [d.name for d in self.deployments]}>"

    async def __aenter__(self) -> Rendezvous:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ready(self) -> bool:
        return self._started and all(b.ready for b in self.buses.values())

    def _executors_here(self) -> int:
        """How many model executors a process with these roles runs, in a process that does
        nothing else (no API, no archive); 0 for any other process."""
        roles = self.roles
        if roles.api or roles.archiver:
            return 0
        runs = [m for d in self.deployments for m in d.models if m.computes and roles.runs(m.name)]
        return len(runs) * roles.replicas

    async def start(self) -> None:
        if self._started:
            return
        try:
            for dep in self.deployments:
                bus = self.buses.get(dep.bus)
                if bus is None:
                    bus = self.buses[dep.bus] = open_bus(dep.bus)
                    await bus.start()
                    if self.roles.archiver:
                        mine = [d.name for d in self.deployments if d.bus == dep.bus]
                        bus.subscribe(self._archive_scores, reply_to=None, deployments=mine)
                key = self._archive_key(dep)
                archive = self.archives.get(key)
                if archive is None:
                    archive = self.archives[key] = open_archive(
                        dep.archive, base_dir=dep.base_dir, max_buffer=dep.archive_buffer
                    )
                    await asyncio.to_thread(archive.start)
                self._archive_of[dep.name] = archive
                runtime = DeploymentRuntime(
                    dep,
                    bus=bus,
                    archive=archive,
                    metrics=self.metrics,
                    instance=self.instance,
                    roles=self.roles,
                    sole_executor=self._executors_here() == 1,
                )
                await runtime.start()
                self.runtimes[dep.name] = runtime
                follower = await follow_registry(runtime)
                if follower is not None:
                    self.followers[dep.name] = follower
                if self.roles.api:  # the champion matters where the collector runs
                    await self._follow(runtime)
        except BaseException:
            await self.stop()
            raise
        self._started = True

    async def stop(self, timeout: float = 10.0) -> None:
        """Drain executors, disconnect buses, flush archives. Idempotent."""
        loops, self._loops = self._loops, []
        await asyncio.gather(*(loop.stop() for loop in loops))
        followers, self.followers = list(self.followers.values()), {}
        await asyncio.gather(*(f.stop() for f in followers))
        runtimes = list(self.runtimes.values())
        self.runtimes.clear()
        self._started = False
        await asyncio.gather(*(r.stop(timeout) for r in runtimes))
        for bus in self.buses.values():
            await bus.stop()
        self.buses.clear()
        for archive in self.archives.values():
            await asyncio.to_thread(archive.stop, timeout)
        self.archives.clear()
        self._archive_of.clear()

    async def _follow(self, runtime: DeploymentRuntime) -> None:
        loops: list[EventFollower | PromotionWatcher] = [
            EventFollower(runtime, interval=self.follow_interval)
        ]
        if runtime.deployment.promotion is not None:
            loops.append(PromotionWatcher(runtime, runtime.deployment.promotion))
        for loop in loops:
            self._loops.append(loop)  # before start: stop() must see a half-started one
            await loop.start()

    def get(self, name: str) -> DeploymentRuntime:
        try:
            return self.runtimes[name]
        except KeyError:
            raise NotFound(
                f"unknown deployment '{name}'; serving {sorted(self.runtimes)}"
            ) from None

    def _archive_key(self, dep: Deployment) -> str:
        if dep.archive.startswith("sqlite:///") and not dep.archive.startswith("sqlite:////"):
            return f"{dep.archive}@{dep.base_dir}"  # relative paths differ per file's dir
        return dep.archive

    def _archive_scores(self, scores: Sequence[Score]) -> None:
        archive_of = self._archive_of
        first = scores[0].deployment
        if all(s.deployment == first for s in scores):
            archive = archive_of.get(first)
            if archive is not None:
                archive.put_scores(scores)
            return
        for s in scores:
            a = archive_of.get(s.deployment)
            if a is not None:
                a.put_scores([s])
