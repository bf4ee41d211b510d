"""Split traffic: shares hold, and one key always lands on one model."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from rendezvous.errors import ConfigError
from rendezvous.traffic import SplitRouter
from support import deployment, py


def test_shares_hold_within_statistical_tolerance() -> None:
    router = SplitRouter([("a", 0.10), ("b", 0.25)])
    n = 40_000
    counts = Counter(router.assign(f"user-{i}") for i in range(n))
    for model, share in (("a", 0.10), ("b", 0.25), (None, 0.65)):
        sd = math.sqrt(n * share * (1 - share))
        assert abs(counts[model] - n * share) < 5 * sd, (model, counts)


def test_a_key_always_lands_on_the_same_model() -> None:
    router = SplitRouter([("a", 0.3)])
    first = {f"user-{i}": router.assign(f"user-{i}") for i in range(2000)}
    again = SplitRouter([("a", 0.3)])
    assert all(again.assign(k) == m for k, m in first.items())


def test_raising_a_share_only_moves_keys_from_the_champion() -> None:
    small = SplitRouter([("a", 0.1), ("b", 0.1)])
    large = SplitRouter([("a", 0.1), ("b", 0.3)])
    for i in range(5000):
        key = f"k{i}"
        before, after = small.assign(key), large.assign(key)
        if before is not None:
            assert after == before  # nobody already on an arm moves
        elif after is not None:
            assert after == "b"  # newcomers to the grown arm come from the champion


def split_deployment(**over: Any) -> Any:
    return deployment(
        [py("champ", "sign", "champion"), py("ab", "negated", "split", share=0.5)],
        split_key="user",
        **over,
    )


async def test_split_requests_are_answered_by_their_arm_and_say_so(start: Any) -> None:
    rv = await start(split_deployment())
    runtime = rv.get("dep")
    answers = await runtime.predict([{"a": 1.0, "b": 0.0, "user": f"u{i}"} for i in range(400)])
    by_reason = Counter(a.reason for a in answers)
    assert set(by_reason) == {"champion", "split:ab"}
    assert 120 < by_reason["split:ab"] < 280  # 50% of 400, far inside 5 sd
    for a in answers:
        assert a.prediction == (0 if a.reason == "split:ab" else 1)
        assert not a.fallback
    # sticky: the same users get the same arm again
    again = await runtime.predict([{"a": 1.0, "b": 0.0, "user": f"u{i}"} for i in range(400)])
    assert [a.reason for a in again] == [a.reason for a in answers]


async def test_a_failing_split_arm_falls_back_to_the_schedule(start: Any) -> None:
    dep = deployment(
        [py("champ", "sign", "champion"), py("ab", "boom", "split", share=0.9)], split_key="user"
    )
    rv = await start(dep)
    answers = await rv.get("dep").predict(
        [{"a": 1.0, "b": 0.0, "user": f"u{i}"} for i in range(50)]
    )
    assert {a.model for a in answers} == {"champ"}  # the champion covers the failing arm


def test_shares_are_validated() -> None:
    with pytest.raises(ConfigError, match="exactly when its role is split"):
        deployment([py("champ", "sign", "champion"), py("ab", "negated", "split")])
    with pytest.raises(ConfigError, match=r"split shares add up to 1\.2"):
        deployment(
            [
                py("champ", "sign", "champion"),
                py("a", "negated", "split", share=0.6),
                py("b", "negated", "split", share=0.6),
            ]
        )
