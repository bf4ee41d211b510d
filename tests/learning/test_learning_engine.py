"""The Engine: triggers, validation decisions, kinds, reports and the background lifecycle."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from river import linear_model as river_linear
from river import tree as river_tree
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeClassifier

from rendezvous.errors import ModelError, NotFound
from rendezvous.learning import Engine, LearningConfig, ModelParameters, ValidationDecision

from .clock import FakeClock

MakeEngine = Callable[..., Engine]


def _linear_rows(n: int, seed: int = 0) -> list[tuple[list[float], float]]:
    """y = 2 x0 - x1 + 0.5 + noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = 2 * x[:, 0] - x[:, 1] + 0.5 + rng.normal(scale=0.05, size=n)
    return list(zip(x.tolist(), y.tolist(), strict=True))


def _feed(engine: Engine, name: str, examples: list[tuple[list[float], float]]) -> None:
    for x, y in examples:
        engine.add_training_example(name, x, y)


def test_train_model_publishes_and_reports(make_engine: MakeEngine, clock: FakeClock) -> None:
    engine = make_engine(LearningConfig.manual())
    status = engine.register_model("m", "linear")
    assert status.version is None and status.kind == "linear" and status.task == "regression"
    _feed(engine, "m", _linear_rows(100))
    assert engine.get_model_info("m").queue_size == 100

    decision = engine.train_model("m")
    assert isinstance(decision, ValidationDecision)
    assert decision.accepted and decision.version == 1 and decision.reason == "first version"
    assert decision.trained_on == 80 and decision.n_examples == 20  # 20% held out
    assert decision.candidate_score is not None and decision.candidate_score < 0.1
    answer = engine.predict("m", [1.0, 1.0])
    assert answer.model_version == 1
    assert answer.prediction == pytest.approx(1.5, abs=0.05)
    assert answer.probabilities is None

    info = engine.get_model_info("m")
    assert info.version == 1 and info.versions == (1,)
    assert info.n_examples_seen == 100 and info.queue_size == 0
    assert (info.n_training_examples, info.n_validation_examples) == (80, 20)
    assert info.trainings == 1 and info.last_training_time == clock.now
    assert info.validations == (decision,)
    assert info.drift_events == () and info.last_error is None
    assert info.dropped_examples == 0 and info.rejected_examples == 0

    _feed(engine, "m", _linear_rows(50, seed=1))
    second = engine.train_model("m")
    assert second.accepted and second.version == 2 and second.serving_version == 1
    assert second.serving_score is not None
    assert engine.predict("m", [1.0, 1.0]).model_version == 2


def test_list_models_in_registration_order(make_engine: MakeEngine) -> None:
    engine = make_engine()
    for name in ("b", "a", "c"):
        engine.register_model(name, "ridge")
    assert engine.list_models() == ["b", "a", "c"]


def test_min_samples_trigger(make_engine: MakeEngine) -> None:
    config = LearningConfig(min_samples=40, interval_sec=None, validation_fraction=0.0)
    engine = make_engine(config)
    engine.register_model("m", "linear")
    examples = _linear_rows(100)
    _feed(engine, "m", examples[:39])
    assert engine.process_pending() == []
    _feed(engine, "m", examples[39:40])
    [decision] = engine.process_pending()
    assert decision.trigger == "min_samples" and decision.version == 1
    _feed(engine, "m", examples[40:79])
    assert engine.process_pending() == []
    _feed(engine, "m", examples[79:80])
    assert [d.version for d in engine.process_pending()] == [2]


def test_interval_trigger_follows_the_injected_clock(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    config = LearningConfig(min_samples=None, interval_sec=30.0, validation_fraction=0.0)
    engine = make_engine(config)
    engine.register_model("m", "linear")
    _feed(engine, "m", _linear_rows(10))
    clock.advance(29.9)
    assert engine.process_pending() == []
    clock.advance(0.1)
    [decision] = engine.process_pending()
    assert decision.trigger == "interval" and decision.time == clock.now
    clock.advance(60.0)
    assert engine.process_pending() == [], "no new data, no training"
    _feed(engine, "m", _linear_rows(1, seed=2))
    assert [d.trigger for d in engine.process_pending()] == ["interval"]


def test_validation_rejects_a_worse_candidate_and_keeps_both_scores(
    make_engine: MakeEngine,
) -> None:
    config = LearningConfig.manual(window="sliding", window_size=200, drift_detection=False)
    engine = make_engine(config)
    engine.register_model("c", "logistic")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int).tolist()
    for row, label in zip(x[:200].tolist(), y[:200], strict=True):
        engine.add_training_example("c", row, label)
    assert engine.train_model("c").accepted
    held_out = [(row, label) for row, label in zip(x[200:300].tolist(), y[200:300], strict=True)]
    for row, label in held_out:
        engine.add_training_example("c", row, label, is_validation=True)
    shuffled = rng.permutation(y[300:600]).tolist()  # labels unrelated to the features
    for row, label in zip(x[300:600].tolist(), shuffled, strict=True):
        engine.add_training_example("c", row, label)

    decision = engine.train_model("c")
    assert not decision.accepted and decision.version is None
    assert decision.serving_version == 1
    assert decision.metric == "error_rate"
    assert decision.serving_score is not None and decision.candidate_score is not None
    assert decision.serving_score < 0.2 < decision.candidate_score
    assert decision.n_examples >= 100
    assert "worse than the serving version" in decision.reason
    info = engine.get_model_info("c")
    assert info.version == 1
    assert info.validations[-1] == decision
    assert engine.predict("c", [3.0, 3.0, 0.0, 0.0]).model_version == 1


def test_validation_examples_never_train(make_engine: MakeEngine) -> None:
    engine = make_engine(LearningConfig.manual(validation_fraction=0.0))
    engine.register_model("m", "linear")
    for x, y in _linear_rows(30):
        engine.add_training_example("m", x, y, is_validation=True)
    engine.process_pending()
    info = engine.get_model_info("m")
    assert (info.n_training_examples, info.n_validation_examples) == (0, 30)
    with pytest.raises(ModelError, match="no training examples yet"):
        engine.train_model("m")


def test_a_failed_training_is_raised_by_hand_and_recorded_in_the_background(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(LearningConfig(min_samples=5, interval_sec=None, validation_fraction=0))
    engine.register_model("c", "logistic")
    for i in range(5):  # one class only: logistic regression cannot fit
        engine.add_training_example("c", [float(i)], "a")
    assert engine.process_pending() == []
    info = engine.get_model_info("c")
    assert info.version is None and info.trainings == 1
    assert info.last_error is not None and "ValueError" in info.last_error
    with pytest.raises(ModelError, match="model 'c': training failed: ValueError"):
        engine.train_model("c")


def test_a_solver_that_stops_early_is_noted_not_raised(make_engine: MakeEngine) -> None:
    engine = make_engine(LearningConfig.manual(validation_fraction=0.0))
    engine.register_model("c", "logistic", ModelParameters(max_iterations=1, regularization=0.01))
    rng = np.random.default_rng(0)
    for row in rng.normal(size=(200, 5)).tolist():
        engine.add_training_example("c", row, int(row[0] + 0.3 * row[1] > 0))
    assert engine.train_model("c").accepted
    notes = engine.get_model_info("c").notes
    assert notes and notes[0].startswith("ConvergenceWarning")


def test_any_sklearn_estimator_is_refitted_and_a_fitted_one_serves_at_once(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(LearningConfig.manual(validation_fraction=0.0))
    engine.register_model("tree", DecisionTreeClassifier(max_depth=3, random_state=0))
    assert engine.get_model_info("tree").kind == "sklearn:DecisionTreeClassifier"
    for i in range(40):
        engine.add_training_example("tree", [float(i), 0.0], "hi" if i >= 20 else "lo")
    engine.train_model("tree")
    answer = engine.predict("tree", [30.0, 0.0])
    assert answer.prediction == "hi" and answer.probabilities == {"hi": 1.0, "lo": 0.0}

    fitted = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])
    engine.register_model("fitted", fitted)
    info = engine.get_model_info("fitted")
    assert info.version == 1 and info.n_features == 1
    assert engine.predict("fitted", [2.0]).prediction == pytest.approx(5.0)
    assert engine.get_snapshot("fitted").trigger == "registered"
    fitted.fit([[0.0], [1.0]], [0.0, 0.0])  # the user's object is theirs: serving is a copy
    assert engine.predict("fitted", [2.0]).prediction == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("kind", "task"),
    [
        ("online_linear", "regression"),
        ("online_logistic", "classification"),
        (river_linear.LinearRegression(), "regression"),
        (river_tree.HoeffdingTreeClassifier(), "classification"),
    ],
    ids=["online_linear", "online_logistic", "river-linear", "river-tree"],
)
def test_online_models_learn_one_at_a_time(
    make_engine: MakeEngine, kind: object, task: str
) -> None:
    engine = make_engine(LearningConfig(min_samples=50, interval_sec=None))
    status = engine.register_model("m", kind)
    assert status.task == task
    if not isinstance(kind, str):  # River objects predict from the start
        assert status.version == 1
    rng = np.random.default_rng(1)
    decisions = []
    for x in rng.uniform(-1, 1, size=(300, 2)).tolist():
        target = (1.0 + 3 * x[0]) if task == "regression" else bool(x[0] > 0)
        engine.add_training_example("m", x, target)
        decisions += engine.process_pending()
    assert decisions and decisions[-1].trained_on > 100
    info = engine.get_model_info("m")
    assert info.version is not None and info.version > 1
    answer = engine.predict("m", [0.5, 0.0])
    if task == "regression":
        assert answer.prediction == pytest.approx(2.5, abs=0.5)
    else:
        assert answer.prediction is True and answer.probabilities is not None


def test_online_candidates_are_copies_the_learner_keeps_learning_past(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(LearningConfig.manual(validation_fraction=0.0))
    engine.register_model("m", "online_linear", ModelParameters(learning_rate=0.1))
    for _ in range(200):
        engine.add_training_example("m", [1.0], 10.0)
    engine.train_model("m")
    served = engine.predict("m", [1.0]).prediction
    for _ in range(200):
        engine.add_training_example("m", [1.0], -10.0)
    engine.process_pending()  # learnt by the working copy, not published
    assert engine.predict("m", [1.0]).prediction == served


def test_snapshots_by_version_and_how_many_are_kept(make_engine: MakeEngine) -> None:
    engine = make_engine(LearningConfig.manual(validation_fraction=0.0, keep_versions=3))
    engine.register_model("m", "linear")
    for i in range(5):
        engine.add_training_example("m", [float(i)], float(i))
        engine.train_model("m")
    assert engine.get_model_info("m").versions == (3, 4, 5)
    assert engine.get_snapshot("m", 4).version == 4
    assert engine.get_snapshot("m").version == 5
    with pytest.raises(NotFound, match=r"model 'm' has no version 1 \(kept: \[3, 4, 5\]\)"):
        engine.get_snapshot("m", 1)


def test_predict_batch_uses_one_snapshot(make_engine: MakeEngine) -> None:
    engine = make_engine(LearningConfig.manual())
    engine.register_model("m", "ridge")
    _feed(engine, "m", _linear_rows(100))
    engine.train_model("m")
    answers = engine.predict_batch("m", [[1.0, 1.0], [0.0, 0.0], [2.0, -1.0]])
    assert [a.model_version for a in answers] == [1, 1, 1]
    singles = [engine.predict("m", row).prediction for row in ([1.0, 1.0], [0.0, 0.0], [2.0, -1.0])]
    assert [a.prediction for a in answers] == pytest.approx(singles)
    assert engine.predict_batch("m", []) == []


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_background_learning_trains_and_stops_idempotently() -> None:
    config = LearningConfig(min_samples=50, interval_sec=None)
    engine = Engine(config, poll_interval_sec=0.01)
    engine.register_model("m", "linear")
    assert not engine.is_learning
    engine.stop_continuous_learning()  # never started: nothing to do
    engine.start_continuous_learning()
    engine.start_continuous_learning()  # already running: nothing to do
    assert engine.is_learning
    _feed(engine, "m", _linear_rows(200))
    _wait_for(lambda: (engine.get_model_info("m").version or 0) >= 1)
    assert engine.stop_continuous_learning() is True
    assert engine.stop_continuous_learning() is True
    assert not engine.is_learning
    # Stopped: examples wait in the queue until the learner runs again.
    _feed(engine, "m", _linear_rows(10, seed=5))
    assert engine.get_model_info("m").queue_size == 10


def test_stop_takes_queued_examples_in() -> None:
    engine = Engine(LearningConfig.manual(), poll_interval_sec=60.0)
    engine.register_model("m", "linear")
    engine.start_continuous_learning()
    _feed(engine, "m", _linear_rows(25))
    engine.stop_continuous_learning()
    info = engine.get_model_info("m")
    assert info.queue_size == 0 and info.n_examples_seen == 25


def test_context_manager_runs_the_learner() -> None:
    with Engine(
        LearningConfig(min_samples=20, interval_sec=None), poll_interval_sec=0.01
    ) as engine:
        assert engine.is_learning
        engine.register_model("m", "ridge")
        _feed(engine, "m", _linear_rows(100))
        _wait_for(lambda: engine.get_model_info("m").version is not None)
    assert not engine.is_learning
