"""The rendezvous: a mailbox per request, answered by the deployment's schedule.

The schedule is a preference list of models, each with an optional wait budget measured from
the moment the request was accepted. The answer is the first model in schedule order that
has a good score, where a model still inside its budget (or, without one, before the
deadline) is waited for. At the deadline the first model in schedule order that has answered
wins; if none has, the configured default answers. Without a default the choice is
``error``: no model answered and there was nothing to fall back on.

Everything runs on the event loop: scores arrive through :meth:`Collector.deliver`, budgets
and the deadline are loop timers, so a decision costs no thread hand-off. Decisions read the
loop's clock, the one its timers fire by; the latency an answer reports does not: uvloop's
clock moves in whole milliseconds, and most answers take less than one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .messages import Score

__all__ = ["Answer", "Collector", "ScheduleStep"]


@dataclass(frozen=True, slots=True)
class ScheduleStep:
    model: str
    wait_s: float | None = None  # budget from acceptance; None = up to the deadline


@dataclass(slots=True)
class Answer:
    """What the collector decided for one request."""

    request_id: str
    prediction: Any
    probabilities: list[float] | None
    model: str | None  # None when the default answered or nothing did
    version: str | None
    reason: str  # champion | split:<model> | fallback:<model> | default | error
    latency_ms: float
    detail: str | None = None  # why the preferred models did not answer, when they did not

    @property
    def fallback(self) -> bool:
        """Whether the answer is not the one the request was meant to get."""
        return self.reason != "champion" and not self.reason.startswith("split:")


class _Mailbox:
    __slots__ = ("future", "opened", "request_id", "schedule", "scores", "start", "timers")

    def __init__(
        self,
        request_id: str,
        start: float,
        future: asyncio.Future[Answer],
        schedule: tuple[ScheduleStep, ...],
    ) -> None:
        self.request_id = request_id
        self.start = start  # loop time: budgets and the deadline count from here
        self.opened = time.perf_counter()  # for the latency the answer reports
        self.future = future
        self.schedule = schedule
        self.scores: dict[str, Score] = {}
        self.timers: list[asyncio.TimerHandle] = []


class Collector:
    """Keeps one mailbox per waiting request of one deployment."""

    def __init__(
        self,
        schedule: Sequence[ScheduleStep],
        *,
        champion: str,
        deadline_s: float,
        default: dict[str, Any] | None = None,
    ) -> None:
        if not schedule:
            raise ValueError("a schedule needs at least one model")
        self.schedule = tuple(schedule)
        self.champion = champion
        self.deadline_s = deadline_s
        self.default = default
        self._scheduled = frozenset(step.model for step in self.schedule)
        self._splits: set[str] = set()  # split models that lead some mailbox's schedule
        self._checkpoints = self._budgets()
        self._boxes: dict[str, _Mailbox] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        steps = ", ".join(s.model for s in self.schedule)
        return f"Collector(schedule=[{steps}], deadline_s={self.deadline_s})"

    def set_champion(self, model: str) -> None:
        """Make ``model`` the champion: first in the schedule, the old champion right after.

        Mailboxes already open keep the schedule they were opened with.
        """
        rest = [s for s in self.schedule if s.model not in (model, self.champion)]
        old = [s for s in self.schedule if s.model == self.champion and s.model != model]
        self.schedule = (ScheduleStep(model), *old, *rest)
        self.champion = model
        self._scheduled = frozenset(step.model for step in self.schedule)
        self._checkpoints = self._budgets()

    def _budgets(self) -> list[float]:
        """Distinct budget expiries before the deadline: the moments a decision can change."""
        return sorted(
            {s.wait_s for s in self.schedule if s.wait_s is not None and s.wait_s < self.deadline_s}
        )

    @property
    def waiting(self) -> int:
        return len(self._boxes)

    def waits_for_any(self, request_ids: Iterable[str]) -> bool:
        """Whether any of these requests' mailboxes is still open (their scores may still
        decide)."""
        return not self._boxes.keys().isdisjoint(request_ids)

    def open(self, request_id: str, *, split: str | None = None) -> asyncio.Future[Answer]:
        """Open a mailbox; the future resolves with the answer, by the deadline at the latest.

        ``split`` names a split model that answers this request in the champion's place;
        the deployment's schedule follows it as the fallback.
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        start = loop.time()
        schedule = self.schedule
        if split is not None:
            schedule = (ScheduleStep(split), *(s for s in schedule if s.model != split))
            self._splits.add(split)
        box = _Mailbox(request_id, start, loop.create_future(), schedule)
        for wait_s in self._checkpoints:
            box.timers.append(loop.call_at(start + wait_s, self._on_timer, box))
        box.timers.append(loop.call_at(start + self.deadline_s, self._on_deadline, box))
        self._boxes[request_id] = box
        return box.future

    def close(self, request_id: str) -> None:
        """Forget a mailbox whose caller stopped waiting (for instance, a cancelled request)."""
        box = self._boxes.pop(request_id, None)
        if box is not None:
            for t in box.timers:
                t.cancel()

    def is_open(self, request_id: str) -> bool:
        """Whether ``request_id`` is open and not answered yet."""
        return request_id in self._boxes

    def abandon(self, request_id: str, detail: str) -> Answer:
        """Answer now from what is there (the default, usually): the request could not
        reach the models, so waiting for the deadline would only delay the same answer."""
        box = self._boxes[request_id]
        assert self._loop is not None
        answer = self._decide(box, final=True)
        assert answer is not None
        answer.detail = f"{detail}; {answer.detail}" if answer.detail else detail
        self._finish(box, answer)
        return answer

    def deliver(self, scores: Sequence[Score]) -> None:
        """Scores from the bus. Late scores (mailbox already answered) are ignored here;
        the archive receives every score independently."""
        boxes = self._boxes
        scheduled = self._scheduled
        for score in scores:
            box = boxes.get(score.request_id)
            if box is None:
                continue
            box.scores[score.model] = score
            if score.model in scheduled or score.model in self._splits:
                answer = self._decide(box, final=False)
                if answer is not None:
                    self._finish(box, answer)

    # -- decision ---------------------------------------------------------------------------

    def _on_timer(self, box: _Mailbox) -> None:
        if box.request_id in self._boxes:
            answer = self._decide(box, final=False)
            if answer is not None:
                self._finish(box, answer)

    def _on_deadline(self, box: _Mailbox) -> None:
        if box.request_id in self._boxes:
            answer = self._decide(box, final=True)
            assert answer is not None  # a final decision always answers
            self._finish(box, answer)

    def _decide(self, box: _Mailbox, *, final: bool) -> Answer | None:
        assert self._loop is not None
        elapsed = self._loop.time() - box.start
        scores = box.scores
        for step in box.schedule:
            score = scores.get(step.model)
            if score is not None:
                if score.error is None:
                    return self._from_score(box, score)
                continue
            if not final and (step.wait_s is None or elapsed < step.wait_s):
                return None  # this model may still answer and is preferred: wait
        return self._fallback(box)

    def _from_score(self, box: _Mailbox, score: Score) -> Answer:
        if score.model == self.champion:
            reason = "champion"
        elif score.model == box.schedule[0].model and box.schedule is not self.schedule:
            reason = f"split:{score.model}"  # the split arm this request was assigned to
        else:
            reason = f"fallback:{score.model}"
        detail = self._why(box) if reason.startswith("fallback") else None
        return Answer(
            box.request_id,
            score.prediction,
            score.probabilities,
            score.model,
            score.version,
            reason,
            _latency_ms(box),
            detail,
        )

    def _fallback(self, box: _Mailbox) -> Answer:
        detail = self._why(box)
        if self.default is not None:
            return Answer(
                box.request_id,
                self.default.get("prediction"),
                self.default.get("probabilities"),
                None,
                None,
                "default",
                _latency_ms(box),
                detail,
            )
        return Answer(box.request_id, None, None, None, None, "error", _latency_ms(box), detail)

    def _why(self, box: _Mailbox) -> str:
        parts = []
        for step in box.schedule:
            score = box.scores.get(step.model)
            if score is None:
                parts.append(f"{step.model}: no answer in time")
            elif score.error is not None:
                parts.append(f"{step.model}: {score.error}")
            else:
                break
        return "; ".join(parts)

    def _finish(self, box: _Mailbox, answer: Answer) -> None:
        del self._boxes[box.request_id]
        for t in box.timers:
            t.cancel()
        if not box.future.done():
            box.future.set_result(answer)


def _latency_ms(box: _Mailbox) -> float:
    return (time.perf_counter() - box.opened) * 1000.0
