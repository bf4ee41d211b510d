"""Many processes, one rendezvous: real Redis, real PostgreSQL, real HTTP, kill -9.

Two API processes, two replicas of the champion's worker, one shadow worker and an
archiver, all started from one deployment file as a user would start them on several hosts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster import Cluster, deployment_file
from redis import Redis

from rendezvous.archive import open_archive
from servers import RedisServer, need

pytestmark = pytest.mark.slow

N_REQUESTS = 400
CONCURRENCY = 8


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own: the restart test stops and starts it."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        need("these tests restart Redis: install redis-server (apt-get install redis-server)")
    assert binary is not None
    with RedisServer(tmp_path, binary=binary) as server:
        yield server


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer, pg_url: str) -> Iterator[Cluster]:
    prefix = f"mp{uuid.uuid4().hex[:8]}"
    bus = f"{redis_server.url}?prefix={prefix}&claim_idle_ms=500"
    file = deployment_file(tmp_path, bus=bus, archive=pg_url)
    c = Cluster(file, tmp_path, prefix=prefix)
    c.api("api-1")
    c.api("api-2")
    c.worker("champ-1", "champ")
    c.worker("champ-2", "champ")
    c.worker("shadow-1", "shadow")
    c.archiver()
    try:
        c.wait_ready(redis_server.url, c.stream, {"champ", "shadow"})
        yield c
    finally:
        c.stop()


async def drive(
    urls: list[str], n: int, *, on_progress: Any = None, sent: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Send ``n`` requests spread over the API processes; every answer, in send order."""
    answers: list[dict[str, Any]] = [{} for _ in range(n)]
    counter = iter(range(n))
    done = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        for i in counter:
            row = [float(i % 7) - 3.0, 1.0]
            response = await client.post(
                f"{urls[i % len(urls)]}/v1/deployments/scale/predict", json={"input": row}
            )
            answers[i] = {"status": response.status_code, "row": row, **response.json()}
            done += 1
            if on_progress is not None:
                await on_progress(done)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return answers


def pending(redis_url: str, stream: str) -> dict[str, int]:
    with Redis.from_url(redis_url) as r:
        return {g["name"].decode(): int(g["pending"]) for g in r.xinfo_groups(stream)}


def lag(redis_url: str, stream: str, group: str) -> int:
    with Redis.from_url(redis_url) as r:
        for g in r.xinfo_groups(stream):
            if g["name"].decode() == group:
                return int(g["pending"]) + int(g.get("lag") or 0)
    return 0


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def archived(pg_url: str) -> Any:
    archive = open_archive(pg_url)
    archive.start()
    return archive


def test_kill_9_of_a_champion_replica_loses_no_request(
    cluster: Cluster, redis_server: RedisServer, pg_url: str
) -> None:
    async def kill_midway(done: int) -> None:
        if done == N_REQUESTS // 3 and cluster.procs["champ-1"].poll() is None:
            cluster.kill("champ-1")

    answers = asyncio.run(drive(cluster.api_urls, N_REQUESTS, on_progress=kill_midway))
    assert cluster.procs["champ-1"].returncode is not None  # it really died mid-load

    # every request was answered: by the champion (the surviving replica), or by the
    # schedule's fallback or default when its first replica died holding it
    assert [a["status"] for a in answers] == [200] * N_REQUESTS
    reasons = {a["reason"] for a in answers}
    assert reasons <= {"champion", "fallback:shadow", "default"}
    for a in answers:
        if a["reason"] == "champion":
            assert a["prediction"] == (1 if a["row"][0] > 0 else 0)
    assert sum(a["reason"] == "champion" for a in answers) > N_REQUESTS // 2

    # after recovery nothing is left pending: the dead replica's entries were claimed
    url, stream, scores = redis_server.url, cluster.stream, cluster.scores
    wait_for(lambda: pending(url, stream) == {"champ": 0, "shadow": 0}, 30, "entries pending")
    wait_for(lambda: lag(url, scores, "archive") == 0, 30, "scores not archived")
    codes = cluster.stop()
    # uvicorn re-raises SIGTERM once it has shut down gracefully, hence -15 for the APIs
    assert all(code in (0, -15) for n, code in codes.items() if n != "champ-1"), codes

    archive = archived(pg_url)
    try:
        ids = {a["request_id"] for a in answers}
        assert archive.counts("scale")["requests"] == N_REQUESTS  # exactly the accepted ones
        assert {r.id for r in archive.requests("scale")} == ids
        for rid in ids:  # every score that was computed, for each model, made it
            models = {s.model for s in archive.scores_for_request(rid) if s.ok}
            assert models == {"champ", "shadow"}, rid
    finally:
        archive.stop()


def test_redis_restart_mid_load_recovers_without_restarting_processes(
    cluster: Cluster, redis_server: RedisServer, pg_url: str
) -> None:
    async def restart_midway(done: int) -> None:
        if done == N_REQUESTS // 3:
            redis_server.stop()
        if done == N_REQUESTS // 2:
            redis_server.start()

    answers = asyncio.run(drive(cluster.api_urls, N_REQUESTS, on_progress=restart_midway))
    assert [a["status"] for a in answers] == [200] * N_REQUESTS
    assert any(a["reason"] == "default" for a in answers)  # the outage was real

    # the same processes serve the champion's answers again once Redis is back
    def champion_answers() -> bool:
        later = asyncio.run(drive(cluster.api_urls, 40))
        return all(a["reason"] == "champion" for a in later[-10:])

    wait_for(champion_answers, 60, "the champion never answered again after the restart")
    cluster.check_alive()
    codes = cluster.stop()
    assert all(code in (0, -15) for code in codes.values()), codes
    archive = archived(pg_url)
    try:
        accepted = archive.counts("scale")["requests"]
        assert accepted >= N_REQUESTS + 40  # every request the APIs accepted is archived
        assert {r.id for r in archive.requests("scale")} >= {a["request_id"] for a in answers}
    finally:
        archive.stop()
