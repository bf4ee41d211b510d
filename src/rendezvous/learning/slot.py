"""One registered model: its serving snapshot, its queue, and everything its learner keeps.

Threads: any thread reads ``snapshot`` (one reference, swapped by one assignment) and puts
into ``queue`` (its own lock). Everything else belongs to whoever holds ``lock`` — the
background learner or a manual ``train_model`` — so ingesting and training never race, and
predictions never take that lock. Counters are read without it for reports: a report may
be one example stale, never torn.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from threading import Lock
from typing import Any

from ..errors import ModelError
from .config import LearningConfig
from .drift import DriftEvent, DriftWatch
from .predictors import Predictor
from .queue import Example, ExampleQueue
from .snapshot import ModelSnapshot
from .status import ModelStatus
from .trainers import Candidate, Trainer
from .validation import HeldOut, ValidationDecision, decide, loss, metric_name
from .window import TrainingWindow

__all__ = ["ModelSlot"]


class ModelSlot:
    def __init__(
        self,
        name: str,
        trainer: Trainer,
        config: LearningConfig,
        clock: Callable[[], float],
        n_features: int | None,
    ) -> None:
        self.name = name
        self.trainer = trainer
        self.task = trainer.task
        self.config = config
        self._clock = clock
        self.snapshot: ModelSnapshot | None = None
        self.versions: deque[ModelSnapshot] = deque(maxlen=config.keep_versions)
        self.queue = ExampleQueue(
            name, config.max_queue_size, config.queue_full, config.block_timeout_sec
        )
        self.lock = Lock()
        self.n_features: int | None = None
        self._window = TrainingWindow(config.window, config.window_size)
        self._held_out = HeldOut(config.validation_size)
        self._watch = (
            DriftWatch(config.detector, config.drift_threshold, self.task)
            if config.drift_detection
            else None
        )
        self._errors: deque[float] = deque(maxlen=config.error_window)
        self._decisions: deque[ValidationDecision] = deque(maxlen=config.history_size)
        self._drifts: deque[DriftEvent] = deque(maxlen=config.history_size)
        self._n_seen = 0
        self._n_stream = 0  # training-stream examples, which decides the hold-out
        self._new = 0  # training examples since the last training
        self._since_drift: int | None = None  # set while a drift awaits its retrain
        self._last_training = clock()
        self._last_training_time: float | None = None
        self._trainings = 0
        self._last_error: str | None = None
        self._next_version = 1
        self.set_n_features(n_features)
        initial = trainer.initial()
        if initial is not None:
            self.set_n_features(self.n_features or initial.n_features)
            self._publish(Candidate(initial, 0), "registered")

    def set_n_features(self, n: int | None) -> None:
        self.n_features = n
        self.trainer.n_features = n

    # -- the learner's side: call with ``lock`` held ------------------------------------

    def ingest(self, examples: Sequence[Example]) -> None:
        """Score each example with the serving version, then learn from it (prequential)."""
        if not examples:
            return
        serving = self.snapshot
        predictions = self._predict_serving(serving, [e.row for e in examples])
        for i, example in enumerate(examples):
            self._n_seen += 1
            if predictions is not None and serving is not None:
                self._observe(predictions[i], example.target, serving.version)
            if example.is_validation:
                self._held_out.add(example.row, example.target, flagged=True)
            elif self._holds_out():
                self._held_out.add(example.row, example.target, flagged=False)
            else:
                self._window.add(example.row, example.target)
                self._learn_one(example)
                self._new += 1
                if self._since_drift is not None:
                    self._since_drift += 1

    def due(self) -> str | None:
        """The trigger that asks for a training now, if any."""
        config = self.config
        if self._since_drift is not None and self._since_drift >= config.drift_min_samples:
            return "drift"
        if config.min_samples is not None and self._new >= config.min_samples:
            return "min_samples"
        if (
            config.interval_sec is not None
            and self._new > 0
            and self._clock() - self._last_training >= config.interval_sec
        ):
            return "interval"
        return None

    def train(self, trigger: str) -> ValidationDecision:
        """Make a candidate from the window, validate it, publish it if it is good enough."""
        rows, targets = self._window.data()
        if not rows:
            raise ModelError(f"model '{self.name}': no training examples yet")
        now = self._clock()
        # Counted as a training even if it fails, so a failing model is retried at the
        # next trigger rather than on every pass of the learner.
        self._new = 0
        self._since_drift = None
        self._last_training = now
        self._trainings += 1
        try:
            candidate = self.trainer.candidate(rows, targets)
            decision = self._validate(candidate, trigger, now)
        except Exception as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            raise ModelError(f"model '{self.name}': training failed: {self._last_error}") from exc
        self._decisions.append(decision)
        self._last_training_time = now
        if decision.accepted:
            self._publish(candidate, trigger)
        return decision

    # -- reports: any thread ----------------------------------------------------------

    def status(self) -> ModelStatus:
        snapshot = self.snapshot
        errors = tuple(self._errors)
        return ModelStatus(
            name=self.name,
            kind=self.trainer.label,
            task=self.task,
            n_features=self.n_features,
            version=snapshot.version if snapshot else None,
            versions=tuple(s.version for s in tuple(self.versions)),
            n_examples_seen=self._n_seen,
            n_training_examples=len(self._window),
            n_validation_examples=len(self._held_out),
            queue_size=len(self.queue),
            dropped_examples=self.queue.dropped,
            rejected_examples=self.queue.rejected,
            trainings=self._trainings,
            last_training_time=self._last_training_time,
            live_metric="error_rate" if self.task == "classification" else "mean_absolute_error",
            live_error=math.fsum(errors) / len(errors) if errors else None,
            validations=tuple(self._decisions),
            drift_events=tuple(self._drifts),
            last_error=self._last_error,
            notes=snapshot.notes if snapshot else (),
        )

    # -- internals --------------------------------------------------------------------

    def _predict_serving(
        self, serving: ModelSnapshot | None, rows: list[Any]
    ) -> list[tuple[Any, Any]] | None:
        if serving is None:
            return None
        try:
            return serving.predictor.predict_many(rows)
        except Exception as exc:
            # Monitoring must not stop learning: the examples are still learnt from.
            self._last_error = f"prequential prediction failed: {type(exc).__name__}: {exc}"
            return None

    def _learn_one(self, example: Example) -> None:
        try:
            self.trainer.learn_one(example.row, example.target)
        except Exception as exc:
            # One example an online model chokes on must not stop it learning the rest.
            self._last_error = f"learn_one failed: {type(exc).__name__}: {exc}"

    def _observe(self, predicted: tuple[Any, Any], target: Any, version: int) -> None:
        prediction = predicted[0]
        if prediction is None:  # an online model that has learnt nothing yet
            return
        if self.task == "classification":
            error = 0.0 if prediction == target else 1.0
        else:
            error = abs(float(prediction) - target)
        self._errors.append(error)
        if self._watch is None:
            return
        self._watch.update(error)
        if self._watch.drift_detected:
            self._on_drift(version)

    def _on_drift(self, version: int) -> None:
        assert self._watch is not None
        self._drifts.append(DriftEvent(self._clock(), self._n_seen, self._watch.name, version))
        if not self.config.retrain_on_drift:
            return
        if self._window.on_drift():
            # Held-out data from before the drift would favour the version that knew the old
            # concept: it goes with the training data.
            self._held_out.clear()
            self.trainer.forget(*self._window.data())
        self._since_drift = 0

    def _holds_out(self) -> bool:
        """Every ``1/fraction``-th example, exactly and deterministically."""
        i = self._n_stream
        self._n_stream += 1
        fraction = self.config.validation_fraction
        return math.floor((i + 1) * fraction) > math.floor(i * fraction)

    def _validate(self, candidate: Candidate, trigger: str, now: float) -> ValidationDecision:
        serving = self.snapshot
        rows, targets = self._held_out.data()
        metric = metric_name(self.task)
        candidate_score = serving_score = None
        if rows:
            candidate_score = self._score(candidate.predictor, rows, targets)
        if serving is None:
            accepted, reason = True, "first version"
        elif not rows:
            accepted, reason = True, "no held-out data to compare on"
        else:
            serving_score = self._score(serving.predictor, rows, targets)
            assert candidate_score is not None
            accepted, reason = decide(candidate_score, serving_score, self.config.tolerance)
        return ValidationDecision(
            time=now,
            trigger=trigger,
            accepted=accepted,
            reason=reason,
            metric=metric,
            candidate_score=candidate_score,
            serving_score=serving_score,
            n_examples=len(rows),
            version=self._next_version if accepted else None,
            serving_version=serving.version if serving else None,
            trained_on=candidate.trained_on,
        )

    def _score(self, predictor: Predictor, rows: list[Any], targets: list[Any]) -> float:
        predictions = [p for p, _ in predictor.predict_many(rows)]
        return loss(self.task, predictions, targets)

    def _publish(self, candidate: Candidate, trigger: str) -> None:
        snapshot = ModelSnapshot(
            version=self._next_version,
            predictor=candidate.predictor,
            created_at=self._clock(),
            trained_on=candidate.trained_on,
            trigger=trigger,
            notes=candidate.notes,
        )
        self._next_version += 1
        # History first, so a version seen in an answer is always found by get_snapshot.
        self.versions.append(snapshot)
        self.snapshot = snapshot
