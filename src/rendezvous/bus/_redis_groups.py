"""Reading a consumer group: when to run the take script, how to wait, where bad entries go.

The take script (claim, drop, read; see ``_redis_streams``) runs when claiming is due, when
the last read came back full (the group may be falling behind) and at least every
``CHECK_EVERY_S``; otherwise a plain XREADGROUP does, which blocks at once and saves a round
trip per wake-up for a consumer that keeps up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from redis.commands.core import AsyncScript

from . import _redis_streams as streams
from ._redis_link import FAILURES, Link, is_down
from ._redis_streams import Entry, Taken
from .base import DropHandler

__all__ = ["GroupReader", "Reading"]

log = logging.getLogger("rendezvous.bus.redis")

CHECK_EVERY_S = 0.1  # a consumer that keeps up checks its group's lag this often
MAX_BLOCK_S = 1.0  # one blocking read waits at most this long, so outages show up quickly
_SHORT_WAIT_S = 0.1  # shorter waits poll instead of blocking (see _read_new)
_POLL_S = 0.002
FORGET_AFTER_MS = 600_000  # a consumer idle this long, with nothing pending, is removed


@dataclass(slots=True)
class Reading:
    """What this process knows about one group it reads."""

    capacity: int  # 0: unbounded
    on_drop: DropHandler | None = None
    backlog: int = 0
    dropped: int = 0
    next_claim: float = 0.0
    next_check: float = 0.0
    full: bool = False  # the last read returned all it was allowed: maybe falling behind
    inflight: dict[str, bytes] = field(default_factory=dict)  # request id -> stream id


class GroupReader:
    """Takes work from consumer groups over one link, with the bus's delivery options."""

    def __init__(self, link: Link, *, claim_idle_ms: int, max_deliveries: int, maxlen: int) -> None:
        self.link = link
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.maxlen = maxlen
        self.script: AsyncScript | None = None  # registered once the link is open
        self.closing = False  # stop waiting for new entries: the bus is stopping
        # claim checks run every half idle timeout (at most 1 s): a dead replica's work
        # moves within 1.5 x claim_idle_ms, at the cost of one XPENDING per check
        self._claim_every = min(claim_idle_ms / 2000.0, 1.0)

    async def take(
        self,
        stream: str,
        dead: str,
        group: str,
        consumer: str,
        reading: Reading,
        *,
        count: int,
        timeout: float,
    ) -> Taken:
        """Take up to ``count`` entries for ``group``, waiting up to ``timeout`` s for one."""
        if self.script is None:
            self.script = streams.register(self.link.client)
        now = time.monotonic()
        deadline = now + timeout
        claim = 0
        if now >= reading.next_claim:
            claim, reading.next_claim = self.claim_idle_ms, now + self._claim_every
        if claim or reading.full or now >= reading.next_check:
            reading.next_check = now + CHECK_EVERY_S
            async with self.link.deadline():
                taken = await streams.take(
                    self.link.client, self.script, stream, dead, group, consumer,
                    count=count, capacity=reading.capacity, claim_idle_ms=claim,
                    max_deliveries=self.max_deliveries, maxlen=self.maxlen,
                    forget_ms=max(2 * self.claim_idle_ms, FORGET_AFTER_MS),
                )  # fmt: skip
            if taken.buried:
                log.warning("%s/%s: %d entries dead-lettered", stream, group, taken.buried)
            if taken.backlog >= 0:
                reading.backlog = taken.backlog
            polled = True
        else:
            taken = Taken([], [], 0, -1)
            polled = False
        while not taken.entries:
            left = deadline - time.monotonic()
            if polled and (left <= 0 or self.closing):
                break
            taken.entries = await self._read_new(stream, group, consumer, count, left, polled)
            reading.backlog = max(0, reading.backlog - len(taken.entries))
            polled = True
        reading.full = len(taken.entries) >= count
        return taken

    async def _read_new(
        self, stream: str, group: str, consumer: str, count: int, wait: float, polled: bool
    ) -> list[Entry]:
        """XREADGROUP new entries, waiting up to ``wait`` s for the first."""
        # through Link.read: the executor's scores and acknowledgement, posted just before,
        # go out in the same round trip
        if wait < _SHORT_WAIT_S:
            # Redis times blocked reads out on its cron tick (every 100 ms at the default
            # hz 10): far too coarse for a batch waiting a few ms for company, so poll
            if polled:
                await asyncio.sleep(max(0.0, min(wait, _POLL_S)))
            got = await self.link.read(streams.xreadgroup(group, consumer, stream, count))
        else:
            block = min(wait, MAX_BLOCK_S)
            block_ms = math.ceil(block * 1000)
            got = await self.link.read(
                streams.xreadgroup(group, consumer, stream, count, block_ms=block_ms), block
            )
        return streams.read_entries(got)

    async def bury(
        self, stream: str, dead: str, group: str | None, bad: list[tuple[Entry, str]]
    ) -> None:
        """Dead-letter entries that did not decode, with why; acknowledge them if grouped."""
        log.warning("%s: %d undecodable entries dead-lettered to %s", stream, len(bad), dead)
        try:
            async with self.link.deadline():
                await streams.bury(self.link.client, stream, dead, group, bad, maxlen=self.maxlen)
        except FAILURES as exc:
            # still pending: once delivered max_deliveries times, claiming dead-letters them
            log.warning("%s: dead-lettering failed: %s", stream, exc)
            if is_down(exc):
                self.link.lost(exc)
