"""Operations per model equal what plain Python computes from the raw archive."""

from __future__ import annotations

import pytest
from compare_data import T0, Traffic, binary_traffic, deployment, raw_scores, raw_window

from rendezvous.archive import MemoryArchive
from rendezvous.compare import Window, compare


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def test_operations_match_an_independent_computation(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    binary_traffic(traffic)
    since, until = T0 + 10, T0 + 250
    result = compare(archive, deployment(), Window(since=since, until=until))
    requests = raw_window(archive, since, until)
    n = len(requests)
    assert result.requests == n and result.first_at == since and result.last_at == until - 1

    for model in ("champ", "better", "worse", "canary"):
        scores = raw_scores(archive, model)
        mine = [scores[r.id] for r in requests if r.id in scores]
        errors = sum(1 for s in mine if s.error is not None)
        served = [r for r in requests if r.model == model]
        fallbacks = [r for r in served if r.reason == f"fallback:{model}"]
        latencies = [s.queue_ms + s.latency_ms for s in mine]
        o = result.model(model).operations
        assert o.requests == n
        assert o.scored == len(mine)
        assert o.errors == errors
        assert o.missing == n - len(mine)
        assert o.error_rate == pytest.approx(errors / n)
        assert o.timeout_rate == pytest.approx((n - len(mine)) / n)
        assert o.p50_ms == pytest.approx(_percentile(latencies, 50))
        assert o.p99_ms == pytest.approx(_percentile(latencies, 99))
        assert o.served == len(served)
        assert o.fallbacks == len(fallbacks)
        assert o.fallback_rate == pytest.approx(len(fallbacks) / n)

    champ = result.model("champ").operations
    assert champ.errors > 0 and champ.fallbacks == 0
    better = result.model("better").operations
    assert better.missing > 0 and better.fallbacks == better.served > 0
    kinds = {"champion": 0, "fallback": 0, "default": 0}
    for r in requests:
        kinds["fallback" if r.reason.startswith("fallback:") else r.reason] += 1
    assert dict(result.outcomes) == kinds


def test_the_decoy_is_not_compared_and_roles_are_reported(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    binary_traffic(traffic, n=20)
    result = compare(archive, deployment(), Window(last=20))
    roles = {m.model: m.role for m in result.models}
    assert roles == {
        "champ": "champion",
        "better": "challenger",
        "worse": "challenger",
        "canary": "canary",
    }


def test_an_empty_window(archive: MemoryArchive) -> None:
    result = compare(archive, deployment(), Window(last=100))
    assert result.requests == 0 and result.first_at is None
    o = result.model("champ").operations
    assert (o.scored, o.error_rate, o.p50_ms, o.fallback_rate) == (0, None, None, None)
