"""Drift: detectors by name, and live error recovering after a concept change.

The recovery tests drive the learner by hand (``process_pending`` after every example) with
fixed seeds, so they are deterministic: no thread, no timing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from river.datasets import synth

from rendezvous.learning import DriftWatch, Engine, LearningConfig
from rendezvous.learning.drift import make_detector

from .clock import FakeClock

MakeEngine = Callable[..., Engine]

# Regression: y = x, then y = 2x, with noise.
SLOPE_DRIFT_AT = 2_000
SLOPE_RECOVERY_EXAMPLES = 500  # live MAE back within 10% of pre-drift within this many
SLOPE_ROLLING = 100  # the live error is the MAE of the last 100 predictions

# Classification: SEA concept 2 (x0 + x1 <= 7), then concept 3 (x0 + x1 <= 9.5).
SEA_DRIFT_AT = 3_000
SEA_RECOVERY_EXAMPLES = 1_000  # rolling accuracy back within 10% of pre-drift
SEA_ROLLING = 200


def _rolling(values: dict[int, float], end: int, k: int) -> float:
    return float(np.mean([values[i] for i in range(end - k, end)]))


@pytest.mark.parametrize(
    ("name", "stream"),
    [
        ("adwin", [0.1] * 300 + [0.9] * 300),
        ("page_hinkley", [0.1] * 300 + [0.9] * 300),
        ("ddm", [0.0, 0.0, 0.0, 1.0] * 100 + [1.0, 1.0, 0.0] * 100),
        ("hddm_a", [0.0, 0.0, 0.0, 1.0] * 100 + [1.0, 1.0, 0.0] * 100),
    ],
)
def test_each_detector_sees_errors_rise(name: str, stream: list[float]) -> None:
    watch = DriftWatch(name, None, "classification")  # type: ignore[arg-type]
    alarms = []
    for i, x in enumerate(stream):
        watch.update(x)
        if watch.drift_detected:
            alarms.append(i)
    change = 300 if name in ("adwin", "page_hinkley") else 400
    assert alarms, f"{name} missed the change"
    assert all(a >= change for a in alarms), f"{name} false alarm before the change: {alarms}"


@pytest.mark.parametrize("name", ["adwin", "page_hinkley"])
def test_falling_errors_are_not_drift(name: str) -> None:
    watch = DriftWatch(name, None, "regression")  # type: ignore[arg-type]
    for x in [0.9] * 300 + [0.1] * 300:
        watch.update(x)
        assert not watch.drift_detected


def test_thresholds_reach_the_detectors() -> None:
    assert make_detector("adwin", 0.01).delta == 0.01
    assert make_detector("page_hinkley", 7.0).threshold == 7.0
    assert make_detector("ddm", 4.0).drift_threshold == 4.0
    assert make_detector("hddm_a", 0.0005).drift_confidence == 0.0005
    with pytest.raises(ValueError, match="classifiers only"):
        DriftWatch("ddm", None, "regression")


def test_regression_recovers_after_the_slope_changes(make_engine: MakeEngine) -> None:
    config = LearningConfig(
        min_samples=100, interval_sec=None, drift_min_samples=30, window_size=1_000
    )
    engine = make_engine(config)
    engine.register_model("slope", "linear")
    rng = np.random.default_rng(7)
    errors: dict[int, float] = {}
    for i in range(SLOPE_DRIFT_AT + SLOPE_RECOVERY_EXAMPLES):
        x = float(rng.uniform(0.0, 2.0))
        y = (1.0 if i < SLOPE_DRIFT_AT else 2.0) * x + float(rng.normal(0.0, 0.1))
        if engine.get_model_info("slope").version is not None:
            errors[i] = abs(engine.predict("slope", [x]).prediction - y)  # before learning
        engine.add_training_example("slope", [x], y)
        engine.process_pending()
        if i == SLOPE_DRIFT_AT - 1:
            version_before = engine.get_model_info("slope").version

    before = _rolling(errors, SLOPE_DRIFT_AT, SLOPE_ROLLING)
    after = [
        _rolling(errors, end, SLOPE_ROLLING)
        for end in range(SLOPE_DRIFT_AT + SLOPE_ROLLING, SLOPE_DRIFT_AT + SLOPE_RECOVERY_EXAMPLES)
    ]
    assert max(after) > 2 * before, "the drift should hurt first"
    assert min(after) <= 1.1 * before
    info = engine.get_model_info("slope")
    assert info.version is not None and version_before is not None
    assert info.version > version_before
    assert [e.detector for e in info.drift_events] == ["adwin"]
    assert info.drift_events[0].n_examples > SLOPE_DRIFT_AT
    assert any(v.trigger == "drift" and v.accepted for v in info.validations)


def test_classification_recovers_after_a_sea_concept_drift(make_engine: MakeEngine) -> None:
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=2, seed=1),
        drift_stream=synth.SEA(variant=3, seed=2),
        position=SEA_DRIFT_AT,
        width=50,
        seed=1,
    )
    config = LearningConfig(
        min_samples=200, interval_sec=None, drift_min_samples=50, window_size=2_000
    )
    engine = make_engine(config)
    engine.register_model("sea", "logistic")
    right: dict[int, float] = {}
    for i, (x, y) in enumerate(stream.take(SEA_DRIFT_AT + SEA_RECOVERY_EXAMPLES)):
        row = [x[0], x[1], x[2]]
        if engine.get_model_info("sea").version is not None:
            right[i] = float(engine.predict("sea", row).prediction == y)
        engine.add_training_example("sea", row, y)
        engine.process_pending()
        if i == SEA_DRIFT_AT - 1:
            version_before = engine.get_model_info("sea").version

    before = _rolling(right, SEA_DRIFT_AT, SEA_ROLLING)
    end = SEA_DRIFT_AT + SEA_RECOVERY_EXAMPLES
    dip = min(_rolling(right, i, SEA_ROLLING) for i in range(SEA_DRIFT_AT, end))
    # Recovery counts only windows wholly after the drift's 50-example transition.
    best = max(_rolling(right, i, SEA_ROLLING) for i in range(SEA_DRIFT_AT + 50 + SEA_ROLLING, end))
    assert dip < 0.9 * before, "the drift should hurt first"
    assert best >= 0.9 * before
    info = engine.get_model_info("sea")
    assert info.version is not None and version_before is not None
    assert info.version > version_before
    assert info.drift_events and info.drift_events[-1].n_examples > SEA_DRIFT_AT
    assert info.drift_events[-1].version == version_before


def test_drift_is_recorded_on_the_injected_clock_without_retraining_when_told(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(LearningConfig.manual(validation_fraction=0.0))
    engine.register_model("m", "linear")
    rng = np.random.default_rng(3)
    for _ in range(200):
        x = float(rng.uniform(0, 2))
        engine.add_training_example("m", [x], x + float(rng.normal(0, 0.1)))
    engine.train_model("m")
    for i in range(500):  # the detector learns the normal error level, then the slope triples
        x = float(rng.uniform(0, 2))
        engine.add_training_example("m", [x], x + float(rng.normal(0, 0.1)) if i < 200 else 3 * x)
        if i == 200:
            clock.advance(60.0)
        assert engine.process_pending() == []
    info = engine.get_model_info("m")
    assert info.drift_events and info.drift_events[0].time == clock.now
    assert info.drift_events[0].version == 1
    assert info.drift_events[0].n_examples > 400
    assert info.version == 1  # manual: recorded, not acted on
    assert info.n_training_examples == 700  # retrain_on_drift=False keeps the window
    assert info.live_error is not None and info.live_error > 1.0


def test_since_drift_window_forgets_the_old_concept(make_engine: MakeEngine) -> None:
    config = LearningConfig(min_samples=None, interval_sec=None, drift_min_samples=40)
    engine = make_engine(config)
    engine.register_model("m", "linear")
    rng = np.random.default_rng(4)
    for _ in range(300):
        x = float(rng.uniform(0, 2))
        engine.add_training_example("m", [x], x + float(rng.normal(0, 0.05)))
    engine.train_model("m")
    decisions = []
    for i in range(400):  # the normal error level first, then the slope flips
        x = float(rng.uniform(0, 2))
        engine.add_training_example("m", [x], x + float(rng.normal(0, 0.05)) if i < 200 else -x)
        decisions += engine.process_pending()
    assert [d.trigger for d in decisions] == ["drift"]
    assert decisions[0].accepted
    assert decisions[0].trained_on == 40
    assert engine.predict("m", [1.0]).prediction == pytest.approx(-1.0)
