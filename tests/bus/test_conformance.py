"""The bus contract (see rendezvous.bus.base), checked for every backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from rendezvous.bus import Bus
from rendezvous.errors import BusError
from rendezvous.messages import Request, Score

DEP = "dep"


def req(i: int, *, dep: str = DEP, reply_to: str = "api-1") -> Request:
    return Request(f"r{i}", dep, [float(i), 1.0], time.time(), reply_to)


def score(request_id: str, *, model: str = "m", reply_to: str = "api-1") -> Score:
    return Score(request_id, DEP, model, "v1", 1, None, None, reply_to=reply_to)


async def drain(bus: Bus, group: str, consumer: str = "c0") -> list[Request]:
    out: list[Request] = []
    while True:
        got = await bus.receive(DEP, group, consumer, max_items=100, timeout=0.05)
        if not got:
            return out
        out += got


async def test_every_group_receives_every_request(bus: Bus) -> None:
    for group in ("champion", "shadow", "decoy"):
        await bus.join(DEP, group)
    for i in range(10):
        await bus.publish(req(i))
    for group in ("champion", "shadow", "decoy"):
        got = await drain(bus, group)
        assert [r.id for r in got] == [f"r{i}" for i in range(10)], group


async def test_request_round_trips_unchanged(bus: Bus) -> None:
    await bus.join(DEP, "m")
    sent = Request("abc", DEP, [0.5, -1.25, 3.0], 1700000000.123, "api-7")
    await bus.publish(sent)
    [got] = await drain(bus, "m")
    assert got == sent


async def test_a_group_only_sees_requests_published_after_it_joined(bus: Bus) -> None:
    await bus.join(DEP, "early")
    await bus.publish(req(0))
    await bus.join(DEP, "late")
    await bus.publish(req(1))
    assert [r.id for r in await drain(bus, "early")] == ["r0", "r1"]
    assert [r.id for r in await drain(bus, "late")] == ["r1"]


async def test_deployments_are_isolated(bus: Bus) -> None:
    await bus.join(DEP, "m")
    await bus.join("other", "m")
    await bus.publish(req(1, dep="other"))
    assert await drain(bus, "m") == []
    got = await bus.receive("other", "m", "c0", max_items=10, timeout=0.5)
    assert [r.id for r in got] == ["r1"]


async def test_replicas_of_one_group_share_its_requests(bus: Bus) -> None:
    await bus.join(DEP, "m")
    for i in range(40):
        await bus.publish(req(i))
    seen: list[str] = []
    for consumer in ("a", "b", "a", "b"):
        got = await bus.receive(DEP, "m", consumer, max_items=10, timeout=0.5)
        seen += [r.id for r in got]
    assert sorted(seen) == sorted(f"r{i}" for i in range(40))  # each exactly once


async def test_concurrent_replicas_never_get_the_same_request(bus: Bus) -> None:
    await bus.join(DEP, "m", capacity=10_000)
    seen: dict[str, list[str]] = {"a": [], "b": []}

    async def consume(name: str) -> None:
        while True:
            got = await bus.receive(DEP, "m", name, max_items=7, timeout=0.2)
            if not got:
                return
            seen[name] += [r.id for r in got]
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(consume(n)) for n in seen]
    for i in range(500):
        await bus.publish(req(i))
        if i % 50 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    everything = seen["a"] + seen["b"]
    assert len(everything) == 500
    assert set(everything) == {f"r{i}" for i in range(500)}


async def test_receive_respects_max_items_and_order(bus: Bus) -> None:
    await bus.join(DEP, "m")
    for i in range(5):
        await bus.publish(req(i))
    first = await bus.receive(DEP, "m", "c", max_items=3, timeout=0.5)
    rest = await bus.receive(DEP, "m", "c", max_items=3, timeout=0.5)
    assert [r.id for r in first] == ["r0", "r1", "r2"]
    assert [r.id for r in rest] == ["r3", "r4"]


async def test_receive_times_out_empty(bus: Bus) -> None:
    await bus.join(DEP, "m")
    t0 = time.monotonic()
    assert await bus.receive(DEP, "m", "c", max_items=5, timeout=0.1) == []
    assert time.monotonic() - t0 >= 0.09


async def test_receive_wakes_when_a_request_arrives(bus: Bus) -> None:
    await bus.join(DEP, "m")
    waiter = asyncio.create_task(bus.receive(DEP, "m", "c", max_items=5, timeout=5.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await bus.publish(req(1))
    got = await asyncio.wait_for(waiter, 2.0)
    assert [r.id for r in got] == ["r1"]


async def test_a_full_group_drops_its_oldest_and_reports_them(bus: Bus) -> None:
    dropped: list[str] = []
    await bus.join(DEP, "slow", capacity=3, on_drop=lambda r: dropped.append(r.id))
    await bus.join(DEP, "fast", capacity=100)
    for i in range(8):
        await bus.publish(req(i))
    assert [r.id for r in await drain(bus, "slow")] == ["r5", "r6", "r7"]
    # by the time the group reads, its excess is reported (memory drops at publish,
    # Redis when a consumer of the group next receives: see rendezvous.bus.redis)
    assert dropped == ["r0", "r1", "r2", "r3", "r4"]
    # one slow group never costs another group its requests
    assert len(await drain(bus, "fast")) == 8


async def test_backlog_counts_waiting_requests(bus: Bus) -> None:
    await bus.join(DEP, "m")
    for i in range(4):
        await bus.publish(req(i))
    assert bus.backlog(DEP, "m") == 4
    await bus.receive(DEP, "m", "c", max_items=3, timeout=0.5)
    assert bus.backlog(DEP, "m") == 1


async def test_scores_reach_their_collector_and_every_archive_subscriber(bus: Bus) -> None:
    mine: list[Score] = []
    theirs: list[Score] = []
    everything: list[Score] = []

    def into(target: list[Score]) -> object:
        def handler(scores: Sequence[Score]) -> None:
            target.extend(scores)

        return handler

    bus.subscribe(into(mine), reply_to="api-1")  # type: ignore[arg-type]
    bus.subscribe(into(theirs), reply_to="api-2")  # type: ignore[arg-type]
    bus.subscribe(into(everything), reply_to=None)  # type: ignore[arg-type]
    batch = [score("a"), score("b", reply_to="api-2"), score("c")]
    await bus.publish_scores(batch)
    for _ in range(50):  # remote backends deliver asynchronously
        if len(everything) == 3 and len(mine) == 2 and len(theirs) == 1:
            break
        await asyncio.sleep(0.02)
    assert [s.request_id for s in mine] == ["a", "c"]
    assert [s.request_id for s in theirs] == ["b"]
    assert sorted(s.request_id for s in everything) == ["a", "b", "c"]
    assert everything[0] == batch[0] or batch[0] in everything  # scores round-trip unchanged


async def test_complete_publishes_a_batchs_scores(bus: Bus) -> None:
    mine: list[Score] = []
    everything: list[Score] = []
    bus.subscribe(mine.extend, reply_to="api-1")
    bus.subscribe(everything.extend, reply_to=None)
    await bus.join(DEP, "m")
    for i in range(2):
        await bus.publish(req(i))
    batch = await bus.receive(DEP, "m", "c", max_items=10, timeout=1.0)
    await bus.complete(DEP, "m", batch, [score(r.id) for r in batch])
    # the executor's next read (a remote backend may send the scores with it)
    assert await bus.receive(DEP, "m", "c", max_items=10, timeout=0.05) == []
    for _ in range(50):
        if len(mine) == 2 and len(everything) == 2:
            break
        await asyncio.sleep(0.02)
    assert [s.request_id for s in mine] == ["r0", "r1"]
    assert sorted(s.request_id for s in everything) == ["r0", "r1"]


async def test_publish_nowait_delivers_in_order_and_reports_nothing_when_all_goes_well(
    bus: Bus,
) -> None:
    await bus.join(DEP, "m")
    failures: list[BusError] = []
    for i in range(5):
        bus.publish_nowait(req(i), failures.append)
    got: list[Request] = []
    for _ in range(100):
        got += await bus.receive(DEP, "m", "c0", max_items=10, timeout=0.05)
        if len(got) == 5:
            break
    assert [r.id for r in got] == [f"r{i}" for i in range(5)]
    assert failures == []


async def test_publishing_with_no_group_joined_is_harmless(bus: Bus) -> None:
    await bus.publish(req(1, dep="nobody-listens"))
    await bus.publish_scores([])


async def test_receiving_on_a_group_that_never_joined_is_an_error(bus: Bus) -> None:
    with pytest.raises(BusError, match="has not joined"):
        await bus.receive(DEP, "ghost", "c", max_items=1, timeout=0.01)


async def test_capacity_must_be_positive(bus: Bus) -> None:
    with pytest.raises(BusError, match="capacity"):
        await bus.join(DEP, "m", capacity=0)


async def test_an_archive_subscriber_gets_only_the_deployments_it_names(bus: Bus) -> None:
    mine: list[Score] = []
    bus.subscribe(mine.extend, reply_to=None, deployments=[DEP])
    await bus.join(DEP, "m")  # a deployment this process serves
    others = Score("x", "other", "m", "v1", 1, reply_to="api-9")
    await bus.publish_scores([score("a"), others, score("b")])
    for _ in range(50):
        if len(mine) >= 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # time for a wrongly delivered score to show up
    assert sorted(s.request_id for s in mine) == ["a", "b"]
