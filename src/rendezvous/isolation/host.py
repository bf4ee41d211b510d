"""The serving process's side of the model process: start it, feed it, restart it.

The serving process keeps every model loaded (it describes them, and computes one itself
after a promotion), but the models in :attr:`ModelProcess.assigned` compute in the child.
The request path hands each request over with :meth:`ModelProcess.submit`: an append to a
list, sent as one ``Work`` frame when the hand-over window closes. Scores come back on the
pipe and go to the collector; when the archive is a database the child has archived them.
Nothing on the champion's path waits for the child.

Nothing accepted is lost silently: every request handed over is tracked until each of its
models has scored it and the score is archived. A child that dies turns what it had into
error scores and is started again (every model installed again) at most once a second; a
child that falls behind turns the oldest requests waiting for it into dropped-work error
scores, as a full queue does in the serving process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec

from ..config import Deployment
from ..messages import Request, Score
from ..metrics import Metrics
from ..models.base import Model
from .child import ENV_PATH, ENV_PRIORITY
from .frames import (
    Archived,
    Call,
    Init,
    Install,
    Installed,
    ModelSpec,
    Ready,
    Remove,
    Scores,
    Status,
    ToParent,
    WorkOut,
    decode_scores,
    encoded,
)
from .pipe import ChildPipe

__all__ = ["HANDOVER_MS", "ModelProcess"]

log = logging.getLogger("rendezvous.isolation")

ScoreSink = Callable[[Sequence[Score]], None]
_T = TypeVar("_T")

# How long requests gather before they go to the child, unless a model's batch.linger_ms
# says otherwise: fewer, larger hand-overs wake the child (and evict the serving process's
# caches) less often, its models compute in larger batches, and fewer Scores frames
# interrupt the serving loop. On a small VM every wake-up of a process costs far more CPU
# than the work it does (benchmarks/model_process.py: the same models cost 21 µs a
# request handed over every 10 ms, 11 µs every 50 ms).
HANDOVER_MS = 50.0
# A request the collector still waits for may need a shadow's score before its deadline (a
# champion slow without failing): the window is checked this many times per deadline, and
# a request still waited for one check after it came goes at once, by a quarter of the
# deadline at the latest, whatever the window.
CHECKS_PER_DEADLINE = 8
CLOCK_SLACK_S = 0.001  # uvloop's timers and clock move in whole milliseconds
MAX_HANDOVER = 256  # requests in one Work frame
# A crashing child is started again at most this often: a model that kills its process on
# every batch costs error scores, not a fork storm.
RESTART_INTERVAL_S = 1.0
START_TIMEOUT_S = 60.0
# Past this much unread in the pipe the child is behind: requests wait here instead, and
# past a model's queue size the oldest of them become dropped-work error scores.
MAX_UNREAD_BYTES = 4 * 2**20
RETRY_S = 0.02
_THREAD_POOLS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


async def _unless_exit(pipe: ChildPipe, future: asyncio.Future[_T]) -> _T:
    """``future``'s result, or an error if the child exits first (while it starts)."""
    exited: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(pipe.exited))
    try:
        await asyncio.wait([future, exited], return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if not future.done():
        future.cancel()
        future.add_done_callback(_retrieve)
        raise RuntimeError(f"the model process exited with code {pipe.exited.result()}")
    return future.result()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # seen: not "never retrieved"


class ModelProcess:
    """One child process computing some models of one deployment at idle CPU priority."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        metrics: Metrics,
        deliver: ScoreSink,
        wanted: Callable[[Iterable[str]], bool],
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
        self._wanted = wanted  # whether the collector still waits for any of these requests
        self._archive = archive  # the serving process's archive
        self.archive_in_child = archive_in_child
        self._on_lost = on_lost  # a model that cannot compute there any more, and why
        self._specs = {m.name: m for m in deployment.models}
        self.assigned: dict[str, Model] = {}
        self._versions: dict[str, str] = {}  # of every model ever here, for error scores
        self._blobs: dict[str, bytes] = {}
        # Per request, a bit per model still to score it: ints and gc-free structs, so the
        # bookkeeping of thousands of requests in flight gives the garbage collector nothing
        # to walk on the serving process's loop.
        self._bit: dict[str, int] = {}
        self._mask = 0
        self._pending: list[tuple[msgspec.Raw, Request, int]] = []  # encoded, request, mask
        self._waiting_for: dict[str, int] = {}
        self._requests: dict[str, Request] = {}
        # scores the child sent and has not written yet, oldest first, as the bytes that
        # came (count still unwritten, msgpack of the scores): archived here if it dies
        self._unarchived: deque[list[Any]] = deque()
        self._installing: dict[str, list[asyncio.Future[str | None]]] = {}
        self._install_lock = asyncio.Lock()
        self._pipe: ChildPipe | None = None
        self._ready: asyncio.Future[Ready] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._linger = 0.0  # the hand-over window
        self._check_every = 0.0
        self._set_window(HANDOVER_MS)
        self._window_end = 0.0  # loop time
        # _pending[_checked:_aged] were pending at the last check and are not yet known to
        # be answered: the next check asks the collector about them
        self._checked = 0
        self._aged = 0
        self._up = False  # set once a started child has Init and its models: work may go
        self._closing = False
        self._last_start = 0.0
        self.backlog: dict[str, int] = {}
        self.child_priority: str | None = None
        self.restarts = 0

    def __repr__(self) -> str:
        pid = self._pipe.pid if self._pipe is not None else None
        return f"<ModelProcess {self.name} pid={pid} models={list(self.assigned)}>"

    @property
    def pid(self) -> int | None:
        """The child's process id, while there is one."""
        return self._pipe.pid if self._pipe is not None else None

    @property
    def running(self) -> bool:
        """The child is up, has its models, and takes work."""
        return self._up and self._pipe is not None and self._pipe.alive

    @property
    def idle(self) -> bool:
        """Nothing waiting to be sent, nothing sent and not yet scored and archived."""
        return not self._pending and not self._waiting_for and not self._unarchived

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, models: dict[str, Model]) -> list[str]:
        """Start the child with ``models``; returns those that compute there.

        A model that cannot be pickled, or that the child cannot load, is left out (with
        a warning): it computes in the serving process.
        """
        for name, model in models.items():
            try:
                self._blobs[name] = await asyncio.to_thread(pickle.dumps, model, 5)
                self.assigned[name] = model
                self._versions[name] = model.version
            except Exception as exc:
                self._warn_local(name, f"it cannot be pickled ({type(exc).__name__}: {exc})")
        if not self.assigned:
            return []
        self._bit = {name: 1 << i for i, name in enumerate(self.assigned)}
        lingers = [self._specs[n].batch.linger_ms for n in self.assigned]
        if any(v is not None for v in lingers):
            self._set_window(min(v for v in lingers if v is not None))
        await self._spawn()
        return list(self.assigned)

    def _set_window(self, ms: float) -> None:
        self._linger = ms / 1000.0
        deadline_s = self.deployment.deadline_ms / 1000.0
        self._check_every = min(self._linger, deadline_s / CHECKS_PER_DEADLINE)

    def _warn_local(self, name: str, why: str) -> None:
        log.warning(
            "deployment '%s': model '%s' computes in the serving process: %s",
            self.name, name, why,
        )  # fmt: skip

    async def _spawn(self) -> None:
        self._last_start = time.monotonic()
        env = {**os.environ, ENV_PATH: json.dumps([p for p in sys.path if p])}
        env[ENV_PRIORITY] = self.priority
        # Numerical libraries start their thread pools on import, before the child can lower
        # its priority (threads keep the priority they were born with): one thread each, so
        # every thread of the child is born after the priority is lowered.
        env.update(dict.fromkeys(_THREAD_POOLS, "1"))
        self._ready = asyncio.get_running_loop().create_future()
        pipe = self._pipe = await ChildPipe.spawn(self._on_frame, env)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                hello = await _unless_exit(pipe, self._ready)
                pipe.send(self._init())
                names = list(self._blobs)
                installs = asyncio.gather(*(self._install(n, self._blobs[n]) for n in names))
                errors = await _unless_exit(pipe, installs)
        except BaseException:
            pipe.kill()
            raise
        self._watch = asyncio.create_task(self._watch_exit(pipe), name=f"model-process:{self.name}")
        for name, error in zip(names, errors, strict=True):
            if error is not None:
                self._unassign(name)
                self._warn_local(name, f"the model process cannot load it ({error})")
        self._assigned_changed()
        self._up = True
        self.child_priority = hello.priority
        log.info("model process %d of '%s' computes %s at priority %s",
                 hello.pid, self.name, list(self.assigned), hello.priority)  # fmt: skip

    def _init(self) -> Init:
        dep = self.deployment
        specs = []
        for name in self._blobs:
            cfg = self._specs[name]
            specs.append(ModelSpec(name, cfg.batch.model_dump(), cfg.queue_size, cfg.inline))
        base = str(dep.base_dir) if dep.base_dir is not None else None
        archive = dep.archive if self.archive_in_child else None
        return Init(dep.name, archive, base, dep.archive_buffer, specs)

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is pending, let the child drain and flush, then wait for it to exit."""
        self._flush()
        self._closing = True
        if self._watch is not None:
            self._watch.cancel()
        pipe = self._pipe
        if pipe is not None:
            pipe.close()
            try:
                await asyncio.wait_for(asyncio.shield(pipe.exited), timeout)
            except TimeoutError:
                log.warning("%r did not stop within %.1fs; killing it", self, timeout)
                pipe.kill()
                await pipe.exited
            pipe.dispose()
        self._archive_unwritten()  # killed before it wrote them: written here instead
        self._fail_all("ModelError: the serving process stopped before this was computed")
        self._pipe = None

    # -- the request path -------------------------------------------------------------------

    def submit(self, request: Request) -> None:
        """Hand ``request`` to every model computing in the child. Never blocks."""
        mask = self._mask
        if not mask:
            return
        pending = self._pending
        pending.append((encoded(request), request, mask))
        if len(pending) >= MAX_HANDOVER:
            self._flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._window_end = loop.time() + self._linger
            self._timer = loop.call_later(self._check_every, self._check)

    def hand_over(self) -> None:
        """Send what is waiting now instead of when the hand-over window closes."""
        self._flush()

    def _check(self) -> None:
        """Hand over when the window closes, or sooner if a request is still waited for."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        pending = self._pending
        # requests answered by the champion (nearly all) are no longer waited for; one still
        # waited for a whole check interval after it came may need a fallback's score
        if now + CLOCK_SLACK_S >= self._window_end or self._wanted(
            [request.id for _, request, _ in pending[self._checked : self._aged]]
        ):
            self._flush()
            return
        self._checked, self._aged = self._aged, len(pending)
        self._timer = loop.call_at(min(now + self._check_every, self._window_end), self._check)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._checked = self._aged = 0
        pending = self._pending
        if not pending:
            return
        pipe = self._pipe
        if pipe is None or not self.running:
            self._pending = []
            self._fail(
                [(r, m) for _, r, m in pending],
                "ModelError: the model process is not running (restarting)",
            )
            return
        if pipe.unread > MAX_UNREAD_BYTES:
            # a request still waited for among the shed hands over at once, re-entering
            # here, and may have set the retry already
            self._shed()
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(RETRY_S, self._flush)
            return
        self._pending = []
        waiting_for, requests = self._waiting_for, self._requests
        for _, request, mask in pending:
            waiting_for[request.id] = mask
            requests[request.id] = request
        pipe.send(WorkOut([raw for raw, _, _ in pending]))

    def _shed(self) -> None:
        """The child is behind: the oldest requests past the queue size become drops."""
        capacity = max((self._specs[n].queue_size for n in self.assigned), default=0)
        over = len(self._pending) - capacity
        if over > 0:
            dropped, self._pending = self._pending[:over], self._pending[over:]
            self._fail(
                [(r, m) for _, r, m in dropped],
                "dropped: model queue full (the model process is behind)",
            )

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
            self._versions[name] = model.version
            if not self.running:
                return  # the restart installs the newest blob
            error = await self._install(name, blob)
            if error is not None:
                self._lose(name, f"the model process cannot load its new version ({error})")

    def remove(self, name: str) -> None:
        """Stop computing ``name`` in the child; requests handed over until now still are."""
        if name not in self.assigned:
            return
        self._flush()
        self._unassign(name)
        if self._pipe is not None and self.running:
            self._pipe.send(Remove(name))

    def _unassign(self, name: str) -> None:
        self.assigned.pop(name, None)
        self._blobs.pop(name, None)
        self._assigned_changed()

    def _assigned_changed(self) -> None:
        self._mask = sum(self._bit[n] for n in self.assigned)

    def _models_of(self, mask: int) -> list[str]:
        return [name for name, bit in self._bit.items() if mask & bit]

    def _lose(self, name: str, why: str) -> None:
        # The child keeps computing the version it has until the serving process has joined
        # the bus for this model and calls remove(): no request falls between the two.
        self._on_lost(name, why)

    def _install(self, name: str, blob: bytes) -> asyncio.Future[str | None]:
        """Send a model; the future says why the child could not load it, or None."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._installing.setdefault(name, []).append(future)
        assert self._pipe is not None
        self._pipe.send(Install(name, blob))
        return future

    # -- what comes back ----------------------------------------------------------------------

    def _on_frame(self, frame: ToParent) -> None:
        if isinstance(frame, Scores):
            self._scored(frame)
        elif isinstance(frame, Archived):
            self._written(frame.count)
        elif isinstance(frame, Status):
            self.backlog = frame.backlog
        elif isinstance(frame, Installed):
            waiting = self._installing.get(frame.model)
            if waiting:
                future = waiting.pop(0)
                if not future.done():  # cancelled when the start it belonged to failed
                    future.set_result(frame.error)
        elif self._ready is not None and not self._ready.done():
            self._ready.set_result(frame)

    def _scored(self, frame: Scores) -> None:
        # per call, not per score, wherever it can: this runs on the loop that answers users
        waiting_for, requests, wanted = self._waiting_for, self._requests, self._wanted
        needed = False
        count = 0
        for call in frame.calls:
            clear = ~self._bit.get(call.model, 0)
            for rid in call.request_ids:
                mask = waiting_for.get(rid)
                if mask is not None:
                    mask &= clear
                    if mask:
                        waiting_for[rid] = mask
                    else:
                        del waiting_for[rid]
                        del requests[rid]
            count += len(call.request_ids)
            needed = needed or wanted(call.request_ids)
            self._count(call)
        if self.archive_in_child:
            self._unarchived.append([count, frame.blob])
            if needed:  # a fallback may wait for one of these: the collector sees them all
                self._deliver(decode_scores(frame.blob))
        else:
            scores = decode_scores(frame.blob)
            self._deliver(scores)
            self._archive(scores)

    def _written(self, count: int) -> None:
        unarchived = self._unarchived
        while count > 0 and unarchived:
            head = unarchived[0]
            if head[0] > count:
                head[0] -= count
                return
            count -= head[0]
            unarchived.popleft()

    def _archive_unwritten(self) -> None:
        # Whole frames, even one the child wrote in part: written twice at worst, never lost.
        for _, blob in self._unarchived:
            self._archive(decode_scores(blob))
        self._unarchived.clear()

    def _count(self, call: Call) -> None:
        """The executor metrics the child cannot export, from one of its calls."""
        m, dep, model = self.metrics, self.name, call.model
        if call.dropped:
            m.dropped.labels(dep, model).inc(call.dropped)
        if call.errors:
            m.model_errors.labels(dep, model).inc(call.errors)
        if call.dropped < len(call.request_ids):  # the model computed: a call, not drops
            m.batch_size.labels(dep, model).observe(call.batch_size)
            m.score_latency.labels(dep, model).observe(call.latency_ms / 1000.0)

    async def _watch_exit(self, pipe: ChildPipe) -> None:
        code = await asyncio.shield(pipe.exited)  # stop() cancels this task, not the pipe
        self._up = False
        pipe.dispose()
        self._archive_unwritten()  # scored, maybe not written: archived here
        for waiting in self._installing.values():
            for future in waiting:
                if not future.done():
                    future.set_result(f"the model process exited with code {code}")
        self._installing.clear()
        if self._closing:
            return
        log.error("model process %s of '%s' exited with code %s", pipe.pid, self.name, code)
        self._fail_all(f"ModelError: the model process exited (code {code}) before computing this")
        wait = self._last_start + RESTART_INTERVAL_S - time.monotonic()
        while not self._closing and self.assigned:
            await asyncio.sleep(max(wait, 0.0))
            self.restarts += 1
            try:
                await self._spawn()
                return
            except Exception as exc:
                log.error("model process of '%s' could not restart: %s", self.name, exc)
                wait = RESTART_INTERVAL_S

    # -- error scores the serving process writes itself --------------------------------------

    def _fail(self, items: Sequence[tuple[Request, int]], why: str) -> None:
        now = time.time()
        self._publish_errors(
            [
                self._error(request, name, why, now)
                for request, mask in items
                for name in self._models_of(mask)
            ]
        )

    def _fail_all(self, why: str) -> None:
        """Error scores for everything the child had and did not score."""
        waiting_for, self._waiting_for = self._waiting_for, {}
        requests, self._requests = self._requests, {}
        self._fail([(requests[rid], mask) for rid, mask in waiting_for.items()], why)

    def _publish_errors(self, scores: list[Score]) -> None:
        if not scores:
            return
        # Per model, not per score: when the child falls behind, thousands of requests a
        # second are shed here, on the loop that answers users.
        dropped: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        for s in scores:
            if s.error is not None and s.error.startswith("dropped:"):
                dropped[s.model] += 1
            else:
                failed[s.model] += 1
        m, dep = self.metrics, self.name
        for model, n in dropped.items():
            m.dropped.labels(dep, model).inc(n)
        for model, n in failed.items():
            m.model_errors.labels(dep, model).inc(n)
        # only a request still waited for needs its error score now (for a fallback): shed
        # work was answered long ago, nearly always
        if self._wanted([s.request_id for s in scores]):
            self._deliver(scores)
        self._archive(scores)  # the child never saw these: the serving process archives them

    def _error(self, request: Request, model: str, why: str, now: float) -> Score:
        return Score(
            request.id, self.name, model, self._versions[model], None, None, why, 0.0,
            (now - request.received_at) * 1000.0, 1, request.reply_to, now,
        )  # fmt: skip
