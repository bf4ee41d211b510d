"""The sklearn kind: joblib files, one predict call per batch, checks at load time."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rendezvous.errors import ModelError, ModelLoadError
from rendezvous.models import EstimatorModel

from .conftest import Data
from .helpers import FEATURES, load


def sklearn_model(base: Path, source: str, **entry: Any) -> EstimatorModel:
    model = load(base, {"kind": "sklearn", "source": source, **entry})
    assert isinstance(model, EstimatorModel)
    return model


def test_version_is_the_files_digest(artifacts: Path) -> None:
    digest = hashlib.sha256((artifacts / "lr.joblib").read_bytes()).hexdigest()
    assert sklearn_model(artifacts, "lr.joblib").version == digest[:12]
    assert sklearn_model(artifacts, "lr.joblib", version="v7").version == "v7"


def test_one_predict_call_per_batch(artifacts: Path, data: Data) -> None:
    model = sklearn_model(artifacts, "lr.joblib")
    calls: list[int] = []
    inner = model.estimator.predict

    def spy(X: Any) -> Any:
        calls.append(len(X))
        return inner(X)

    model.estimator.predict = spy
    model.predict(data.X[:50])
    assert calls == [50]


def test_probabilities_can_be_turned_off(artifacts: Path, data: Data) -> None:
    model = sklearn_model(artifacts, "lr.joblib", options={"probabilities": False})
    assert model.predict(data.X[:3]).probabilities is None


def test_a_regressor_predicts_plain_floats(tmp_path: Path, data: Data) -> None:
    joblib.dump(LinearRegression().fit(data.X, data.y.astype(float)), tmp_path / "reg.joblib")
    model = sklearn_model(tmp_path, "reg.joblib")
    out = model.predict(data.X[:4])
    assert model.info.classes is None
    assert out.probabilities is None
    assert all(type(p) is float for p in out.predictions)


def test_string_classes(tmp_path: Path, data: Data) -> None:
    labels = np.where(data.y == 1, "benign", "malignant")
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(data.X, labels)
    joblib.dump(clf, tmp_path / "names.joblib")
    model = sklearn_model(tmp_path, "names.joblib")
    assert model.info.classes == ("benign", "malignant")
    assert set(model.predict(data.X[:20]).predictions) <= {"benign", "malignant"}


def test_feature_names_must_match_the_schema(tmp_path: Path, data: Data) -> None:
    clf = LogisticRegression().fit(StandardScaler().fit_transform(data.X), data.y)
    # as fitting on a DataFrame would (pandas is not a dependency)
    clf.feature_names_in_ = np.array(FEATURES, dtype=object)
    joblib.dump(clf, tmp_path / "named.joblib")
    assert sklearn_model(tmp_path, "named.joblib").info.features == tuple(FEATURES)
    reordered = {"features": FEATURES[::-1]}
    with pytest.raises(ModelLoadError, match=r"trained on features .*same names in the same order"):
        load(tmp_path, {"kind": "sklearn", "source": "named.joblib"}, schema=reordered)


def test_a_failing_predict_is_a_model_error(artifacts: Path) -> None:
    model = sklearn_model(artifacts, "lr.joblib")
    with pytest.raises(ModelError, match="model 'm0': ValueError"):
        model.predict(np.zeros((2, 3)))
