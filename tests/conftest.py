"""Shared fixtures: started services, and real Redis and PostgreSQL for the tests that need them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from pg_server import PostgresServer, drop_schema, find_server, schema_name
from rendezvous.config import Deployment
from rendezvous.service import Rendezvous
from servers import redis_url_for_tests


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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the session: a throwaway server, or the local one on 6379 (tests
    that share it use keys of their own)."""
    pytest.importorskip("redis")
    url, server = redis_url_for_tests(tmp_path_factory.mktemp("redis"))
    yield url
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgreSQL (see tests/pg_server.py); only tests that use it need one."""
    server = find_server()
    yield server
    server.destroy()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The server's URL with ``?schema=`` naming a schema of this test's own, dropped after."""
    schema = schema_name()
    yield f"{postgres_server.url}?schema={schema}"
    drop_schema(postgres_server.url, schema)
