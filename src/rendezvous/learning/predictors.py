"""Predictors: what a serving snapshot calls, one interface over every kind of model.

``predict_one`` takes unchecked user input and checks it (the fast linear predictors check
it cheaply on the way); ``predict_many`` takes rows already checked by the caller. Both
answer ``(prediction, probabilities)``, probabilities being ``{class: p}`` for classifiers
and ``None`` for regressors. A predictor wraps a private copy of a fitted estimator that
nothing mutates afterwards, which is what makes a snapshot safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from .linear import LinearClassifier, LinearRegressor
from .rows import Row, Task, check_row

__all__ = ["Predictor", "RiverPredictor", "SklearnPredictor", "sklearn_predictor"]

Proba = dict[Any, float]


class Predictor(Protocol):
    @property
    def n_features(self) -> int | None: ...

    def predict_one(self, features: Any) -> tuple[Any, Proba | None]: ...

    def predict_many(self, rows: Sequence[Row]) -> list[tuple[Any, Proba | None]]: ...


def sklearn_predictor(estimator: Any, task: Task) -> Predictor:
    """The fast linear predictor when the fitted estimator is a plain linear model."""
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    # Exact types only: a subclass may override predict, and then its coefficients lie.
    kind = type(estimator)
    if kind in (LinearRegression, Ridge, Lasso, ElasticNet) and np.ndim(estimator.coef_) == 1:
        intercept = float(np.ravel(estimator.intercept_)[0])
        return LinearRegressor(estimator.coef_.tolist(), intercept)
    if kind is LogisticRegression:
        return LinearClassifier(
            estimator.coef_.tolist(),
            np.ravel(estimator.intercept_).tolist(),
            estimator.classes_.tolist(),
        )
    return SklearnPredictor(estimator, task)


class SklearnPredictor:
    """Any fitted scikit-learn compatible estimator, through its own ``predict``."""

    def __init__(self, estimator: Any, task: Task) -> None:
        self._estimator = estimator
        self.n_features: int | None = getattr(estimator, "n_features_in_", None)
        proba = getattr(estimator, "predict_proba", None) if task == "classification" else None
        self._proba = proba if callable(proba) else None
        self._classes = [_scalar(c) for c in getattr(estimator, "classes_", [])]

    def predict_one(self, features: Any) -> tuple[Any, Proba | None]:
        return self.predict_many([check_row(features, self.n_features)])[0]

    def predict_many(self, rows: Sequence[Row]) -> list[tuple[Any, Proba | None]]:
        if not rows:
            return []
        x = np.asarray(rows, dtype=float)
        predictions = [_scalar(p) for p in self._estimator.predict(x)]
        if self._proba is None:
            return [(p, None) for p in predictions]
        dists = self._proba(x).tolist()
        return [
            (p, dict(zip(self._classes, d, strict=True)))
            for p, d in zip(predictions, dists, strict=True)
        ]


class RiverPredictor:
    """A River estimator, fed one ``{feature index: value}`` dict at a time as River intends."""

    def __init__(self, estimator: Any, task: Task, n_features: int | None) -> None:
        self._estimator = estimator
        self.n_features = n_features
        self._classifier = task == "classification"

    def predict_one(self, features: Any) -> tuple[Any, Proba | None]:
        return self._predict(check_row(features, self.n_features))

    def predict_many(self, rows: Sequence[Row]) -> list[tuple[Any, Proba | None]]:
        return [self._predict(row) for row in rows]

    def _predict(self, row: Row) -> tuple[Any, Proba | None]:
        x = dict(enumerate(row))
        prediction = _scalar(self._estimator.predict_one(x))
        if not self._classifier:
            return prediction, None
        dist = self._estimator.predict_proba_one(x)
        return prediction, {_scalar(c): float(p) for c, p in dist.items()}


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
