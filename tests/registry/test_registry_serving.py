"""load_version: a registry version becomes a served model that predicts like the original."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from river import compose, linear_model, preprocessing
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from rendezvous.config import Deployment, ModelConfig, parse_deployment
from rendezvous.errors import ModelLoadError
from rendezvous.models import EstimatorModel, RiverModel
from rendezvous.registry import CHAMPION, ArtifactMismatch, FileRegistry, load_version

FEATURES = [str(n) for n in load_breast_cancer().feature_names]
X, Y = load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="module")
def logistic() -> Pipeline:
    # Scaled first: unscaled, lbfgs warns that it did not converge (and warnings are errors).
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, Y)


@pytest.fixture(scope="module")
def river_model() -> Any:
    model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    for row, label in zip(X.tolist(), Y.tolist(), strict=True):
        model.learn_one(dict(zip(FEATURES, row, strict=True)), bool(label))
    return model


@pytest.fixture
def registry(tmp_path: Path) -> FileRegistry:
    return FileRegistry(tmp_path / "registry")


def entry(tmp_path: Path, **model: Any) -> tuple[ModelConfig, Deployment]:
    data = {
        "name": "cancer",
        "schema": {"features": FEATURES},
        "models": [{"name": "lr", "role": "champion", **model}],
    }
    dep = parse_deployment(data, base_dir=tmp_path)
    return dep.models[0], dep


def test_sklearn_round_trip(registry: FileRegistry, logistic: Pipeline, tmp_path: Path) -> None:
    joblib.dump(logistic, tmp_path / "initial.joblib")
    cfg, dep = entry(tmp_path, kind="sklearn", source="initial.joblib")
    registry.publish("cancer", tmp_path / "initial.joblib", trigger="initial")
    registry.publish(
        "cancer", lambda path: joblib.dump(logistic, path), filename="lr.joblib", parent="1"
    )
    registry.set_alias("cancer", CHAMPION, "2")

    model = load_version(registry, "cancer", CHAMPION, cfg, dep)
    assert isinstance(model, EstimatorModel)
    assert model.info.version == model.version == "2"
    assert model.info.name == "lr"  # serves under the deployment's name
    assert model.info.classes == (0, 1)
    out = model.predict(X)
    assert out.predictions == logistic.predict(X).tolist()
    assert out.probabilities is not None
    np.testing.assert_allclose(out.probabilities, logistic.predict_proba(X))
    assert load_version(registry, "cancer", 1, cfg, dep).version == "1"


def test_river_round_trip(registry: FileRegistry, river_model: Any, tmp_path: Path) -> None:
    # The deployment builds the model from an import string; the learner publishes pickles.
    cfg, dep = entry(
        tmp_path,
        kind="river",
        source="river.linear_model:LogisticRegression",
        options={"params": {"l2": 0.0}},
    )
    info = registry.publish(
        "online", pickle.dumps(river_model), filename="model.pkl", trigger="min_samples"
    )
    model = load_version(registry, "online", "latest", cfg, dep)
    assert isinstance(model, RiverModel)
    assert model.version == info.version == "1"
    rows = X[:50]
    expected = [river_model.predict_one(dict(zip(FEATURES, r, strict=True))) for r in rows]
    probas = [river_model.predict_proba_one(dict(zip(FEATURES, r, strict=True))) for r in rows]
    out = model.predict(rows)
    assert out.predictions == expected
    assert out.probabilities == [[p[False], p[True]] for p in probas]


def test_a_tampered_version_is_not_served(
    registry: FileRegistry, logistic: Pipeline, tmp_path: Path
) -> None:
    joblib.dump(logistic, tmp_path / "lr.joblib")
    cfg, dep = entry(tmp_path, kind="sklearn", source="lr.joblib")
    registry.publish("cancer", tmp_path / "lr.joblib")
    (registry.root / "cancer" / "1" / "lr.joblib").write_bytes(b"not the model")
    with pytest.raises(ArtifactMismatch):
        load_version(registry, "cancer", "1", cfg, dep)


def test_an_artifact_no_adapter_reads(
    registry: FileRegistry, logistic: Pipeline, tmp_path: Path
) -> None:
    joblib.dump(logistic, tmp_path / "lr.joblib")
    cfg, dep = entry(tmp_path, kind="sklearn", source="lr.joblib")
    registry.publish("cancer", b"{}", filename="weights.json")
    with pytest.raises(ModelLoadError, match=r"cancer@1 is weights\.json; can serve .joblib"):
        load_version(registry, "cancer", "1", cfg, dep)


def test_a_version_trained_on_other_features_is_refused(
    registry: FileRegistry, tmp_path: Path
) -> None:
    small = LogisticRegression().fit(X[:, :2], Y)
    registry.publish("cancer", lambda p: joblib.dump(small, p), filename="small.joblib")
    joblib.dump(small, tmp_path / "small.joblib")
    cfg, dep = entry(tmp_path, kind="sklearn", source="small.joblib")
    with pytest.raises(ModelLoadError, match="takes 2 features"):
        load_version(registry, "cancer", "1", cfg, dep)
