"""Batch prediction of fitted linear scikit-learn models, without scikit-learn's per-call cost.

scikit-learn validates and dispatches on every call: on a small machine ``predict`` plus
``predict_proba`` of one row cost ~400 µs, of which the arithmetic is a few. For the exact
estimator types below the kernel does that arithmetic with the very numpy operations
scikit-learn uses (``X @ coef.T + intercept``, then ``expit`` or a softmax), so the results
are the same bits, and a self-check at load time proves it: the kernel is used only if it
reproduces the estimator's own ``predict`` and ``predict_proba`` exactly on sample rows.
Anything else (a subclass, a pipeline, another solver's probabilities) keeps the estimator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["LinearKernel", "linear_kernel"]

Array = npt.NDArray[Any]

_REGRESSORS = {"LinearRegression", "Ridge", "Lasso", "ElasticNet"}
_CHECK_ROWS = 16


class LinearKernel:
    """``predict`` and ``predict_proba`` of one fitted linear estimator, as numpy arrays."""

    __slots__ = ("classes", "coef", "intercept", "kind")

    def __init__(self, coef: Array, intercept: Array, classes: Array | None, kind: str) -> None:
        self.coef = np.array(coef, dtype=np.float64)  # copies: a refit must not change us
        self.intercept = np.array(intercept, dtype=np.float64)
        self.classes = None if classes is None else np.array(classes)
        self.kind = kind  # regression | binary | softmax

    def __call__(self, rows: Array, proba: bool) -> tuple[Array, Array | None]:
        scores = rows @ self.coef.T + self.intercept
        if self.kind == "regression":
            return scores, None
        assert self.classes is not None
        if self.kind == "binary":
            scores = scores.reshape(-1)
            labels = self.classes[(scores > 0).astype(int)]
            if not proba:
                return labels, None
            p = _expit(scores)
            return labels, np.vstack([1 - p, p]).T
        labels = self.classes[scores.argmax(axis=1)]
        if not proba:
            return labels, None
        return labels, _softmax(scores)


def linear_kernel(estimator: Any, width: int, proba: bool) -> LinearKernel | None:
    """A kernel equal to ``estimator`` on sample rows, or None where there is none."""
    kernel = _build(estimator)
    if kernel is None:
        return None
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(_CHECK_ROWS, width)) * 10.0
    try:
        labels, probabilities = kernel(rows, proba)
        same = np.array_equal(labels, np.asarray(estimator.predict(rows)))
        if same and probabilities is not None:
            same = np.array_equal(probabilities, np.asarray(estimator.predict_proba(rows)))
    except Exception:
        return None
    return kernel if same else None


def _build(estimator: Any) -> LinearKernel | None:
    name = type(estimator).__name__
    if type(estimator).__module__.split(".")[0] != "sklearn":
        return None
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    if coef is None or intercept is None or not isinstance(coef, np.ndarray):
        return None  # not fitted, or sparse coefficients
    if name in _REGRESSORS:
        return LinearKernel(coef, intercept, None, "regression")
    if name != "LogisticRegression":
        return None
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return None
    kind = "binary" if coef.shape[0] == 1 else "softmax"
    return LinearKernel(coef, intercept, classes, kind)


def _expit(x: Array) -> Array:
    from scipy.special import expit  # what scikit-learn itself uses

    out: Array = expit(x)
    return out


def _softmax(x: Array) -> Array:
    from sklearn.utils.extmath import softmax

    out: Array = softmax(x.copy())
    return out
