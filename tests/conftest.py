"""Shared fixtures: deployments built from dicts, started services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from rendezvous.config import Deployment, parse_deployment
from rendezvous.service import Rendezvous

FIXTURES = Path(__file__).parent / "fixtures"


def deployment(
    models: list[dict[str, Any]],
    *,
    features: list[str] | None = None,
    base_dir: Path = FIXTURES,
    **over: Any,
) -> Deployment:
    """A deployment over the test models in tests/fixtures/e2e_models.py."""
    data: dict[str, Any] = {
        "name": "dep",
        "schema": {"features": features or ["a", "b"]},
        "archive": "memory",
        "deadline_ms": 1000,
        "models": models,
    }
    data.update(over)
    return parse_deployment(data, base_dir=base_dir)


def py(name: str, fn: str, role: str = "challenger", **over: Any) -> dict[str, Any]:
    return {"name": name, "kind": "python", "source": f"e2e_models:{fn}", "role": role, **over}


StartService = Callable[[Deployment], Any]


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
