"""A River classifier that keeps learning through feedback on River's SEA drift stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from deploy_learning_helpers import assert_counted_once, deployment, driven
from river.datasets import synth

from rendezvous.registry import Trigger

BATCH = 100
CHANGE = 2000  # SEA's threshold moves from 8 (variant 0) to 9.5 (variant 3) here
RECOVERY = 1000  # labelled examples after the change within which accuracy recovers
TOTAL = CHANGE + RECOVERY + 1000


def sea_stream() -> list[tuple[list[float], bool]]:
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=0, seed=1),
        drift_stream=synth.SEA(variant=3, seed=2),
        position=CHANGE,
        width=20,  # an (almost) abrupt change
        seed=3,
    )
    return [([x[0], x[1], x[2]], bool(y)) for x, y in stream.take(TOTAL)]


async def test_a_river_classifier_recovers_from_concept_drift(tmp_path: Path) -> None:
    spec = {
        "name": "sea",
        "schema": {"features": ["x0", "x1", "x2"]},
        "archive": "memory",
        "deadline_ms": 5000,
        "models": [
            {
                "name": "tree",
                "kind": "river",
                "source": "river.tree:HoeffdingTreeClassifier",
                "role": "champion",
                "learning": {
                    "min_samples": 500,
                    "drift": "adwin",
                    "window": {"policy": "since_drift", "size": 3000},
                },
            }
        ],
    }
    dep = deployment(spec, tmp_path)
    data = sea_stream()
    right: list[bool] = []
    async with driven(dep) as d:
        for start in range(0, TOTAL, BATCH):
            rows = [x for x, _ in data[start : start + BATCH]]
            labels = [y for _, y in data[start : start + BATCH]]
            answers = await d.label(rows, labels)
            right += [a.prediction == y for a, y in zip(answers, labels, strict=True)]
            await d.step()

        before = float(np.mean(right[CHANGE - 1000 : CHANGE]))
        hurt = float(np.mean(right[CHANGE : CHANGE + 200]))
        after = float(np.mean(right[CHANGE + RECOVERY :]))
        assert before > 0.9
        assert hurt < before - 0.05  # the new concept: the old tree is wrong more often
        assert after >= before - 0.02, (before, hurt, after)

        concept = [
            e
            for e in d.runtime.archive.events("sea", kinds=["drift"])
            if e.detail["type"] == "concept"
        ]
        first_new = d.runtime.archive.examples("sea")[CHANGE].seq
        assert any(first_new <= e.detail["seq"] < first_new + RECOVERY for e in concept)

        versions = d.registry.versions("sea.tree")
        after_drift = [v for v in versions if v.trigger is Trigger.DRIFT]
        assert after_drift, [v.trigger for v in versions]
        assert after_drift[-1].artifact == "model.pkl"  # a snapshot of the River estimator
        # the follower serves the learner's champion
        served = d.runtime.current_model("tree")
        assert served is not None and served.version == versions[-1].version
        assert_counted_once(
            d.registry, "sea.tree", [e.seq for e in d.runtime.archive.examples("sea")]
        )
