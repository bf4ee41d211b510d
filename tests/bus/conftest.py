"""Every bus backend runs the same conformance suite: add a backend to BACKENDS."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rendezvous.bus import Bus, MemoryBus
from servers import RedisServer, delete_keys, need

if TYPE_CHECKING:
    from redis.asyncio import Redis


def _memory(request: pytest.FixtureRequest) -> Bus:
    return MemoryBus()


def _redis(request: pytest.FixtureRequest) -> Bus:
    pytest.importorskip("redis")
    from rendezvous.bus.redis import RedisBus

    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return RedisBus(url, prefix=prefix, health_interval=0.2)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Bus]] = {
    "memory": _memory,
    "redis": _redis,
}


@pytest.fixture(params=sorted(BACKENDS))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    backend = BACKENDS[request.param](request)
    async with backend:
        yield backend


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of the test's own; its keys are deleted afterwards (Redis may be shared).

    A plain fixture (sync client): the ``bus`` fixture asks for it while its loop runs.
    """
    prefix = f"rvtest-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_keys(redis_url, f"{prefix}:*")


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain redis-py client on the test Redis, to look behind the bus's back."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, to stop and start again on the same port."""
    binary = shutil.which("redis-server")
    if binary is None:
        need("this test restarts its own redis-server: apt-get install redis-server")
    with RedisServer(tmp_path, binary=binary) as server:
        yield server
