"""A regression deployment that keeps learning through feedback: drift, retrain, recover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from deploy_learning_helpers import assert_counted_once, deployment, driven, regression_spec

from rendezvous.registry import Trigger

BATCH = 10  # labelled examples between two learner steps
CHANGE = 400  # the slope goes from 1 to 2 at this example
RECOVERY = 100  # labelled examples after the change within which the error must recover


async def test_error_recovers_after_the_slope_changes(tmp_path: Path) -> None:
    learning = {"min_samples": 100, "window": {"policy": "since_drift", "size": 500}}
    dep = deployment(regression_spec(tmp_path, learning=learning), tmp_path)
    # The stream repeats the same inputs and label noise every CHANGE examples, so errors
    # before and after the drift are measured on the very same (x, noise) pairs: what
    # differs is only the model, not the luck of the draw.
    rng = np.random.default_rng(7)
    xs = rng.uniform(0, 10, CHANGE)
    noise = rng.normal(0, 0.1, CHANGE)
    errors: list[float] = []
    versions: list[int] = []
    async with driven(dep) as d:
        for start in range(0, 2 * CHANGE, BATCH):
            slope = 1.0 if start < CHANGE else 2.0
            cycle = slice(start % CHANGE, start % CHANGE + BATCH)
            labels = slope * xs[cycle] + noise[cycle]
            answers = await d.label([[x] for x in xs[cycle].tolist()], labels.tolist())
            assert all(a.reason == "champion" for a in answers)
            errors += [abs(a.prediction - y) for a, y in zip(answers, labels, strict=True)]
            versions += [int(a.version) for a in answers]
            await d.step()

        before = float(np.mean(errors[RECOVERY:CHANGE]))
        after = float(np.mean(errors[CHANGE + RECOVERY :]))
        # within RECOVERY labelled examples the live error is back within 10% of before
        assert after <= 1.1 * before, (before, after)
        assert float(np.mean(errors[CHANGE : CHANGE + 20])) > 10 * before  # the drift hurt
        assert versions == sorted(versions)  # one client, one after the other: never back
        assert versions[-1] > versions[CHANGE - 1]

        # the drift was found on the error stream, recorded, and retrained on
        archive, registry = d.runtime.archive, d.registry
        drifts = archive.events("prices", kinds=["drift"])
        concept = [e for e in drifts if e.detail["type"] == "concept"]
        assert len(concept) == 1
        first_new = archive.examples("prices")[CHANGE].seq
        assert first_new <= concept[0].detail["seq"] < first_new + RECOVERY
        assert concept[0].detail["detector"] == "adwin"
        assert not [e for e in drifts if e.detail["type"] == "data"]  # x never changed

        model = "prices.lin"
        retrained = [v for v in registry.versions(model) if v.trigger is Trigger.DRIFT]
        assert len(retrained) == 1
        drift_version = retrained[0]
        # since_drift: it learnt only from examples after the alarm
        assert drift_version.extra["window"]["first_seq"] >= concept[0].detail["seq"]
        assert drift_version.parent == str(int(drift_version.version) - 1)
        assert drift_version.validation is not None
        assert drift_version.validation.decision.startswith("accepted")
        serving = drift_version.validation.serving["relative_absolute_error"]
        candidate = drift_version.validation.candidate["relative_absolute_error"]
        assert candidate < serving / 5

        # every training's decision is an event, with both scores where there were held-out
        validations = archive.events("prices", kinds=["validation"])
        assert len(validations) >= 5
        for event in validations:
            assert event.model == "lin"
            assert {"candidate_score", "serving_score", "accepted", "trigger"} <= set(event.detail)
            if event.detail["held_out"]:
                assert event.detail["candidate_score"] is not None
                assert event.detail["serving_score"] is not None
        accepted = [e.detail["version"] for e in validations if e.detail["accepted"]]
        assert accepted == [v.version for v in registry.versions(model)[1:]]

        # each example counted by exactly one version
        assert_counted_once(registry, model, [e.seq for e in archive.examples("prices")])
