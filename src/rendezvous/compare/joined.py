"""A window's requests joined with every compared model's score and with their labels.

Everything the comparison computes reads this one view, so every figure for a model is
over the same requests. A model is named ``name`` or ``name@version`` (model names cannot
contain ``@``): with a version, only that version's scores count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..archive.base import Archive, RequestRecord
from ..messages import Score

__all__ = ["Joined", "ModelRef", "join"]

# Scores are found by the time they were computed, which follows the request's receipt;
# this margin covers the clocks of other hosts running slightly behind the API's.
CLOCK_SKEW_S = 60.0


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A compared model: every version of ``name``, or just ``version``."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelRef:
        name, _, version = spec.partition("@")
        return cls(name, version or None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Joined:
    """Requests (oldest first), their labels, and per model the score for each request."""

    deployment: str
    champion: str  # the key of the champion in ``scores``
    requests: tuple[RequestRecord, ...]
    labels: Mapping[str, Any]  # request id -> label, for the labelled ones
    scores: Mapping[str, Mapping[str, Score]]  # model key -> request id -> score

    @property
    def models(self) -> list[str]:
        return list(self.scores)

    def ok(self, model: str, request_id: str) -> Score | None:
        """The model's good score for a request, or None (missing or failed)."""
        score = self.scores[model].get(request_id)
        return score if score is not None and score.ok else None


def join(
    archive: Archive,
    deployment: str,
    champion: ModelRef,
    others: Sequence[ModelRef],
    requests: Sequence[RequestRecord],
) -> Joined:
    ids = {r.id for r in requests}
    since = min((r.received_at for r in requests), default=0.0) - CLOCK_SKEW_S
    scores: dict[str, dict[str, Score]] = {}
    for ref in (champion, *others):
        # No upper bound: a replayed score is computed long after its request was received.
        found = archive.scores_for_model(deployment, ref.name, since=since) if ids else []
        chosen: dict[str, Score] = {}
        for score in found:  # oldest first
            if score.request_id not in ids:
                continue
            if ref.version is not None and score.version != ref.version:
                continue
            held = chosen.get(score.request_id)
            # One score per request: the first good one, which is the one the rendezvous
            # could use; a failed score only when the model never succeeded.
            if held is None or (not held.ok and score.ok):
                chosen[score.request_id] = score
        scores[str(ref)] = chosen
    labels = archive.labels_for([r.id for r in requests]) if ids else {}
    return Joined(deployment, str(champion), tuple(requests), labels, scores)
