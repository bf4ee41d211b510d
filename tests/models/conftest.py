"""Session-wide artifacts: one breast-cancer classifier in every format the adapters load."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from river import compose, linear_model, preprocessing
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .helpers import FEATURES
from .remote import ServerThread, make_app

RULES = '''
def score(row):
    """Benign (1) when the tumour is small and smooth; a hand-written rule, not ML."""
    benign = row["worst radius"] < 16.8 and row["worst concave points"] < 0.14
    return {"prediction": int(benign), "probabilities": [0.1, 0.9] if benign else [0.8, 0.2]}
'''

ESTIMATOR = """
from pathlib import Path

import joblib

model = joblib.load(Path(__file__).with_name("lr.joblib"))
"""


@dataclass(frozen=True)
class Data:
    X: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]


@pytest.fixture(scope="session")
def data() -> Data:
    X, y = load_breast_cancer(return_X_y=True)
    return Data(np.ascontiguousarray(X, dtype=np.float64), y)


@pytest.fixture(scope="session")
def reference(data: Data) -> Pipeline:
    # Fit on a numpy array, not a DataFrame: predicting on arrays then raises no warning.
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.X, data.y)


def _onnx(model: Pipeline, path: Path, zipmap: bool) -> None:
    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options={id(model): {"zipmap": zipmap}},
        target_opset=17,
    )
    path.write_bytes(onx.SerializeToString())


def _river(data: Data, path: Path) -> None:
    model = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    for _ in range(3):
        for row, label in zip(data.X.tolist(), data.y.tolist(), strict=True):
            model.learn_one(dict(zip(FEATURES, row, strict=True)), bool(label))
    with path.open("wb") as f:
        pickle.dump(model, f)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory, reference: Pipeline, data: Data) -> Path:
    """A directory next to the test deployments holding every model file and module."""
    d = tmp_path_factory.mktemp("artifacts")
    joblib.dump(reference, d / "lr.joblib")
    _onnx(reference, d / "lr.onnx", zipmap=True)
    _onnx(reference, d / "lr_tensor.onnx", zipmap=False)
    _river(data, d / "river.pkl")
    (d / "rdv_conf_rules.py").write_text(RULES)
    (d / "rdv_conf_estimator.py").write_text(ESTIMATOR)
    return d


@pytest.fixture(scope="session")
def server(reference: Pipeline) -> Iterator[str]:
    """Base URL of a real local model server wrapping ``reference``."""
    with ServerThread(make_app(reference)) as thread:
        yield thread.url
