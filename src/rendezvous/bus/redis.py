"""The Redis Streams bus: one rendezvous shared by many processes on many hosts.

Keys carry the deployment as a hash tag, so one deployment's keys share a Redis Cluster slot
and the Lua script below may touch several of them::

    rv:{fraud}:in         input stream, one entry per request; one consumer group per model,
                          whose consumers are that model's executor replicas
    rv:{fraud}:scores     every score of the deployment, read by the consumer group "archive"
    rv:{fraud}:dead       dead letters: entries that could not be decoded or never got acked
    rv:{<reply_to>}:reply scores for one collector (one API process serving one deployment)

**Delivery.** ``receive`` runs one Lua script, atomic and one round trip, that (1) claims the
entries a replica left pending longer than ``claim_idle_ms`` (it died holding them; checked at
most every ``claim_idle_ms / 2``), dead-lettering those already delivered ``max_deliveries``
times; (2) drops what exceeds the group's capacity (below); (3) reads new entries. Only when
nothing waits does it block on XREADGROUP. An entry stays pending until ``ack`` (XACK), which
the executor calls after publishing its scores: delivery is at least once, and a duplicate
score is harmless (collectors ignore late scores).

**Capacity and drops.** A publisher cannot cheaply learn that a group fell behind, and could
not call an ``on_drop`` handler living in another process anyway, so the *consumer* drops:
the script reads the group's lag (XINFO GROUPS, O(1) per group) and, when more than
``capacity`` requests wait, takes the oldest excess with XREADGROUP NOACK and returns it to be
reported to ``on_drop`` in the consumer's own process. Being atomic, two replicas never drop
the same excess twice. A group is thus trimmed when one of its consumers next asks for work,
not at publish time as in memory; between asks, approximate MAXLEN on the stream bounds
memory, and what MAXLEN trims from under a stalled group is lost without a report.
``backlog()`` must answer without I/O: it is an estimate, exact after each ``receive``,
raised by this process's own publishes and refreshed every ``health_interval``.

**Scores.** Each ``reply_to`` has its own stream, read with XREAD by the one collector that
waits (a shared response stream would hand one API replica the other's answers); the reader
trims what it has read, and a stream nobody writes to expires after ``reply_ttl``. Each
deployment's scores also go to its scores stream; every archive subscriber of the bus reads
it as a consumer of the group "archive", so several archiving processes share the scores. An
archive subscriber follows the deployments this bus has joined, published to or scored.

**Outages.** A supervisor task pings every ``health_interval``; on a lost connection it
reconnects with exponential backoff and re-creates the groups this bus joined (a restarted
Redis without persistence forgot them). Meanwhile ``ready`` is False, ``publish`` fails fast
with :class:`~rendezvous.errors.BusError` (the API answers by the schedule or the default)
and ``receive`` returns ``[]`` after its timeout. A payload that does not decode goes to the
dead-letter stream with the error; readers never die of a bad entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import BusError
from ..messages import Request, Score
from .base import Bus, DropHandler, ScoreHandler

__all__ = ["RedisBus"]

log = logging.getLogger("rendezvous.bus.redis")

ARCHIVE_GROUP = "archive"
_REQUEST = b"r"  # the one field of an input entry: a msgpack Request
_SCORES = b"s"  # the one field of a score entry: a msgpack list of Scores
_MAX_BLOCK_S = 1.0  # one XREAD(GROUP) blocks at most this long, so outages show up quickly
_READ_COUNT = 256  # entries per read of a score reader
_RECONNECT_MIN_S = 0.05
_RECONNECT_MAX_S = 2.0
_TRIM_EVERY_S = 1.0
_INFLIGHT_MAX = 65_536  # per group: unacked entry ids remembered for ack()
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)

_encode = msgspec.msgpack.Encoder().encode
_decode_request = msgspec.msgpack.Decoder(Request).decode
_decode_scores = msgspec.msgpack.Decoder(list[Score]).decode

# KEYS: stream, dead-letter stream.
# ARGV: group, consumer, count, capacity (0: unbounded), claim idle ms (0: do not claim now),
#       max deliveries, dead-letter maxlen.
# Returns {claimed entries, new entries, dropped entries, dead-lettered count, backlog or -1}.
_TAKE = """
local stream, dead = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local count, capacity = tonumber(ARGV[3]), tonumber(ARGV[4])
local idle, max_deliveries = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('EXISTS', stream) == 0 then
  return redis.error_reply('NOGROUP stream ' .. stream .. ' does not exist')
end
local lag, found = false, false
for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local g = {}
  for i = 1, #info, 2 do g[info[i]] = info[i + 1] end
  if g['name'] == group then found = true; lag = g['lag'] end
end
if not found then
  return redis.error_reply('NOGROUP no group ' .. group .. ' on ' .. stream)
end
local claimed, dropped, buried = {}, {}, 0
if idle > 0 then
  local ids = {}
  for _, p in ipairs(redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', count)) do
    if p[4] >= max_deliveries then
      local e = redis.call('XRANGE', stream, p[1], p[1])
      local payload = ''
      if e[1] and e[1][2][2] then payload = e[1][2][2] end
      redis.call('XADD', dead, 'MAXLEN', '~', ARGV[7], '*',
        'source', stream, 'group', group, 'id', p[1], 'consumer', p[2],
        'reason', 'not acknowledged after ' .. p[4] .. ' deliveries', 'payload', payload)
      redis.call('XACK', stream, group, p[1])
      buried = buried + 1
    else
      table.insert(ids, p[1])
    end
  end
  if #ids > 0 then
    claimed = redis.call('XCLAIM', stream, group, consumer, idle, unpack(ids))
  end
end
local backlog = -1
if lag then
  backlog = math.min(lag, redis.call('XLEN', stream))
  if capacity > 0 and backlog > capacity then
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', backlog - capacity,
      'NOACK', 'STREAMS', stream, '>')
    if r then dropped = r[1][2] end
    backlog = capacity
  end
end
local fresh = {}
if count > #claimed then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #claimed,
    'STREAMS', stream, '>')
  if r then fresh = r[1][2] end
end
if backlog >= 0 then backlog = math.max(0, backlog - #fresh) end
return {claimed, fresh, dropped, buried, backlog}
"""

Entry = tuple[bytes, bytes | None]  # stream id, payload (None: the entry had no payload)


@dataclass(slots=True)
class _Membership:
    """What this process knows about one group it reads."""

    capacity: int
    on_drop: DropHandler | None
    backlog: int = 0
    dropped: int = 0
    next_claim: float = 0.0
    inflight: dict[str, bytes] = field(default_factory=dict)  # request id -> stream id


@dataclass(slots=True)
class _Taken:
    entries: list[Entry]
    dropped: list[Entry]


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def input(self, deployment: str) -> str:
        return f"{self.prefix}:{{{deployment}}}:in"

    def scores(self, deployment: str) -> str:
        return f"{self.prefix}:{{{deployment}}}:scores"

    def dead(self, deployment: str) -> str:
        return f"{self.prefix}:{{{deployment}}}:dead"

    def reply(self, reply_to: str) -> str:
        return f"{self.prefix}:{{{reply_to}}}:reply"

    def reply_dead(self, reply_to: str) -> str:
        return f"{self.prefix}:{{{reply_to}}}:reply-dead"


class RedisBus(Bus):
    """The bus over Redis Streams, for ``bus: redis://host:port/db`` (or ``rediss://``).

    Options come from keywords or from the URL's query (``?maxlen=50000&prefix=staging``);
    keywords win. ``maxlen`` bounds every stream (approximately); ``claim_idle_ms`` is how
    long a pending entry waits before a live replica takes it over; an entry delivered
    ``max_deliveries`` times without an ack is dead-lettered instead of delivered again;
    ``consumer_name`` names this process in the archive group (unique by default);
    ``prefix`` starts every key, so environments can share one Redis.
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
        health_interval: float = 1.0,
        reply_ttl: float = 60.0,
    ) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self._safe_url = _redact(url)

        def option(name: str, given: int | None, default: int) -> int:
            if given is None:
                raw = query.pop(name, None)
                if raw is None:
                    return default
                try:
                    given = int(raw)
                except ValueError:
                    given = 0
            if given < 1:
                raise BusError(f"bus '{self._safe_url}': {name} must be a positive integer")
            return given

        self.maxlen = option("maxlen", maxlen, 100_000)
        self.claim_idle_ms = option("claim_idle_ms", claim_idle_ms, 30_000)
        self.max_deliveries = option("max_deliveries", max_deliveries, 3)
        for name in ("maxlen", "claim_idle_ms", "max_deliveries"):
            query.pop(name, None)
        self.prefix = prefix if prefix is not None else query.pop("prefix", "rv")
        query.pop("prefix", None)
        if not self.prefix or any(c in self.prefix for c in "{}"):
            raise BusError(f"bus '{self._safe_url}': prefix must be non-empty, without braces")
        if health_interval <= 0 or reply_ttl <= 0:
            raise BusError(f"bus '{self._safe_url}': health_interval and reply_ttl must be > 0")
        self.consumer_name = consumer_name or (
            f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        )
        self.health_interval = health_interval
        self.reply_ttl = reply_ttl
        self.url = url
        # what is left of the query is redis-py's business (socket_timeout=…, and so on)
        self._client_url = urlunsplit(parts._replace(query=urlencode(query)))
        self._keys = _Keys(self.prefix)
        self._claim_every = min(self.claim_idle_ms / 2000.0, 1.0)
        self._redis: Redis | None = None
        self._connected = False
        self._up = asyncio.Event()
        self._trouble = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._joined: dict[tuple[str, str], _Membership] = {}
        self._archive_state: dict[str, _Membership] = {}
        self._watched: set[str] = set()
        self._repliers: dict[str, ScoreHandler] = {}
        self._archivers: list[ScoreHandler] = []
        self._take_script: Any = None

    def __repr__(self) -> str:
        return (
            f"RedisBus({self._safe_url!r}, maxlen={self.maxlen}, "
            f"claim_idle_ms={self.claim_idle_ms}, max_deliveries={self.max_deliveries}, "
            f"consumer_name={self.consumer_name!r}, prefix={self.prefix!r})"
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._redis is not None:
            return
        redis = Redis.from_url(
            self._client_url,
            socket_connect_timeout=1.0,
            # one quick retry on a fresh connection: after a Redis restart, pooled
            # connections are dead but the server is back; longer waits would blow deadlines
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1, (RedisConnectionError,)),
        )
        try:
            await redis.ping()
        except RedisError as exc:
            await redis.aclose()
            raise BusError(f"bus '{self._safe_url}': cannot reach Redis: {exc}") from exc
        self._redis = redis
        self._take_script = redis.register_script(_TAKE)
        self._set_up()
        self._supervisor = asyncio.create_task(self._supervise(), name="redis-bus:supervisor")
        for reply_to in self._repliers:
            self._start_reply_reader(reply_to)
        self._start_archive_readers()

    async def stop(self) -> None:
        redis = self._redis
        if redis is None:
            return
        tasks = [t for t in (self._supervisor, *self._readers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._supervisor = None
        archive_deps = [k[8:] for k in self._readers if k.startswith("archive:")]
        self._readers.clear()
        if self._connected and archive_deps:
            # scores published while executors drained are still unread: archive them now
            with contextlib.suppress(TimeoutError, RedisError):
                async with asyncio.timeout(2.0):
                    for dep in archive_deps:
                        await self._drain_archive(dep)
        self._redis = None
        self._connected = False
        self._up.clear()
        await redis.aclose()

    @property
    def ready(self) -> bool:
        return self._redis is not None and self._connected

    def _client(self) -> Redis:
        if self._redis is None:
            raise BusError(f"bus '{self._safe_url}' is not started")
        return self._redis

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
        try:
            await self._create_group(self._keys.input(deployment), group, "$")
        except RedisError as exc:
            raise self._error(f"joining {deployment}/{group}", exc) from exc
        self._joined.setdefault((deployment, group), _Membership(capacity, on_drop))
        self._watch(deployment)

    async def publish(self, request: Request) -> None:
        self._check_up()
        try:
            await self._client().xadd(
                self._keys.input(request.deployment),
                {_REQUEST: _encode(request)},
                maxlen=self.maxlen,
                approximate=True,
            )
        except RedisError as exc:
            raise self._error("publishing a request", exc) from exc
        dep = request.deployment
        for (d, _), m in self._joined.items():
            if d == dep:
                m.backlog += 1
        self._watch(dep)

    async def receive(
        self,
        deployment: str,
        group: str,
        consumer: str,
        *,
        max_items: int,
        timeout: float,
    ) -> list[Request]:
        m = self._joined.get((deployment, group))
        if m is None:
            raise BusError(f"group '{group}' has not joined deployment '{deployment}'")
        stream, dead = self._keys.input(deployment), self._keys.dead(deployment)
        deadline = time.monotonic() + timeout
        for _ in range(3):
            if not await self._wait_up(deadline - time.monotonic()):
                return []  # an outage is not the caller's error: it polls again
            try:
                taken = await self._take(
                    stream, dead, group, consumer, m,
                    count=max_items, capacity=m.capacity, timeout=deadline - time.monotonic(),
                )  # fmt: skip
                break
            except RedisError as exc:
                if _is_nogroup(exc):  # Redis lost the group (restart, flush): join again
                    with contextlib.suppress(RedisError):
                        await self._create_group(stream, group, "$")
                elif isinstance(exc, _DOWN):
                    self._lost(exc)
                else:
                    raise self._error(f"receiving for {deployment}/{group}", exc) from exc
        else:
            return []
        requests = await self._requests(taken.entries, stream, dead, group, m)
        self._report_drops(taken.dropped, m, deployment, group)
        return requests

    async def ack(self, deployment: str, group: str, requests: Sequence[Request]) -> None:
        m = self._joined.get((deployment, group))
        if m is None or not requests:
            return
        ids = [i for i in (m.inflight.pop(r.id, None) for r in requests) if i is not None]
        if not ids:
            return
        try:
            await self._client().xack(self._keys.input(deployment), group, *ids)
        except RedisError as exc:
            raise self._error(f"acknowledging for {deployment}/{group}", exc) from exc

    def backlog(self, deployment: str, group: str) -> int:
        m = self._joined.get((deployment, group))
        return m.backlog if m is not None else 0

    def dropped(self, deployment: str, group: str) -> int:
        """Requests this process dropped from ``group`` because it was over capacity."""
        m = self._joined.get((deployment, group))
        return m.dropped if m is not None else 0

    async def _take(
        self,
        stream: str,
        dead: str,
        group: str,
        consumer: str,
        m: _Membership,
        *,
        count: int,
        capacity: int,
        timeout: float,
    ) -> _Taken:
        now = time.monotonic()
        claim = 0
        if now >= m.next_claim:
            claim, m.next_claim = self.claim_idle_ms, now + self._claim_every
        args = [group, consumer, count, capacity, claim, self.max_deliveries, self.maxlen]
        claimed, fresh, dropped, buried, backlog = await self._take_script(
            keys=[stream, dead], args=args
        )
        if buried:
            log.warning("%s/%s: %d entries dead-lettered to %s", stream, group, buried, dead)
        if backlog >= 0:
            m.backlog = backlog
        entries = [_entry(e) for e in (*claimed, *fresh)]
        deadline = now + timeout
        while not entries:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            block_ms = max(1, math.ceil(min(left, _MAX_BLOCK_S) * 1000))
            got = await self._client().xreadgroup(
                group, consumer, {stream: ">"}, count=count, block=block_ms
            )
            for _, items in got or ():
                entries += [(i, next(iter(f.values()), None) if f else None) for i, f in items]
        return _Taken(entries, [_entry(e) for e in dropped])

    async def _requests(
        self, entries: list[Entry], stream: str, dead: str, group: str, m: _Membership
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
            m.inflight[request.id] = entry[0]
        while len(m.inflight) > _INFLIGHT_MAX:  # never acked: claimed by someone else by now
            del m.inflight[next(iter(m.inflight))]
        if bad:
            await self._bury(stream, dead, group, bad)
        return requests

    def _report_drops(self, dropped: list[Entry], m: _Membership, dep: str, group: str) -> None:
        if not dropped:
            return
        m.dropped += len(dropped)
        log.warning("%s/%s over capacity %d: dropped %d", dep, group, m.capacity, len(dropped))
        if m.on_drop is None:
            return
        for _, payload in dropped:
            try:
                m.on_drop(_decode_request(payload or b""))
            except Exception:
                log.exception("%s/%s: reporting a dropped request failed", dep, group)

    async def _bury(
        self, stream: str, dead: str, group: str | None, bad: list[tuple[Entry, str]]
    ) -> None:
        """Dead-letter ``bad`` entries (with their reason) and acknowledge them."""
        log.warning("%s: %d undecodable entries dead-lettered to %s", stream, len(bad), dead)
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for (entry_id, payload), reason in bad:
                    fields: dict[bytes | str, bytes | str] = {
                        "source": stream, "group": group or "", "id": entry_id,
                        "reason": reason, "payload": payload or b"",
                    }  # fmt: skip
                    pipe.xadd(dead, fields, maxlen=self.maxlen, approximate=True)
                if group is not None:
                    pipe.xack(stream, group, *(e[0] for e, _ in bad))
                await pipe.execute()
        except RedisError as exc:
            # still pending: after max_deliveries the claim path dead-letters them
            log.warning("%s: dead-lettering failed: %s", stream, exc)
            if isinstance(exc, _DOWN):
                self._lost(exc)

    async def _create_group(self, stream: str, group: str, start: str) -> bool:
        """Create ``group`` on ``stream`` from ``start``; False if it existed already."""
        try:
            await self._client().xgroup_create(stream, group, start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    # -- scores ---------------------------------------------------------------------------

    async def publish_scores(self, scores: Sequence[Score]) -> None:
        if not scores:
            return
        self._check_up()
        by_reply: dict[str, list[Score]] = {}
        by_dep: dict[str, list[Score]] = {}
        for s in scores:
            by_reply.setdefault(s.reply_to, []).append(s)
            by_dep.setdefault(s.deployment, []).append(s)
        keys, ttl_ms = self._keys, int(self.reply_ttl * 1000)
        try:
            async with self._client().pipeline(transaction=False) as pipe:
                for reply_to, batch in by_reply.items():
                    if reply_to:
                        key = keys.reply(reply_to)
                        pipe.xadd(key, {_SCORES: _encode(batch)}, maxlen=self.maxlen)
                        pipe.pexpire(key, ttl_ms)
                for dep, batch in by_dep.items():
                    pipe.xadd(keys.scores(dep), {_SCORES: _encode(batch)}, maxlen=self.maxlen)
                await pipe.execute()
        except RedisError as exc:
            raise self._error("publishing scores", exc) from exc
        for dep in by_dep:
            self._watch(dep)

    def subscribe(self, handler: ScoreHandler, *, reply_to: str | None) -> None:
        if reply_to is None:
            self._archivers.append(handler)
            self._start_archive_readers()
        else:
            self._repliers[reply_to] = handler
            self._start_reply_reader(reply_to)

    def _watch(self, deployment: str) -> None:
        if deployment not in self._watched:
            self._watched.add(deployment)
            self._start_archive_readers()

    def _start_reply_reader(self, reply_to: str) -> None:
        name = f"reply:{reply_to}"
        if self._redis is not None and name not in self._readers:
            self._readers[name] = asyncio.create_task(
                self._read_replies(reply_to), name=f"redis-bus:{name}"
            )

    def _start_archive_readers(self) -> None:
        if self._redis is None or not self._archivers:
            return
        for dep in self._watched:
            name = f"archive:{dep}"
            if name not in self._readers:
                self._readers[name] = asyncio.create_task(
                    self._read_archive(dep), name=f"redis-bus:{name}"
                )

    async def _read_replies(self, reply_to: str) -> None:
        key, dead = self._keys.reply(reply_to), self._keys.reply_dead(reply_to)
        last = b"0-0"  # a reply stream is this reader's alone: what is in it is for us
        trimmed = time.monotonic()
        block_ms = int(_MAX_BLOCK_S * 1000)
        while True:
            await self._up.wait()
            try:
                got = await self._client().xread({key: last}, count=_READ_COUNT, block=block_ms)
            except RedisError as exc:
                await self._reader_trouble(key, exc)
                continue
            for _, items in got or ():
                entries = [(i, next(iter(f.values()), None) if f else None) for i, f in items]
                last = entries[-1][0]
                handler = self._repliers.get(reply_to)
                bad = self._hand_out(entries, (handler,) if handler else (), key)
                if bad:
                    await self._bury(key, dead, None, bad)
            if last != b"0-0" and time.monotonic() - trimmed >= _TRIM_EVERY_S:
                trimmed = time.monotonic()
                try:
                    await self._client().xtrim(key, minid=last, approximate=False)
                except RedisError as exc:
                    await self._reader_trouble(key, exc)

    async def _read_archive(self, dep: str) -> None:
        stream = self._keys.scores(dep)
        while True:
            await self._up.wait()
            try:
                await self._archive_once(dep, timeout=_MAX_BLOCK_S)
            except RedisError as exc:
                if _is_nogroup(exc):
                    # "0", not "$": the first archiver also takes what came before it
                    with contextlib.suppress(RedisError):
                        await self._create_group(stream, ARCHIVE_GROUP, "0")
                    continue
                await self._reader_trouble(stream, exc)

    async def _archive_once(self, dep: str, *, timeout: float) -> int:
        stream, dead = self._keys.scores(dep), self._keys.dead(dep)
        m = self._archive_state.setdefault(dep, _Membership(0, None))
        taken = await self._take(
            stream, dead, ARCHIVE_GROUP, self.consumer_name, m,
            count=_READ_COUNT, capacity=0, timeout=timeout,
        )  # fmt: skip
        if not taken.entries:
            return 0
        bad = self._hand_out(taken.entries, self._archivers, stream)
        buried = {entry_id for (entry_id, _), _ in bad}
        good = [entry_id for entry_id, _ in taken.entries if entry_id not in buried]
        if good:
            # an archive handler that raised is not retried: the error is logged and a
            # redelivery would only raise again
            await self._client().xack(stream, ARCHIVE_GROUP, *good)
        if bad:
            await self._bury(stream, dead, ARCHIVE_GROUP, bad)
        return len(taken.entries)

    async def _drain_archive(self, dep: str) -> None:
        while await self._archive_once(dep, timeout=0.0):
            pass

    def _hand_out(
        self, entries: list[Entry], handlers: Sequence[ScoreHandler], source: str
    ) -> list[tuple[Entry, str]]:
        """Decode score entries and give each batch to every handler.

        Returns the entries that did not decode, with why. A failing handler is logged: one
        bad subscriber must not stop the reader that feeds everyone.
        """
        bad: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                scores = _decode_scores(entry[1] or b"")
            except msgspec.DecodeError as exc:
                bad.append((entry, f"undecodable scores: {exc}"))
                continue
            if not scores:
                continue
            for handler in handlers:
                try:
                    handler(scores)
                except Exception:
                    log.exception("%s: score handler failed", source)
        return bad

    async def _reader_trouble(self, key: str, exc: RedisError) -> None:
        if isinstance(exc, _DOWN):
            self._lost(exc)
        else:
            log.warning("reading %s failed: %s", key, exc)
            await asyncio.sleep(0.1)

    # -- connection health ----------------------------------------------------------------

    def _set_up(self) -> None:
        self._connected = True
        self._up.set()

    def _lost(self, exc: BaseException) -> None:
        if self._connected:
            log.warning("bus '%s': connection lost (%s); reconnecting", self._safe_url, exc)
        self._connected = False
        self._up.clear()
        self._trouble.set()

    async def _wait_up(self, timeout: float) -> bool:
        if self._connected:
            return True
        if timeout <= 0:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            return False
        return True

    def _check_up(self) -> None:
        if not self._connected:
            # fail fast: waiting on a dead connection would blow every deadline behind it
            raise BusError(f"bus '{self._safe_url}': Redis is unreachable; reconnecting")

    def _error(self, action: str, exc: RedisError) -> BusError:
        if isinstance(exc, _DOWN):
            self._lost(exc)
        return BusError(f"bus '{self._safe_url}': {action} failed: {exc}")

    async def _supervise(self) -> None:
        delay = _RECONNECT_MIN_S
        while True:
            if self._connected:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.health_interval):
                        await self._trouble.wait()
                self._trouble.clear()
                if not self._connected:
                    continue
                try:
                    await self._refresh()
                except RedisError as exc:
                    if isinstance(exc, _DOWN):
                        self._lost(exc)
                    else:
                        log.warning("bus '%s': health check failed: %s", self._safe_url, exc)
                continue
            try:
                await self._client().ping()
                await self._rejoin()
            except RedisError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_S)
                continue
            delay = _RECONNECT_MIN_S
            self._set_up()
            log.info("bus '%s': reconnected", self._safe_url)

    async def _refresh(self) -> None:
        """Ping, and refresh the backlog of every group joined (one round trip)."""
        deps = sorted({d for d, _ in self._joined})
        if not deps:
            await self._client().ping()
            return
        async with self._client().pipeline(transaction=False) as pipe:
            for d in deps:
                pipe.xinfo_groups(self._keys.input(d))
            results = await pipe.execute(raise_on_error=False)
        missing = False
        for dep, result in zip(deps, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, _DOWN):
                    raise result
                missing = True  # the stream is gone ("no such key"): so are its groups
                continue
            lags = {g["name"].decode(): g["lag"] for g in result}
            for (d, group), m in self._joined.items():
                if d != dep:
                    continue
                if group not in lags:
                    missing = True
                elif lags[group] is not None:
                    m.backlog = lags[group]
        if missing:
            await self._rejoin()

    async def _rejoin(self) -> None:
        for dep, group in list(self._joined):
            if await self._create_group(self._keys.input(dep), group, "$"):
                log.warning(
                    "bus '%s': group %s/%s was gone (Redis restarted?); joined again, "
                    "requests published meanwhile were not seen by it",
                    self._safe_url, dep, group,
                )  # fmt: skip


def _entry(raw: list[Any]) -> Entry:
    """An entry as a script returns it: ``[id, [field, value, ...]]``."""
    entry_id, fields = raw[0], raw[1]
    return entry_id, (fields[1] if fields and len(fields) >= 2 else None)


def _is_nogroup(exc: RedisError) -> bool:
    return isinstance(exc, ResponseError) and (
        "NOGROUP" in str(exc) or "no longer exists" in str(exc)
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
