"""Serving side of continuous learning: every process serves each learning model's champion.

A :class:`VersionFollower` runs in each serving process (API or worker) of a deployment
that has learning models. It watches the registry directory, shared on one host or over a
shared filesystem, so worker processes on a Redis bus follow the same versions without a
broker. When a model's ``champion`` alias moves (a learner published, a guard or a person
rolled back), it loads that version on a thread, off the event loop, and then swaps it into
every executor of the process in one step on the loop (``DeploymentRuntime.swap``): a
batch computes with the old model or the new one, and each score carries the version of
the very object that computed it.

Only the latest champion is loaded: versions published faster than they load are skipped,
never served out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from ..config import ModelConfig
from ..errors import NotFound
from ..registry import CHAMPION, FileRegistry, Watcher, load_version
from ..registry.notifications import Event
from ..runtime import DeploymentRuntime

__all__ = ["VersionFollower", "follow_registry"]

log = logging.getLogger("rendezvous.learning")

RETRY_S = 1.0  # after a failed load, try again this much later (no registry event may come)


class VersionFollower:
    """Keeps ``models`` of ``runtime`` on their champion version in ``registry``.

    ``interval`` is how often the registry directory is looked at (a ``stat`` per model).
    ``start()`` serves the current champions before returning; :meth:`sync` does one pass
    by hand (tests call it to follow deterministically).
    """

    def __init__(
        self,
        runtime: DeploymentRuntime,
        registry: FileRegistry,
        models: Sequence[ModelConfig],
        *,
        interval: float = 0.2,
    ) -> None:
        self.runtime = runtime
        self.registry = registry
        self.models = list(models)
        self.interval = interval
        self._names = {m.name: f"{runtime.name}.{m.name}" for m in self.models}
        self.serving: dict[str, str] = {}  # model -> registry version it serves here
        self._watcher: Watcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.swaps = 0

    def __repr__(self) -> str:
        return f"<VersionFollower {self.runtime.name} {self.serving}>"

    async def start(self) -> None:
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        watcher = Watcher(self.registry, interval=self.interval, models=self._names.values())

        def changed(event: Event) -> None:  # on the watcher's thread
            if event.alias == CHAMPION:
                loop.call_soon_threadsafe(self._wake.set)

        watcher.subscribe(changed)
        try:
            await self.sync()  # after the watcher's baseline, so no move falls in between
        except Exception:  # serve the file's models rather than nothing; retried on a move
            log.exception("loading the champions of '%s' failed", self.runtime.name)
        watcher.start()
        self._watcher = watcher
        self._task = asyncio.create_task(self._run(), name=f"follow-{self.runtime.name}")

    async def stop(self) -> None:
        """Stop following; idempotent. The versions serving stay."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync()
            except Exception:  # a half-copied registry, a bad artifact: serve on, retry later
                log.exception("following the registry of '%s' failed", self.runtime.name)
                await asyncio.sleep(RETRY_S)
                self._wake.set()

    async def sync(self) -> list[tuple[str, str]]:
        """Swap in every champion not served yet; returns ``(model, version)`` swapped."""
        swapped: list[tuple[str, str]] = []
        async with self._lock:  # one pass at a time: swaps happen in champion order
            for cfg in self.models:
                name = self._names[cfg.name]
                try:
                    version = await asyncio.to_thread(self.registry.resolve, name, CHAMPION)
                except NotFound:
                    continue  # no version yet: the learner publishes the file's model first
                if self.serving.get(cfg.name) == version:
                    continue
                model = await asyncio.to_thread(
                    load_version, self.registry, name, version, cfg, self.runtime.deployment
                )
                self.runtime.swap(cfg.name, model)
                self.serving[cfg.name] = version
                self.swaps += 1
                swapped.append((cfg.name, version))
                log.info("%s: serving %s version %s", self.runtime.name, cfg.name, version)
        return swapped


async def follow_registry(runtime: DeploymentRuntime) -> VersionFollower | None:
    """A started follower for ``runtime``'s learning models (``None`` when it has none)."""
    dep = runtime.deployment
    models = [m for m in dep.models if m.learning is not None and m.computes]
    if not models:
        return None
    registry = FileRegistry(dep.resolve(dep.registry))
    follower = VersionFollower(runtime, registry, models)
    await follower.start()
    return follower
