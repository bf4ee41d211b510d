"""Fixtures for the archive tests: a real PostgreSQL, when a test asks for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pg_server import PostgresServer, drop_schema, find_server, schema_name


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
