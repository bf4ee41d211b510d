"""The in-process continuous-learning engine: register, feed, train, predict — no HTTP, no bus.

```python
from rendezvous.learning import Engine, LearningConfig

with Engine(LearningConfig.frequent_updates()) as engine:   # starts the background learner
    engine.register_model("price", "ridge")
    engine.add_training_example("price", [3.0, 1.0], 12.5)
    ...
    answer = engine.predict("price", [2.0, 1.0])  # .prediction, .model_version
```

Predictions never wait for training: each model serves an immutable snapshot, replaced by
one reference assignment when a validated candidate is published, and a prediction reports
the version of the snapshot that computed it. Training runs on one background thread (or
synchronously in ``train_model``/``process_pending``) on copies, never on what serves. Being
one process, training still shares the GIL with serving; the learner process of a
deployment exists for the case where that matters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from ..errors import ConfigError, InputError, ModelError, NotFound, Problem
from .config import LearningConfig, ModelParameters
from .drift import BINARY_DETECTORS
from .kinds import make_trainer
from .queue import Example
from .rows import check_row, check_rows, check_target
from .slot import ModelSlot
from .snapshot import ModelSnapshot, PredictionResult
from .status import ModelStatus
from .validation import ValidationDecision

__all__ = ["Engine"]

log = logging.getLogger("rendezvous.learning")


class Engine:
    """Models that keep learning from labelled examples, served from in-process snapshots.

    ``config`` applies to every model unless ``register_model`` gives one its own.
    ``clock`` (seconds) times the ``interval_sec`` trigger and stamps every record; inject
    one to test schedules deterministically. ``poll_interval_sec`` is how often the
    background learner looks at its triggers when no example wakes it.
    """

    def __init__(
        self,
        config: LearningConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval_sec: float = 0.05,
    ) -> None:
        if config is not None and not isinstance(config, LearningConfig):
            raise InputError(f"expected LearningConfig, got {type(config).__name__}", "config")
        self.config = config or LearningConfig()
        self._clock = clock
        self._poll = poll_interval_sec
        self._slots: dict[str, ModelSlot] = {}
        self._register_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()

    # -- models ---------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        kind: Any,
        params: ModelParameters | None = None,
        *,
        n_features: int | None = None,
        config: LearningConfig | None = None,
    ) -> ModelStatus:
        """Add a model: ``kind`` is a built-in name (``linear``, ``ridge``, ``logistic``,
        ``online_linear``, ``online_logistic``) or a scikit-learn / River estimator object.

        ``n_features`` fixes the row length; otherwise the first example fixes it. A fitted
        scikit-learn estimator or any River estimator serves as version 1 at once (give a
        River model ``n_features`` so that version checks row lengths too); other kinds
        serve from their first training.
        """
        if not isinstance(name, str) or not name:
            raise InputError(f"expected a non-empty string, got {name!r}", "name")
        if n_features is not None and (
            not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1
        ):
            raise InputError(f"expected an integer ≥ 1 or None, got {n_features!r}", "n_features")
        if config is not None and not isinstance(config, LearningConfig):
            raise InputError(f"expected LearningConfig, got {type(config).__name__}", "config")
        config = config or self.config
        trainer = make_trainer(kind, params)
        if (
            config.drift_detection
            and config.detector in BINARY_DETECTORS
            and trainer.task != "classification"
        ):
            raise ConfigError(
                f"model '{name}'",
                [
                    Problem(
                        "detector",
                        f"{config.detector!r} watches right/wrong answers and suits "
                        "classifiers; for a regressor use 'adwin' or 'page_hinkley'",
                    )
                ],
            )
        with self._register_lock:
            if name in self._slots:
                raise InputError(f"model '{name}' is already registered", "name")
            slot = ModelSlot(name, trainer, config, self._clock, n_features)
            self._slots[name] = slot
        return slot.status()

    def list_models(self) -> list[str]:
        """Registered model names, in registration order."""
        return list(self._slots)

    def get_model_info(self, name: str) -> ModelStatus:
        return self._slot(name).status()

    def get_snapshot(self, name: str, version: int | None = None) -> ModelSnapshot:
        """The serving snapshot, or a recent one by version (``keep_versions`` are kept)."""
        slot = self._slot(name)
        if version is None:
            if slot.snapshot is None:
                raise self._no_version(name)
            return slot.snapshot
        for snapshot in tuple(slot.versions):
            if snapshot.version == version:
                return snapshot
        kept = [s.version for s in tuple(slot.versions)]
        raise NotFound(f"model '{name}' has no version {version} (kept: {kept})")

    # -- serving ------------------------------------------------------------------------------

    def predict(self, name: str, features: Any) -> PredictionResult:
        """One row: ``.prediction``, ``.model_version`` and, for classifiers, ``.probabilities``."""
        try:
            snapshot = self._slots[name].snapshot
        except (KeyError, TypeError):
            raise self._unknown(name) from None
        if snapshot is None:
            raise self._no_version(name)
        return snapshot.predict(features)

    def predict_batch(self, name: str, rows: Any) -> list[PredictionResult]:
        """Many rows, all answered by one snapshot (one version)."""
        slot = self._slot(name)
        snapshot = slot.snapshot
        if snapshot is None:
            raise self._no_version(name)
        return snapshot.predict_rows(check_rows(rows, slot.n_features))

    # -- learning -----------------------------------------------------------------------------

    def add_training_example(
        self, name: str, features: Any, target: Any, is_validation: bool = False
    ) -> None:
        """Queue one labelled example; ``is_validation=True`` keeps it for validation only.

        Raises ``Overloaded`` when the queue is full and the policy is ``block`` (after the
        timeout) or ``reject``; with ``drop_oldest`` the oldest waiting example is dropped.
        """
        slot = self._slot(name)
        row = check_row(features, slot.n_features)
        if slot.n_features is None:
            slot.set_n_features(len(row))
        label = check_target(target, slot.task)
        if not isinstance(is_validation, bool):
            raise InputError(f"expected true or false, got {is_validation!r}", "is_validation")
        slot.queue.put(Example(row, label, is_validation))
        if self._thread is not None and not self._wake.is_set():
            self._wake.set()

    def train_model(self, name: str) -> ValidationDecision:
        """Train now, synchronously, on the queued and windowed examples.

        Returns the validation decision: ``accepted`` and the new ``version``, or why not,
        with both scores. Raises ``ModelError`` if there is nothing to train on or the
        training fails.
        """
        slot = self._slot(name)
        with slot.lock:
            slot.ingest(slot.queue.drain())
            return slot.train("manual")

    def process_pending(self) -> list[ValidationDecision]:
        """One pass of the learner: take every queued example, train where a trigger fires.

        The background thread calls this in a loop; call it yourself to drive learning
        deterministically without the thread. Training failures are recorded in
        ``get_model_info(...).last_error`` and logged, not raised.
        """
        decisions: list[ValidationDecision] = []
        for slot in list(self._slots.values()):
            with slot.lock:
                slot.ingest(slot.queue.drain())
                trigger = slot.due()
                if trigger is None:
                    continue
                try:
                    decisions.append(slot.train(trigger))
                except ModelError as exc:
                    log.warning("%s", exc)
        return decisions

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def is_learning(self) -> bool:
        """Whether the background learner is running."""
        return self._thread is not None and not self._stopping.is_set()

    def start_continuous_learning(self) -> None:
        """Start the background learner; no-op if it runs."""
        if self.is_learning:
            return
        if self._thread is not None:  # a previous stop timed out: let that thread finish
            self._thread.join()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="rendezvous-learning", daemon=True)
        self._thread.start()

    def stop_continuous_learning(self, timeout: float = 5.0) -> bool:
        """Stop the background learner: it finishes the training under way, takes the queued
        examples in (without training on them) and exits. Idempotent.

        Returns ``False`` if the thread was still busy after ``timeout`` seconds; it then
        stops by itself once its training ends.
        """
        thread = self._thread
        if thread is None:
            return True
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("continuous learning still busy after %.1f s; it will stop", timeout)
            return False
        self._thread = None
        return True

    def __enter__(self) -> Self:
        self.start_continuous_learning()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_continuous_learning()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.process_pending()
            except Exception:  # the learner must outlive any one bad pass
                log.exception("continuous learning pass failed")
        # Examples already accepted into the queue are taken in, so none is lost at stop.
        for slot in list(self._slots.values()):
            try:
                with slot.lock:
                    slot.ingest(slot.queue.drain())
            except Exception:
                log.exception("model '%s': taking in the queue at stop failed", slot.name)

    # -- helpers ------------------------------------------------------------------------------

    def _slot(self, name: str) -> ModelSlot:
        try:
            return self._slots[name]
        except (KeyError, TypeError):
            raise self._unknown(name) from None

    def _unknown(self, name: object) -> NotFound:
        known = ", ".join(map(repr, self._slots)) or "none"
        return NotFound(f"name: unknown model {name!r}; registered: {known}")

    def _no_version(self, name: str) -> NotFound:
        return NotFound(
            f"model '{name}' has no version yet: add training examples and train it "
            "(train_model, or start_continuous_learning)"
        )
