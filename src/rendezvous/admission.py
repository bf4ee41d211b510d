"""Admission: new requests wait while the archive writer catches up, and are refused once
its buffer is full.

Every accepted request is archived, and the writer runs at a lowered priority on the CPU the
serving loop needs too. Under sustained overload the loop would take nearly all of it and
the writer's backlog would grow until the buffer is full, then every other request would be
refused (503). Instead, once the writer is half a buffer behind (``Archive.behind``), a new
request waits, at most one deadline, for it to catch up: the loop idles meanwhile, the
writer gets the CPU, and accepting slows to the pace the archive can keep. Latency rises
under overload; refusals are left for an archive that cannot write at all.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter

from .archive.base import Archive
from .errors import Overloaded

__all__ = ["Admission"]

POLL_S = 0.002  # how often one watcher looks at the backlog while requests wait


class Admission:
    """The archive's say over accepting a request of deployment ``name``."""

    def __init__(
        self, name: str, archive: Archive, *, max_wait_s: float, waits: Counter, refusals: Counter
    ) -> None:
        self.name = name
        self.archive = archive
        self.max_wait_s = max_wait_s
        self._waits = waits
        self._refusals = refusals
        self._room: asyncio.Future[None] | None = None  # shared by every waiting request
        self._watcher: asyncio.Task[None] | None = None

    async def admit(self) -> None:
        """Return when a request may be accepted; raise :class:`Overloaded` if it may not."""
        archive = self.archive
        if archive.behind:
            self._waits.inc()
            room = self._room
            if room is None or room.done():
                room = self._room = asyncio.get_running_loop().create_future()
                self._watcher = asyncio.create_task(self._watch(room))
            # wait() leaves the shared future alone when this request's time is up
            await asyncio.wait([room], timeout=self.max_wait_s)
        if archive.full:
            self._refusals.inc()
            raise Overloaded(
                f"deployment '{self.name}': archive backlog is full "
                f"({archive.max_buffer} requests); try again shortly"
            )

    async def _watch(self, room: asyncio.Future[None]) -> None:
        # one timer for all waiting requests, instead of one per request; polled, since the
        # backlog shrinks in the writer thread, which knows nothing of event loops
        while self.archive.behind:  # noqa: ASYNC110
            await asyncio.sleep(POLL_S)
        if not room.done():
            room.set_result(None)

    async def stop(self) -> None:
        """Release waiting requests and stop watching. Idempotent."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)
        if watcher is not None:
            await asyncio.gather(watcher, return_exceptions=True)
