"""The Redis Streams bus: one rendezvous shared by many processes on many hosts.

Keys carry a hash tag per deployment, so one deployment's keys share a Redis Cluster slot::

    rv:{fraud}:in          input stream, one entry per request; a consumer group per model,
                           whose consumers are that model's executor replicas
    rv:{fraud}:scores      every score of the deployment, read by the consumer group "archive"
    rv:{fraud}:dead        dead letters: entries that did not decode or were never acked
    rv:{<reply_to>}:reply  scores for one collector (one API process, one deployment)

**Delivery.** ``receive`` takes work atomically (``_redis_streams``): entries a replica left
pending longer than ``claim_idle_ms`` are claimed (it died holding them), or dead-lettered
once delivered ``max_deliveries`` times; then new entries are read, blocking only when none
wait. An entry stays pending until ``ack`` (XACK), which the executor calls after publishing
its scores: delivery is at least once, and a duplicate score is harmless (collectors ignore
late scores).

**Capacity and drops.** A publisher cannot cheaply learn that a group fell behind, nor call
an ``on_drop`` that lives in another process, so the *consumer* drops: taking work reads the
group's lag (XINFO GROUPS, O(1) per group) and, when more than ``capacity`` requests wait,
takes the oldest excess with XREADGROUP NOACK, reported to ``on_drop`` in the consumer's own
process; two replicas never drop the same excess twice. A group is thus trimmed when one of
its consumers next asks for work (at the latest ``_redis_groups.CHECK_EVERY_S`` after the
last check), not at publish time as in memory; meanwhile approximate MAXLEN bounds the
stream, and what MAXLEN trims from under a stalled group is lost unreported. ``backlog()``
answers without I/O: exact after each check, plus this process's own publishes, minus what
it reads, refreshed from Redis every ``health_interval``.

**Scores** (``_redis_scores``) go to a stream per ``reply_to``, read only by the collector
that waits for them (with one shared response stream an API replica would take the other's
answers) and expiring ``reply_ttl`` after the writes stop (this process refreshes a
stream's TTL at most every tenth of ``reply_ttl``, so between 0.9 and 1 times that after
its last write to it); and to the deployment's scores
stream, read by every archive subscriber through the consumer group "archive", so archiving
processes share them. An archive subscriber follows every deployment joined under the
bus's key prefix.

**Outages** (``_redis_link``): while Redis is away ``ready`` is False, publishing raises
:class:`~rendezvous.errors.BusError` at once (the API answers by its schedule or default),
``receive`` returns ``[]`` after its timeout, and on reconnection the groups this bus joined
are created again (a restarted Redis may have forgotten them). A payload that does not
decode is dead-lettered with the error; no reader dies of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Collection, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from redis.asyncio import Redis

from ..errors import BusError
from ..messages import Request, Score
from . import _redis_streams as streams
from ._redis_groups import GroupReader, Reading
from ._redis_link import FAILURES, Link, is_down
from ._redis_scores import ScoreReaders
from ._redis_streams import Entry, Keys
from ._redis_wire import Command
from .base import Bus, DropHandler, FailureHandler, ScoreHandler

__all__ = ["RedisBus"]

log = logging.getLogger("rendezvous.bus.redis")

_INFLIGHT_MAX = 65_536  # per group: unacked entry ids remembered for ack()
_DRAIN_S = 2.0  # on stop, archiving what is still unread may take this long
_TTL_KEYS_MAX = 1024

_encode = msgspec.msgpack.Encoder().encode
_decode_request = msgspec.msgpack.Decoder(Request).decode


class RedisBus(Bus):
    """The bus over Redis Streams, for ``bus: redis://host:port/db`` (``rediss://`` for TLS).

    Options come from keywords or the URL's query (``?maxlen=50000&prefix=staging``); a
    keyword wins. ``maxlen`` bounds every stream (approximately); ``claim_idle_ms`` is how
    long a pending entry waits before a live replica takes it over; an entry delivered
    ``max_deliveries`` times without an ack is dead-lettered instead of delivered again;
    ``consumer_name`` names this process in the archive group (unique by default);
    ``prefix`` starts every key, so environments can share one Redis. Other query
    parameters go to redis-py.
    """

    def __init__(
        self,
        url: str,
        *,
        maxlen: int | None = None,
        claim_idle_ms: int | None = None,
        max_deliveries: int | None = None,
        consumer_name: str | None = None,
        prefix: str | None = None,
        command_timeout: float = 2.0,
        health_interval: float = 1.0,
        reply_ttl: float = 60.0,
    ) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        safe = _redact(url)

        def option(name: str, given: int | None, default: int) -> int:
            raw = query.pop(name, None)
            if given is None and raw is not None:
                given = int(raw) if raw.isdigit() else 0
            value = default if given is None else given
            if value < 1:
                raise BusError(f"bus '{safe}': {name} must be a positive integer")
            return value

        self.url = url
        self.maxlen = option("maxlen", maxlen, 100_000)
        self.claim_idle_ms = option("claim_idle_ms", claim_idle_ms, 30_000)
        self.max_deliveries = option("max_deliveries", max_deliveries, 3)
        from_url = query.pop("prefix", "rv")
        self.prefix = prefix if prefix is not None else from_url
        if not self.prefix or "{" in self.prefix or "}" in self.prefix:
            raise BusError(f"bus '{safe}': prefix must be non-empty, without braces")
        if min(command_timeout, health_interval, reply_ttl) <= 0:
            raise BusError(
                f"bus '{safe}': command_timeout, health_interval and reply_ttl must be > 0"
            )
        self.consumer_name = consumer_name or (
            f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        )
        self.reply_ttl = reply_ttl
        self._ttl_due: dict[str, float] = {}  # reply stream -> when to refresh its TTL
        self._safe_url = safe
        self._keys = Keys(self.prefix)
        self._link = Link(
            urlunsplit(parts._replace(query=urlencode(query))),
            name=safe,
            command_timeout=command_timeout,
            health_interval=health_interval,
            check=self._refresh,
            on_reconnect=self._rejoin,
        )
        self._groups = GroupReader(
            self._link,
            claim_idle_ms=self.claim_idle_ms,
            max_deliveries=self.max_deliveries,
            maxlen=self.maxlen,
        )
        self._scores = ScoreReaders(
            self._groups, self._keys, self.consumer_name, discover_every=health_interval
        )
        self._joined: dict[tuple[str, str], Reading] = {}

    def __repr__(self) -> str:
        return (
            f"RedisBus({self._safe_url!r}, maxlen={self.maxlen}, "
            f"claim_idle_ms={self.claim_idle_ms}, max_deliveries={self.max_deliveries}, "
            f"consumer_name={self.consumer_name!r}, prefix={self.prefix!r})"
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._link.opened:
            return
        await self._link.open()
        self._groups.closing = False
        self._scores.start()  # subscriptions made before start

    async def stop(self) -> None:
        """Stop the readers, archive what is still unread (briefly), disconnect."""
        if not self._link.opened:
            return
        self._groups.closing = True  # a reader whose cancellation got lost leaves anyway
        await self._scores.stop(_DRAIN_S)
        await self._link.close()

    @property
    def ready(self) -> bool:
        return self._link.up

    # -- the input stream -----------------------------------------------------------------

    async def join(
        self,
        deployment: str,
        group: str,
        *,
        capacity: int = 1000,
        on_drop: DropHandler | None = None,
    ) -> None:
        if capacity < 1:
            raise BusError(f"capacity must be at least 1, got {capacity}")
        client = self._link.client
        try:
            async with self._link.deadline():
                await streams.create_group(client, self._keys.input(deployment), group, "$")
                await client.sadd(self._keys.deployments, deployment)  # for archivers
        except FAILURES as exc:
            raise self._link.error(f"joining {deployment}/{group}", exc) from exc
        self._joined.setdefault((deployment, group), Reading(capacity, on_drop))
        self._scores.watch(deployment)

    async def publish(self, request: Request) -> None:
        self._link.check_up()
        await self._link.send([self._publishing(request)])
        self._published(request.deployment)

    def publish_nowait(self, request: Request, on_failure: FailureHandler) -> None:
        """Goes out with this process's next pipeline (requests arriving together share
        one), and nobody waits for Redis's confirmation."""
        self._link.check_up()
        self._link.post([self._publishing(request)], on_failure)
        self._published(request.deployment)

    def _publishing(self, request: Request) -> Command:
        payload = _encode(request)
        return streams.xadd(self._keys.input(request.deployment), b"r", payload, self.maxlen)

    def _published(self, dep: str) -> None:
        for (d, _), reading in self._joined.items():
            if d == dep:
                reading.backlog += 1
        self._scores.watch(dep)

    async def receive(
        self,
        deployment: str,
        group: str,
        consumer: str,
        *,
        max_items: int,
        timeout: float,
    ) -> list[Request]:
        reading = self._joined.get((deployment, group))
        if reading is None:
            raise BusError(f"group '{group}' has not joined deployment '{deployment}'")
        stream = self._keys.input(deployment)
        deadline = time.monotonic() + timeout
        for _ in range(3):
            if not await self._link.wait_up(deadline - time.monotonic()):
                return []  # an outage is not the caller's error: it will ask again
            try:
                taken = await self._groups.take(
                    stream, self._keys.dead(deployment), group, consumer, reading,
                    count=max_items, timeout=deadline - time.monotonic(),
                )  # fmt: skip
                break
            except FAILURES as exc:
                if streams.is_nogroup(exc):  # Redis forgot the group: join it again
                    with contextlib.suppress(*FAILURES):
                        async with self._link.deadline():
                            await streams.create_group(self._link.client, stream, group, "$")
                elif is_down(exc):
                    self._link.lost(exc)
                else:
                    raise self._link.error(f"receiving for {deployment}/{group}", exc) from exc
        else:
            return []
        self._report_drops(taken.dropped, reading, deployment, group)
        return await self._requests(taken.entries, deployment, group, reading)

    async def ack(self, deployment: str, group: str, requests: Sequence[Request]) -> None:
        ids = self._inflight_ids(deployment, group, requests)
        if not ids:
            return
        key = self._keys.input(deployment)
        # Not awaited: the acknowledgement rides with the next pipeline (or read), after the
        # scores it confirms (writes leave in order), and the executor takes its next batch
        # at once. A lost ack leaves the entries pending; a replica claims and redoes them.
        self._link.post([(b"XACK", key, group, *ids)], _logged(f"ack {deployment}/{group}"))

    async def complete(
        self, deployment: str, group: str, requests: Sequence[Request], scores: Sequence[Score]
    ) -> None:
        """Posted, not awaited: the scores and the acknowledgement leave with this
        process's next read, normally the executor's next XREADGROUP, so a batch costs one
        round trip. Reply streams get their scores first; then one script (``FINISH``) adds
        the archive's copy and acknowledges, so an ack never goes without the scores."""
        self._link.check_up()
        ids = self._inflight_ids(deployment, group, requests)
        writes, archived = self._score_writes(scores)
        own = archived.pop(deployment, b"")
        if not ids and not own and not writes and not archived:
            return
        scores_key, input_key = self._keys.scores(deployment), self._keys.input(deployment)
        commands = self._score_commands(writes, archived)
        finish = (b"EVAL", streams.FINISH, 2, scores_key, input_key, self.maxlen, own, group)
        commands.append((*finish, *ids))
        self._link.post(commands, _logged(f"scores of {deployment}/{group}"))
        self._scores.watch(deployment)
        for dep in archived:
            self._scores.watch(dep)

    def _inflight_ids(
        self, deployment: str, group: str, requests: Sequence[Request]
    ) -> list[bytes]:
        """The stream ids of ``requests`` delivered to this process and not acked yet."""
        reading = self._joined.get((deployment, group))
        if reading is None:
            return []
        pop = reading.inflight.pop
        return [i for i in (pop(r.id, None) for r in requests) if i is not None]

    def backlog(self, deployment: str, group: str) -> int:
        reading = self._joined.get((deployment, group))
        return reading.backlog if reading is not None else 0

    def dropped(self, deployment: str, group: str) -> int:
        """Requests this process dropped from ``group`` because it was over capacity."""
        reading = self._joined.get((deployment, group))
        return reading.dropped if reading is not None else 0

    async def _requests(
        self, entries: list[Entry], deployment: str, group: str, reading: Reading
    ) -> list[Request]:
        requests: list[Request] = []
        bad: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                request = _decode_request(entry[1] or b"")
            except msgspec.DecodeError as exc:
                bad.append((entry, f"undecodable request: {exc}"))
                continue
            requests.append(request)
            reading.inflight[request.id] = entry[0]
        while len(reading.inflight) > _INFLIGHT_MAX:  # never acked: claimed elsewhere by now
            del reading.inflight[next(iter(reading.inflight))]
        if bad:
            stream, dead = self._keys.input(deployment), self._keys.dead(deployment)
            await self._groups.bury(stream, dead, group, bad)
        return requests

    def _report_drops(
        self, dropped: list[Entry], reading: Reading, deployment: str, group: str
    ) -> None:
        if not dropped:
            return
        reading.dropped += len(dropped)
        log.warning(
            "%s/%s over capacity %d: dropped %d", deployment, group, reading.capacity, len(dropped)
        )
        if reading.on_drop is None:
            return
        for _, payload in dropped:
            try:
                reading.on_drop(_decode_request(payload or b""))
            except Exception:
                log.exception("%s/%s: reporting a dropped request failed", deployment, group)

    # -- scores ---------------------------------------------------------------------------

    async def publish_scores(self, scores: Sequence[Score]) -> None:
        if not scores:
            return
        self._link.check_up()
        writes, archived = self._score_writes(scores)
        await self._link.send(self._score_commands(writes, archived))
        for dep in archived:
            self._scores.watch(dep)

    def _score_writes(
        self, scores: Sequence[Score]
    ) -> tuple[list[tuple[str, bytes]], dict[str, bytes]]:
        """(reply stream, payload) per collector, and the archive's payload per deployment."""
        by_reply: dict[str, list[Score]] = {}
        by_dep: dict[str, list[Score]] = {}
        for s in scores:
            by_reply.setdefault(s.reply_to, []).append(s)
            by_dep.setdefault(s.deployment, []).append(s)
        writes = [(self._keys.reply(r), _encode(b)) for r, b in by_reply.items() if r]
        return writes, {d: _encode(b) for d, b in by_dep.items()}

    def _score_commands(
        self, writes: list[tuple[str, bytes]], archived: dict[str, bytes]
    ) -> list[Command]:
        maxlen, ttl_ms = self.maxlen, int(self.reply_ttl * 1000)
        commands: list[Command] = []
        now, due = time.monotonic(), self._ttl_due
        for key, payload in writes:
            commands.append(streams.xadd(key, b"s", payload, maxlen))
            if due.get(key, 0.0) <= now:  # a TTL per batch would cost Redis a command each
                due[key] = now + self.reply_ttl / 10
                commands.append((b"PEXPIRE", key, ttl_ms))
        if len(due) > _TTL_KEYS_MAX:  # API processes come and go: forget the past ones
            self._ttl_due = {k: t for k, t in due.items() if t > now}
        for dep, payload in archived.items():
            commands.append(streams.xadd(self._keys.scores(dep), b"s", payload, maxlen))
        return commands

    def subscribe(
        self,
        handler: ScoreHandler,
        *,
        reply_to: str | None,
        deployments: Collection[str] | None = None,
    ) -> None:
        self._scores.subscribe(handler, reply_to, deployments)

    # -- health ---------------------------------------------------------------------------

    async def _refresh(self, client: Redis) -> None:
        """Health check: refresh every joined group's backlog (one round trip), or ping."""
        deps = sorted({d for d, _ in self._joined})
        if not deps:
            await client.ping()
            return
        async with client.pipeline(transaction=False) as pipe:
            for d in deps:
                pipe.xinfo_groups(self._keys.input(d))
            results = await pipe.execute(raise_on_error=False)
        missing = False
        for dep, result in zip(deps, results, strict=True):
            if isinstance(result, BaseException):
                if is_down(result):
                    raise result
                missing = True  # the stream is gone ("no such key"), and its groups with it
                continue
            lags = {g["name"].decode(): g["lag"] for g in result}
            for (d, group), reading in self._joined.items():
                if d == dep and group not in lags:
                    missing = True
                elif d == dep and lags[group] is not None:
                    reading.backlog = lags[group]
        if missing:
            await self._rejoin(client)

    async def _rejoin(self, client: Redis) -> None:
        for dep, group in list(self._joined):
            if await streams.create_group(client, self._keys.input(dep), group, "$"):
                log.warning(
                    "bus '%s': group %s/%s was gone (Redis restarted?) and joined again; "
                    "requests published meanwhile never reached it",
                    self._safe_url, dep, group,
                )  # fmt: skip


def _logged(what: str) -> FailureHandler:
    """A failure handler for writes whose loss a retry repairs: it logs what failed."""
    return lambda exc: log.warning("%s failed: %s", what, exc)


def _redact(url: str) -> str:
    """``url`` without its password, whether in the address or in the query."""
    parts = urlsplit(url)
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*/")))
