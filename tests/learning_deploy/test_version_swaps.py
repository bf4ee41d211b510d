"""Zero-downtime swaps: versions change under load, and every answer names its maker.

Version ``k`` of the model predicts ``k``, so an answer whose prediction differs from its
version was computed by one object and attributed to another.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import joblib
from deploy_learning_helpers import deployment, registry_of
from sklearn.dummy import DummyRegressor

from rendezvous.collector import Answer
from rendezvous.registry import CHAMPION, FileRegistry
from rendezvous.service import Rendezvous

SWAPS = 100
CLIENTS = 8


def echo(version: int) -> DummyRegressor:
    return DummyRegressor(strategy="constant", constant=float(version)).fit([[0.0]], [0.0])


def publish(registry: FileRegistry, version: int) -> None:
    info = registry.publish(
        "swaps.echo", lambda p: joblib.dump(echo(version), p), filename="model.joblib"
    )
    assert info.version == str(version)
    registry.set_alias("swaps.echo", CHAMPION, info.version)


async def test_a_hundred_swaps_under_load_lose_nothing(tmp_path: Path) -> None:
    joblib.dump(echo(0), tmp_path / "echo.joblib")
    spec = {
        "name": "swaps",
        "schema": {"features": ["x"]},
        "archive": "memory",
        "deadline_ms": 5000,
        "models": [
            {
                "name": "echo",
                "kind": "sklearn",
                "source": "echo.joblib",
                "role": "champion",
                # manual training only: this test plays the learner, publishing by hand
                "learning": {"min_samples": None, "drift": None},
            }
        ],
    }
    dep = deployment(spec, tmp_path)
    registry = registry_of(dep)
    publish(registry, 1)
    answers: list[list[Answer]] = [[] for _ in range(CLIENTS)]
    failures: list[BaseException] = []
    done = asyncio.Event()

    async with Rendezvous([dep]) as service:
        runtime, follower = service.get("swaps"), service.followers["swaps"]
        assert follower.serving == {"echo": "1"}

        async def client(mine: list[Answer]) -> None:
            while not done.is_set():
                try:
                    mine.append(await runtime.predict_one([1.0]))
                except Exception as exc:
                    failures.append(exc)

        clients = [asyncio.create_task(client(mine)) for mine in answers]
        for version in range(2, SWAPS + 2):
            await asyncio.to_thread(publish, registry, version)
            # the watcher would find it within its interval; syncing now keeps the test short
            assert (await follower.sync()) in ([("echo", str(version))], [])
            assert follower.serving["echo"] == str(version)
            await asyncio.sleep(0.002)  # let answers from this version through
        await asyncio.sleep(0.05)
        done.set()
        await asyncio.gather(*clients)

    assert failures == []
    assert follower.swaps == SWAPS + 1  # version 1 at start, then every published one
    everything = [a for mine in answers for a in mine]
    assert len(everything) > 10 * SWAPS
    for answer in everything:
        assert answer.reason == "champion"
        assert answer.prediction == float(answer.version)  # the version of its maker
    for mine in answers:
        versions = [int(a.version) for a in mine]
        assert versions == sorted(versions)  # each client's answers never go back
    seen = {int(a.version) for a in everything}
    assert max(seen) == SWAPS + 1
    assert len(seen) > SWAPS // 2  # answers came from most versions, not just a few
