"""Shared fixtures: started services, and real Redis and PostgreSQL for the tests that need them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from pg_server import PostgresServer, drop_schema, find_server, schema_name
from rendezvous.config import Deployment
from rendezvous.service import Rendezvous
from servers import delete_keys, redis_url_for_tests


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


@pytest.fixture
def deployment_name(redis_url: str) -> Iterator[str]:
    """A deployment name of the test's own: the bus's keys carry it, and go afterwards
    (the session's Redis may be one the tests share)."""
    from redis import Redis

    name = f"dep-{uuid.uuid4().hex[:8]}"
    yield name
    delete_keys(redis_url, f"*{name}*")
    with Redis.from_url(redis_url) as client:
        client.srem("rv:deployments", name)


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
