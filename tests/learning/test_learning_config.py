"""LearningConfig and ModelParameters: validated at construction, every bad field named."""

from __future__ import annotations

import dataclasses
import math

import pytest

import rendezvous.learning
from rendezvous.errors import ConfigError, RendezvousError
from rendezvous.learning import LearningConfig, ModelParameters


def test_every_exported_name_exists() -> None:
    exported = rendezvous.learning.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(rendezvous.learning, name)


def test_defaults_are_valid_and_readable() -> None:
    config = LearningConfig()
    assert config.queue_full == "drop_oldest"
    assert config.detector == "adwin"
    assert "min_samples=100" in repr(config)


def test_presets_differ_by_intent_and_take_overrides() -> None:
    frequent, stable, manual = (
        LearningConfig.frequent_updates(),
        LearningConfig.stable(),
        LearningConfig.manual(),
    )
    assert frequent.min_samples is not None and stable.min_samples is not None
    assert frequent.min_samples < stable.min_samples
    assert frequent.window_size < stable.window_size
    assert stable.tolerance == 0.0
    assert manual.min_samples is None and manual.interval_sec is None
    assert not manual.retrain_on_drift and manual.drift_detection
    assert LearningConfig.stable(tolerance=0.01).tolerance == 0.01


def test_every_bad_field_is_reported_at_once_with_its_name() -> None:
    with pytest.raises(ConfigError) as info:
        LearningConfig(
            min_samples=0,
            interval_sec=-1.0,
            queue_full="spill",  # type: ignore[arg-type]
            detector="kswin",  # type: ignore[arg-type]
            window="recent",  # type: ignore[arg-type]
            validation_fraction=1.0,
            tolerance=math.nan,
            max_queue_size=True,
        )
    locs = {p.loc for p in info.value.problems}
    assert locs == {
        "min_samples",
        "interval_sec",
        "queue_full",
        "detector",
        "window",
        "validation_fraction",
        "tolerance",
        "max_queue_size",
    }
    message = str(info.value)
    assert "min_samples: expected an integer ≥ 1 or None, got 0" in message
    assert "queue_full: expected one of 'drop_oldest', 'block', 'reject'" in message
    assert "max_queue_size: expected an integer ≥ 1, got bool True" in message
    assert isinstance(info.value, RendezvousError)


def test_drift_threshold_is_checked_against_the_detector() -> None:
    LearningConfig(detector="page_hinkley", drift_threshold=20.0)
    with pytest.raises(ConfigError, match="drift_threshold: adwin takes a confidence"):
        LearningConfig(detector="adwin", drift_threshold=20.0)
    with pytest.raises(ConfigError, match="drift_threshold"):
        LearningConfig(drift_threshold=0.0)


def test_triggers_can_be_turned_off_with_none() -> None:
    config = LearningConfig(min_samples=None, interval_sec=None)
    assert config.min_samples is None and config.interval_sec is None


def test_configs_are_frozen() -> None:
    config = LearningConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.min_samples = 5  # type: ignore[misc]


def test_model_parameters_validate_and_have_per_kind_defaults() -> None:
    params = ModelParameters()
    assert (params.with_bias, params.learning_rate, params.max_iterations) == (True, 0.01, 1000)
    assert params.regularization == 0.0
    assert ModelParameters.for_kind("ridge").regularization == 1.0
    assert ModelParameters.for_kind("linear").regularization == 0.0
    with pytest.raises(ConfigError) as info:
        ModelParameters(learning_rate=0.0, max_iterations=-5, regularization=-1.0, with_bias=1)  # type: ignore[arg-type]
    assert {p.loc for p in info.value.problems} == {
        "learning_rate",
        "max_iterations",
        "regularization",
        "with_bias",
    }
    assert info.value.source == "ModelParameters"
