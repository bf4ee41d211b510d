"""One learning model of a deployment, as its learner process keeps it.

Each labelled example from the archive is, in ``seq`` order:

1. *observed* (live only): its error is the model's archived answer for that request
   against the label (or, with no archived answer, the serving version's prediction now);
   the error feeds the live error, the guard and the concept-drift detector, and the input
   feeds the data-drift test;
2. *taken*: held out for validation when its seq says so (deterministic: every
   ``1/holdout``-th seq), otherwise added to the training window (and learnt by a River
   working copy), and counted towards the next version.

Replaying examples after a restart only *takes* them, with the drift cuts and trainings
recorded in the archive's events applied at the seqs they happened at, so the windows,
counters and the pending drift retrain come back as they were.

Each published version records which examples it counted (``extra.examples``: those with
``after_seq < seq <= last_seq``, the previous version's ``last_seq`` being this one's
``after_seq``), which window it learnt from, and its validation.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..archive.base import Example
from ..config import Deployment, LearningBlock, ModelConfig, ModelKind
from ..errors import ConfigError, InputError, NotFound, Problem
from ..messages import Score
from ..models import load_model
from ..registry import CHAMPION, FileRegistry, Trigger, Validation, VersionInfo, load_version
from ..registry import TrainingWindow as WindowInfo
from .data_drift import FeatureDrift
from .drift import DriftWatch
from .learnable import Learnable, make_learnable
from .learner_metrics import LearnerMetrics
from .live import GuardVerdict, LiveErrors, VersionGuard, error_of
from .rows import Row, check_target
from .validation import HeldOut, decide, loss, metric_name
from .window import Mark, TrainingWindow

__all__ = ["Emit", "ModelLearner", "Replay", "Serving", "holds_out"]

log = logging.getLogger("rendezvous.learner")

# ``emit(kind, model, detail)`` records an event in the deployment's archive.
Emit = Callable[[str, str, dict[str, Any]], None]

ROLLBACK_EVENT = "version_rollback"  # "rollback" is the champion *model*'s (promotion.py)


def holds_out(seq: int, share: float) -> bool:
    """Whether example ``seq`` is held out: exactly every ``1/share``-th seq."""
    return math.floor(seq * share) > math.floor((seq - 1) * share)


@dataclass(frozen=True, slots=True)
class Serving:
    """The champion version: its estimator, and the last example seq it learnt from."""

    version: str
    estimator: Any
    last_seq: int


@dataclass(slots=True)
class _Pending:
    """Examples taken since the latest published version, for the next one's metadata."""

    examples: int = 0
    training: int = 0
    held_out: int = 0

    def as_dict(self, after_seq: int, last_seq: int) -> dict[str, int]:
        return {
            "after_seq": after_seq,
            "last_seq": last_seq,
            "count": self.examples,
            "training": self.training,
            "held_out": self.held_out,
        }


@dataclass(slots=True)
class Replay:
    """What happened at which seq, from the archive's events: replayed at those seqs."""

    drifts: set[int] = field(default_factory=set)  # concept drift alarms
    trainings: set[int] = field(default_factory=set)  # trainings right after this seq


class ModelLearner:
    """The learner's state for model ``cfg`` (entry ``index`` of the deployment's models):
    its champion, windows, counters and detectors. ``emit`` records events; the caller
    (:class:`~.learner.DeploymentLearner`) feeds it examples in seq order and asks
    :meth:`due` when to :meth:`train`."""

    def __init__(
        self,
        cfg: ModelConfig,
        index: int,
        deployment: Deployment,
        registry: FileRegistry,
        *,
        emit: Emit,
        clock: Callable[[], float],
        metrics: LearnerMetrics,
    ) -> None:
        assert cfg.learning is not None
        self.cfg = cfg
        self.name = cfg.name
        self.block: LearningBlock = cfg.learning
        self.deployment = deployment
        self.registry = registry
        self.registry_name = f"{deployment.name}.{cfg.name}"
        self._emit = emit
        self._clock = clock
        template = getattr(load_model(cfg, deployment), "estimator", None)
        self.learnable: Learnable = make_learnable(cfg, deployment, template)
        self.task = self.learnable.task
        self.metric = metric_name(self.task)
        block = self.block
        self.window = TrainingWindow(block.window.policy, block.window.size)
        share = block.holdout
        held = max(1, math.ceil(block.window.size * share / (1 - share))) if share else 1
        self.held_out = HeldOut(held)
        self._held_seqs: deque[int] = deque(maxlen=held)
        self.watch = self._drift_watch(index)
        self.features = FeatureDrift(deployment.input_schema.names) if block.drift else None
        self.live = LiveErrors()
        self.guard = VersionGuard(block.guard) if block.guard else None
        labels = (deployment.name, cfg.name)
        self._m_examples = metrics.examples.labels(*labels)
        self._m_live = metrics.live_error.labels(*labels)
        self._m_version = metrics.version.labels(*labels)
        self._m_rollbacks = metrics.rollbacks.labels(*labels)
        self._metrics = metrics
        self.serving: Serving
        self.published_seq = 0  # last_seq of the latest published version
        self._pending = _Pending()
        self.last_seq = 0  # the last example taken
        self._since_training = 0
        self._since_drift: int | None = None  # examples since a drift that awaits its retrain
        self._last_training = clock()
        self._reset_after: int | None = None  # seq of a drift that restarted a River copy
        self._reference: tuple[int, int] | None = None  # the champion's window, by seq
        self._reference_rows: list[Row] = []

    def _drift_watch(self, index: int) -> DriftWatch | None:
        detector = self.block.drift
        if detector is None:
            return None
        try:
            return DriftWatch(detector, None, self.task)
        except ValueError as exc:
            loc = f"models[{index}].learning.drift"
            raise ConfigError(self.deployment.name, [Problem(loc, str(exc))]) from None

    # -- setting up: versions in the registry ---------------------------------------------

    def open(self) -> None:
        """Publish the file's model as version 1 if the registry has none; load the champion."""
        try:
            versions = self.registry.versions(self.registry_name)
        except NotFound:
            versions = [self._publish_initial()]
        try:
            self.registry.resolve(self.registry_name, CHAMPION)
        except NotFound:
            self.registry.set_alias(self.registry_name, CHAMPION, versions[-1].version)
        self.published_seq = _examples_of(versions[-1].extra).get("last_seq", 0)
        self._load_champion()

    def _publish_initial(self) -> VersionInfo:
        cfg, dep = self.cfg, self.deployment
        source = cfg.source or ""
        extra = {"examples": _Pending().as_dict(0, 0), "source": source}
        if cfg.kind is ModelKind.SKLEARN or source.lower().endswith((".pkl", ".pickle")):
            path = dep.resolve(source)
            filename = f"model{path.suffix.lower()}"
            info = self.registry.publish(
                self.registry_name, path, filename=filename, trigger=Trigger.INITIAL, extra=extra
            )
        else:  # a River model built from an import string: store the estimator itself
            filename, write = self.learnable.artifact(self.learnable.template)
            info = self.registry.publish(
                self.registry_name, write, filename=filename, trigger=Trigger.INITIAL, extra=extra
            )
        log.info("%s: published the deployment file's model as version %s", self.name, info.version)
        return info

    def _load_champion(self) -> None:
        version = self.registry.resolve(self.registry_name, CHAMPION)
        model = load_version(self.registry, self.registry_name, version, self.cfg, self.deployment)
        info = self.registry.get(self.registry_name, version)
        estimator = getattr(model, "estimator", None)
        self.serving = Serving(version, estimator, _examples_of(info.extra).get("last_seq", 0))
        window = info.extra.get("window") or {}
        first, last = window.get("first_seq"), window.get("last_seq")
        self._reference = (int(first), int(last)) if first and last else None
        self._reference_rows = []
        if self.features is not None:
            # As much of the champion's training data as the window still holds; a restart
            # replays the archive for the rest (finish_replay).
            rows: list[Row] = []
            if self._reference is not None:
                rows = self.window.between(self._reference[0] - 1, self._reference[1])[0]
            self.features.set_reference(rows)
        self._m_version.set(int(version))

    def sync_champion(self) -> bool:
        """Follow a champion moved by someone else (a rollback by hand); ``True`` if it moved."""
        version = self.registry.resolve(self.registry_name, CHAMPION)
        if version == self.serving.version:
            return False
        log.info("%s: champion moved to version %s outside the learner", self.name, version)
        self._load_champion()
        self._resume()
        if self.guard is not None:
            self.guard.watch(None)  # the version it watched no longer serves
        return True

    # -- taking examples --------------------------------------------------------------------

    def replay(self, example: Example, marks: Replay) -> None:
        """Take an example seen before a restart, without observing it again."""
        checked = self._check(example)
        if checked is not None:
            self._take(example, *checked, live=False, drift=example.seq in marks.drifts)
        if example.seq in marks.trainings:
            self._trained(self._clock())

    def finish_replay(self) -> None:
        """After replaying: the data-drift reference, and the River working copy."""
        if self.features is not None and self._reference_rows:
            self.features.set_reference(self._reference_rows)
        self._reference_rows = []
        self._resume()

    def ingest(self, example: Example, score: Score | None) -> None:
        """Observe and take one new example."""
        checked = self._check(example)
        if checked is None:
            return
        row, target = checked
        drift = self._observe(example, row, target, score)
        self._take(example, row, target, live=True, drift=drift)
        self._m_examples.inc()

    def _check(self, example: Example) -> tuple[Row, Any] | None:
        try:
            return tuple(float(v) for v in example.features), check_target(
                example.label, self.task, "label"
            )
        except (InputError, TypeError, ValueError) as exc:
            log.warning("%s: skipping example seq %d: %s", self.name, example.seq, exc)
            return None

    def _take(self, example: Example, row: Row, target: Any, *, live: bool, drift: bool) -> None:
        seq = example.seq
        self.last_seq = seq
        if drift:
            self._cut(seq, live=live)
        if seq > self.published_seq:
            self._pending.examples += 1
        self._since_training += 1
        if self._since_drift is not None:
            self._since_drift += 1
        if self.block.holdout and holds_out(seq, self.block.holdout):
            self.held_out.add(row, target, flagged=False)
            self._held_seqs.append(seq)
            if seq > self.published_seq:
                self._pending.held_out += 1
            return
        self.window.add(row, target, Mark(seq, example.received_at))
        if seq > self.published_seq:
            self._pending.training += 1
        if live:
            self.learnable.learn_one(row, target)
        elif self._reference is not None and self._reference[0] <= seq <= self._reference[1]:
            self._reference_rows.append(row)

    def _observe(self, example: Example, row: Row, target: Any, score: Score | None) -> bool:
        """Live error, guard and drift for one example; ``True`` on a concept drift alarm."""
        if score is not None and score.ok:
            version, prediction = score.version, score.prediction
        else:
            version = self.serving.version
            try:
                prediction = self.learnable.predict(self.serving.estimator, [row])[0]
            except Exception as exc:  # monitoring must never stop learning
                log.warning("%s: prequential prediction failed: %s", self.name, exc)
                prediction = None
        if self.features is not None:
            for alarm in self.features.update(row):
                self._drift_event(example.seq, "data", {
                    "feature": alarm.feature, "statistic": alarm.statistic,
                    "p_value": alarm.p_value, "n": alarm.n,
                })  # fmt: skip
        error = error_of(self.task, prediction, target)
        if error is None:
            return False
        self.live.add(error)
        live = self.live.mean
        if live is not None:
            self._m_live.set(live)
        if self.guard is not None and self.guard.watching == version:
            verdict = self._guard(version, row, target, error)
            if verdict is not None and verdict.rollback:
                self._roll_back(verdict.version, {
                    "reason": "guard", "live_error": verdict.live_error,
                    "baseline": verdict.baseline, "n": verdict.n,
                    "max_error_increase": self.guard.block.max_error_increase,
                })  # fmt: skip
        if self.watch is None:
            return False
        self.watch.update(error)
        if not self.watch.drift_detected:
            return False
        self._drift_event(example.seq, "concept", {"detector": self.watch.name, "live_error": live})
        return True

    def _guard(self, version: str, row: Row, target: Any, error: float) -> GuardVerdict | None:
        assert self.guard is not None
        try:
            parent = self.learnable.predict(self.guard.parent, [row])[0]
        except Exception as exc:
            log.warning("%s: the guard's prediction failed: %s", self.name, exc)
            return None
        parent_error = error_of(self.task, parent, target)
        if parent_error is None:
            return None
        return self.guard.observe(version, error, parent_error)

    def _drift_event(self, seq: int, kind: str, detail: dict[str, Any]) -> None:
        self._metrics.drifts.labels(self.deployment.name, self.name, kind).inc()
        log.info("%s: %s drift at example seq %d", self.name, kind, seq)
        self._emit("drift", self.name, {
            "type": kind, "seq": seq, "version": self.serving.version, **detail,
        })  # fmt: skip

    def _cut(self, seq: int, *, live: bool) -> None:
        """A concept drift: forget what it made obsolete and await the drift retrain."""
        if not self.block.retrain_on_drift:
            return
        if self.window.on_drift():
            # Held-out data from before the drift would favour the version that knew the
            # old concept: it goes with the training data.
            self.held_out.clear()
            self._held_seqs.clear()
            if live:
                self.learnable.forget(*self.window.data())
            elif seq > self.serving.last_seq:
                self._reset_after = seq
        self._since_drift = 0

    def _resume(self) -> None:
        """Start the River working copy again: the champion plus what it has not learnt."""
        if self._reset_after is not None and self._reset_after > self.serving.last_seq:
            self.learnable.forget(*self.window.data())
        else:
            self.learnable.restart(self.serving.estimator)
            rows, targets = self.window.between(self.serving.last_seq)
            for row, target in zip(rows, targets, strict=True):
                self.learnable.learn_one(row, target)
        self._reset_after = None

    # -- training ---------------------------------------------------------------------------

    def due(self) -> str | None:
        """The trigger that asks for a training now, if any."""
        block = self.block
        if self._since_drift is not None:
            return "drift" if self._since_drift >= block.drift_min_samples else None
        if block.min_samples is not None and self._since_training >= block.min_samples:
            return "min_samples"
        if (
            block.interval_s is not None
            and self._since_training > 0
            and self._clock() - self._last_training >= block.interval_s
        ):
            return "interval"
        return None

    def _trained(self, now: float) -> None:
        self._since_training = 0
        self._since_drift = None
        self._last_training = now

    def train(self, trigger: str) -> dict[str, Any]:
        """Make a candidate from the window, validate it against the champion on the
        held-out examples, publish it if it is good enough; record the decision."""
        now = self._clock()
        self._trained(now)
        rows, targets = self.window.data()
        span = self.window.span()
        held_rows, held_targets = self.held_out.data()
        detail: dict[str, Any] = {
            "trigger": trigger,
            "metric": self.metric,
            "serving_version": self.serving.version,
            "trained_on": len(rows),
            "held_out": len(held_rows),
            "first_seq": span[0].seq if span else None,
            "last_seq": self.last_seq,
            "candidate_score": None,
            "serving_score": None,
            "version": None,
        }
        outcome = "rejected"
        try:
            if not rows:
                accepted, reason = False, "no training examples yet"
            else:
                estimator, notes = self.learnable.candidate(rows, targets)
                if held_rows:
                    candidate = self._score(estimator, held_rows, held_targets)
                    serving = self._score(self.serving.estimator, held_rows, held_targets)
                    detail["candidate_score"] = _finite(candidate)
                    detail["serving_score"] = _finite(serving)
                    accepted, reason = decide(candidate, serving, self.block.tolerance)
                else:
                    accepted, reason = True, "no held-out data to compare on"
                if accepted:
                    assert span is not None
                    version = self._publish(estimator, trigger, rows, span, detail, reason, notes)
                    detail["version"] = version
                    outcome = "accepted"
        except Exception as exc:
            log.exception("%s: training failed", self.name)
            accepted, outcome = False, "failed"
            reason = f"training failed: {type(exc).__name__}: {exc}"
        detail.update(accepted=accepted, reason=reason)
        self._metrics.trainings.labels(self.deployment.name, self.name, trigger, outcome).inc()
        self._emit("validation", self.name, detail)
        return detail

    def _score(self, estimator: Any, rows: Sequence[Row], targets: Sequence[Any]) -> float:
        predictions = self.learnable.predict(estimator, rows)
        if self.task == "regression" and any(p is None for p in predictions):
            return math.inf  # an online regressor that cannot answer yet
        return loss(self.task, predictions, targets)

    def _publish(
        self,
        estimator: Any,
        trigger: str,
        rows: list[Row],
        span: tuple[Mark, Mark],
        detail: dict[str, Any],
        reason: str,
        notes: tuple[str, ...],
    ) -> str:
        filename, write = self.learnable.artifact(estimator)
        first, last = span
        parent = self.serving
        candidate, serving = detail["candidate_score"], detail["serving_score"]
        info = self.registry.publish(
            self.registry_name,
            write,
            filename=filename,
            trigger=trigger,
            parent=parent.version,
            training=WindowInfo(n_examples=len(rows), start=first.at, end=last.at),
            validation=Validation(
                decision=f"accepted: {reason}",
                candidate={} if candidate is None else {self.metric: candidate},
                serving={} if serving is None else {self.metric: serving},
            ),
            extra={
                "examples": self._pending.as_dict(self.published_seq, self.last_seq),
                "window": {
                    "policy": self.block.window.policy,
                    "first_seq": first.seq,
                    "last_seq": last.seq,
                    "n": len(rows),
                },
                "held_out": detail["held_out"],
                "task": self.task,
                "notes": list(notes),
            },
        )
        # Counted from now on, whatever happens next: the version exists and says so.
        self.published_seq = self.last_seq
        self._pending = _Pending()
        self.registry.set_alias(self.registry_name, CHAMPION, info.version)
        log.info(
            "%s: published version %s (%s, %d examples)", self.name, info.version, trigger,
            len(rows),
        )  # fmt: skip
        self.serving = Serving(info.version, estimator, self.last_seq)
        self._m_version.set(int(info.version))
        if self.features is not None:
            self.features.set_reference(rows)
        if self.guard is not None:
            self.guard.watch(info.version, parent.estimator)
        return info.version

    def _roll_back(self, version: str, detail: dict[str, Any]) -> None:
        if self.serving.version != version:
            return  # the champion already moved on
        to = self.registry.rollback(self.registry_name)
        log.warning("%s: rolled version %s back to %s (%s)", self.name, version, to, detail)
        self._m_rollbacks.inc()
        self._emit(ROLLBACK_EVENT, self.name, {"version": version, "to": to, **detail})
        self._load_champion()
        self._resume()

    # -- restart bookkeeping ------------------------------------------------------------------

    def replay_from(self) -> int:
        """The seq after which a restarted learner must replay to rebuild this model."""
        seqs = [self.published_seq]
        span = self.window.span()
        if span is not None:
            seqs.append(span[0].seq - 1)
        if self._held_seqs:
            seqs.append(self._held_seqs[0] - 1)
        if self._reference is not None:
            seqs.append(self._reference[0] - 1)
        return max(0, min(seqs))


def _examples_of(extra: dict[str, Any]) -> dict[str, int]:
    examples = extra.get("examples")
    return examples if isinstance(examples, dict) else {}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
