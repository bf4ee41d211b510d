"""Fixtures of the registry tests: a registry of every backend, on a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_backends import BACKENDS, Backend, FakeClock

from rendezvous.registry import Registry


@pytest.fixture(params=BACKENDS, ids=str)
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(backend: Backend, tmp_path: Path, clock: FakeClock) -> Registry:
    return backend.open(tmp_path / "registry", clock=clock)
