"""The lean wires the Redis bus runs its request path on, against a real Redis: replies in
order, errors in place, no wire reused once out of step, connections opened by redis-py
and closed by us."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("redis")

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from rendezvous.bus._redis_wire import TICK_S, Wires
from rendezvous.bus.redis import RedisBus
from rendezvous.errors import BusError
from servers import RedisServer, delete_keys


@pytest.fixture
def key(redis_url: str) -> Iterator[str]:
    name = f"rvtest-wire-{uuid.uuid4().hex[:12]}"
    yield name
    delete_keys(redis_url, f"{name}*")


async def connections(raw: Redis) -> int:
    return len(await raw.client_list())


async def test_replies_come_in_order_with_errors_and_nils_in_place(raw: Redis, key: str) -> None:
    wires = Wires(raw)
    replies = await wires.execute(
        [
            (b"SET", key, b"text"),
            (b"INCR", key),  # not an integer: an error reply, returned, not raised
            (b"GET", f"{key}-missing"),
            (b"XADD", f"{key}-s", b"*", b"f", 1.5),
            (b"XLEN", f"{key}-s"),
        ],
        2.0,
    )
    assert replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError) and "not an integer" in str(replies[1])
    assert replies[2] is None
    assert isinstance(replies[3], bytes) and b"-" in replies[3]
    assert replies[4] == 1
    assert await raw.xrange(f"{key}-s") == [(replies[3], {b"f": b"1.5"})]
    wires.close()


async def test_a_reply_larger_than_one_read_arrives_whole(raw: Redis, key: str) -> None:
    wires = Wires(raw)
    payload = bytes(range(256)) * 2000  # 512 kB: several socket reads
    await wires.execute([(b"XADD", key, b"*", b"p", payload)], 2.0)
    [entries] = await wires.execute([(b"XRANGE", key, b"-", b"+")], 2.0)
    assert entries[0][1] == [b"p", payload]
    wires.close()


async def test_a_wire_cancelled_mid_command_is_never_reused(raw: Redis, key: str) -> None:
    wires = Wires(raw)
    await wires.execute([(b"PING",)], 2.0)  # one idle wire
    before = await connections(raw)
    blocked = asyncio.create_task(
        wires.execute([(b"XREAD", b"BLOCK", 2000, b"STREAMS", key, b"$")], 5.0)
    )
    await asyncio.sleep(0.1)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    # were that wire reused, its next reply would be this entry, answering the wrong command
    await raw.xadd(key, {b"late": b"1"})
    assert await wires.execute([(b"ECHO", b"mine")], 2.0) == [b"mine"]
    await asyncio.sleep(0.05)
    assert await connections(raw) == before  # closed, and one new wire in its place
    wires.close()


async def test_a_pipeline_past_its_deadline_fails_and_the_wires_go_on(raw: Redis, key: str) -> None:
    wires = Wires(raw)
    t0 = time.monotonic()
    block_forever = (b"XREAD", b"BLOCK", 0, b"STREAMS", key, b"$")
    # the outer timeout turns a missed deadline into a failure (its error names no deadline)
    with pytest.raises(TimeoutError, match="deadline"):
        async with asyncio.timeout(5.0):
            await wires.execute([block_forever], 0.2)
    assert 0.2 <= time.monotonic() - t0 < 0.2 + 4 * TICK_S
    assert await wires.execute([(b"ECHO", b"after")], 2.0) == [b"after"]
    await asyncio.sleep(2 * TICK_S)
    assert wires._watchdog is None  # nothing busy: the watchdog does not tick for nothing
    wires.close()


async def test_wires_open_redis_py_connections_with_the_urls_database(
    redis_url: str, key: str
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/3"
    async with Redis.from_url(url) as client, Redis.from_url(redis_url) as db0:
        wires = Wires(client)
        await wires.execute([(b"SET", key, b"in-3")], 2.0)
        assert await client.get(key) == b"in-3"
        assert await db0.get(key) is None
        await client.delete(key)
        wires.close()


async def test_a_stopped_bus_leaves_no_connection_open(redis_url: str, raw: Redis) -> None:
    before = await connections(raw)
    bus = RedisBus(redis_url, prefix=f"rvtest-{uuid.uuid4().hex[:8]}", health_interval=0.1)
    async with bus:
        await bus.join("d", "m")
        bus.subscribe(lambda scores: None, reply_to="api")
        await bus.receive("d", "m", "c", max_items=1, timeout=0.05)
        assert await connections(raw) > before
    await asyncio.sleep(0.1)
    assert await connections(raw) == before


async def test_one_callers_bad_write_fails_that_caller_alone(redis_url: str, key: str) -> None:
    bus = RedisBus(redis_url, prefix=f"rvtest-{uuid.uuid4().hex[:8]}")
    async with bus:
        link = bus._link  # the batching under test lives there
        good = link.send([(b"XADD", key, b"*", b"f", b"v")])
        bad = link.send([(b"XADD", key, b"MAXLEN", b"many", b"*", b"f", b"v")])
        outcomes = await asyncio.gather(good, bad, return_exceptions=True)
        assert outcomes[0] is None
        assert isinstance(outcomes[1], BusError) and "writing failed" in str(outcomes[1])
        assert link.up  # a command's error is not an outage
        async with Redis.from_url(redis_url) as raw:
            assert await raw.xlen(key) == 1


async def test_posted_writes_still_leave_when_the_bus_stops_before_any_read(
    redis_url: str, key: str
) -> None:
    bus = RedisBus(redis_url, prefix=f"rvtest-{uuid.uuid4().hex[:8]}")
    await bus.start()
    bus._link.post([(b"XADD", key, b"*", b"f", b"v")], "a posted write")  # an ack, say
    await bus.stop()
    async with Redis.from_url(redis_url) as raw:
        assert await raw.xlen(key) == 1


async def test_after_a_redis_restart_a_dead_idle_wire_is_replaced(
    own_redis: RedisServer,
) -> None:
    async with Redis.from_url(own_redis.url) as client:
        wires = Wires(client)
        assert await wires.execute([(b"PING",)], 2.0) == [b"PONG"]
        own_redis.stop()
        own_redis.start()
        assert await wires.execute([(b"ECHO", b"back")], 2.0) == [b"back"]
        wires.close()
