"""Deployments that learn, and a driver that runs service, learner and follower by hand.

The driver is deterministic: nothing learns or swaps between two ``step()`` calls except
what the test did, so tests state exactly how many labelled examples something took.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import yaml
from sklearn.linear_model import LinearRegression

from rendezvous.collector import Answer
from rendezvous.config import Deployment, parse_deployment
from rendezvous.feedback import record_feedback
from rendezvous.learning import DeploymentLearner, StepReport, VersionFollower
from rendezvous.registry import FileRegistry
from rendezvous.runtime import DeploymentRuntime
from rendezvous.service import Rendezvous

HERE = Path(__file__).parent


class ManualClock:
    """Seconds that pass only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def linear_model_file(folder: Path, slope: float = 1.0, *, name: str = "lin.joblib") -> Path:
    """A LinearRegression fitted on ``y = slope * x`` (x in [0, 10], a little noise)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, (200, 1))
    y = slope * x[:, 0] + rng.normal(0, 0.1, 200)
    path = folder / name
    joblib.dump(LinearRegression().fit(x, y), path)
    return path


def regression_spec(
    folder: Path,
    *,
    learning: dict[str, Any] | None = None,
    archive: str = "memory",
    source: str = "lin.joblib",
    name: str = "prices",
) -> dict[str, Any]:
    """One sklearn champion ``lin`` over one feature ``x``, learning as given."""
    if not (folder / source).exists():
        linear_model_file(folder, name=source)
    model: dict[str, Any] = {"name": "lin", "kind": "sklearn", "source": source,
                             "role": "champion"}  # fmt: skip
    if learning is not None:
        model["learning"] = learning
    return {
        "name": name,
        "schema": {"features": ["x"]},
        "archive": archive,
        "deadline_ms": 5000,  # generous: a slow machine must not turn answers into defaults
        "models": [model],
    }


def deployment(spec: dict[str, Any], folder: Path) -> Deployment:
    return parse_deployment(spec, base_dir=folder)


def write_file(spec: dict[str, Any], folder: Path) -> Path:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def registry_of(dep: Deployment) -> FileRegistry:
    return FileRegistry(dep.resolve(dep.registry))


class Driver:
    """A started service with one deployment, its learner, and its version follower."""

    def __init__(self, service: Rendezvous, learner: DeploymentLearner) -> None:
        self.service = service
        self.learner = learner
        self.name = learner.name
        self.runtime: DeploymentRuntime = service.get(self.name)
        self.follower: VersionFollower = service.followers[self.name]

    async def label(self, rows: Sequence[Any], labels: Sequence[Any]) -> list[Answer]:
        """Predict each row, then give each answer its label as feedback."""
        answers = await self.runtime.predict(list(rows))
        await record_feedback(
            self.runtime,
            [(a.request_id, label) for a, label in zip(answers, labels, strict=True)],
        )
        return answers

    async def step(self) -> StepReport:
        """The learner takes in everything labelled so far; the follower swaps what it
        published."""
        self.runtime.archive.flush()  # the scores the learner compares labels with
        report = await asyncio.to_thread(self.learner.step)
        await self.follower.sync()
        return report

    @property
    def registry(self) -> FileRegistry:
        return self.learner.registry


@asynccontextmanager
async def driven(
    dep: Deployment, *, clock: Callable[[], float] | None = None
) -> AsyncIterator[Driver]:
    async with Rendezvous([dep]) as service:
        runtime = service.get(dep.name)
        learner = DeploymentLearner(
            dep, archive=runtime.archive, **({"clock": clock} if clock else {})
        )
        await asyncio.to_thread(learner.start)
        try:
            driver = Driver(service, learner)
            await driver.follower.sync()  # version 1, which the learner just published
            yield driver
        finally:
            await asyncio.to_thread(learner.stop)


def counted(registry: FileRegistry, model: str) -> list[dict[str, int]]:
    """``extra.examples`` of every version of ``model``, oldest first."""
    return [v.extra["examples"] for v in registry.versions(model)]


def assert_counted_once(registry: FileRegistry, model: str, seqs: Sequence[int]) -> None:
    """Every example in ``seqs`` (all stored ones) counted by exactly one version, in order."""
    examples = counted(registry, model)
    assert examples[0]["last_seq"] == 0  # the deployment file's model learnt none of them
    for earlier, later in itertools.pairwise(examples):
        assert later["after_seq"] == earlier["last_seq"]
    covered = [s for s in seqs if s <= examples[-1]["last_seq"]]
    assert sum(e["count"] for e in examples) == len(covered)
    for e in examples[1:]:
        inside = [s for s in seqs if e["after_seq"] < s <= e["last_seq"]]
        assert e["count"] == len(inside)
        assert e["training"] + e["held_out"] == e["count"]
