"""Shared fixtures: started services, stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from rendezvous.config import Deployment
from rendezvous.service import Rendezvous


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    """``rv = await start(deployment)``: a started service, stopped after the test."""
    services: list[Rendezvous] = []

    async def _start(*deps: Deployment) -> Rendezvous:
        service = Rendezvous(list(deps))
        await service.start()
        services.append(service)
        return service

    yield _start
    for s in services:
        await s.stop()
