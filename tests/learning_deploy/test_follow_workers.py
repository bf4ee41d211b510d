"""Over a Redis bus, worker processes follow the registry themselves (a shared directory)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import joblib
from deploy_learning_helpers import deployment, registry_of
from sklearn.dummy import DummyRegressor

from rendezvous.registry import CHAMPION, FileRegistry
from rendezvous.roles import Roles
from rendezvous.service import Rendezvous


def publish(registry: FileRegistry, model: str, value: float) -> str:
    echo = DummyRegressor(strategy="constant", constant=value).fit([[0.0]], [0.0])
    info = registry.publish(model, lambda p: joblib.dump(echo, p), filename="model.joblib")
    registry.set_alias(model, CHAMPION, info.version)
    return info.version


async def test_workers_swap_what_the_learner_publishes(
    tmp_path: Path, redis_url: str, deployment_name: str
) -> None:
    joblib.dump(DummyRegressor(strategy="constant", constant=0.0).fit([[0.0]], [0.0]),
                tmp_path / "echo.joblib")  # fmt: skip
    spec = {
        "name": deployment_name,
        "schema": {"features": ["x"]},
        "bus": redis_url,
        "archive": "memory",
        "deadline_ms": 5000,
        "models": [{"name": "echo", "kind": "sklearn", "source": "echo.joblib",
                    "role": "champion", "learning": {"min_samples": None}}],
    }  # fmt: skip
    dep = deployment(spec, tmp_path)
    registry = registry_of(dep)
    model = f"{deployment_name}.echo"
    assert publish(registry, model, 1.0) == "1"
    async with (
        Rendezvous([dep], roles=Roles.api_only()) as api,
        Rendezvous([dep], roles=Roles.worker(["echo"])) as worker,
    ):
        runtime = api.get(deployment_name)
        answer = await runtime.predict_one([0.0])
        assert (answer.version, answer.prediction, answer.model) == ("1", 1.0, "echo")

        assert publish(registry, model, 2.0) == "2"  # what a learner process does
        deadline = time.monotonic() + 30
        while (answer := await runtime.predict_one([0.0])).version != "2":
            assert time.monotonic() < deadline, "the worker never swapped version 2 in"
            await asyncio.sleep(0.05)
        assert answer.prediction == 2.0
        assert worker.followers[deployment_name].serving == {"echo": "2"}
        # the API process follows too: it describes the version serving
        while runtime.describe()["models"][0]["version"] != "2":
            assert time.monotonic() < deadline, "the API never followed version 2"
            await asyncio.sleep(0.05)
