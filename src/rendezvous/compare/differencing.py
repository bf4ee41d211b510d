"""Comparison without labels: how a model's answers differ from the champion's.

Over the requests both answered well: how often they predict the same thing, how far apart
their scores are, and where they are furthest apart. A score is read as one number:

* binary classification with probabilities: the probability of the positive class;
* multiclass with probabilities: the probability each gives the champion's predicted class
  (for a binary task the difference is the same as on the positive class);
* otherwise the numeric prediction itself (regression, or classes without probabilities).

The requests that differ most and have no label yet are the ones where a label would say
the most: :attr:`Agreement.top_disagreements` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..messages import Score
from .joined import Joined
from .task import Task, is_number

__all__ = ["Agreement", "Quantiles", "agreement", "quantiles"]

# Probabilities this far apart mean the two models lean to opposite answers.
PROBABILITY_THRESHOLD = 0.5

ScoreKind = Literal["probability", "prediction"]


@dataclass(frozen=True, slots=True)
class Quantiles:
    p10: float
    p50: float
    p90: float


@dataclass(frozen=True, slots=True)
class Agreement:
    """One model against the champion, over ``n`` requests both answered well."""

    n: int
    agreement: float | None  # share of requests with the same prediction
    on: ScoreKind | None  # what the scores below are (None: predictions are not numbers)
    mean_abs_diff: float | None
    champion_quantiles: Quantiles | None
    model_quantiles: Quantiles | None
    large_threshold: float | None  # |difference| above this counts as a large disagreement
    large_share: float | None
    top_disagreements: tuple[str, ...]  # request ids, unlabelled, largest difference first


def quantiles(values: list[float]) -> Quantiles | None:
    if not values:
        return None
    p10, p50, p90 = np.percentile(np.array(values, dtype=np.float64), [10, 50, 90])
    return Quantiles(float(p10), float(p50), float(p90))


def agreement(
    joined: Joined,
    task: Task,
    model: str,
    *,
    large_diff: float | None = None,
    top_k: int = 10,
) -> Agreement:
    champion = joined.champion
    both: list[tuple[str, Score, Score]] = []
    for request in joined.requests:
        ours, theirs = joined.ok(champion, request.id), joined.ok(model, request.id)
        if ours is not None and theirs is not None:
            both.append((request.id, ours, theirs))
    if not both:
        return Agreement(0, None, None, None, None, None, None, None, ())

    same = [c.prediction == m.prediction for _, c, m in both]
    on: ScoreKind | None = None
    if task.has_probabilities(champion) and task.has_probabilities(model):
        on = "probability"
    elif all(is_number(c.prediction) and is_number(m.prediction) for _, c, m in both):
        on = "prediction"

    # (request id, champion value, model value, predictions differ) where values exist
    valued: list[tuple[str, float, float, bool]] = []
    for (rid, c, m), equal in zip(both, same, strict=True):
        pair = _values(task, champion, model, c, m, on)
        if pair is not None:
            valued.append((rid, pair[0], pair[1], not equal))

    if on is None or not valued:
        # Nothing to measure a distance on: every disagreement counts the same.
        ranked = [
            (1.0, i, rid)
            for i, ((rid, _, _), equal) in enumerate(zip(both, same, strict=True))
            if not equal
        ]
        return Agreement(
            len(both), float(np.mean(same)), None, None, None, None, None, None,
            _top(ranked, joined, top_k),
        )  # fmt: skip

    ours_v = np.array([v[1] for v in valued], dtype=np.float64)
    theirs_v = np.array([v[2] for v in valued], dtype=np.float64)
    diffs = np.abs(theirs_v - ours_v)
    if large_diff is not None:
        threshold = large_diff
    elif on == "probability":
        threshold = PROBABILITY_THRESHOLD
    else:
        # Regression has no natural scale: "large" is relative to how much the champion's
        # own answers vary over the window.
        threshold = float(np.std(ours_v))
    ranked = [
        (float(d), i, rid)
        for i, (d, (rid, _, _, differ)) in enumerate(zip(diffs, valued, strict=True))
        if d > 0 or differ
    ]
    return Agreement(
        n=len(both),
        agreement=float(np.mean(same)),
        on=on,
        mean_abs_diff=float(np.mean(diffs)),
        champion_quantiles=quantiles(ours_v.tolist()),
        model_quantiles=quantiles(theirs_v.tolist()),
        large_threshold=threshold,
        large_share=float(np.mean(diffs > threshold)),
        top_disagreements=_top(ranked, joined, top_k),
    )


def _values(
    task: Task, champion: str, model: str, c: Score, m: Score, on: ScoreKind | None
) -> tuple[float, float] | None:
    if on == "prediction":
        return float(c.prediction), float(m.prediction)
    if on != "probability":
        return None
    target = task.positive if task.binary and task.positive is not None else c.prediction
    ours, theirs = task.probability(champion, c, target), task.probability(model, m, target)
    if ours is None or theirs is None:
        return None
    return ours, theirs


def _top(ranked: list[tuple[float, int, str]], joined: Joined, k: int) -> tuple[str, ...]:
    # Labelled requests are already known; among equal differences the newest come first.
    ranked = [r for r in ranked if r[2] not in joined.labels]
    ranked.sort(key=lambda r: (-r[0], -r[1]))
    return tuple(rid for _, _, rid in ranked[:k])
