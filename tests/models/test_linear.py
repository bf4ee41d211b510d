"""The linear kernel: scikit-learn's own arithmetic without its per-call overhead, exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rendezvous.models import EstimatorModel
from rendezvous.models.linear import linear_kernel

from .helpers import load


def _binary() -> tuple[Any, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return LogisticRegression(max_iter=10_000).fit(x, y), x


def test_binary_logistic_regression_gives_the_same_bits() -> None:
    lr, x = _binary()
    kernel = linear_kernel(lr, x.shape[1], proba=True)
    assert kernel is not None and kernel.kind == "binary"
    labels, proba = kernel(x, True)
    assert np.array_equal(labels, lr.predict(x))
    assert np.array_equal(proba, lr.predict_proba(x))


def test_multinomial_logistic_regression_gives_the_same_bits() -> None:
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    lr = LogisticRegression(max_iter=1000).fit(x, names)
    kernel = linear_kernel(lr, 4, proba=True)
    assert kernel is not None and kernel.kind == "softmax"
    labels, proba = kernel(x, True)
    assert np.array_equal(labels, lr.predict(x))
    assert np.array_equal(proba, lr.predict_proba(x))


@pytest.mark.parametrize("make", [LinearRegression, Ridge])
def test_linear_regressors_give_the_same_bits(make: Any) -> None:
    x, y = load_diabetes(return_X_y=True)
    reg = make().fit(x, y)
    kernel = linear_kernel(reg, x.shape[1], proba=False)
    assert kernel is not None
    values, proba = kernel(x, False)
    assert proba is None
    assert np.array_equal(values, reg.predict(x))


def test_no_kernel_for_a_pipeline_or_a_subclass() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    assert linear_kernel(pipe, 30, proba=True) is None

    class Shifted(LogisticRegression):  # overrides predict: its coefficients lie
        def predict(self, X: Any) -> Any:
            return 1 - super().predict(X)

    assert linear_kernel(Shifted(max_iter=10_000).fit(x, y), 30, proba=True) is None


def test_a_kernel_that_would_disagree_is_not_used() -> None:
    lr, _ = _binary()
    calibrated = lr.predict_proba
    lr.predict_proba = lambda X: calibrated(X) ** 2  # no longer what the coefficients say
    assert linear_kernel(lr, 30, proba=True) is None
    assert linear_kernel(lr, 30, proba=False) is not None  # labels alone still agree


def test_the_kernel_keeps_its_coefficients_when_the_estimator_is_refitted() -> None:
    lr, x = _binary()
    kernel = linear_kernel(lr, 30, proba=True)
    assert kernel is not None
    before = kernel(x[:50], True)[1]
    lr.fit(x[:100], 1 - load_breast_cancer().target[:100])
    assert np.array_equal(kernel(x[:50], True)[1], before)


def test_the_sklearn_adapter_serves_through_the_kernel(tmp_path: Path) -> None:
    lr, x = _binary()
    joblib.dump(lr, tmp_path / "lr.joblib")
    model = load(tmp_path, {"kind": "sklearn", "source": "lr.joblib"}, schema={"n_features": 30})
    assert isinstance(model, EstimatorModel)
    assert model.kernel is not None
    calls: list[int] = []
    inner = model.estimator.predict
    model.estimator.predict = lambda X: calls.append(len(X)) or inner(X)
    out = model.predict(x[:40])
    assert calls == []  # scikit-learn's predict is not on the path any more
    assert out.predictions == lr.predict(x[:40]).tolist()
    assert out.probabilities == lr.predict_proba(x[:40]).tolist()
