"""Durable progress: a learner that dies anywhere is continued from the archive exactly.

Two learners see the same examples, one of them killed in the middle of a training (after
a drift, so the rebuilt window has to honour the cut). Both must publish the very same
versions, counting the very same examples.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from deploy_learning_helpers import assert_counted_once, deployment, regression_spec

from rendezvous.archive import MemoryArchive
from rendezvous.archive.base import Example
from rendezvous.config import Deployment
from rendezvous.errors import RegistryError
from rendezvous.learning import DeploymentLearner
from rendezvous.registry import FileRegistry

LEARNING = {
    "min_samples": 50,
    "drift_min_samples": 30,
    "window": {"policy": "since_drift", "size": 200},
}
STEP = 25


class Killed(BaseException):
    """What kill -9 does to a learner: it stops wherever it was, saving nothing."""


def stream() -> list[tuple[list[float], float]]:
    rng = np.random.default_rng(3)
    xs = rng.uniform(0, 10, 600)
    slopes = np.where(np.arange(600) < 300, 1.0, 2.0)
    ys = slopes * xs + rng.normal(0, 0.1, 600)
    return [([x], y) for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]


def setup(folder: Path) -> tuple[Deployment, MemoryArchive]:
    folder.mkdir()
    dep = deployment(regression_spec(folder, learning=LEARNING), folder)
    archive = MemoryArchive()
    archive.start()
    return dep, archive


def store(archive: MemoryArchive, rows: list[tuple[list[float], float]]) -> None:
    archive.store_examples(
        [Example("prices", None, x, y, received_at=time.time()) for x, y in rows]
    )


def kill_during_training(learner: DeploymentLearner, nth: int) -> None:
    model = learner.models["lin"]
    real = model.learnable.candidate
    calls = 0

    def candidate(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth:
            raise Killed
        return real(*args)

    model.learnable.candidate = candidate  # type: ignore[method-assign]


def summary(registry: FileRegistry) -> list[tuple[Any, ...]]:
    out = []
    for v in registry.versions("prices.lin"):
        coef = None
        if v.version != "1":
            estimator = __import__("joblib").load(registry.load_artifact("prices.lin", v.version))
            coef = round(float(estimator.coef_[0]), 9)
        out.append((v.version, v.trigger.value, v.parent, v.extra["examples"],
                    v.extra.get("window"), coef))  # fmt: skip
    return out


def test_a_killed_learner_is_continued_without_losing_or_repeating_examples(
    tmp_path: Path,
) -> None:
    data = stream()

    # the reference: one learner that is never interrupted
    ref_dep, ref_archive = setup(tmp_path / "reference")
    with DeploymentLearner(ref_dep, archive=ref_archive) as learner:
        for start in range(0, len(data), STEP):
            store(ref_archive, data[start : start + STEP])
            learner.step()
    reference = summary(FileRegistry(ref_dep.resolve(ref_dep.registry)))
    assert "drift" in [v[1] for v in reference]

    # the same stream; the learner dies in the training that follows the drift's
    dep, archive = setup(tmp_path / "killed")
    first = DeploymentLearner(dep, archive=archive)
    first.start()
    kill_during_training(first, nth=drift_training(ref_archive))
    fed = 0

    def feed_until_killed() -> None:
        nonlocal fed
        while fed < len(data):
            store(archive, data[fed : fed + STEP])
            fed += STEP
            first.step()

    with pytest.raises(Killed):
        feed_until_killed()
    first._lock.release()  # what the kernel does for a process that died

    second = DeploymentLearner(dep, archive=archive)
    second.start()
    second.step()  # the training the first one died in
    while fed < len(data):
        store(archive, data[fed : fed + STEP])
        fed += STEP
        second.step()
    second.stop()

    registry = FileRegistry(dep.resolve(dep.registry))
    assert summary(registry) == reference
    assert_counted_once(registry, "prices.lin", [e.seq for e in archive.examples("prices")])
    # every decision, rejected ones too, came out the same
    assert decisions(archive) == decisions(ref_archive)
    # the drift was recorded once: replaying does not observe examples again
    drifts = [e for e in archive.events("prices", kinds=["drift"]) if e.detail["type"] == "concept"]
    ref_drifts = [
        e for e in ref_archive.events("prices", kinds=["drift"]) if e.detail["type"] == "concept"
    ]
    assert [e.detail["seq"] for e in drifts] == [e.detail["seq"] for e in ref_drifts]


def decisions(archive: MemoryArchive) -> list[tuple[Any, ...]]:
    keys = ("trigger", "last_seq", "accepted", "trained_on", "held_out", "candidate_score")
    return [
        tuple(e.detail[k] for k in keys) for e in archive.events("prices", kinds=["validation"])
    ]


def drift_training(archive: MemoryArchive) -> int:
    """Which training (1, 2, …) the drift triggered."""
    validations = archive.events("prices", kinds=["validation"])
    return 1 + [e.detail["trigger"] for e in validations].index("drift")


def test_one_learner_per_deployment(tmp_path: Path) -> None:
    dep, archive = setup(tmp_path / "d")
    with DeploymentLearner(dep, archive=archive):
        second = DeploymentLearner(dep, archive=archive)
        with pytest.raises(RegistryError, match="another learner"):
            second.start()
    with DeploymentLearner(dep, archive=archive):  # free again once the first stopped
        pass
