"""Automatic promotion: a challenger proven better on live labels becomes the champion.

Run by API processes of a deployment whose file has a ``promotion:`` block (see
:class:`~rendezvous.config.PromotionConfig`). Every ``check_every_s`` seconds the
:class:`PromotionWatcher` looks at the labelled requests received since the last test
(at most the last ``window`` requests); once at least ``min_pairs`` are labelled it tests
each challenger against the champion (:func:`rendezvous.compare.compare` with a
:class:`~rendezvous.compare.PromotionPolicy`) and promotes the best one whose test says
so, with the test's figures as the promotion's evidence.

Testing again and again inflates false promotions: with a fixed ``alpha`` per test, a
challenger no better than the champion is promoted sooner or later. Two rules keep the
probability of *ever* promoting such a challenger, over a champion's whole reign, at most
``alpha``:

* **fresh windows** — a test that does not promote uses up its requests: the next test
  only sees requests received after the newest labelled one it used, so no label counts
  in two tests and each test adds new evidence rather than re-reading the old.
* **alpha spending** — the k-th test of a reign runs at ``alpha · 6 / (π² k²)``, a series
  that sums to ``alpha`` (so the total, a union bound, stays below it), and that level is
  shared among the challengers tested together (Bonferroni).

A reign begins with each change of champion (promotion or rollback, by hand or by policy).
Each test that ran without promoting is recorded as a ``promotion-check`` event with its
window and level, so the count and the cursor survive restarts and are shared by every API
process. Two processes testing the same window at the same instant may both record (or
both promote); re-reading the events just before recording makes that a rare, harmless
duplicate: it only spends more alpha, and promoting the champion changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .archive.base import Archive, Event, RequestRecord
from .compare import Comparison, Decision, ModelReport, PromotionPolicy, Window, compare
from .config import Deployment, PromotionConfig, Role
from .errors import RendezvousError
from .promotion import CHAMPION_KINDS, promote
from .runtime import DeploymentRuntime

__all__ = ["CHECK", "PromotionWatcher", "spent_alpha"]

log = logging.getLogger("rendezvous.promotion")

CHECK = "promotion-check"
_KINDS = (*CHAMPION_KINDS, CHECK)


def spent_alpha(alpha: float, k: int) -> float:
    """The level of the ``k``-th test (from 1) of a reign: the levels sum to ``alpha``."""
    return alpha * 6.0 / (math.pi**2 * k**2)


@dataclass
class _Reign:
    """What the events say about the current champion's tests."""

    champion: str
    seen: int = 0  # newest event read
    since: float = -math.inf  # only requests received after this are fresh
    checks: int = 0  # tests run (without promoting) in this reign

    def update(self, events: Sequence[Event]) -> None:
        for event in events:
            self.seen = max(self.seen, event.seq)
            if event.kind in CHAMPION_KINDS and event.model is not None:
                if event.model != self.champion:
                    self.champion, self.since, self.checks = event.model, event.at, 0
            elif event.kind == CHECK and event.detail.get("champion") == self.champion:
                self.since = max(self.since, float(event.detail["window"]["until"]))
                self.checks += 1


@dataclass(frozen=True, slots=True)
class _Outcome:
    comparison: Comparison
    alpha: float  # the level each challenger was tested at
    since: float
    until: float  # the newest labelled request used

    @property
    def tested(self) -> list[ModelReport]:
        """Challengers with enough pairs to have been tested."""
        min_pairs = self.comparison.policy.min_pairs if self.comparison.policy else 0
        return [
            r
            for r in self.comparison.models
            if r.decision is not None and r.decision.n >= min_pairs
        ]


class PromotionWatcher:
    """Tests the challengers of one running deployment and promotes a better one."""

    def __init__(
        self,
        runtime: DeploymentRuntime,
        config: PromotionConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.clock = clock
        self._reign = _Reign(runtime.deployment.champion.name)
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PromotionWatcher({self.runtime.name!r}, {self.config!r})"

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"promotion-{self.runtime.name}")

    async def stop(self) -> None:
        """Stop checking. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_every_s)
            try:
                await self.check()
            except RendezvousError as exc:
                log.warning("deployment '%s': promotion check failed: %s", self.runtime.name, exc)
            except Exception:
                # A bug must not end the checks for good (nobody awaits this task).
                log.exception("deployment '%s': promotion check failed", self.runtime.name)

    async def check(self) -> Event | None:
        """Test once if there is enough fresh evidence; the event recorded, if any."""
        runtime = self.runtime
        await self._read_events()
        if runtime.champion_name != self._reign.champion:
            return None  # this process has not applied the latest change yet: next time
        challengers = _challengers(runtime.deployment, self._reign.champion)
        if not challengers:
            return None
        reign = self._reign
        alpha = spent_alpha(self.config.alpha, reign.checks + 1) / len(challengers)
        outcome = await asyncio.to_thread(
            _test, runtime.archive, runtime.deployment, self.config, reign.champion, reign.since,
            challengers, alpha, self.clock,
        )  # fmt: skip
        if outcome is None or not outcome.tested:
            return None  # not enough labels yet: no test, nothing spent
        if await self._read_events():
            return None  # another process changed the champion or tested meanwhile
        evidence = _evidence(outcome, reign.checks + 1)
        best = _best(self.config, outcome.tested)
        if best is not None:
            evidence.update(_figures(best.decision))
            log.info("deployment '%s': promoting '%s': %s", runtime.name, best.model,
                     best.decision.reason if best.decision else "")  # fmt: skip
            return await promote(runtime, best.model, evidence=evidence, by="policy")
        evidence["decisions"] = {r.model: _figures(r.decision) for r in outcome.tested}
        event = Event(runtime.name, CHECK, None, evidence, self.clock(), runtime.instance)
        return await asyncio.to_thread(runtime.archive.record_event, event)

    async def _read_events(self) -> bool:
        """Catch up with the events; whether there were new ones."""
        events = await asyncio.to_thread(
            self.runtime.archive.events, self.runtime.name, after_seq=self._reign.seen, kinds=_KINDS
        )
        self._reign.update(events)
        return bool(events)


def _challengers(deployment: Deployment, champion: str) -> list[str]:
    """The models that may replace ``champion`` (a demoted champion is a challenger)."""
    return [
        m.name
        for m in deployment.models
        if m.role in (Role.CHAMPION, Role.CHALLENGER) and m.name != champion
    ]


def _test(
    archive: Archive,
    deployment: Deployment,
    config: PromotionConfig,
    champion: str,
    since: float,
    challengers: list[str],
    alpha: float,
    clock: Callable[[], float],
) -> _Outcome | None:
    """The comparison over the labelled requests received after ``since``, if there are
    enough of them (blocking: run in a thread)."""
    recent = Window(last=config.window).requests(archive, deployment.name, clock=clock)
    fresh = [r for r in recent if r.received_at > since]
    labelled = _labelled(archive, fresh)
    if len(labelled) < config.min_pairs:
        return None  # cheap: no comparison until it could decide
    first, until = fresh[0].received_at, labelled[-1].received_at
    comparison = compare(
        archive,
        deployment,
        Window(since=first, until=math.nextafter(until, math.inf)),
        models=challengers,
        policy=PromotionPolicy(config.metric, config.min_pairs, alpha),
        champion_name=champion,
        clock=clock,
    )
    return _Outcome(comparison, alpha, first, until)


def _labelled(archive: Archive, records: list[RequestRecord]) -> list[RequestRecord]:
    labels = archive.labels_for([r.id for r in records]) if records else {}
    return [r for r in records if r.id in labels]


def _best(config: PromotionConfig, tested: list[ModelReport]) -> ModelReport | None:
    """The winner among the challengers whose test says promote: best on the metric."""
    winners = [r for r in tested if r.decision is not None and r.decision.promote]
    if not winners:
        return None
    sign = -1.0 if config.metric == "accuracy" else 1.0  # accuracy: higher is better

    def rank(report: ModelReport) -> tuple[float, float]:
        d = report.decision
        assert d is not None and d.challenger_metric is not None
        return sign * d.challenger_metric, d.p_value if d.p_value is not None else 1.0

    return min(winners, key=rank)


def _evidence(outcome: _Outcome, k: int) -> dict[str, Any]:
    c = outcome.comparison
    assert c.policy is not None
    return {
        "metric": c.policy.metric,
        "alpha": outcome.alpha,
        "check": k,  # the test's number in this champion's reign
        "champion": c.champion,
        "window": {"since": outcome.since, "until": outcome.until},
        "requests": c.requests,
        "labelled": c.labelled,
    }


def _figures(decision: Decision | None) -> dict[str, Any]:
    if decision is None:
        return {}
    return {
        "n": decision.n,
        "champion_metric": decision.champion_metric,
        "challenger_metric": decision.challenger_metric,
        "statistic": decision.statistic,
        "p_value": decision.p_value,
        "test": decision.test,
        "reason": decision.reason,
    }
