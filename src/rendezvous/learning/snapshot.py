"""Serving snapshots: one published version of one model, immutable once built.

The engine serves a model by holding a reference to its current snapshot and replaces it by
a single assignment when a new version is published. A prediction reads that reference once
and works on the snapshot it got, so it never waits for training, never sees half a model,
and reports the version of the very snapshot that computed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .predictors import Predictor
from .rows import Row

__all__ = ["ModelSnapshot", "PredictionResult"]


class PredictionResult:
    """One answer: ``prediction``, the ``model_version`` that made it and, for classifiers,
    ``probabilities`` as ``{class: p}`` (``None`` for regressors)."""

    # A plain slotted class: building it is on the hot path of every prediction, and a
    # frozen dataclass's __init__ costs several times more.
    __slots__ = ("model_version", "prediction", "probabilities")

    def __init__(
        self, prediction: Any, model_version: int, probabilities: dict[Any, float] | None = None
    ) -> None:
        self.prediction = prediction
        self.model_version = model_version
        self.probabilities = probabilities

    def __repr__(self) -> str:
        extra = f", probabilities={self.probabilities!r}" if self.probabilities is not None else ""
        return (
            f"PredictionResult(prediction={self.prediction!r}, "
            f"model_version={self.model_version}{extra})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PredictionResult):
            return NotImplemented
        return (self.prediction, self.model_version, self.probabilities) == (
            other.prediction,
            other.model_version,
            other.probabilities,
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """``version`` of a model: its predictor, when it was made, from how many examples
    (``trained_on``), why (``trigger``) and any ``notes`` from training (e.g. a solver that
    did not converge)."""

    version: int
    predictor: Predictor
    created_at: float
    trained_on: int
    trigger: str
    notes: tuple[str, ...] = ()

    def predict(self, features: Any) -> PredictionResult:
        prediction, proba = self.predictor.predict_one(features)
        return PredictionResult(prediction, self.version, proba)

    def predict_rows(self, rows: Sequence[Row]) -> list[PredictionResult]:
        """Rows already checked by :func:`~.rows.check_rows`."""
        version = self.version
        return [PredictionResult(p, version, d) for p, d in self.predictor.predict_many(rows)]
