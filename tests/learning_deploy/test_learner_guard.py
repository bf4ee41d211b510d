"""The guard: a version that validated well but does worse live is rolled back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from deploy_learning_helpers import deployment, driven, regression_spec

from rendezvous.registry import CHAMPION

GUARD_SAMPLES = 20


async def test_a_version_worse_live_than_its_parent_is_rolled_back(tmp_path: Path) -> None:
    # A burst of bad labels (everything off by +10) fills the short training window: the
    # candidate fits the burst, and the held-out examples (from the burst too) approve it.
    learning = {
        "min_samples": 100,
        "drift": None,
        "window": {"policy": "sliding", "size": 20},
        "guard": {"max_error_increase": 0.2, "min_samples": GUARD_SAMPLES},
    }
    dep = deployment(regression_spec(tmp_path, learning=learning), tmp_path)
    rng = np.random.default_rng(11)
    versions: list[str] = []
    async with driven(dep) as d:

        async def label(n: int, offset: float) -> None:
            for _ in range(n // 10):
                xs = rng.uniform(0, 10, 10)
                labels = xs + offset + rng.normal(0, 0.1, 10)
                answers = await d.label([[x] for x in xs.tolist()], labels.tolist())
                versions.extend(a.version for a in answers)
                await d.step()

        await label(80, 0.0)
        await label(20, 10.0)  # the burst; the 100th example triggers the training
        assert d.registry.resolve("prices.lin", CHAMPION) == "2"
        assert d.follower.serving["lin"] == "2"
        await label(GUARD_SAMPLES + 10, 0.0)  # good labels again: version 2 is far off

        assert d.registry.resolve("prices.lin", CHAMPION) == "1"
        assert d.follower.serving["lin"] == "1"
        assert versions[-1] == "1"  # serving went back too
        assert versions.count("2") >= GUARD_SAMPLES
        (event,) = d.runtime.archive.events("prices", kinds=["version_rollback"])
        assert event.model == "lin"
        detail = event.detail
        assert (detail["version"], detail["to"], detail["reason"]) == ("2", "1", "guard")
        assert detail["n"] == GUARD_SAMPLES
        assert detail["live_error"] > 5 > 1 > detail["baseline"]
        # the promotion history of champion *models* is not touched
        assert d.runtime.archive.events("prices", kinds=["rollback"]) == []
