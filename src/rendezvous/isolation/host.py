"""The serving process's side of the model process: start it, feed it, restart it.

The serving process keeps every model loaded (it describes them, and may need to compute
one itself after a promotion), but the models in :attr:`ModelProcess.assigned` compute in
the child. The request path hands each request over with :meth:`ModelProcess.submit`: an
append to a list, flushed as one ``Work`` frame a few milliseconds later. Scores come back
on the pipe and go to the collector; when the archive is a database the child has archived
them already. Nothing on the champion's path waits for the child.

Nothing accepted is lost silently: every request handed over is tracked until each of its
models has scored it. A child that dies turns what it had into error scores and is started
again (with every model installed again) at most once a second; a child that falls behind
makes the oldest requests waiting for it error scores (``dropped: …``), as a full queue does
in the serving process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable, Sequence

from ..config import Deployment
from ..messages import Request, Score
from ..metrics import Metrics
from ..models.base import Model
from .child import ENV_PATH, ENV_PRIORITY
from .frames import (
    Archived,
    Init,
    Install,
    Installed,
    ModelSpec,
    Ready,
    Remove,
    Scores,
    Status,
    ToChild,
    Work,
    decoder_to_parent,
    encode,
    header,
)

__all__ = ["ModelProcess"]

log = logging.getLogger("rendezvous.isolation")

ScoreSink = Callable[[Sequence[Score]], None]

# A crashing child is started again at most this often: a model that kills its process on
# every batch costs error scores, not a fork storm.
RESTART_INTERVAL_S = 1.0
START_TIMEOUT_S = 60.0
# Past this much unread in the pipe the child is behind: requests wait here instead, and
# past a model's queue size the oldest of them become dropped-work error scores.
MAX_UNREAD_BYTES = 4 * 2**20
RETRY_S = 0.02


class _Pending:
    __slots__ = ("models", "request")

    def __init__(self, request: Request, models: set[str]) -> None:
        self.request = request
        self.models = models  # the models that have not scored it yet


class ModelProcess:
    """One child process computing some models of one deployment at idle CPU priority."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        metrics: Metrics,
        deliver: ScoreSink,
        archive: ScoreSink,
        archive_in_child: bool,
        on_lost: Callable[[str, str], None],
        priority: str = "idle",
    ) -> None:
        self.deployment = deployment
        self.name = deployment.name
        self.metrics = metrics
        self.priority = priority
        self._deliver = deliver  # to the collector
        self._archive = archive  # the serving process's archive
        self.archive_in_child = archive_in_child
        self._on_lost = on_lost  # a model that cannot compute there any more, and why
        self.assigned: dict[str, Model] = {}
        self._names: tuple[str, ...] = ()
        self._blobs: dict[str, bytes] = {}
        self._pending: list[tuple[Request, tuple[str, ...]]] = []
        self._outstanding: dict[str, _Pending] = {}
        self._unarchived = 0  # scores the child sent and has not written to the archive yet
        self._installing: dict[str, list[asyncio.Future[str | None]]] = {}
        self._install_lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[Ready] | None = None
        self._restart: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._last_start = 0.0
        self.backlog: dict[str, int] = {}
        self.child_priority: str | None = None
        self.restarts = 0
        specs = {m.name: m for m in deployment.models}
        self._linger = 0.0
        self._specs = specs

    def __repr__(self) -> str:
        pid = self._proc.pid if self._proc is not None else None
        return f"<ModelProcess {self.name} pid={pid} models={list(self.assigned)}>"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and self._ready_ok

    @property
    def _ready_ok(self) -> bool:
        r = self._ready
        return r is not None and r.done() and not r.cancelled() and r.exception() is None

    @property
    def idle(self) -> bool:
        """Nothing waiting to be sent, nothing sent and not yet scored and archived."""
        return not self._pending and not self._outstanding and not self._unarchived

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, models: dict[str, Model]) -> list[str]:
        """Start the child with ``models``; returns those that compute there.

        A model that cannot be pickled, or that the child cannot load, is left out (with
        a warning): it computes in the serving process.
        """
        blobs: dict[str, bytes] = {}
        for name, model in models.items():
            try:
                blobs[name] = await asyncio.to_thread(pickle.dumps, model, 5)
            except Exception as exc:
                self._warn_local(name, f"it cannot be pickled ({type(exc).__name__}: {exc})")
        if not blobs:
            return []
        self._blobs = blobs
        self.assigned = {n: models[n] for n in blobs}
        # hand-overs wait for company as long as the least patient model there would
        self._linger = min(self._specs[n].linger_ms for n in blobs) / 1000.0
        await self._spawn()
        return list(self.assigned)

    def _warn_local(self, name: str, why: str) -> None:
        log.warning(
            "deployment '%s': model '%s' computes in the serving process: %s",
            self.name, name, why,
        )  # fmt: skip

    async def _spawn(self) -> None:
        self._last_start = time.monotonic()
        env = {**os.environ, ENV_PATH: json.dumps([p for p in sys.path if p])}
        env[ENV_PRIORITY] = self.priority
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rendezvous.isolation",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            limit=2**26,
        )  # fmt: skip
        self._proc = proc
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(proc), name=f"model-process:{self.name}")
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                hello = await asyncio.shield(self._ready)
                self.child_priority = hello.priority
                self._send(self._init())
                waits = [self._send_install(n, b) for n, b in self._blobs.items()]
                results = await asyncio.gather(*waits)
        except BaseException:
            await self._kill()
            raise
        for name, error in zip(list(self._blobs), results, strict=True):
            if error is not None:
                self._unassign(name)
                self._warn_local(name, f"the model process cannot load it ({error})")
        self._names = tuple(self.assigned)
        log.info("model process %d of '%s' computes %s at priority %s",
                 hello.pid, self.name, self._names, hello.priority)  # fmt: skip

    def _init(self) -> Init:
        dep = self.deployment
        specs = []
        for name in self._blobs:
            cfg = self._specs[name]
            specs.append(ModelSpec(name, cfg.batch.model_dump(), cfg.queue_size, cfg.linger_ms))
        base = str(dep.base_dir) if dep.base_dir is not None else None
        archive = dep.archive if self.archive_in_child else None
        return Init(dep.name, archive, base, dep.archive_buffer, specs)

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is pending, let the child drain and flush, then wait for it to exit."""
        self._flush()
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
        proc = self._proc
        if proc is not None:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                log.warning("%r did not stop within %.1fs; killing it", self, timeout)
                await self._kill()
            if self._reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
        self._fail_all("ModelError: the serving process stopped before this was computed")
        self._proc = None

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    # -- the request path -------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        """Hand ``request`` to every model computing in the child. Never blocks."""
        names = self._names
        if not names:
            return
        pending = self._pending
        pending.append((request, names))
        if len(pending) >= 64:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending = self._pending
        if not pending:
            return
        if not self.running:
            self._pending = []
            why = "ModelError: the model process is not running (it is being restarted)"
            self._fail(pending, why)
            return
        stdin = self._proc.stdin if self._proc is not None else None
        assert stdin is not None
        if stdin.transport.get_write_buffer_size() > MAX_UNREAD_BYTES:
            self._shed()
            self._timer = asyncio.get_running_loop().call_later(RETRY_S, self._flush)
            return
        self._pending = []
        outstanding = self._outstanding
        for request, names in pending:
            outstanding[request.id] = _Pending(request, set(names))
        stdin.write(encode(Work([r for r, _ in pending])))

    def _shed(self) -> None:
        """The child is behind: the oldest requests past the queue size become drops."""
        capacity = max(self._specs[n].queue_size for n in self._names) if self._names else 0
        over = len(self._pending) - capacity
        if over > 0:
            dropped, self._pending = self._pending[:over], self._pending[over:]
            for name in {n for _, names in dropped for n in names}:
                self.metrics.dropped.labels(self.name, name).inc(over)
            self._fail(dropped, "dropped: model queue full (the model process is behind)")

    # -- models -----------------------------------------------------------------------------

    async def install(self, name: str, model: Model) -> None:
        """Compute ``name`` with ``model`` (a new version) in the child from now on."""
        async with self._install_lock:  # versions reach the child in the order they came
            if name not in self.assigned:
                return
            try:
                blob = await asyncio.to_thread(pickle.dumps, model, 5)
            except Exception as exc:
                self._lose(name, f"its new version cannot be pickled ({exc})")
                return
            self._blobs[name] = blob
            self.assigned[name] = model
            if not self.running:
                return  # the restart installs the newest blob
            error = await self._send_install(name, blob)
            if error is not None:
                self._lose(name, f"the model process cannot load its new version ({error})")

    def remove(self, name: str) -> None:
        """Stop computing ``name`` in the child; requests handed over until now still are."""
        if name not in self.assigned:
            return
        self._flush()
        self._unassign(name)
        if self.running:
            self._send(Remove(name))

    def _unassign(self, name: str) -> None:
        self.assigned.pop(name, None)
        self._blobs.pop(name, None)
        self._names = tuple(self.assigned)

    def _lose(self, name: str, why: str) -> None:
        self.remove(name)
        self._on_lost(name, why)

    def _send_install(self, name: str, blob: bytes) -> asyncio.Future[str | None]:
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._installing.setdefault(name, []).append(future)
        self._send(Install(name, blob))
        return future

    def _send(self, frame: ToChild) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.write(encode(frame))

    # -- what comes back ----------------------------------------------------------------------

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None and self._ready is not None
        stdout, ready = proc.stdout, self._ready
        decoder = decoder_to_parent()
        try:
            while True:
                head = await stdout.readexactly(4)
                frame = decoder.decode(await stdout.readexactly(header(head)))
                if isinstance(frame, Scores):
                    self._scored(frame.scores)
                elif isinstance(frame, Archived):
                    self._unarchived -= frame.count
                elif isinstance(frame, Status):
                    self.backlog = frame.backlog
                elif isinstance(frame, Installed):
                    waiting = self._installing.get(frame.model)
                    if waiting:
                        waiting.pop(0).set_result(frame.error)
                elif not ready.done():
                    ready.set_result(frame)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        code = await proc.wait()
        self._unarchived = 0  # what the child had not written is lost with it (logged below)
        if not ready.done():
            ready.set_exception(RuntimeError(f"the model process exited with code {code}"))
        for waiting in self._installing.values():
            for future in waiting:
                if not future.done():
                    future.set_result(f"the model process exited with code {code}")
        self._installing.clear()
        if self._closing:
            return
        log.error("model process %d of '%s' exited with code %s", proc.pid, self.name, code)
        self._fail_all(f"ModelError: the model process exited (code {code}) before computing this")
        self._restart = asyncio.create_task(self._restart_later())

    def _scored(self, scores: list[Score]) -> None:
        outstanding = self._outstanding
        for score in scores:
            entry = outstanding.get(score.request_id)
            if entry is not None:
                entry.models.discard(score.model)
                if not entry.models:
                    del outstanding[score.request_id]
        self._observe(scores)
        self._deliver(scores)
        if self.archive_in_child:
            self._unarchived += len(scores)
        else:
            self._archive(scores)

    def _observe(self, scores: list[Score]) -> None:
        """The executor metrics the child cannot export: one batch of one model."""
        first = scores[0]
        dep, name = self.name, first.model
        m = self.metrics
        errors = sum(1 for s in scores if s.error is not None)
        if first.error is not None and first.error.startswith("dropped:"):
            m.dropped.labels(dep, name).inc(len(scores))
            return
        m.batch_size.labels(dep, name).observe(first.batch_size)
        m.score_latency.labels(dep, name).observe(first.latency_ms / 1000.0)
        if errors:
            m.model_errors.labels(dep, name).inc(errors)

    def _fail(self, items: Sequence[tuple[Request, tuple[str, ...]]], why: str) -> None:
        now = time.time()
        scores = [
            self._error(request, name, why, now) for request, names in items for name in names
        ]
        self._publish_errors(scores)

    def _fail_all(self, why: str) -> None:
        """Error scores for everything the child had and did not score."""
        outstanding, self._outstanding = self._outstanding, {}
        now = time.time()
        scores = [
            self._error(p.request, name, why, now)
            for p in outstanding.values()
            for name in sorted(p.models)
        ]
        self._publish_errors(scores)

    def _publish_errors(self, scores: list[Score]) -> None:
        if not scores:
            return
        for score in scores:
            if not score.error or not score.error.startswith("dropped:"):
                self.metrics.model_errors.labels(self.name, score.model).inc()
        self._deliver(scores)
        self._archive(scores)  # the child did not see these: the serving process archives

    def _error(self, request: Request, model: str, why: str, now: float) -> Score:
        obj = self.assigned.get(model)
        version = obj.version if obj is not None else ""
        return Score(
            request.id, self.name, model, version, None, None, why, 0.0,
            (now - request.received_at) * 1000.0, 1, request.reply_to, now,
        )  # fmt: skip

    async def _restart_later(self) -> None:
        wait = self._last_start + RESTART_INTERVAL_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._closing or not self.assigned:
            return
        self.restarts += 1
        try:
            await self._spawn()
        except Exception as exc:
            log.error("model process of '%s' could not restart: %s", self.name, exc)
            self._restart = asyncio.create_task(self._restart_later())
