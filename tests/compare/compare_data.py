"""Building archives for the comparison tests, and reading them back independently."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rendezvous.archive import Archive, RequestRecord
from rendezvous.archive.base import Example
from rendezvous.config import Deployment, parse_deployment
from rendezvous.messages import Score

HERE = Path(__file__).parent
T0 = 1_700_000_000.0
DEP = "fraud"


def deployment(*models: dict[str, Any]) -> Deployment:
    """``fraud`` with the models given, or a champion, two challengers, a canary, a decoy."""
    if not models:
        models = (
            {"name": "champ", "kind": "python", "source": "compare_models:threshold",
             "role": "champion"},
            {"name": "better", "kind": "python", "source": "compare_models:shifted"},
            {"name": "worse", "kind": "python", "source": "compare_models:shifted"},
            {"name": "canary", "kind": "python", "source": "compare_models:counted",
             "role": "canary"},
            {"name": "decoy", "kind": "decoy", "role": "decoy"},
        )  # fmt: skip
    data = {"name": DEP, "schema": {"features": ["a", "b"]}, "archive": "memory", "models": models}
    return parse_deployment(data, base_dir=HERE)


class Traffic:
    """Writes requests, scores and labels into an archive, with times chosen by the test."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive

    def request(
        self,
        rid: str,
        at: float,
        *,
        features: Sequence[float] = (0.0, 0.0),
        model: str | None = "champ",
        reason: str = "champion",
        prediction: Any = None,
        version: str | None = "1",
    ) -> None:
        self.archive.put_request(
            RequestRecord(rid, DEP, at, list(features), model, version, reason, prediction, 3.0)
        )

    def score(
        self,
        rid: str,
        model: str,
        at: float,
        *,
        prediction: Any = None,
        probabilities: list[float] | None = None,
        error: str | None = None,
        version: str = "1",
        latency_ms: float = 1.0,
        queue_ms: float = 0.5,
    ) -> None:
        self.archive.put_scores(
            [
                Score(
                    rid,
                    DEP,
                    model,
                    version,
                    prediction=prediction,
                    probabilities=probabilities,
                    error=error,
                    latency_ms=latency_ms,
                    queue_ms=queue_ms,
                    computed_at=at,
                )
            ]
        )

    def label(self, rid: str, label: Any, at: float) -> None:
        stored = self.archive.store_examples([Example(DEP, rid, [0.0, 0.0], label, at)])
        assert stored

    def flush(self) -> None:
        self.archive.flush()


def raw_window(archive: Archive, since: float, until: float) -> list[RequestRecord]:
    """The requests in ``[since, until)``, filtered here rather than by the archive."""
    return [r for r in archive.requests(DEP) if since <= r.received_at < until]


def raw_scores(archive: Archive, model: str) -> dict[str, Score]:
    """Each request's score from ``model`` (the test data has one per request)."""
    out: dict[str, Score] = {}
    for s in archive.scores_for_model(DEP, model):
        assert s.request_id not in out, "the test data has one score per request and model"
        out[s.request_id] = s
    return out


def binary_traffic(traffic: Traffic, *, n: int = 300, seed: int = 0) -> None:
    """Requests at ``T0 + i``: champ and better score with probabilities, worse without,
    canary with numbers; some scores fail, some never come; a third of requests labelled;
    some answers came from fallbacks and one from the default."""
    import random

    rng = random.Random(seed)
    for i in range(n):
        rid, at = f"r{i}", T0 + i
        truth = rng.random() < 0.4
        reason = "champion"
        answered_by: str | None = "champ"
        if i % 17 == 3:
            reason, answered_by = "fallback:better", "better"
        elif i % 41 == 5:
            reason, answered_by = "default", None
        traffic.request(rid, at, model=answered_by, reason=reason, prediction=int(truth))
        for name, skill in (("champ", 0.35), ("better", 0.45), ("worse", 0.1)):
            if name == "better" and i % 13 == 0:
                continue  # never answered
            if name == "champ" and i % 23 == 0:
                traffic.score(rid, name, at + 0.01, error="ValueError: boom", latency_ms=9.0)
                continue
            p = min(max(0.5 + (skill if truth else -skill) + rng.gauss(0, 0.3), 0.0), 1.0)
            if name == "champ" and i % 7 == 0:
                p = 0.5  # ties, so rank-based metrics must average them
            traffic.score(
                rid, name, at + 0.01 + rng.random() / 100,
                prediction=int(p >= 0.5),
                probabilities=None if name == "worse" else [1.0 - p, p],
                latency_ms=rng.uniform(1, 20), queue_ms=rng.uniform(0, 5),
            )  # fmt: skip
        traffic.score(rid, "canary", at + 0.02, prediction=round(rng.uniform(0, 3), 3))
        if i % 3 == 0:
            traffic.label(rid, int(truth), at + 100)
    traffic.flush()
