"""The model process: where a deployment's shadow models compute, at idle CPU priority.

Started by :class:`~rendezvous.isolation.host.ModelProcess` as ``python -m
rendezvous.isolation``. Frames come in on stdin, in order: ``Init``, then an ``Install``
per model, then ``Work`` (requests) and any later ``Install`` (a new version) or ``Remove``
(the model moved into the serving process). Each frame's requests go to every model's
:class:`~rendezvous.isolation.lanes.Lane`, which batches, bounds its queue and turns
failures into error scores as an executor does in the serving process, with no bus in
between: the shadows' work is CPU the champion's requests compete for, so it is done
batch-wise (one feature matrix per frame, one call per model per batch). Scores go back on
stdout; when the deployment's archive is a database, the child writes them there itself,
so archiving them costs the serving process nothing.

The priority is the point: under ``SCHED_IDLE`` the kernel runs this process only when no
normal process wants the CPU, so shadows use every idle cycle of the machine and still never
delay the champion's answer by more than a context switch. When the parent closes stdin the
lanes drain, the archive is flushed, and the process exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from ..archive import open_archive
from ..archive.base import Archive
from ..config import BatchConfig
from ..messages import Score
from ..metrics import Metrics
from ..models.base import Model
from ..priority import lower_priority
from ..runner import ModelRunner
from .frames import (
    Archived,
    Init,
    Install,
    Installed,
    ModelSpec,
    Ready,
    Remove,
    Status,
    ToParent,
    Work,
    decoder_to_child,
    encode,
    header,
    score_frame,
)
from .lanes import Frame, Lane

__all__ = ["ENV_PATH", "ENV_PRIORITY", "main"]

log = logging.getLogger("rendezvous.isolation.child")

ENV_PATH = "RENDEZVOUS_CHILD_PATH"  # the parent's sys.path, so pickles import the same code
ENV_PRIORITY = "RENDEZVOUS_CHILD_PRIORITY"
STATUS_INTERVAL_S = 0.5
# How often the child writes its scores out and tells the parent: the serving process
# counts a shadow's work as done only once it is in the archive. Only these flushes write
# (the archive's own writer thread is told to wait far longer), so every acknowledgement
# covers exactly what was written, and commits come in few, larger transactions.
ARCHIVE_INTERVAL_S = 0.2
_WRITER_IDLE_S = 3600.0


class ChildWorker:
    """The lanes of one deployment's isolated models, fed by the parent's frames."""

    def __init__(self, init: Init, send: Callable[[ToParent], None]) -> None:
        self.deployment = init.deployment
        self.specs = {m.name: m for m in init.models}
        self.send = send
        self.metrics = Metrics(CollectorRegistry())  # the parent reports from the scores
        self.archive: Archive | None = None
        if init.archive is not None:
            base = Path(init.base_dir) if init.base_dir else None
            self.archive = open_archive(
                init.archive,
                base_dir=base,
                max_buffer=init.archive_buffer,
                flush_interval=_WRITER_IDLE_S,
            )
        self.lanes: dict[str, Lane] = {}
        self._leaving: set[asyncio.Task[None]] = set()  # lanes of removed models, draining
        self._unflushed = 0  # scores sent to the parent and not yet known to be written
        self._outbox: list[Score] = []  # sent as one frame at the end of this loop turn
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.archive is not None:
            await asyncio.to_thread(self.archive.start)
            self._tasks.append(asyncio.create_task(self._flushing()))
        self._tasks.append(asyncio.create_task(self._report()))

    def _on_scores(self, scores: Sequence[Score]) -> None:
        if self.archive is not None:
            self.archive.put_scores(scores)
            self._unflushed += len(scores)
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._send_scores)
        self._outbox.extend(scores)

    def _send_scores(self) -> None:
        # one frame for every batch that finished this turn: one wake-up of the parent
        if self._outbox:
            self.send(score_frame(self._outbox))
            self._outbox = []

    async def _flushing(self) -> None:
        while True:
            await asyncio.sleep(ARCHIVE_INTERVAL_S)
            await self.flush()

    async def flush(self) -> None:
        """Write what was scored to the archive, and tell the parent how much."""
        count, self._unflushed = self._unflushed, 0
        if count and self.archive is not None:
            # everything buffered when flush() starts is written when it returns
            await asyncio.to_thread(self.archive.flush)
            self.send(Archived(count))

    async def _report(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            backlog = {n: lane.backlog for n, lane in self.lanes.items()}
            if backlog != last:
                self.send(Status(backlog))
                last = backlog

    async def install(self, frame: Install) -> None:
        try:
            model = await asyncio.to_thread(pickle.loads, frame.blob)
            if not isinstance(model, Model):
                raise TypeError(f"expected a Model, got {type(model).__name__}")
        except Exception as exc:
            self.send(Installed(frame.model, None, f"{type(exc).__name__}: {exc}"))
            return
        lane = self.lanes.get(frame.model)
        if lane is not None:
            lane.runner.swap(model)
        else:
            lane = self.lanes[frame.model] = self._lane(self.specs[frame.model], model)
            lane.start()
        self.send(Installed(frame.model, model.version))

    def _lane(self, spec: ModelSpec, model: Model) -> Lane:
        # nobody waits on this loop: unless told otherwise, fast models skip the hand-off
        runner = ModelRunner(self.deployment, model, metrics=self.metrics, inline=spec.inline)
        batch = BatchConfig.model_validate(spec.batch)
        return Lane(runner, batch=batch, capacity=spec.queue_size, emit=self._on_scores)

    def work(self, frame: Work) -> None:
        shared = Frame(frame.requests)
        for lane in self.lanes.values():
            lane.put(shared)

    def remove(self, frame: Remove) -> None:
        lane = self.lanes.pop(frame.model, None)
        if lane is not None:  # it computes what it has while the others go on
            task = asyncio.create_task(lane.stop())
            self._leaving.add(task)
            task.add_done_callback(self._leaving.discard)

    async def stop(self, timeout: float = 5.0) -> None:
        """Drain every lane, flush the archive."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*(lane.stop(timeout) for lane in self.lanes.values()))
        await asyncio.gather(*self._leaving)
        self._send_scores()
        if self.archive is not None:
            await self.flush()
            await asyncio.to_thread(self.archive.stop)


class _Sender:
    """Frames to the parent over a non-blocking pipe."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def __call__(self, frame: ToParent) -> None:
        self.transport.write(encode(frame))


async def _pipes() -> tuple[asyncio.StreamReader, _Sender]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    # Frames own the real stdout; a model that prints must not corrupt them.
    frames_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, frames_out)
    return reader, _Sender(transport)


async def serve(priority: str) -> None:
    reader, send = await _pipes()
    send(Ready(os.getpid(), priority))
    decoder = decoder_to_child()
    worker: ChildWorker | None = None
    try:
        while True:
            try:
                head = await reader.readexactly(4)
                frame = decoder.decode(await reader.readexactly(header(head)))
            except asyncio.IncompleteReadError:
                return  # the parent closed the pipe: drain and go
            if isinstance(frame, Work):
                assert worker is not None, "Work before Init"
                worker.work(frame)
            elif isinstance(frame, Install):
                assert worker is not None, "Install before Init"
                await worker.install(frame)
            elif isinstance(frame, Remove):
                assert worker is not None, "Remove before Init"
                worker.remove(frame)
            else:
                worker = ChildWorker(frame, send)
                await worker.start()
    finally:
        if worker is not None:
            await worker.stop()
        send.transport.close()


def main() -> None:
    got = lower_priority(os.environ.get(ENV_PRIORITY, "idle"))  # before any thread starts
    sys.path[:0] = [p for p in json.loads(os.environ.get(ENV_PATH, "[]")) if p not in sys.path]
    logging.basicConfig(level=logging.WARNING, format="model process: %(message)s")
    try:
        import uvloop

        uvloop.run(serve(got))
    except ImportError:  # uvloop is optional on some platforms
        asyncio.run(serve(got))
