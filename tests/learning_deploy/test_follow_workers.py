"""Over a Redis bus, worker processes follow the registry themselves (a shared directory)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from deploy_learning_helpers import deployment, registry_of
from sklearn.dummy import DummyRegressor

from rendezvous.registry import CHAMPION, FileRegistry
from rendezvous.roles import Roles
from rendezvous.service import Rendezvous


@pytest.fixture
def name(redis_url: str) -> Iterator[str]:
    """A deployment name of the test's own: the bus's keys carry it, and go afterwards."""
    from redis import Redis

    name = f"fleet-{uuid.uuid4().hex[:8]}"
    yield name
    with Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"*{name}*", count=1000))
        if keys:
            client.delete(*keys)


def publish(registry: FileRegistry, model: str, value: float) -> str:
    echo = DummyRegressor(strategy="constant", constant=value).fit([[0.0]], [0.0])
    info = registry.publish(model, lambda p: joblib.dump(echo, p), filename="model.joblib")
    registry.set_alias(model, CHAMPION, info.version)
    return info.version


async def test_workers_swap_what_the_learner_publishes(
    tmp_path: Path, redis_url: str, name: str
) -> None:
    joblib.dump(DummyRegressor(strategy="constant", constant=0.0).fit([[0.0]], [0.0]),
                tmp_path / "echo.joblib")  # fmt: skip
    spec = {
        "name": name,
        "schema": {"features": ["x"]},
        "bus": redis_url,
        "archive": "memory",
        "deadline_ms": 5000,
        "models": [{"name": "echo", "kind": "sklearn", "source": "echo.joblib",
                    "role": "champion", "learning": {"min_samples": None}}],
    }  # fmt: skip
    dep = deployment(spec, tmp_path)
    registry = registry_of(dep)
    model = f"{name}.echo"
    assert publish(registry, model, 1.0) == "1"
    async with (
        Rendezvous([dep], roles=Roles.api_only()) as api,
        Rendezvous([dep], roles=Roles.worker(["echo"])) as worker,
    ):
        runtime = api.get(name)
        answer = await runtime.predict_one([0.0])
        assert (answer.version, answer.prediction, answer.model) == ("1", 1.0, "echo")

        assert publish(registry, model, 2.0) == "2"  # what a learner process does
        deadline = time.monotonic() + 30
        while (answer := await runtime.predict_one([0.0])).version != "2":
            assert time.monotonic() < deadline, "the worker never swapped version 2 in"
            await asyncio.sleep(0.05)
        assert answer.prediction == 2.0
        assert worker.followers[name].serving == {"echo": "2"}
        # the API process follows too: it describes the version serving
        while runtime.describe()["models"][0]["version"] != "2":
            assert time.monotonic() < deadline, "the API never followed version 2"
            await asyncio.sleep(0.05)
