"""The river kind: pickles and import strings, row by row, classes learnt as they appear."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rendezvous.errors import ModelLoadError
from rendezvous.models import RiverModel

from .helpers import load

SCHEMA = {"features": ["a", "b"]}
ROWS = np.array([[0.0, 1.0], [2.0, -1.0]])


def river_model(base: Path, source: str, **entry: Any) -> RiverModel:
    model = load(base, {"kind": "river", "source": source, **entry}, schema=SCHEMA)
    assert isinstance(model, RiverModel)
    return model


def test_built_by_import_string_with_params(tmp_path: Path) -> None:
    model = river_model(
        tmp_path, "river.linear_model:LogisticRegression", options={"params": {"l2": 0.1}}
    )
    assert model.estimator.l2 == 0.1
    out = model.predict(ROWS)
    assert out.predictions == [False, False]  # untrained: even odds, the first class wins
    assert model.info.classes == (False, True)
    assert out.probabilities == [[0.5, 0.5], [0.5, 0.5]]


def test_version_follows_import_string_and_params(tmp_path: Path) -> None:
    source = "river.linear_model:LogisticRegression"
    a = river_model(tmp_path, source, options={"params": {"l2": 0.1}}).version
    b = river_model(tmp_path, source, options={"params": {"l2": 0.2}}).version
    assert a != b
    assert a == river_model(tmp_path, source, options={"params": {"l2": 0.1}}).version


def test_an_untrained_classifier_answers_none(tmp_path: Path) -> None:
    model = river_model(tmp_path, "river.tree:HoeffdingTreeClassifier")
    out = model.predict(ROWS)
    assert out.predictions == [None, None]
    assert out.probabilities is None
    assert model.info.classes is None


def test_classes_grow_as_the_estimator_learns(tmp_path: Path) -> None:
    model = river_model(tmp_path, "river.tree:HoeffdingTreeClassifier")
    for label, x in (("cat", {"a": 0.0, "b": 1.0}), ("ant", {"a": 5.0, "b": -1.0})):
        model.estimator.learn_one(x, label)
    out = model.predict(ROWS)
    assert model.info.classes == ("ant", "cat")
    assert out.probabilities is not None
    assert all(len(row) == 2 for row in out.probabilities)
    model.estimator.learn_one({"a": 9.0, "b": 9.0}, "bee")
    model.predict(ROWS)
    assert model.info.classes == ("ant", "bee", "cat")


def test_fixed_classes_set_the_column_order(tmp_path: Path) -> None:
    model = river_model(
        tmp_path, "river.tree:HoeffdingTreeClassifier", options={"classes": ["z", "a"]}
    )
    model.estimator.learn_one({"a": 0.0, "b": 1.0}, "a")
    out = model.predict(ROWS)
    assert model.info.classes == ("z", "a")
    assert out.probabilities == [[0.0, 1.0], [0.0, 1.0]]


def test_a_regressor_has_no_probabilities(tmp_path: Path) -> None:
    model = river_model(tmp_path, "river.linear_model:LinearRegression")
    model.estimator.learn_one({"a": 1.0, "b": 2.0}, 3.0)
    out = model.predict(ROWS)
    assert out.probabilities is None
    assert all(type(p) is float for p in out.predictions)


def test_params_are_only_for_import_strings(artifacts: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"options.params is only for an import string"):
        load(artifacts, {"kind": "river", "source": "river.pkl", "options": {"params": {}}})


def test_a_pickle_without_predict_one(tmp_path: Path) -> None:
    import pickle

    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ModelLoadError, match="a list has no predict_one method"):
        river_model(tmp_path, "list.pkl")


def test_a_bad_param_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"building river.linear_model:LogisticRegression"):
        river_model(
            tmp_path, "river.linear_model:LogisticRegression", options={"params": {"l3": 1}}
        )
