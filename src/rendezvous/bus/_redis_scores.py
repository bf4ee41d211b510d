"""Scores coming back: a reader task per reply stream, and one per archived deployment.

A reply stream has one reader, the collector that waits for it, so it is read with plain
XREAD from the start and trimmed behind the reader. A deployment's scores stream is read by
the consumer group "archive", shared by every archiving process; the group starts at the
stream's beginning, so scores published before the first archiver are archived too. Nobody
waits on the archive, so its readers linger between reads and take many batches at once.

An archive subscriber names its deployments and reads only their scores streams. One that
names none gets every score on the bus, as with the memory bus: it follows every deployment
any process has joined under the bus's key prefix (the set ``rv:deployments``, read every
``discover_every`` seconds) — then archiving processes that serve different deployments
must not share a prefix, or each would take, and not store, the other's scores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Coroutine, Sequence

import msgspec

from ..messages import Score
from . import _redis_streams as streams
from ._redis_groups import MAX_BLOCK_S, GroupReader, Reading
from ._redis_link import FAILURES, is_down
from ._redis_streams import Entry, Keys
from .base import ScoreHandler

__all__ = ["ARCHIVE_GROUP", "ScoreReaders"]

log = logging.getLogger("rendezvous.bus.redis")

ARCHIVE_GROUP = "archive"
_READ_COUNT = 256  # entries (each a batch of scores) per read
# Nobody waits on the archive: after a read that was not full, its reader lets scores pile
# up this long, so one round trip carries many batches instead of one per model call (at
# ~150 us of CPU per round trip, per-batch reads cost the archiver more than storing does)
ARCHIVE_LINGER_S = 0.05
_TRIM_EVERY_S = 1.0

_decode_scores = msgspec.msgpack.Decoder(list[Score]).decode


class ScoreReaders:
    """The subscriptions of one bus and the tasks that feed them."""

    def __init__(
        self, groups: GroupReader, keys: Keys, consumer_name: str, *, discover_every: float
    ) -> None:
        self.groups = groups
        self.link = groups.link
        self.keys = keys
        self.consumer_name = consumer_name
        self.discover_every = discover_every
        self.repliers: dict[str, ScoreHandler] = {}
        self.archivers: list[tuple[ScoreHandler, frozenset[str] | None]] = []
        self._watched: set[str] = set()
        self._archived: dict[str, Reading] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def subscribe(
        self, handler: ScoreHandler, reply_to: str | None, deployments: Collection[str] | None
    ) -> None:
        if reply_to is None:
            only = None if deployments is None else frozenset(deployments)
            self.archivers.append((handler, only))
            for dep in only or ():
                self._watched.add(dep)
        else:
            self.repliers[reply_to] = handler  # one collector per reply_to: the last wins
        self.start()

    def watch(self, deployment: str) -> None:
        """Archive ``deployment``'s scores too (once anyone subscribes to all scores)."""
        if deployment not in self._watched:
            self._watched.add(deployment)
            self.start()

    def start(self) -> None:
        """Start the readers that subscriptions need and do not have yet."""
        if not self.link.opened:
            return
        for reply_to in self.repliers:
            if f"reply:{reply_to}" not in self._tasks:
                self._spawn(f"reply:{reply_to}", self._read_replies(reply_to))
        if not self.archivers:
            return
        everything = any(only is None for _, only in self.archivers)
        if everything and "discover" not in self._tasks:
            self._spawn("discover", self._discover())
        for dep in self._watched:
            if f"archive:{dep}" not in self._tasks:
                self._spawn(f"archive:{dep}", self._read_archive(dep))

    def _spawn(self, name: str, reader: Coroutine[None, None, None]) -> None:
        self._tasks[name] = asyncio.create_task(reader, name=f"redis-bus:{name}")

    async def stop(self, drain_timeout: float) -> None:
        """Stop the readers, then archive what is still unread, within ``drain_timeout`` s."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        archived = [name[8:] for name in self._tasks if name.startswith("archive:")]
        self._tasks.clear()
        if not self.link.up or not archived:
            return
        # scores published while the executors drained have not been read yet
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                for dep in archived:
                    with contextlib.suppress(*FAILURES):
                        await self._archive_own_pending(dep)
                        while await self._archive_once(dep, timeout=0.0):
                            pass

    async def _discover(self) -> None:
        """Follow the deployments other processes joined (see the module docstring)."""
        while not self.groups.closing:
            await self.link.wait_up()
            try:
                async with self.link.deadline():
                    names = await self.link.client.smembers(self.keys.deployments)
            except FAILURES as exc:
                await self._failed(self.keys.deployments, exc)
                continue
            for name in sorted(names):
                self.watch(name.decode() if isinstance(name, bytes) else name)
            await asyncio.sleep(self.discover_every)

    async def _read_replies(self, reply_to: str) -> None:
        key, link = self.keys.reply(reply_to), self.link
        last = b"0-0"  # the stream is this reader's alone: whatever is in it is for us
        trimmed = time.monotonic()
        while not self.groups.closing:
            await link.wait_up()
            try:
                block_ms = int(MAX_BLOCK_S * 1000)
                got = await link.read(
                    streams.xread(key, last, _READ_COUNT, block_ms=block_ms), MAX_BLOCK_S
                )
                entries = streams.read_entries(got)
                if entries:
                    last = entries[-1][0]
                    handler = self.repliers.get(reply_to)
                    bad = _hand_out(entries, [handler] if handler else [], key)
                    if bad:
                        await self.groups.bury(key, self.keys.reply_dead(reply_to), None, bad)
                if last != b"0-0" and time.monotonic() - trimmed >= _TRIM_EVERY_S:
                    trimmed = time.monotonic()
                    async with link.deadline():
                        await link.client.xtrim(key, minid=last, approximate=False)
            except FAILURES as exc:
                await self._failed(key, exc)

    async def _read_archive(self, dep: str) -> None:
        while not self.groups.closing:
            await self.link.wait_up()
            try:
                if await self._archive_once(dep, timeout=MAX_BLOCK_S) < _READ_COUNT:
                    await asyncio.sleep(ARCHIVE_LINGER_S)
            except FAILURES as exc:
                await self._failed(self.keys.scores(dep), exc)

    async def _archive_once(self, dep: str, *, timeout: float) -> int:
        """Hand one batch of ``dep``'s scores to the archive subscribers; how many entries."""
        try:
            return await self._archive_batch(dep, timeout)
        except FAILURES as exc:
            if not streams.is_nogroup(exc):
                raise
        async with self.link.deadline():
            # "0", not "$": the first archiver also takes what came before it
            stream = self.keys.scores(dep)
            await streams.create_group(self.link.client, stream, ARCHIVE_GROUP, "0")
        return await self._archive_batch(dep, timeout)

    async def _archive_batch(self, dep: str, timeout: float) -> int:
        stream, dead = self.keys.scores(dep), self.keys.dead(dep)
        reading = self._archived.setdefault(dep, Reading(0))
        taken = await self.groups.take(
            stream, dead, ARCHIVE_GROUP, self.consumer_name, reading,
            count=_READ_COUNT, timeout=timeout,
        )  # fmt: skip
        await self._store(dep, taken.entries)
        return len(taken.entries)

    async def _archive_own_pending(self, dep: str) -> None:
        """Archive what was delivered to this consumer but not handled: a reader cancelled
        while its read was on the wire leaves entries pending in its name."""
        stream = self.keys.scores(dep)
        while True:
            command = streams.xreadgroup(
                ARCHIVE_GROUP, self.consumer_name, stream, _READ_COUNT, start=b"0"
            )
            try:
                entries = streams.read_entries(await self.link.read(command))
            except FAILURES as exc:
                if streams.is_nogroup(exc):  # the reader stopped before it made the group:
                    return  # nothing can be pending; _archive_once makes it and reads all
                raise
            if not entries:
                return
            gone = [entry_id for entry_id, payload in entries if payload is None]  # trimmed
            if gone:
                async with self.link.deadline():
                    await self.link.client.xack(stream, ARCHIVE_GROUP, *gone)
            await self._store(dep, [e for e in entries if e[1] is not None])

    async def _store(self, dep: str, entries: list[Entry]) -> None:
        """Hand ``entries`` to the archive subscribers, then acknowledge them."""
        if not entries:
            return
        stream = self.keys.scores(dep)
        handlers = [h for h, only in self.archivers if only is None or dep in only]
        bad = _hand_out(entries, handlers, stream)
        buried = {entry_id for (entry_id, _), _ in bad}
        good = [entry_id for entry_id, _ in entries if entry_id not in buried]
        if good:
            # acked even if a handler raised: it was logged, and a redelivery would only
            # raise again
            async with self.link.deadline():
                await self.link.client.xack(stream, ARCHIVE_GROUP, *good)
        if bad:
            await self.groups.bury(stream, self.keys.dead(dep), ARCHIVE_GROUP, bad)

    async def _failed(self, key: str, exc: BaseException) -> None:
        if is_down(exc):
            self.link.lost(exc)  # the next wait_up() holds the reader until reconnection
        else:
            log.warning("reading %s failed: %s", key, exc)
            await asyncio.sleep(0.1)


def _hand_out(
    entries: list[Entry], handlers: Sequence[ScoreHandler], source: str
) -> list[tuple[Entry, str]]:
    """Give each decoded batch to every handler; return what did not decode, and why.

    A failing handler is logged: one bad subscriber must not stop the reader feeding all.
    """
    bad: list[tuple[Entry, str]] = []
    for entry in entries:
        try:
            scores = _decode_scores(entry[1] or b"")
        except msgspec.DecodeError as exc:
            bad.append((entry, f"undecodable scores: {exc}"))
            continue
        for handler in handlers:
            try:
                handler(scores)
            except Exception:
                log.exception("%s: score handler failed", source)
    return bad
