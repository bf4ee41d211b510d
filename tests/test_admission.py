"""Backpressure: requests wait for a lagging archive writer, and are refused only when its
buffer is full after one deadline; the service serves on once the writer catches up."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rendezvous.api.app import create_app
from rendezvous.service import Rendezvous
from support import deployment, py


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set it to let the archive writer store what it holds (set again at teardown)."""
    event = threading.Event()
    yield event
    event.set()


def hold_the_writer(rv: Rendezvous, release: threading.Event) -> None:
    archive = rv.get("dep").archive
    real_store = archive._store

    def held(*batch: Any) -> None:
        release.wait(30)
        real_store(*batch)

    archive._store = held  # type: ignore[method-assign]


def metric(rv: Rendezvous, name: str, **labels: str) -> float:
    value = rv.metrics.registry.get_sample_value(name, {"deployment": "dep", **labels})
    return value or 0.0


async def test_a_request_waits_for_a_lagging_writer_then_is_answered(
    start: Any, release: threading.Event
) -> None:
    dep = deployment([py("champ", "sign", "champion")], archive_buffer=4, deadline_ms=5000)
    rv = await start(dep)
    hold_the_writer(rv, release)
    runtime = rv.get("dep")
    for i in range(2):  # half the buffer: the writer is behind
        await runtime.predict_one([float(i), 1.0])
    assert runtime.archive.behind

    waiting = asyncio.ensure_future(runtime.predict_one([1.0, 1.0]))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # neither answered nor refused: it waits for the writer
    assert metric(rv, "rendezvous_archive_waits_total") == 1.0

    release.set()  # the writer catches up: the waiting request goes through
    answer = await asyncio.wait_for(waiting, 10)
    assert (answer.model, answer.reason) == ("champ", "champion")
    assert metric(rv, "rendezvous_rejected_requests_total", reason="overloaded") == 0.0
    runtime.archive.flush()
    assert runtime.archive.counts("dep")["requests"] == 3  # every accepted request archived


async def test_a_full_archive_refuses_after_one_deadline_and_serving_goes_on(
    start: Any, release: threading.Event
) -> None:
    dep = deployment([py("champ", "sign", "champion")], archive_buffer=2, deadline_ms=300)
    rv = await start(dep)
    hold_the_writer(rv, release)
    app = create_app(rv)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rv") as client:
        url = "/v1/deployments/dep/predict"
        for i in range(2):
            assert (await client.post(url, json={"input": [i, 1]})).status_code == 200
        assert rv.get("dep").archive.full

        t0 = time.monotonic()
        refused = await client.post(url, json={"input": [1, 1]})
        waited = time.monotonic() - t0
        assert refused.status_code == 503
        assert refused.json()["error"] == (
            "deployment 'dep': archive backlog is full (2 requests); try again shortly"
        )
        assert waited >= 0.3  # it waited its deadline for room first
        assert metric(rv, "rendezvous_rejected_requests_total", reason="overloaded") == 1.0

        release.set()
        answered = await client.post(url, json={"input": [1, 1]})
        assert answered.status_code == 200
        assert answered.json()["model"] == "champ"
    archive = rv.get("dep").archive
    archive.flush()
    assert archive.counts("dep")["requests"] == 3  # the two before, the one after


async def test_stop_releases_requests_waiting_for_the_writer(
    release: threading.Event,
) -> None:
    dep = deployment([py("champ", "sign", "champion")], archive_buffer=2, deadline_ms=30_000)
    rv = Rendezvous([dep])
    await rv.start()
    hold_the_writer(rv, release)
    runtime = rv.get("dep")
    await runtime.predict_one([1.0, 1.0])
    waiting = asyncio.ensure_future(runtime.predict_one([1.0, 1.0]))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await runtime.admission.stop()  # as a stopping service does, before its executors
    answer = await asyncio.wait_for(waiting, 5)  # released at once, not after 30 s
    assert answer.reason == "champion"  # the buffer had room: accepted, and answered
    release.set()
    await rv.stop()
