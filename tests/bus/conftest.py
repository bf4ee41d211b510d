"""Every bus backend runs the same conformance suite: add a backend to BACKENDS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from rendezvous.bus import Bus, MemoryBus
from servers import delete_keys


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
