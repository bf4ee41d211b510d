"""Typed, validated settings for continuous learning and for the built-in model kinds.

Both classes are frozen dataclasses checked at construction: every bad field is reported at
once in one :class:`~rendezvous.errors.ConfigError` whose problems name the field and what
was expected, so ``LearningConfig(min_samples=0, tolerance=-1)`` tells you both mistakes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, Self, TypeGuard, get_args

from ..errors import ConfigError, Problem

__all__ = [
    "DetectorName",
    "LearningConfig",
    "ModelParameters",
    "QueueFullPolicy",
    "WindowPolicy",
]

DetectorName = Literal["adwin", "page_hinkley", "hddm_a", "ddm"]
WindowPolicy = Literal["sliding", "since_drift", "all"]
QueueFullPolicy = Literal["drop_oldest", "block", "reject"]


@dataclass(frozen=True)
class LearningConfig:
    """When to retrain, on which data, and when a new version may replace the serving one.

    Triggers (any one retrains; ``None`` turns a trigger off):

    * ``min_samples`` — this many new training examples since the last training;
    * ``interval_sec`` — this long since the last training, if any new example arrived;
    * drift — with ``drift_detection`` on, the ``detector`` watches the serving version's
      errors (each labelled example is predicted *before* it is learnt) and, with
      ``retrain_on_drift``, a retrain follows ``drift_min_samples`` examples after the alarm.
      ``drift_threshold`` is the detector's own sensitivity knob, ``None`` for River's
      default: ADWIN ``delta``, Page-Hinkley ``threshold``, DDM ``drift_threshold`` (in
      standard deviations), HDDM_A ``drift_confidence``. ``ddm`` and ``hddm_a`` watch a
      right/wrong stream, so they suit classifiers only.

    Data (``window``): ``"sliding"`` trains on the last ``window_size`` examples,
    ``"since_drift"`` on those since the last drift alarm (also at most ``window_size``; the
    data before an alarm describes a concept that has gone, held-out data included), ``"all"``
    on every example ever seen (unbounded memory).

    Queue: examples wait in a queue of ``max_queue_size`` per model until the learner takes
    them. When it is full, ``queue_full`` decides: ``"drop_oldest"`` (counted and reported),
    ``"block"`` (waits ``block_timeout_sec``, then raises ``Overloaded``) or ``"reject"``
    (raises ``Overloaded`` at once).

    Validation: every ``1/validation_fraction``-th training example is held out, and together
    with examples added as ``is_validation=True`` (the last ``validation_size`` of each kind)
    scores the candidate against the serving version. The candidate is published unless its
    loss (error rate for classifiers, relative absolute error for regressors) is worse by
    more than ``tolerance``.

    Bookkeeping: ``error_window`` recent prequential errors make the live error,
    ``keep_versions`` published snapshots stay reachable, ``history_size`` recent
    validation decisions and drift events are kept.
    """

    min_samples: int | None = 100
    interval_sec: float | None = 60.0
    max_queue_size: int = 10_000
    queue_full: QueueFullPolicy = "drop_oldest"
    block_timeout_sec: float = 1.0
    drift_detection: bool = True
    detector: DetectorName = "adwin"
    drift_threshold: float | None = None
    retrain_on_drift: bool = True
    drift_min_samples: int = 50
    window: WindowPolicy = "since_drift"
    window_size: int = 10_000
    validation_fraction: float = 0.2
    validation_size: int = 1_000
    tolerance: float = 0.02
    error_window: int = 200
    keep_versions: int = 10
    history_size: int = 20

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        check = _Checker(problems)
        check.integer("min_samples", self.min_samples, optional=True)
        check.positive("interval_sec", self.interval_sec, optional=True)
        check.integer("max_queue_size", self.max_queue_size)
        check.choice("queue_full", self.queue_full, QueueFullPolicy)
        check.positive("block_timeout_sec", self.block_timeout_sec)
        check.boolean("drift_detection", self.drift_detection)
        check.choice("detector", self.detector, DetectorName)
        check.positive("drift_threshold", self.drift_threshold, optional=True)
        if (
            self.detector in ("adwin", "hddm_a")
            and _is_number(self.drift_threshold)
            and not 0 < self.drift_threshold < 1
        ):
            problems.append(
                Problem(
                    "drift_threshold",
                    f"{self.detector} takes a confidence between 0 and 1, "
                    f"got {self.drift_threshold!r}",
                )
            )
        check.boolean("retrain_on_drift", self.retrain_on_drift)
        check.integer("drift_min_samples", self.drift_min_samples)
        check.choice("window", self.window, WindowPolicy)
        check.integer("window_size", self.window_size)
        check.fraction("validation_fraction", self.validation_fraction)
        check.integer("validation_size", self.validation_size)
        check.non_negative("tolerance", self.tolerance)
        check.integer("error_window", self.error_window)
        check.integer("keep_versions", self.keep_versions)
        check.integer("history_size", self.history_size)
        if problems:
            raise ConfigError("LearningConfig", problems)

    # Presets: starting points users pick by intent; any field can still be overridden.

    @classmethod
    def frequent_updates(cls, **overrides: Any) -> Self:
        """Fast-moving data: retrain every 50 examples or second, on a short recent window.

        ADWIN watches the errors; after an alarm only post-drift data (at least 30 examples)
        trains the next candidate, which may be up to 0.05 worse than the serving version
        on held-out data, because with little data both scores are noisy.
        """
        preset = cls(
            min_samples=50,
            interval_sec=1.0,
            detector="adwin",
            drift_min_samples=30,
            window="since_drift",
            window_size=2_000,
            validation_fraction=0.2,
            validation_size=200,
            tolerance=0.05,
        )
        return dataclasses.replace(preset, **overrides)

    @classmethod
    def stable(cls, **overrides: Any) -> Self:
        """Slow-moving data: retrain hourly or every 5,000 examples, on a long window.

        Page-Hinkley (only rising errors, fewer false alarms than ADWIN) still reacts to a
        drift; a candidate must be at least as good as the serving version (tolerance 0).
        """
        preset = cls(
            min_samples=5_000,
            interval_sec=3_600.0,
            detector="page_hinkley",
            drift_min_samples=500,
            window="sliding",
            window_size=100_000,
            validation_fraction=0.1,
            validation_size=5_000,
            tolerance=0.0,
        )
        return dataclasses.replace(preset, **overrides)

    @classmethod
    def manual(cls, **overrides: Any) -> Self:
        """No automatic training: only ``train_model`` trains; drift is detected and recorded."""
        preset = cls(min_samples=None, interval_sec=None, retrain_on_drift=False)
        return dataclasses.replace(preset, **overrides)


@dataclass(frozen=True)
class ModelParameters:
    """Hyper-parameters of the built-in kinds (``linear``, ``ridge``, ``logistic``,
    ``online_linear``, ``online_logistic``).

    ``regularization`` is the L2 penalty: Ridge's ``alpha``, ``1/C`` for logistic regression
    (0 = unpenalised), River's ``l2`` for the online kinds. ``learning_rate`` is the SGD step
    of the online kinds; ``max_iterations`` bounds the solver of the batch kinds.
    Passing no parameters to ``register_model`` uses :meth:`for_kind`.
    """

    with_bias: bool = True
    learning_rate: float = 0.01
    max_iterations: int = 1000
    regularization: float = 0.0

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        check = _Checker(problems)
        check.boolean("with_bias", self.with_bias)
        check.positive("learning_rate", self.learning_rate)
        check.integer("max_iterations", self.max_iterations)
        check.non_negative("regularization", self.regularization)
        if problems:
            raise ConfigError("ModelParameters", problems)

    @classmethod
    def for_kind(cls, kind: str) -> Self:
        """Defaults per kind: ridge and logistic regression get a unit penalty, others none."""
        return cls(regularization=1.0) if kind in ("ridge", "logistic") else cls()


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    """Collects one problem per bad field, so a config reports all its mistakes at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self._problems = problems

    def _fail(self, field: str, expected: str, value: object, optional: bool) -> None:
        expected += " or None" if optional else ""
        got = f"{type(value).__name__} {value!r}" if not _is_number(value) else repr(value)
        self._problems.append(Problem(field, f"expected {expected}, got {got}"))

    def integer(self, field: str, value: object, optional: bool = False) -> None:
        if value is None and optional:
            return
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            self._fail(field, "an integer ≥ 1", value, optional)

    def positive(self, field: str, value: object, optional: bool = False) -> None:
        if value is None and optional:
            return
        if not (_is_number(value) and math.isfinite(value) and value > 0):
            self._fail(field, "a finite number > 0", value, optional)

    def non_negative(self, field: str, value: object) -> None:
        if not (_is_number(value) and math.isfinite(value) and value >= 0):
            self._fail(field, "a finite number ≥ 0", value, False)

    def fraction(self, field: str, value: object) -> None:
        if not (_is_number(value) and 0 <= value < 1):
            self._fail(field, "a number in [0, 1)", value, False)

    def boolean(self, field: str, value: object) -> None:
        if not isinstance(value, bool):
            self._fail(field, "true or false", value, False)

    def choice(self, field: str, value: object, options: Any) -> None:
        allowed = get_args(options)
        if value not in allowed:
            self._fail(field, "one of " + ", ".join(map(repr, allowed)), value, False)
