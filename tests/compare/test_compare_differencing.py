"""Agreement with the champion equals what plain Python computes from the raw archive."""

from __future__ import annotations

import pytest
from compare_data import T0, Traffic, binary_traffic, deployment, raw_scores, raw_window

from rendezvous.archive import MemoryArchive
from rendezvous.compare import Window, compare
from rendezvous.messages import Score


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _p1(score: Score) -> float:
    assert score.probabilities is not None
    return score.probabilities[1]


def _both(
    archive: MemoryArchive, model: str, since: float, until: float
) -> list[tuple[str, Score, Score]]:
    champ, other = raw_scores(archive, "champ"), raw_scores(archive, model)
    return [
        (r.id, champ[r.id], other[r.id])
        for r in raw_window(archive, since, until)
        if r.id in champ and r.id in other and champ[r.id].ok and other[r.id].ok
    ]


def test_agreement_on_probabilities(archive: MemoryArchive, traffic: Traffic) -> None:
    binary_traffic(traffic)
    since, until = T0 + 30, T0 + 270
    result = compare(archive, deployment(), Window(since=since, until=until), top_k=7)
    assert result.model("champ").agreement is None

    both = _both(archive, "better", since, until)
    a = result.model("better").agreement
    assert a is not None and a.n == len(both) and a.on == "probability"
    assert a.agreement == pytest.approx(
        sum(c.prediction == m.prediction for _, c, m in both) / len(both)
    )
    diffs = [abs(_p1(m) - _p1(c)) for _, c, m in both]
    assert a.mean_abs_diff == pytest.approx(sum(diffs) / len(diffs))
    assert a.large_threshold == 0.5
    assert a.large_share == pytest.approx(sum(d > 0.5 for d in diffs) / len(diffs))
    ours = [_p1(c) for _, c, _ in both]
    theirs = [_p1(m) for _, _, m in both]
    assert a.champion_quantiles is not None and a.model_quantiles is not None
    for q, attr in ((10, "p10"), (50, "p50"), (90, "p90")):
        assert getattr(a.champion_quantiles, attr) == pytest.approx(_percentile(ours, q))
        assert getattr(a.model_quantiles, attr) == pytest.approx(_percentile(theirs, q))

    labels = archive.labels_for([rid for rid, _, _ in both])
    unlabelled = [(d, rid) for d, (rid, _, _) in zip(diffs, both, strict=True) if rid not in labels]
    expected = [rid for _, rid in sorted(unlabelled, key=lambda x: -x[0])[:7]]
    assert list(a.top_disagreements) == expected


def test_without_probabilities_numeric_predictions_are_compared(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    binary_traffic(traffic)
    result = compare(archive, deployment(), Window(since=T0, until=T0 + 100), large_diff=0.25)
    both = _both(archive, "worse", T0, T0 + 100)
    a = result.model("worse").agreement
    assert a is not None and a.on == "prediction" and a.large_threshold == 0.25
    diffs = [abs(m.prediction - c.prediction) for _, c, m in both]
    assert a.mean_abs_diff == pytest.approx(sum(diffs) / len(diffs))
    assert a.agreement is not None and a.mean_abs_diff is not None
    assert a.agreement == pytest.approx(1 - a.mean_abs_diff)  # 0/1 predictions
    assert a.large_share == pytest.approx(1 - a.agreement)
    assert len(a.top_disagreements) == 10


def test_regression_threshold_defaults_to_the_champions_spread(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    champ = [1.5, 2.5, 3.5, 10.5]
    other = [1.5, 2.0, 9.0, 10.5]
    for i, (c, m) in enumerate(zip(champ, other, strict=True)):
        traffic.request(f"r{i}", T0 + i)
        traffic.score(f"r{i}", "champ", T0 + i, prediction=c)
        traffic.score(f"r{i}", "better", T0 + i, prediction=m)
    traffic.flush()
    a = compare(archive, deployment(), Window(last=4)).model("better").agreement
    mean = sum(champ) / 4
    std = (sum((c - mean) ** 2 for c in champ) / 4) ** 0.5
    assert a is not None and a.on == "prediction"
    assert a.large_threshold == pytest.approx(std)
    assert a.large_share == pytest.approx(1 / 4)  # only |3.5 - 9.0| is above one std
    assert a.top_disagreements == ("r2", "r1")  # the equal answers are not listed


def test_string_predictions_rank_every_disagreement_alike(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    for i, (c, m) in enumerate([("a", "a"), ("a", "b"), ("b", "b"), ("c", "a")]):
        traffic.request(f"r{i}", T0 + i)
        traffic.score(f"r{i}", "champ", T0 + i, prediction=c)
        traffic.score(f"r{i}", "better", T0 + i, prediction=m)
    traffic.flush()
    a = compare(archive, deployment(), Window(last=4)).model("better").agreement
    assert a is not None and a.agreement == 0.5 and a.on is None and a.mean_abs_diff is None
    assert a.top_disagreements == ("r3", "r1")  # newest first among equals


def test_a_model_with_no_scores_has_nothing_to_compare(
    archive: MemoryArchive, traffic: Traffic
) -> None:
    traffic.request("r0", T0)
    traffic.score("r0", "champ", T0, prediction=1)
    traffic.flush()
    a = compare(archive, deployment(), Window(last=1)).model("better").agreement
    assert a is not None and a.n == 0 and a.agreement is None and a.top_disagreements == ()
