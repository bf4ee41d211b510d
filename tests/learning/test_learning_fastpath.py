"""The fast single-row linear predictors answer what scikit-learn answers, to float tolerance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from rendezvous.learning import Engine
from rendezvous.learning.linear import LinearClassifier, LinearRegressor
from rendezvous.learning.predictors import SklearnPredictor, sklearn_predictor

MakeEngine = Callable[..., Engine]
N_FEATURES = 10


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=(400, N_FEATURES))
    y = x @ rng.normal(size=N_FEATURES) + 1.5 + rng.normal(scale=0.5, size=400)
    return x, y


@pytest.mark.parametrize(
    "estimator",
    [
        LinearRegression(),
        LinearRegression(fit_intercept=False),
        Ridge(alpha=3.0),
        Lasso(0.01),
        ElasticNet(alpha=0.01),
    ],
    ids=lambda e: repr(e),
)
def test_linear_regressors_match_sklearn(estimator: Any) -> None:
    x, y = _data()
    estimator.fit(x, y)
    predictor = sklearn_predictor(estimator, "regression")
    assert isinstance(predictor, LinearRegressor)
    expected = estimator.predict(x)
    one_by_one = [predictor.predict_one(row)[0] for row in x.tolist()]
    np.testing.assert_allclose(one_by_one, expected, rtol=1e-12, atol=1e-12)
    batch = [p for p, _ in predictor.predict_many([tuple(r) for r in x.tolist()])]
    np.testing.assert_allclose(batch, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("labels", ["ints", "strings"])
def test_logistic_regression_matches_sklearn(n_classes: int, labels: str) -> None:
    x, y = _data(seed=n_classes)
    bins = np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1])
    classes = np.digitize(y, bins)
    target = classes if labels == "ints" else np.array([f"class-{c}" for c in classes])
    estimator = LogisticRegression(max_iter=2000).fit(x, target)
    predictor = sklearn_predictor(estimator, "classification")
    assert isinstance(predictor, LinearClassifier)
    expected_labels = estimator.predict(x).tolist()
    expected_proba = estimator.predict_proba(x)
    names = estimator.classes_.tolist()
    for i, row in enumerate(x.tolist()):
        label, proba = predictor.predict_one(row)
        assert label == expected_labels[i]
        np.testing.assert_allclose([proba[c] for c in names], expected_proba[i], rtol=1e-9)
    batch = predictor.predict_many([tuple(r) for r in x.tolist()])
    assert [label for label, _ in batch] == expected_labels
    batch_proba = [[(proba or {})[c] for c in names] for _, proba in batch]
    np.testing.assert_allclose(np.asarray(batch_proba), expected_proba, rtol=1e-9)


def test_extreme_scores_do_not_overflow() -> None:
    predictor = LinearClassifier([[1.0]], [0.0], [0, 1])
    assert predictor.predict_one([1e6]) == (1, {0: 0.0, 1: 1.0})
    assert predictor.predict_one([-1e6]) == (0, {0: 1.0, 1: 0.0})
    batch = predictor.predict_many([(1e6,), (-1e6,)])
    assert batch == [(1, {0: 0.0, 1: 1.0}), (0, {0: 1.0, 1: 0.0})]


def test_other_estimators_keep_their_own_predict() -> None:
    x, y = _data()
    tree = DecisionTreeRegressor(max_depth=3).fit(x, y)
    predictor = sklearn_predictor(tree, "regression")
    assert isinstance(predictor, SklearnPredictor)
    assert predictor.predict_one(x[0].tolist())[0] == pytest.approx(tree.predict(x[:1])[0])
    classifier = DecisionTreeClassifier(max_depth=3).fit(x, y > 0)
    label, proba = sklearn_predictor(classifier, "classification").predict_one(x[0].tolist())
    assert label == classifier.predict(x[:1])[0]
    assert proba == dict(
        zip([False, True], classifier.predict_proba(x[:1])[0].tolist(), strict=True)
    )


def test_subclasses_are_not_trusted_with_the_fast_path() -> None:
    class Shifted(LinearRegression):  # type: ignore[misc]
        def predict(self, X: Any) -> Any:
            return super().predict(X) + 1.0

    x, y = _data()
    assert isinstance(sklearn_predictor(Shifted().fit(x, y), "regression"), SklearnPredictor)


@pytest.mark.parametrize("estimator", [LinearRegression(), Ridge(), LogisticRegression()])
def test_engine_predict_equals_sklearn_on_the_same_coefficients(
    make_engine: MakeEngine, estimator: Any
) -> None:
    """A fitted estimator registered as the kind serves version 1 from its coefficients."""
    x, y = _data()
    target = y if not isinstance(estimator, LogisticRegression) else (y > 1.5).astype(int)
    estimator.fit(x, target)
    engine = make_engine()
    engine.register_model("m", estimator)
    rows = x[:50].tolist()
    answers = [engine.predict("m", row) for row in rows]
    assert {a.model_version for a in answers} == {1}
    np.testing.assert_allclose(
        [a.prediction for a in answers], estimator.predict(x[:50]), rtol=1e-12, atol=1e-12
    )
    batch = engine.predict_batch("m", x[:50])
    np.testing.assert_allclose(
        [a.prediction for a in batch], estimator.predict(x[:50]), rtol=1e-12, atol=1e-12
    )
    if isinstance(estimator, LogisticRegression):
        proba = [[(a.probabilities or {})[c] for c in (0, 1)] for a in answers]
        np.testing.assert_allclose(np.asarray(proba), estimator.predict_proba(x[:50]), rtol=1e-9)
    else:
        assert all(a.probabilities is None for a in answers)
