"""Build the demo deployment: models trained on scikit-learn's bundled breast-cancer data.

Nothing is downloaded: the data ships with scikit-learn. The deployment has a rule-based
champion, a scikit-learn challenger, an ONNX challenger, a River canary and a decoy.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from ..errors import MissingDependency

__all__ = ["DemoData", "build_demo"]


@dataclass(frozen=True)
class DemoData:
    deployment_file: Path
    archive_path: Path
    features: list[str]
    rows: npt.NDArray[np.float64]  # held-out rows to send
    labels: npt.NDArray[np.int64]  # their true classes


def _require(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise MissingDependency(module, extra, "the demo") from None


def build_demo(directory: Path, *, seed: int = 7) -> DemoData:
    """Train the demo's models into ``directory`` and write its deployment file."""
    _require("sklearn", "demo")
    _require("skl2onnx", "demo")
    _require("river", "demo")
    import joblib
    from river import compose, linear_model, preprocessing
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    directory.mkdir(parents=True, exist_ok=True)
    data = load_breast_cancer()
    features = [str(f) for f in data.feature_names]
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.4, random_state=seed, stratify=data.target
    )

    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    logreg.fit(x_train, y_train)
    joblib.dump(logreg, directory / "logreg.joblib")

    forest = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=seed)
    forest.fit(x_train.astype(np.float32), y_train)
    onx = to_onnx(forest, x_train[:1].astype(np.float32), options={"zipmap": False})
    (directory / "forest.onnx").write_bytes(onx.SerializeToString())

    river_model = compose.Pipeline(
        preprocessing.StandardScaler(), linear_model.LogisticRegression()
    )
    for row, label in zip(x_train, y_train, strict=True):
        river_model.learn_one(dict(zip(features, row.tolist(), strict=True)), bool(label))
    with (directory / "river.pkl").open("wb") as fh:
        pickle.dump(river_model, fh)

    archive = directory / "archive.db"
    for stale in (archive, archive.with_suffix(".db-wal"), archive.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)  # each demo run starts with an empty archive
    deployment = {
        "name": "breast-cancer",
        "schema": {"features": features},
        "bus": "memory",
        "archive": f"sqlite:///{archive.name}",
        "deadline_ms": 250,
        "default": {"prediction": 1},
        "models": [
            {
                "name": "rules",
                "kind": "python",
                "source": "rendezvous.demo.rules:score",
                "role": "champion",
                "version": "rules-1",
            },
            {"name": "logreg", "kind": "sklearn", "source": "logreg.joblib"},
            {"name": "forest", "kind": "onnx", "source": "forest.onnx"},
            {
                "name": "river",
                "kind": "river",
                "source": "river.pkl",
                "role": "canary",
                "options": {"classes": [False, True]},
            },
            {"name": "decoy", "kind": "decoy", "role": "decoy"},
        ],
    }
    path = directory / "deployment.yaml"
    path.write_text(yaml.safe_dump(deployment, sort_keys=False), encoding="utf-8")
    return DemoData(path, archive, features, x_test.astype(np.float64), y_test.astype(np.int64))
