"""Bad input meets an error from rendezvous.errors that names the field and what was expected."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from river import linear_model as river_linear
from sklearn.cluster import KMeans
from sklearn.tree import DecisionTreeClassifier

from rendezvous.errors import ConfigError, InputError, ModelError, NotFound
from rendezvous.learning import Engine, LearningConfig, ModelParameters

MakeEngine = Callable[..., Engine]


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    """A trained 3-feature linear model 'm' (y = x0 + 2 x1 - x2) and a trained classifier 'c'."""
    engine = make_engine(LearningConfig.manual(validation_fraction=0.0))
    engine.register_model("m", "linear")
    engine.register_model("c", "logistic")
    rng = np.random.default_rng(0)
    for x in rng.normal(size=(50, 3)).tolist():
        engine.add_training_example("m", x, x[0] + 2 * x[1] - x[2])
        engine.add_training_example("c", x, "yes" if x[0] > 0 else "no")
    engine.train_model("m")
    engine.train_model("c")
    return engine


def test_unknown_model_is_not_found_and_lists_the_known_ones(engine: Engine) -> None:
    for call in (
        lambda: engine.predict("nope", [1.0, 2.0, 3.0]),
        lambda: engine.predict_batch("nope", [[1.0, 2.0, 3.0]]),
        lambda: engine.add_training_example("nope", [1.0, 2.0, 3.0], 1.0),
        lambda: engine.train_model("nope"),
        lambda: engine.get_model_info("nope"),
        lambda: engine.get_snapshot("nope"),
    ):
        with pytest.raises(NotFound, match=r"name: unknown model 'nope'; registered: 'm', 'c'"):
            call()


def test_a_model_without_a_version_says_how_to_get_one(make_engine: MakeEngine) -> None:
    engine = make_engine()
    engine.register_model("fresh", "linear")
    with pytest.raises(NotFound, match="model 'fresh' has no version yet"):
        engine.predict("fresh", [1.0])
    with pytest.raises(ModelError, match="no training examples yet"):
        engine.train_model("fresh")


@pytest.mark.parametrize("model", ["m", "c"])
def test_wrong_feature_count(engine: Engine, model: str) -> None:
    with pytest.raises(InputError, match=r"^features: expected 3 numbers, got 2$") as info:
        engine.predict(model, [1.0, 2.0])
    assert info.value.loc == "features"
    with pytest.raises(InputError, match="features: expected 3 numbers, got 4"):
        engine.add_training_example(model, [1.0, 2.0, 3.0, 4.0], 1.0)


@pytest.mark.parametrize("model", ["m", "c"])
@pytest.mark.parametrize(
    ("features", "loc", "expected"),
    [
        ([1.0, "2", 3.0], "features[1]", "expected a number, got str '2'"),
        ([1.0, None, 3.0], "features[1]", "expected a number, got NoneType None"),
        ([1.0, 2.0, math.nan], "features[2]", "expected a finite number, got nan"),
        ([math.inf, 2.0, 3.0], "features[0]", "expected a finite number, got inf"),
        ([1.0, 2.0, 1j], "features[2]", "expected a number, got complex 1j"),
        ("abc", "features", "expected a sequence of numbers, got str 'abc'"),
        ({"a": 1.0}, "features", "expected a sequence of numbers, got dict"),
        (np.zeros((1, 3)), "features", "expected a 1-D sequence of numbers, got shape (1, 3)"),
    ],
)
def test_bad_features_name_the_element(
    engine: Engine, model: str, features: object, loc: str, expected: str
) -> None:
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")) as info:
        engine.predict(model, features)
    assert info.value.loc == loc
    with pytest.raises(InputError) as info:
        engine.add_training_example(model, features, 1.0)
    assert info.value.loc == loc


def test_numpy_rows_and_numbers_are_accepted(engine: Engine) -> None:
    expected = engine.predict("m", [1.0, 2.0, 3.0]).prediction
    assert engine.predict("m", np.array([1.0, 2.0, 3.0])).prediction == pytest.approx(expected)
    assert engine.predict("m", (1, np.float32(2.0), np.int64(3))).prediction == pytest.approx(
        expected
    )
    assert engine.predict("m", [True, 2, 3]).prediction == pytest.approx(
        engine.predict("m", [1.0, 2.0, 3.0]).prediction
    )


def test_bad_targets(engine: Engine) -> None:
    with pytest.raises(InputError, match=r"^target: expected a finite number, got nan$"):
        engine.add_training_example("m", [1.0, 2.0, 3.0], math.nan)
    with pytest.raises(InputError, match="target: expected a number, got str 'x'"):
        engine.add_training_example("m", [1.0, 2.0, 3.0], "x")
    with pytest.raises(InputError, match=r"target: expected a class label \(int, str or bool\)"):
        engine.add_training_example("c", [1.0, 2.0, 3.0], [1])
    with pytest.raises(InputError, match="is_validation: expected true or false"):
        engine.add_training_example("m", [1.0, 2.0, 3.0], 1.0, is_validation="yes")  # type: ignore[arg-type]


def test_batch_errors_name_row_and_element(engine: Engine) -> None:
    with pytest.raises(InputError) as info:
        engine.predict_batch("m", [[1.0, 2.0, 3.0], [1.0, math.nan, 3.0]])
    assert info.value.loc == "rows[1][1]"
    with pytest.raises(InputError, match="rows: expected a sequence of rows"):
        engine.predict_batch("m", 5)
    with pytest.raises(InputError, match=r"rows\[0\]: expected 3 numbers, got 1"):
        engine.predict_batch("m", np.zeros((2, 1)))


def test_registration_errors(make_engine: MakeEngine) -> None:
    engine = make_engine()
    engine.register_model("m", "linear")
    with pytest.raises(InputError, match="name: model 'm' is already registered"):
        engine.register_model("m", "ridge")
    with pytest.raises(InputError, match="name: expected a non-empty string"):
        engine.register_model("", "linear")
    with pytest.raises(InputError, match="kind: expected one of linear, ridge, logistic") as info:
        engine.register_model("x", "forest")
    assert info.value.loc == "kind"
    with pytest.raises(
        InputError, match=r"kind: expected .* got sklearn\.cluster\._kmeans\.KMeans"
    ):
        engine.register_model("x", KMeans())
    with pytest.raises(InputError, match="params: applies to the built-in kinds only"):
        engine.register_model("x", DecisionTreeClassifier(), ModelParameters())
    with pytest.raises(InputError, match=r"params\.regularization: kind 'ridge' needs a penalty"):
        engine.register_model("x", "ridge", ModelParameters(regularization=0.0))
    with pytest.raises(InputError, match=r"params\.regularization: kind 'linear' fits without"):
        engine.register_model("x", "linear", ModelParameters(regularization=0.5))
    with pytest.raises(InputError, match="n_features: expected an integer ≥ 1 or None"):
        engine.register_model("x", "linear", n_features=0)
    with pytest.raises(ConfigError, match="detector: 'ddm' watches right/wrong answers"):
        engine.register_model("x", "linear", config=LearningConfig(detector="ddm"))
    assert engine.list_models() == ["m"]


def test_n_features_given_at_registration_is_enforced_from_the_start(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine()
    engine.register_model("m", "linear", n_features=2)
    with pytest.raises(InputError, match="features: expected 2 numbers, got 3"):
        engine.add_training_example("m", [1.0, 2.0, 3.0], 1.0)
    assert engine.get_model_info("m").n_features == 2
    engine.register_model("online", river_linear.LinearRegression(), n_features=2)
    assert engine.predict("online", [1.0, 2.0]).model_version == 1
    with pytest.raises(InputError, match="features: expected 2 numbers, got 1"):
        engine.predict("online", [1.0])
