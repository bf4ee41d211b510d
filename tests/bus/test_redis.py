"""What only the Redis bus has to get right: crashed replicas, dead letters, many processes
sharing streams, outages, bad payloads. Each bus here stands for one process."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest

pytest.importorskip("redis")

from redis.asyncio import Redis

from rendezvous.bus import open_bus
from rendezvous.bus.redis import RedisBus
from rendezvous.errors import BusError, MissingDependency
from rendezvous.messages import Request, Score
from servers import RedisServer, free_port

DEP = "dep"
MakeBus = Callable[..., Awaitable[RedisBus]]


def req(i: int) -> Request:
    return Request(f"r{i}", DEP, [float(i)], time.time(), "api-1")


def score(request_id: str, reply_to: str = "api-1") -> Score:
    return Score(request_id, DEP, "m", "v1", 1, reply_to=reply_to)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def pending(raw: Redis, key: str, group: str, *, settles_at: int = 0) -> int:
    """The group's pending count once it is ``settles_at``, or as it is after 2 s: acks
    are posted, and leave with the next read or a loop turn or two later."""
    deadline = time.monotonic() + 2.0
    while True:
        count: int = (await raw.xpending(key, group))["pending"]
        if count == settles_at or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.01)


@pytest.fixture
async def make_bus(redis_url: str, redis_prefix: str) -> AsyncIterator[MakeBus]:
    """``await make_bus(**options)``: a started bus on the test's keys, stopped afterwards."""
    buses: list[RedisBus] = []

    async def make(**options: Any) -> RedisBus:
        options.setdefault("health_interval", 0.1)
        bus = RedisBus(redis_url, prefix=redis_prefix, **options)
        await bus.start()
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.stop()


@pytest.fixture
def keys(redis_prefix: str) -> dict[str, str]:
    p = f"{redis_prefix}:{{{DEP}}}"
    return {"in": f"{p}:in", "scores": f"{p}:scores", "dead": f"{p}:dead"}


# -- crashed replicas and dead letters ----------------------------------------------------


async def test_a_dead_replicas_pending_requests_go_to_a_live_replica(
    make_bus: MakeBus, raw: Redis, keys: dict[str, str]
) -> None:
    doomed = await make_bus(claim_idle_ms=200)
    live = await make_bus(claim_idle_ms=200)
    for bus in (doomed, live):
        await bus.join(DEP, "m")
    for i in range(3):
        await live.publish(req(i))
    taken = await doomed.receive(DEP, "m", "doomed", max_items=10, timeout=1.0)
    assert [r.id for r in taken] == ["r0", "r1", "r2"]
    await doomed.stop()  # dies holding them: never acked

    # not idle long enough: the owner may still be computing
    assert await live.receive(DEP, "m", "live", max_items=10, timeout=0.05) == []
    await asyncio.sleep(0.25)
    got = await live.receive(DEP, "m", "live", max_items=10, timeout=1.0)
    assert [r.id for r in got] == ["r0", "r1", "r2"]
    await live.ack(DEP, "m", got)
    assert await pending(raw, keys["in"], "m") == 0


async def test_complete_acknowledges_only_once_the_scores_are_archived(
    make_bus: MakeBus, raw: Redis, keys: dict[str, str]
) -> None:
    bus = await make_bus()
    await bus.join(DEP, "m")
    replies: list[Score] = []
    bus.subscribe(replies.extend, reply_to="api-1")
    for i in range(4):
        await bus.publish(req(i))
    first = await bus.receive(DEP, "m", "c", max_items=2, timeout=1.0)
    await bus.complete(DEP, "m", first, [score(r.id) for r in first])
    second = await bus.receive(DEP, "m", "c", max_items=2, timeout=1.0)  # carries the above
    assert (await raw.xpending(keys["in"], "m"))["pending"] == 2  # only the batch in hand
    assert await raw.xlen(keys["scores"]) == 1

    await raw.delete(keys["scores"])
    await raw.set(keys["scores"], "not a stream")  # adding the archive's copy now fails
    await bus.complete(DEP, "m", second, [score(r.id) for r in second])
    assert await bus.receive(DEP, "m", "c", max_items=2, timeout=0.05) == []
    await eventually(lambda: len(replies) == 4)  # the collector still got its answers
    pending = await raw.xpending_range(keys["in"], "m", "-", "+", 10)
    entries = await raw.xrange(keys["in"])  # the second batch stays pending, for redelivery
    assert sorted(p["message_id"] for p in pending) == [entry_id for entry_id, _ in entries[2:]]


async def test_a_request_never_acked_goes_to_the_dead_letter_stream(
    make_bus: MakeBus, raw: Redis, keys: dict[str, str]
) -> None:
    bus = await make_bus(claim_idle_ms=50, max_deliveries=2)
    await bus.join(DEP, "m")
    await bus.publish(req(7))
    for consumer in ("a", "b"):  # two deliveries, each replica dies before acking
        got = await bus.receive(DEP, "m", consumer, max_items=5, timeout=1.0)
        assert [r.id for r in got] == ["r7"], consumer
        await asyncio.sleep(0.08)
    assert await bus.receive(DEP, "m", "c", max_items=5, timeout=0.05) == []

    [(_, letter)] = await raw.xrange(keys["dead"])
    assert letter[b"reason"] == b"not acknowledged after 2 deliveries"
    assert letter[b"group"] == b"m" and letter[b"source"] == keys["in"].encode()
    assert msgspec.msgpack.decode(letter[b"payload"], type=Request).id == "r7"
    assert (await raw.xpending(keys["in"], "m"))["pending"] == 0


async def test_consumers_long_gone_are_forgotten(
    make_bus: MakeBus, raw: Redis, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rendezvous.bus._redis_groups.FORGET_AFTER_MS", 0)  # 2 x claim_idle_ms
    bus = await make_bus(claim_idle_ms=50)
    await bus.join(DEP, "m")
    await bus.publish(req(1))
    got = await bus.receive(DEP, "m", "stopped-replica", max_items=5, timeout=1.0)
    await bus.ack(DEP, "m", got)

    async def consumers() -> list[bytes]:
        return [c["name"] for c in await raw.xinfo_consumers(keys["in"], "m")]

    assert await consumers() == [b"stopped-replica"]
    await asyncio.sleep(0.15)
    await bus.publish(req(2))
    assert len(await bus.receive(DEP, "m", "live-replica", max_items=5, timeout=0.0)) == 1
    assert await consumers() == [b"live-replica"]


async def test_malformed_entries_are_dead_lettered_and_readers_survive(
    make_bus: MakeBus, raw: Redis, keys: dict[str, str], redis_prefix: str
) -> None:
    bus = await make_bus()
    await bus.join(DEP, "m")
    replies: list[Score] = []
    archived: list[Score] = []
    bus.subscribe(replies.extend, reply_to="api-1")
    bus.subscribe(archived.extend, reply_to=None)

    await raw.xadd(keys["in"], {b"r": b"\xc1 not msgpack"})
    await raw.xadd(keys["in"], {b"x": msgspec.msgpack.encode({"id": 3})})  # wrong shape
    await bus.publish(req(1))
    got = await bus.receive(DEP, "m", "c", max_items=10, timeout=1.0)
    assert [r.id for r in got] == ["r1"]
    await bus.ack(DEP, "m", got)
    assert await pending(raw, keys["in"], "m") == 0

    reply_key = f"{redis_prefix}:{{api-1}}:reply"
    await raw.xadd(reply_key, {b"s": b"garbage"})
    await raw.xadd(keys["scores"], {b"s": b"garbage"})
    await bus.publish_scores([score("r1")])
    await eventually(lambda: len(replies) == 1 and len(archived) == 1)
    assert replies[0].request_id == archived[0].request_id == "r1"

    letters = [f for _, f in await raw.xrange(keys["dead"])]
    assert sorted(f[b"source"].decode() for f in letters) == sorted(
        [keys["in"], keys["in"], keys["scores"]]
    )
    assert all(f[b"reason"].startswith(b"undecodable") for f in letters)
    assert b"\xc1 not msgpack" in [f[b"payload"] for f in letters]
    [(_, reply_letter)] = await raw.xrange(f"{redis_prefix}:{{api-1}}:reply-dead")
    assert reply_letter[b"payload"] == b"garbage"
    assert (await raw.xpending(keys["scores"], "archive"))["pending"] == 0


async def test_stopping_before_the_archive_reader_ever_ran_still_archives(
    make_bus: MakeBus,
) -> None:
    archived: list[Score] = []
    archiver = await make_bus()
    await archiver.publish_scores([score(f"early{i}") for i in range(3)])
    archiver.subscribe(archived.extend, reply_to=None, deployments=[DEP])
    await archiver.stop()  # its reader never ran: the archive group does not exist yet
    assert sorted(s.request_id for s in archived) == [f"early{i}" for i in range(3)]


# -- capacity -----------------------------------------------------------------------------


async def test_replicas_never_drop_the_same_excess_twice(make_bus: MakeBus) -> None:
    dropped: list[str] = []
    a, b = await make_bus(), await make_bus()
    for bus in (a, b):
        await bus.join(DEP, "m", capacity=5, on_drop=lambda r: dropped.append(r.id))
    for i in range(20):
        await a.publish(req(i))
    got = await asyncio.gather(
        *(
            bus.receive(DEP, "m", name, max_items=100, timeout=0.5)
            for bus, name in [(a, "a"), (b, "b")]
        )
    )
    assert sorted(r.id for batch in got for r in batch) == sorted(f"r{i}" for i in range(15, 20))
    assert sorted(dropped) == sorted(f"r{i}" for i in range(15))
    assert a.dropped(DEP, "m") + b.dropped(DEP, "m") == 15


async def test_backlog_follows_what_other_processes_publish(make_bus: MakeBus) -> None:
    consumer, producer = await make_bus(), await make_bus()
    await consumer.join(DEP, "m")
    for i in range(7):
        await producer.publish(req(i))
    await eventually(lambda: consumer.backlog(DEP, "m") == 7)
    await consumer.receive(DEP, "m", "c", max_items=5, timeout=0.5)
    assert consumer.backlog(DEP, "m") == 2


# -- scores -------------------------------------------------------------------------------


async def test_each_api_process_gets_only_the_scores_for_its_own_requests(
    make_bus: MakeBus,
) -> None:
    api_a, api_b, executor = await make_bus(), await make_bus(), await make_bus()
    got_a: list[Score] = []
    got_b: list[Score] = []
    api_a.subscribe(got_a.extend, reply_to="a/dep")
    api_b.subscribe(got_b.extend, reply_to="b/dep")
    await executor.publish_scores([score("1", "a/dep"), score("2", "b/dep"), score("3", "a/dep")])
    await executor.publish_scores([score("4", "b/dep")])
    await eventually(lambda: len(got_a) == 2 and len(got_b) == 2)
    await asyncio.sleep(0.1)  # and nothing more arrives
    assert [s.request_id for s in got_a] == ["1", "3"]
    assert [s.request_id for s in got_b] == ["2", "4"]


async def test_archive_subscribers_share_the_scores_once_each(make_bus: MakeBus) -> None:
    producer = await make_bus()  # a worker process: it joined the deployment
    await producer.join(DEP, "m")
    await producer.publish_scores([score(f"early{i}") for i in range(3)])
    shelves: list[list[str]] = [[], []]
    for i, shelf in enumerate(shelves):
        # archiver processes: they join nothing, they find the deployment on the bus
        archiver = await make_bus(consumer_name=f"archiver-{i}")

        def into(scores: Any, shelf: list[str] = shelf) -> None:
            shelf.extend(s.request_id for s in scores)

        archiver.subscribe(into, reply_to=None)
    for i in range(40):
        await producer.publish_scores([score(f"s{i}")])
        await asyncio.sleep(0.005)
    await eventually(lambda: sum(map(len, shelves)) >= 43)
    await asyncio.sleep(0.1)
    everything = shelves[0] + shelves[1]
    assert sorted(everything) == sorted(
        [f"early{i}" for i in range(3)] + [f"s{i}" for i in range(40)]
    )
    assert shelves[0] and shelves[1]  # shared, not duplicated


async def test_the_archive_reads_scores_in_batches_not_one_round_trip_each(
    make_bus: MakeBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = await make_bus()
    await producer.join(DEP, "m")
    archiver = await make_bus()
    reads = 0
    take = archiver._groups.take

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await take(*args, **kwargs)

    monkeypatch.setattr(archiver._groups, "take", counted)
    archived: list[Score] = []
    archiver.subscribe(archived.extend, reply_to=None)
    await eventually(lambda: reads > 0)  # the reader is waiting
    reads = 0
    for i in range(40):  # 40 model calls, 5 ms apart: one read each without lingering
        await producer.publish_scores([score(f"s{i}")])
        await asyncio.sleep(0.005)
    await eventually(lambda: len(archived) == 40)
    assert sorted(s.request_id for s in archived) == sorted(f"s{i}" for i in range(40))
    assert reads <= 15, f"{reads} reads for 40 score batches"


async def test_stopping_archives_the_scores_still_unread(make_bus: MakeBus) -> None:
    archived: list[Score] = []
    archiver = await make_bus()
    await archiver.join(DEP, "m")
    archiver.subscribe(archived.extend, reply_to=None)
    await archiver.publish_scores([score(f"last{i}") for i in range(5)])  # executors draining
    await archiver.stop()
    assert sorted(s.request_id for s in archived) == [f"last{i}" for i in range(5)]


async def test_reply_streams_expire_and_their_ttl_is_set_once_per_tenth_of_it(
    own_redis: RedisServer,
) -> None:
    async with RedisBus(own_redis.url, reply_ttl=30.0) as bus, Redis.from_url(own_redis.url) as raw:
        await raw.config_resetstat()
        for i in range(5):
            await bus.publish_scores([score(f"r{i}")])
        ttl_ms = await raw.pttl("rv:{api-1}:reply")
        assert 29_000 < ttl_ms <= 30_000
        stats = await raw.info("commandstats")
        assert stats["cmdstat_pexpire"]["calls"] == 1
        assert stats["cmdstat_xadd"]["calls"] == 10  # each batch: its reply and its archive copy


async def test_a_publish_nobody_awaits_reports_its_failure_to_its_handler(
    make_bus: MakeBus, raw: Redis, keys: dict[str, str]
) -> None:
    bus = await make_bus()
    await raw.set(keys["in"], "not a stream")  # every XADD to it fails: WRONGTYPE
    failures: list[BusError] = []
    bus.publish_nowait(req(1), failures.append)
    await eventually(lambda: len(failures) == 1)
    assert "WRONGTYPE" in str(failures[0])
    assert bus.ready  # the command failed, not the connection


# -- outages ------------------------------------------------------------------------------


async def test_the_bus_rides_out_a_redis_restart(own_redis: RedisServer) -> None:
    replies: list[Score] = []
    async with RedisBus(own_redis.url, health_interval=0.1) as bus:
        await bus.join(DEP, "m")
        bus.subscribe(replies.extend, reply_to="api-1")
        assert bus.ready

        own_redis.stop()
        await eventually(lambda: not bus.ready)
        t0 = time.monotonic()
        assert await bus.receive(DEP, "m", "c", max_items=5, timeout=0.2) == []
        assert time.monotonic() - t0 >= 0.19
        with pytest.raises(BusError, match="unreachable"):
            await bus.publish(req(1))
        with pytest.raises(BusError, match="unreachable"):
            await bus.publish_scores([score("r1")])
        with pytest.raises(BusError, match="unreachable"):  # at once, not via the handler
            bus.publish_nowait(req(1), lambda exc: None)

        own_redis.start()  # same port, nothing kept: groups and streams are gone
        await eventually(lambda: bus.ready, timeout=10.0)
        await bus.publish(req(2))
        got = await bus.receive(DEP, "m", "c", max_items=5, timeout=2.0)
        assert [r.id for r in got] == ["r2"]
        await bus.publish_scores([score("r2")])
        await eventually(lambda: [s.request_id for s in replies] == ["r2"])


async def test_start_says_when_redis_cannot_be_reached() -> None:
    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(BusError, match="cannot reach Redis"):
        await bus.start()
    assert not bus.ready
    await bus.stop()  # harmless


# -- choosing and configuring -------------------------------------------------------------


def test_open_bus_reads_options_from_the_url_and_hides_the_password() -> None:
    bus = open_bus(
        "redis://:s3cret@10.0.0.5:6380/2?maxlen=500&claim_idle_ms=2000&max_deliveries=7"
        "&prefix=staging&socket_timeout=3"
    )
    assert isinstance(bus, RedisBus)
    assert (bus.maxlen, bus.claim_idle_ms, bus.max_deliveries, bus.prefix) == (
        500, 2000, 7, "staging",
    )  # fmt: skip
    assert "s3cret" not in repr(bus)
    in_query = RedisBus("redis://10.0.0.5:6380/2?password=s3cret&prefix=p")
    assert "s3cret" not in repr(in_query) and "password=***" in repr(in_query)
    assert isinstance(open_bus("rediss://cache.example:6380/0"), RedisBus)
    assert RedisBus("redis://h/0?maxlen=5", maxlen=9).maxlen == 9  # keywords win


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h/0?maxlen=0", "maxlen must be a positive integer"),
        ("redis://h/0?claim_idle_ms=soon", "claim_idle_ms must be a positive integer"),
        ("redis://h/0?max_deliveries=-1", "max_deliveries must be a positive integer"),
        ("redis://h/0?prefix={rv}", "prefix"),
    ],
)
def test_bad_options_are_named(url: str, message: str) -> None:
    with pytest.raises(BusError, match=message):
        RedisBus(url)


@pytest.mark.parametrize("package", ["redis", "hiredis"])
def test_a_missing_redis_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == package]:
        monkeypatch.setitem(sys.modules, name, None)  # None: "not installed" to importers
    for name in [
        "rendezvous.bus.redis",
        "rendezvous.bus._redis_link",
        "rendezvous.bus._redis_streams",
        "rendezvous.bus._redis_wire",
    ]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(MissingDependency, match=r"pip install 'rendezvous-ml\[redis\]'"):
        open_bus("redis://127.0.0.1:6379/0")
