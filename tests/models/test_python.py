"""The python kind: rules per row, estimator-like objects and classes, batch functions."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rendezvous.errors import ModelError, ModelLoadError
from rendezvous.models import BatchFunctionModel, EstimatorModel, Model, RowFunctionModel

from .helpers import load

SCHEMA = {"features": ["amount", "age"]}
ROWS = np.array([[10.0, 30.0], [5000.0, 19.0], [250.0, 70.0]])


def write(tmp_path: Path, source: str) -> str:
    """A module next to the deployment, named after the test's own directory: modules stay
    imported for the whole session, so every test needs a name of its own."""
    module = "rdv_" + re.sub(r"\W", "_", tmp_path.name)
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    return module


def sync(model: object) -> Model:
    assert isinstance(model, Model)
    return model


def test_a_rule_gets_each_row_by_feature_name(tmp_path: Path) -> None:
    mod = write(
        tmp_path,
        """
        def score(row):
            if row["amount"] > 1000 and row["age"] < 21:
                return "review"
            return "accept"
    """,
    )
    model = sync(load(tmp_path, {"kind": "python", "source": f"{mod}:score"}, schema=SCHEMA))
    assert isinstance(model, RowFunctionModel)
    assert model.predict(ROWS).predictions == ["accept", "review", "accept"]
    assert model.predict(ROWS).probabilities is None


def test_a_rule_may_return_numpy_scalars_and_probabilities(tmp_path: Path) -> None:
    mod = write(
        tmp_path,
        """
        import numpy as np

        def score(row):
            risky = np.float64(row["amount"]) > 1000
            return {"prediction": np.bool_(risky), "probabilities": [0.2, 0.8] if risky else [1, 0]}
    """,
    )
    entry = {"kind": "python", "source": f"{mod}:score", "options": {"classes": [False, True]}}
    out = sync(load(tmp_path, entry, schema=SCHEMA)).predict(ROWS)
    assert out.predictions == [False, True, False]
    assert type(out.predictions[1]) is bool
    assert out.probabilities == [[1.0, 0.0], [0.2, 0.8], [1.0, 0.0]]


def test_the_attribute_may_be_dotted(tmp_path: Path) -> None:
    mod = write(
        tmp_path,
        """
        class Rules:
            @staticmethod
            def score(row):
                return row["age"] >= 18
    """,
    )
    model = sync(load(tmp_path, {"kind": "python", "source": f"{mod}:Rules.score"}, schema=SCHEMA))
    assert model.predict(ROWS).predictions == [True, True, True]


def test_a_class_is_built_with_params(tmp_path: Path) -> None:
    mod = write(
        tmp_path,
        """
        import numpy as np

        class Threshold:
            classes_ = np.array(["low", "high"])

            def __init__(self, limit=100.0):
                self.limit = limit

            def predict(self, X):
                return np.where(X[:, 0] > self.limit, "high", "low")

            def predict_proba(self, X):
                high = (X[:, 0] > self.limit).astype(float)
                return np.column_stack([1 - high, high])
    """,
    )
    entry = {"kind": "python", "source": f"{mod}:Threshold", "options": {"params": {"limit": 300}}}
    model = sync(load(tmp_path, entry, schema=SCHEMA))
    assert isinstance(model, EstimatorModel)
    assert model.info.classes == ("low", "high")
    out = model.predict(ROWS)
    assert out.predictions == ["low", "high", "low"]
    assert out.probabilities == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]


def test_a_callable_object_is_a_rule(tmp_path: Path) -> None:
    mod = write(
        tmp_path,
        """
        class Limit:
            def __init__(self, limit):
                self.limit = limit

            def __call__(self, row):
                return row["amount"] > self.limit
    """,
    )
    entry = {"kind": "python", "source": f"{mod}:Limit", "options": {"params": {"limit": 100}}}
    assert sync(load(tmp_path, entry, schema=SCHEMA)).predict(ROWS).predictions == [
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    "body",
    [
        "return X[:, 0] > 1000",
        "return {'predictions': (X[:, 0] > 1000).tolist(), 'probabilities': [[1.0, 0.0]] * len(X)}",
    ],
    ids=["array", "mapping"],
)
def test_batch_mode_gets_the_whole_matrix(tmp_path: Path, body: str) -> None:
    mod = write(
        tmp_path,
        f"""
        calls = []

        def score(X):
            calls.append(X.shape)
            {body}
    """,
    )
    entry = {"kind": "python", "source": f"{mod}:score", "options": {"mode": "batch"}}
    model = sync(load(tmp_path, entry, schema=SCHEMA))
    assert isinstance(model, BatchFunctionModel)
    assert model.predict(ROWS).predictions == [False, True, False]
    assert sys.modules[mod].calls == [(3, 2)]


def test_version_is_given_or_derived_from_the_source(tmp_path: Path) -> None:
    versions = []
    for n in (1, 2):
        (tmp_path / f"v{n}").mkdir()
        mod = write(tmp_path / f"v{n}", f"def score(row):\n    return {n}\n")
        entry = {"kind": "python", "source": f"{mod}:score"}
        versions.append(load(tmp_path / f"v{n}", entry, schema=SCHEMA).version)
        assert load(tmp_path / f"v{n}", entry, schema=SCHEMA).version == versions[-1]
    assert len(versions[0]) == 12
    assert versions[0] != versions[1]
    given = {"kind": "python", "source": f"{mod}:score", "version": "2024-06-rules"}
    assert load(tmp_path / "v2", given, schema=SCHEMA).version == "2024-06-rules"


def test_the_deployment_directory_is_put_on_sys_path_once(tmp_path: Path) -> None:
    mod = write(tmp_path, "def score(row):\n    return 0\n")
    for _ in range(3):
        load(tmp_path, {"kind": "python", "source": f"{mod}:score"}, schema=SCHEMA)
    assert sys.path.count(str(tmp_path.resolve())) == 1


def test_an_object_without_predict(tmp_path: Path) -> None:
    mod = write(tmp_path, "settings = {'limit': 3}\n")
    with pytest.raises(ModelLoadError, match="is a dict; expected a function or an object with"):
        load(tmp_path, {"kind": "python", "source": f"{mod}:settings"}, schema=SCHEMA)


def test_a_class_without_predict(tmp_path: Path) -> None:
    mod = write(tmp_path, "class Nothing:\n    pass\n")
    with pytest.raises(ModelLoadError, match="is a Nothing; expected a function or an object"):
        load(tmp_path, {"kind": "python", "source": f"{mod}:Nothing"}, schema=SCHEMA)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "stream"}, "options.mode must be one of"),
        ({"params": {"x": 1}}, "options.params is for a class"),
        ({"classes": "yes"}, "options.classes must be a non-empty list"),
    ],
)
def test_bad_options(tmp_path: Path, options: dict[str, object], message: str) -> None:
    mod = write(tmp_path, "def score(row):\n    return 0\n")
    with pytest.raises(ModelLoadError, match=message):
        load(tmp_path, {"kind": "python", "source": f"{mod}:score", "options": options}, SCHEMA)


def test_a_class_that_fails_to_build(tmp_path: Path) -> None:
    mod = write(
        tmp_path,
        """
        class Model:
            def __init__(self, limit):
                self.limit = limit

            def predict(self, X):
                return X[:, 0]
    """,
    )
    with pytest.raises(ModelLoadError, match=r"building Model\(\*\*params\) failed: TypeError"):
        load(tmp_path, {"kind": "python", "source": f"{mod}:Model"}, schema=SCHEMA)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise KeyError('amount_eur')", "KeyError: 'amount_eur'"),
        ("return {'label': 1}", "needs a 'prediction' key"),
        (
            "return {'prediction': 1, 'probabilities': [1.0]} if row['age'] > 20 else 0",
            "probabilities for some rows only",
        ),
    ],
    ids=["raises", "no-prediction-key", "partial-probabilities"],
)
def test_a_failing_rule_is_a_model_error(tmp_path: Path, body: str, message: str) -> None:
    mod = write(tmp_path, f"def score(row):\n    {body}\n")
    model = sync(load(tmp_path, {"kind": "python", "source": f"{mod}:score"}, schema=SCHEMA))
    with pytest.raises(ModelError, match=message):
        model.predict(ROWS)


def test_an_estimator_object_must_fit_the_schema(artifacts: Path) -> None:
    entry = {"kind": "python", "source": "rdv_conf_estimator:model"}
    with pytest.raises(ModelLoadError, match="takes 30 features, the deployment's schema has 2"):
        load(artifacts, entry, schema=SCHEMA)
