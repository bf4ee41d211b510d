"""Fixtures for the in-process learning engine: a hand-driven clock, engines stopped after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rendezvous.learning import Engine, LearningConfig

from .clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_engine(clock: FakeClock) -> Iterator[Callable[..., Engine]]:
    """``make_engine(config, **kwargs)``: an engine on the fake clock, stopped after the test."""
    engines: list[Engine] = []

    def _make(config: LearningConfig | None = None, **kwargs: Any) -> Engine:
        kwargs.setdefault("clock", clock)
        engine = Engine(config, **kwargs)
        engines.append(engine)
        return engine

    yield _make
    for engine in engines:
        assert engine.stop_continuous_learning(timeout=10.0)
