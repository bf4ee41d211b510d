"""The deployment learner: continuous learning of a deployment's models, off the serving path.

It runs in a process of its own (``rendezvous learner FILE``, or the child ``rendezvous
serve`` starts), because training holds the GIL and serving must never wait for it. It
talks to serving only through durable, shared stores:

* it reads labelled examples from the **archive** in ``seq`` order (feedback and examples
  the API stored) and the models' archived scores for them;
* it records what it finds and decides as archive **events**: ``drift`` (concept or data),
  ``validation`` (every training's decision with both scores), ``version_rollback`` (the
  guard undoing a bad version); it carries out ``train`` events (``POST …/train``);
* it publishes versions to the **registry** as ``{deployment}.{model}`` and moves their
  ``champion`` alias, which every serving process follows
  (:class:`~rendezvous.learning.follow.VersionFollower`).

``step()`` processes whatever is available and returns: tests and embedders drive it by
hand; ``start(background=True)`` or :meth:`run` loop it. Progress is durable (see
:mod:`.cursor`): a learner killed at any moment is restarted from the archive with no
example lost or counted twice.

```python
learner = DeploymentLearner(load_deployment("prices.yaml"))
learner.start()
report = learner.step()          # .examples, .decisions
learner.stop()
```
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from ..archive import open_archive
from ..archive.base import Archive, Event, Example
from ..config import Deployment, ModelConfig
from ..errors import ConfigError, Problem
from ..messages import Score
from ..registry import FileRegistry
from .cursor import CursorFile, LearnerLock, Progress
from .learner_metrics import LearnerMetrics
from .model_learner import ModelLearner, Replay

__all__ = ["DeploymentLearner", "StepReport", "learning_models", "step_all"]

log = logging.getLogger("rendezvous.learner")

TRAIN_EVENT = "train"
PAGE = 1000  # examples read per query when replaying


def learning_models(deployment: Deployment) -> list[ModelConfig]:
    """The deployment's models that have a ``learning:`` block."""
    return [m for m in deployment.models if m.learning is not None]


@dataclass(frozen=True)
class StepReport:
    """What one :meth:`DeploymentLearner.step` did: ``examples`` taken in, and the
    ``decisions`` of the trainings it ran (each an event's detail, with ``model``)."""

    examples: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        return not self.examples and not self.decisions


class DeploymentLearner:
    """Learns for every model of ``deployment`` that has a ``learning:`` block.

    ``archive`` defaults to the deployment's own (opened and closed here) and ``registry``
    to the directory its ``registry`` names. ``clock`` times the ``interval_s`` trigger and
    stamps events. ``batch_size`` bounds the examples one step takes.
    """

    def __init__(
        self,
        deployment: Deployment,
        *,
        archive: Archive | None = None,
        registry: FileRegistry | None = None,
        clock: Callable[[], float] = time.time,
        metrics: LearnerMetrics | None = None,
        batch_size: int = 500,
        origin: str | None = None,
    ) -> None:
        if not learning_models(deployment):
            raise ConfigError(
                deployment.name, [Problem("models", "no model has a learning: block")]
            )
        self.deployment = deployment
        self.name = deployment.name
        self._own_archive = archive is None
        self.archive = archive or open_archive(
            deployment.archive, base_dir=deployment.base_dir, max_buffer=deployment.archive_buffer
        )
        self.registry = registry or FileRegistry(deployment.resolve(deployment.registry))
        self.metrics = metrics or LearnerMetrics()
        self.clock = clock
        self.batch_size = batch_size
        self.origin = origin or f"learner@{socket.gethostname()}:{os.getpid()}"
        home = self.registry.root / ".learners"
        self._cursor = CursorFile(home / f"{deployment.name}.json")
        self._lock = LearnerLock(home / f"{deployment.name}.lock")
        self.models: dict[str, ModelLearner] = {}
        self.progress = Progress()
        self._saved = self.progress
        self._started = False
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stepping = threading.Lock()  # a background loop and a caller never interleave

    def __repr__(self) -> str:
        return f"<DeploymentLearner {self.name} models={list(self.models)}>"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, *, background: bool = False, poll_s: float = 0.5) -> None:
        """Take the deployment's learner lock, load the champions, rebuild the windows from
        the archive; with ``background``, also :meth:`run` on a thread. Idempotent."""
        if not self._started:
            self._lock.acquire()
            try:
                if self._own_archive:
                    self.archive.start()
                self.progress = self._saved = self._cursor.load()
                for i, cfg in enumerate(self.deployment.models):
                    if cfg.learning is None:
                        continue
                    model = ModelLearner(
                        cfg, i, self.deployment, self.registry,
                        emit=self._emit, clock=self.clock, metrics=self.metrics,
                    )  # fmt: skip
                    model.open()
                    self.models[cfg.name] = model
                self._restore()
            except BaseException:
                self._close()
                raise
            self._started = True
        if background and self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self.run, args=(self._stopping, poll_s), name=f"learner-{self.name}",
                daemon=True,
            )  # fmt: skip
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop (a training under way finishes first), save the cursor, release the
        lock and the archive. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join(timeout)
        with self._stepping:
            if self._started:
                self._started = False
                try:
                    self._save()
                finally:
                    self._close()

    def _close(self) -> None:
        self.models.clear()
        try:
            if self._own_archive:
                self.archive.stop()
        finally:
            self._lock.release()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def run(self, stopping: threading.Event, poll_s: float = 0.5) -> None:
        """Step until ``stopping`` is set, pausing ``poll_s`` whenever nothing was new."""
        while not stopping.is_set():
            try:
                idle = self.step().idle
            except Exception:  # an archive outage: keep the cursor, try again later
                log.exception("learner step of '%s' failed", self.name)
                idle = True
            if idle:
                stopping.wait(poll_s)

    # -- the work -------------------------------------------------------------------------

    def step(self) -> StepReport:
        """Take in the examples available (up to ``batch_size``), train where a trigger
        fires, carry out training requests; returns what was done."""
        with self._stepping:
            if not self._started:
                raise RuntimeError(f"{self!r} is not started")
            return self._step()

    def _step(self) -> StepReport:
        decisions: list[dict[str, Any]] = []
        for model in self.models.values():
            model.sync_champion()
            trigger = model.due()  # one a previous learner died before carrying out
            if trigger is not None:
                decisions.append(self._train(model, trigger))
        examples = self.archive.examples(
            self.name, after_seq=self.progress.examples_seq, limit=self.batch_size
        )
        for example in examples:
            scores = self._scores(example)
            for model in self.models.values():
                model.ingest(example, scores.get(model.name))
            self._advance(examples_seq=example.seq)
            for model in self.models.values():
                trigger = model.due()
                if trigger is not None:
                    decisions.append(self._train(model, trigger))
        self.metrics.cursor.labels(self.name).set(self.progress.examples_seq)
        requests = self.archive.events(
            self.name, after_seq=self.progress.events_seq, kinds=[TRAIN_EVENT]
        )
        for event in requests:
            self._advance(events_seq=event.seq)
            requested = self.models.get(event.model or "")
            if requested is None:
                log.warning("ignoring a training request for unknown model %r", event.model)
                continue
            decisions.append(self._train(requested, "manual"))
        for model in self.models.values():
            trigger = model.due()  # the interval trigger fires without new examples
            if trigger is not None:
                decisions.append(self._train(model, trigger))
        self._save()
        return StepReport(len(examples), decisions)

    def _train(self, model: ModelLearner, trigger: str) -> dict[str, Any]:
        # The cursor first: once a version counts an example, a restart must not observe it
        # again (drift and live error) — it replays it into the windows only.
        self._save()
        return {"model": model.name, **model.train(trigger)}

    def _scores(self, example: Example) -> dict[str, Score]:
        if example.request_id is None:
            return {}
        found: dict[str, Score] = {}
        for score in self.archive.scores_for_request(example.request_id):
            if score.ok or score.model not in found:
                found[score.model] = score
        return found

    # -- durable progress -------------------------------------------------------------------

    def _advance(self, *, examples_seq: int | None = None, events_seq: int | None = None) -> None:
        p = self.progress
        self.progress = Progress(
            examples_seq if examples_seq is not None else p.examples_seq,
            events_seq if events_seq is not None else p.events_seq,
            p.replay_from,
        )

    def _save(self) -> None:
        if not self.models:
            return
        replay_from = min(m.replay_from() for m in self.models.values())
        self.progress = Progress(self.progress.examples_seq, self.progress.events_seq, replay_from)
        if self.progress != self._saved:
            self._cursor.save(self.progress)
            self._saved = self.progress

    def _restore(self) -> None:
        """Replay the examples observed before a restart into the models' windows."""
        upto = self.progress.examples_seq
        start = min([self.progress.replay_from, *(m.published_seq for m in self.models.values())])
        if upto > start:
            marks = self._marks(start)
            after, n = start, 0
            while after < upto:
                page = self.archive.examples(self.name, after_seq=after, limit=PAGE)
                for example in page:
                    if example.seq > upto:
                        break
                    for model in self.models.values():
                        model.replay(example, marks[model.name])
                    n += 1
                if not page or page[-1].seq >= upto:
                    break
                after = page[-1].seq
            log.info("%s: replayed %d examples (seq %d to %d)", self.name, n, start + 1, upto)
        for model in self.models.values():
            model.finish_replay()

    def _marks(self, after_seq: int) -> dict[str, Replay]:
        marks = {name: Replay() for name in self.models}
        for event in self.archive.events(self.name, kinds=["drift", "validation"]):
            replay = marks.get(event.model or "")
            seq = event.detail.get("seq" if event.kind == "drift" else "last_seq")
            if replay is None or not isinstance(seq, int) or seq <= after_seq:
                continue
            if event.kind == "validation":
                replay.trainings.add(seq)
            elif event.detail.get("type") == "concept":
                replay.drifts.add(seq)
        for name, model in self.models.items():
            for info in self.registry.versions(model.registry_name):
                last = (info.extra.get("examples") or {}).get("last_seq")
                if isinstance(last, int) and last > after_seq:
                    marks[name].trainings.add(last)
        return marks

    def _emit(self, kind: str, model: str, detail: dict[str, Any]) -> None:
        event = Event(self.name, kind, model, detail, at=self.clock(), origin=self.origin)
        try:
            self.archive.record_event(event)
        except Exception:
            # The decision stands (a version may be published already); only its record is
            # missing, which must not stop the learning.
            log.exception("recording a %s event of '%s' failed", kind, model)

    @property
    def running(self) -> bool:
        return self._thread is not None


def step_all(learners: Sequence[DeploymentLearner]) -> bool:
    """One step of each learner; ``True`` when none had anything to do."""
    idle = True
    for learner in learners:
        try:
            idle = learner.step().idle and idle
        except Exception:
            log.exception("learner step of '%s' failed", learner.name)
    return idle
