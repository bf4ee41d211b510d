"""The model process: the executors of a deployment's shadow models, at idle CPU priority.

Started by :class:`~rendezvous.isolation.host.ModelProcess` as ``python -m
rendezvous.isolation``. Frames come in on stdin, in order: ``Init``, then an ``Install``
per model, then ``Work`` (requests) and any later ``Install`` (a new version) or ``Remove``
(the model moved into the serving process). Inside, it is a small rendezvous of its own: a
memory bus and one :class:`~rendezvous.executor.ModelExecutor` per model, so batching,
error scores and bounded queues that drop the oldest work behave exactly as in the serving
process. Scores go back on stdout; when the deployment's archive is a database, the child
writes them there itself, so archiving them costs the serving process nothing.

The priority is the point: under ``SCHED_IDLE`` the kernel runs this process only when no
normal process wants the CPU, so shadows use every idle cycle of the machine and still never
delay the champion's answer by more than a context switch. When the parent closes stdin the
executors drain, the archive is flushed, and the process exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from ..archive import open_archive
from ..archive.base import Archive
from ..bus.memory import MemoryBus
from ..config import BatchConfig
from ..executor import ModelExecutor
from ..messages import Score
from ..metrics import Metrics
from ..models.base import Model
from ..priority import lower_priority
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
    """The executors of one deployment's isolated models, fed by the parent's frames."""

    def __init__(self, init: Init, send: _Sender) -> None:
        self.deployment = init.deployment
        self.specs = {m.name: m for m in init.models}
        self.send = send
        self.bus = MemoryBus()
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
        self.executors: dict[str, ModelExecutor] = {}
        self._unflushed = 0  # scores sent to the parent and not yet known to be written
        self._outbox: list[Score] = []  # sent as one frame at the end of this loop turn
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.archive is not None:
            await asyncio.to_thread(self.archive.start)
            self._tasks.append(asyncio.create_task(self._flushing()))
        self.bus.subscribe(self._on_scores, reply_to=None)
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
            await self._flush()

    async def _flush(self) -> None:
        count, self._unflushed = self._unflushed, 0
        if count and self.archive is not None:
            # everything buffered when flush() starts is written when it returns
            await asyncio.to_thread(self.archive.flush)
            self.send(Archived(count))

    async def _report(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            backlog = {n: self.bus.backlog(self.deployment, n) for n in self.executors}
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
        executor = self.executors.get(frame.model)
        if executor is not None:
            executor.swap(model)
        else:
            spec = self.specs[frame.model]
            executor = self.executors[frame.model] = self._executor(spec, model)
            await executor.start()
        self.send(Installed(frame.model, model.version))

    def _executor(self, spec: ModelSpec, model: Model) -> ModelExecutor:
        return ModelExecutor(
            self.bus,
            self.deployment,
            model,
            batch=BatchConfig.model_validate(spec.batch),
            capacity=spec.queue_size,
            metrics=self.metrics,
            linger_ms=spec.linger_ms,
            # nobody waits on this loop: unless told otherwise, fast models skip the hand-off
            inline=spec.inline,
        )

    async def work(self, frame: Work) -> None:
        for request in frame.requests:
            await self.bus.publish(request)

    async def remove(self, frame: Remove) -> None:
        executor = self.executors.pop(frame.model, None)
        if executor is not None:
            await executor.stop()

    async def stop(self, timeout: float = 5.0) -> None:
        """Drain every executor, flush the archive."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*(e.stop(timeout) for e in self.executors.values()))
        self._send_scores()
        if self.archive is not None:
            await self._flush()
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
                await worker.work(frame)
            elif isinstance(frame, Install):
                assert worker is not None, "Install before Init"
                await worker.install(frame)
            elif isinstance(frame, Remove):
                assert worker is not None, "Remove before Init"
                await worker.remove(frame)
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
