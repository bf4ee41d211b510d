"""The ``learning:`` block of a model entry, and the triggers it configures."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_learning_helpers import ManualClock, deployment, driven, regression_spec

from rendezvous.archive import MemoryArchive
from rendezvous.config import LearningBlock
from rendezvous.errors import ConfigError
from rendezvous.learning import DeploymentLearner


def test_defaults(tmp_path: Path) -> None:
    dep = deployment(regression_spec(tmp_path, learning={}), tmp_path)
    block = dep.models[0].learning
    assert block == LearningBlock()
    assert (block.min_samples, block.interval_s, block.drift) == (100, None, "adwin")
    assert (block.window.policy, block.holdout, block.tolerance, block.guard) == (
        "sliding", 0.2, 0.0, None,
    )  # fmt: skip
    assert dep.resolve(dep.registry) == tmp_path / "registry"
    assert deployment(regression_spec(tmp_path), tmp_path).models[0].learning is None


def test_every_bad_field_is_named(tmp_path: Path) -> None:
    learning = {
        "min_samples": 0,
        "drift": "cusum",
        "window": {"policy": "recent", "size": 0},
        "holdout": 1.0,
        "guard": {"min_samples": 5},
        "typo": 1,
    }
    with pytest.raises(ConfigError) as caught:
        deployment(regression_spec(tmp_path, learning=learning), tmp_path)
    locs = {p.loc for p in caught.value.problems}
    assert locs == {
        f"models[0].learning.{f}"
        for f in ("min_samples", "drift", "window.policy", "window.size", "holdout",
                  "guard.max_error_increase", "typo")
    }  # fmt: skip


def test_only_sklearn_and_river_models_learn(tmp_path: Path) -> None:
    spec = regression_spec(tmp_path)
    spec["models"].append(
        {"name": "rule", "kind": "python", "source": "m:f", "learning": {"min_samples": 5}}
    )
    with pytest.raises(ConfigError) as caught:
        deployment(spec, tmp_path)
    (problem,) = caught.value.problems
    assert problem.loc == "models[1].learning"
    assert "only sklearn and river" in problem.msg


def test_a_binary_detector_is_refused_for_a_regressor(tmp_path: Path) -> None:
    dep = deployment(regression_spec(tmp_path, learning={"drift": "ddm"}), tmp_path)
    with pytest.raises(ConfigError) as caught:
        DeploymentLearner(dep, archive=MemoryArchive()).start()
    (problem,) = caught.value.problems
    assert problem.loc == "models[0].learning.drift"
    assert "classifiers" in problem.msg


def test_a_learner_needs_a_learning_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="learning"):
        DeploymentLearner(deployment(regression_spec(tmp_path), tmp_path))


async def test_the_interval_trigger_needs_time_and_new_examples(
    tmp_path: Path, clock: ManualClock
) -> None:
    learning = {"min_samples": None, "interval_s": 60, "drift": None}
    dep = deployment(regression_spec(tmp_path, learning=learning), tmp_path)
    async with driven(dep, clock=clock) as d:
        await d.label([[float(x)] for x in range(10)], [float(x) for x in range(10)])
        assert (await d.step()).decisions == []
        clock.advance(61)
        (decision,) = (await d.step()).decisions
        assert decision["trigger"] == "interval"
        clock.advance(61)
        assert (await d.step()).decisions == []  # nothing new to learn from


async def test_min_samples_counts_labelled_examples(tmp_path: Path) -> None:
    learning = {"min_samples": 30, "drift": None, "tolerance": 1.0}
    dep = deployment(regression_spec(tmp_path, learning=learning), tmp_path)
    async with driven(dep) as d:
        rows, labels = [[float(x % 10)] for x in range(29)], [float(x % 10) for x in range(29)]
        await d.label(rows, labels)
        assert (await d.step()).decisions == []
        await d.label([[1.0]], [1.0])
        (decision,) = (await d.step()).decisions
        assert (decision["trigger"], decision["last_seq"], decision["version"]) == (
            "min_samples", 30, "2",
        )  # fmt: skip
        # every 5th seq is held out (holdout 0.2): 24 trained on, 6 compared on
        assert (decision["trained_on"], decision["held_out"]) == (24, 6)
