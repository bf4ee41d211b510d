"""The per-model table the demo ends with, computed from the archive alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..archive.base import Archive
from ..config import Deployment

__all__ = ["ModelRow", "model_rows"]


@dataclass(frozen=True)
class ModelRow:
    model: str
    role: str
    version: str
    scores: int  # good scores archived
    errors: int
    p50_ms: float | None  # acceptance → score
    p99_ms: float | None
    agreement: float | None  # share of requests where it predicted what the champion did
    answered: int  # requests whose answer it gave
    fallbacks: int  # of those, as a fallback
    accuracy: float | None  # against labels, when the caller knows them


def _same(a: Any, b: Any) -> bool:
    # River labels booleans where rules and scikit-learn say 0/1: compare as numbers
    if isinstance(a, bool | int | float) and isinstance(b, bool | int | float):
        return float(a) == float(b)
    return bool(a == b)


def model_rows(
    archive: Archive,
    dep: Deployment,
    *,
    labels: Mapping[str, Any] | None = None,
    since: float | None = None,
) -> list[ModelRow]:
    """One row per model of ``dep`` from what the archive holds (requests since ``since``)."""
    requests = archive.requests(dep.name, since=since)
    ids = {r.id for r in requests}
    reasons = Counter(r.model for r in requests if r.model is not None)
    fallbacks = Counter(r.model for r in requests if r.reason.startswith("fallback:"))
    champion = dep.champion.name
    champ_pred = {
        s.request_id: s.prediction
        for s in archive.scores_for_model(dep.name, champion, since=since)
        if s.ok and s.request_id in ids
    }
    rows: list[ModelRow] = []
    for cfg in dep.models:
        if not cfg.computes:
            continue
        scores = [
            s for s in archive.scores_for_model(dep.name, cfg.name, since=since)
            if s.request_id in ids
        ]  # fmt: skip
        good = [s for s in scores if s.ok]
        waits = np.array([s.queue_ms + s.latency_ms for s in good]) if good else None
        paired = [s for s in good if s.request_id in champ_pred]
        agree = (
            sum(_same(s.prediction, champ_pred[s.request_id]) for s in paired) / len(paired)
            if paired
            else None
        )
        acc = _accuracy(good, labels) if labels else None
        rows.append(
            ModelRow(
                cfg.name,
                cfg.role.value,
                good[-1].version if good else "-",
                len(good),
                len(scores) - len(good),
                float(np.percentile(waits, 50)) if waits is not None else None,
                float(np.percentile(waits, 99)) if waits is not None else None,
                agree,
                reasons.get(cfg.name, 0),
                fallbacks.get(cfg.name, 0),
                acc,
            )
        )
    return rows


def _accuracy(scores: Sequence[Any], labels: Mapping[str, Any]) -> float | None:
    known = [s for s in scores if s.request_id in labels]
    if not known:
        return None
    return sum(_same(s.prediction, labels[s.request_id]) for s in known) / len(known)
