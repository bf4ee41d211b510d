"""Single-row prediction from fitted linear coefficients, without scikit-learn's overhead.

scikit-learn validates, converts and dispatches on every call (tens of microseconds for one
row); serving one row only needs a sum of products. The coefficients are copied into Python
tuples at construction, so a predictor is immutable and never shares memory with an
estimator that might be refitted.

The fast path trusts nothing it has not checked cheaply: a non-number element makes the
product raise ``TypeError`` or turn into a non-float, and a NaN or infinite element makes
the sum non-finite; each of these falls back to :func:`~.rows.check_row`, which raises an
error naming the element (or, for a mere overflow, lets the result through).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul
from typing import Any

import numpy as np

from .rows import Row, check_row

__all__ = ["LinearClassifier", "LinearRegressor"]

Proba = dict[Any, float]


class _Linear:
    __slots__ = ("_coef", "_intercept", "n_features")

    def __init__(self, coef: Sequence[float], intercept: float) -> None:
        self._coef = tuple(float(c) for c in coef)
        self._intercept = float(intercept)
        self.n_features = len(self._coef)

    def _score(self, features: Any) -> float:
        row = features
        if type(row) is not list and type(row) is not tuple:
            row = check_row(row, self.n_features)
        elif len(row) != self.n_features:
            check_row(row, self.n_features)
        try:
            z = sum(map(mul, self._coef, row), self._intercept)
        except TypeError:
            z = None
        # z - z is 0.0 for every finite float and NaN otherwise: one test for NaN and inf.
        if type(z) is not float or z - z != 0.0:
            checked = check_row(row, self.n_features)
            z = sum(map(mul, self._coef, checked), self._intercept)
        return z


class LinearRegressor(_Linear):
    """``intercept + coef · x``, as ``LinearRegression``/``Ridge``/``Lasso`` predict."""

    __slots__ = ()

    def predict_one(self, features: Any) -> tuple[float, None]:
        return self._score(features), None

    def predict_many(self, rows: Sequence[Row]) -> list[tuple[Any, Proba | None]]:
        if not rows:
            return []
        values = np.asarray(rows, dtype=float) @ np.asarray(self._coef) + self._intercept
        return [(v, None) for v in values.tolist()]


class LinearClassifier:
    """Logistic regression: ``sigmoid`` of one score (binary) or ``softmax`` of one per class.

    Mirrors scikit-learn's ``LogisticRegression``: binary predicts ``classes[1]`` when the
    score is positive and its probabilities are ``[1 - p, p]``; multiclass predicts the
    first class with the highest score.
    """

    __slots__ = ("_binary", "_rows", "classes", "n_features")

    def __init__(
        self, coef: Sequence[Sequence[float]], intercept: Sequence[float], classes: Sequence[Any]
    ) -> None:
        self._rows = tuple(_Linear(c, b) for c, b in zip(coef, intercept, strict=True))
        self.classes = tuple(classes)
        self._binary = len(self._rows) == 1
        if len(self.classes) != (2 if self._binary else len(self._rows)):
            raise ValueError(f"{len(self._rows)} coefficient rows for {len(self.classes)} classes")
        self.n_features = self._rows[0].n_features

    def predict_one(self, features: Any) -> tuple[Any, Proba]:
        classes = self.classes
        if self._binary:
            z = self._rows[0]._score(features)
            p = _sigmoid(z)
            return classes[1] if z > 0 else classes[0], {classes[0]: 1.0 - p, classes[1]: p}
        scores = [r._score(features) for r in self._rows]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return classes[scores.index(top)], {
            c: e / total for c, e in zip(classes, exps, strict=True)
        }

    def predict_many(self, rows: Sequence[Row]) -> list[tuple[Any, Proba | None]]:
        if not rows:
            return []
        x = np.asarray(rows, dtype=float)
        coef = np.asarray([r._coef for r in self._rows])
        scores = x @ coef.T + np.asarray([r._intercept for r in self._rows])
        classes = self.classes
        if self._binary:
            z = scores[:, 0]
            # exp of a non-positive number never overflows, whatever the sign of z.
            e = np.exp(-np.abs(z))
            p = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            return [
                (classes[1] if zi > 0 else classes[0], {classes[0]: 1.0 - pi, classes[1]: pi})
                for zi, pi in zip(z.tolist(), p.tolist(), strict=True)
            ]
        exps = np.exp(scores - scores.max(axis=1, keepdims=True))
        proba = exps / exps.sum(axis=1, keepdims=True)
        best = scores.argmax(axis=1).tolist()
        return [
            (classes[b], dict(zip(classes, ps, strict=True)))
            for b, ps in zip(best, proba.tolist(), strict=True)
        ]


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
