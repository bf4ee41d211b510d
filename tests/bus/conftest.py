"""Every bus backend runs the same conformance suite: add a backend to BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from rendezvous.bus import Bus, MemoryBus

BACKENDS: dict[str, Callable[[], Bus]] = {"memory": MemoryBus}


@pytest.fixture(params=sorted(BACKENDS))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    backend = BACKENDS[request.param]()
    async with backend:
        yield backend
