"""Promotion and rollback: which model is the champion, in every process of a deployment.

A promotion is an :class:`~rendezvous.archive.base.Event` in the deployment's archive
(``kind="promote"``, ``model`` the new champion, ``detail`` with the ``previous`` one, the
``evidence`` and ``by`` whom), recorded durably *before* this process applies it. Every
API process runs an :class:`EventFollower` that polls the archive and applies what other
processes (or ``rendezvous promote``) recorded, so a promotion reaches all of them within
about a second, and a process started later starts with the current champion.

The champion is the ``model`` of the latest promote or rollback event (the file's champion
when there is none): events are applied in ``seq`` order, and one that is older than what
a process already applied is skipped, so processes agree however their polls interleave.

A rollback goes back to the champion before the latest promotion not yet rolled back;
rolling back again goes one further. The history outlives the deployment file: after
changing the file's champion, promote it (or the history's champion keeps serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .archive.base import Archive, Event
from .config import Deployment, Role
from .errors import ArchiveError, Conflict, InputError, NotFound
from .runtime import DeploymentRuntime

__all__ = [
    "CHAMPION_KINDS",
    "EventFollower",
    "apply",
    "champions",
    "check_promotable",
    "cli_origin",
    "current_champion",
    "promote",
    "record_promotion",
    "record_rollback",
    "rollback",
]

log = logging.getLogger("rendezvous.promotion")

PROMOTE = "promote"
ROLLBACK = "rollback"
CHAMPION_KINDS = (PROMOTE, ROLLBACK)

By = Literal["admin", "policy"]


def cli_origin() -> str:
    """The origin of events recorded by a command rather than a serving process."""
    return f"cli@{socket.gethostname()}:{os.getpid()}"


# -- the history (plain functions over an archive: the CLI uses them without a runtime) ----


def check_promotable(deployment: Deployment, model: str) -> None:
    """Raise unless ``model`` may be the champion: only one that may answer can be."""
    try:
        cfg = deployment.model(model)
    except KeyError:
        raise NotFound(f"deployment '{deployment.name}' has no model '{model}'") from None
    if cfg.role not in (Role.CHAMPION, Role.CHALLENGER):
        raise InputError(
            f"'{model}' is a {cfg.role.value}; only a challenger can be promoted", "model"
        )


def champions(deployment: Deployment, events: Sequence[Event]) -> list[tuple[str, int]]:
    """The champions a rollback would walk back through, as ``(model, seq)``: the file's
    champion (seq 0), then each promotion still in force; the last is the champion now."""
    stack = [(deployment.champion.name, 0)]
    for event in events:
        if event.model is None:
            continue
        if event.kind == ROLLBACK:
            # Drop the promotion it undid and whatever was pushed above it meanwhile (a
            # promotion racing the rollback): two rollbacks of one promotion undo it once.
            undone = event.detail.get("undoes")
            for i, (_, seq) in enumerate(stack):
                if i > 0 and seq == undone:
                    del stack[i:]
                    break
        elif event.kind != PROMOTE:
            continue
        if event.model != stack[-1][0]:
            stack.append((event.model, event.seq))
    return stack


def _history(archive: Archive, deployment: Deployment) -> list[Event]:
    return archive.events(deployment.name, kinds=CHAMPION_KINDS)


def current_champion(archive: Archive, deployment: Deployment) -> str:
    """The champion the deployment's processes serve, by its history (blocking)."""
    return champions(deployment, _history(archive, deployment))[-1][0]


def record_promotion(
    archive: Archive,
    deployment: Deployment,
    model: str,
    *,
    origin: str,
    evidence: dict[str, Any] | None = None,
    by: By = "admin",
    clock: Callable[[], float] = time.time,
) -> Event:
    """Record durably that ``model`` is the champion from now on (blocking: off the loop)."""
    check_promotable(deployment, model)
    previous = current_champion(archive, deployment)
    detail = {"previous": previous, "evidence": evidence or {}, "by": by}
    return archive.record_event(Event(deployment.name, PROMOTE, model, detail, clock(), origin))


def record_rollback(
    archive: Archive,
    deployment: Deployment,
    *,
    origin: str,
    by: By = "admin",
    clock: Callable[[], float] = time.time,
) -> Event:
    """Record durably a return to the champion before the latest promotion in force."""
    stack = champions(deployment, _history(archive, deployment))
    if len(stack) < 2:
        raise Conflict(
            f"deployment '{deployment.name}': nothing to roll back (no promotion in force;"
            f" '{stack[-1][0]}' is the deployment file's champion)"
        )
    (target, _), (current, undoes) = stack[-2], stack[-1]
    try:
        check_promotable(deployment, target)
    except (NotFound, InputError) as exc:
        # The file changed since: the model to go back to cannot answer any more.
        raise Conflict(f"cannot roll back to '{target}': {exc}") from None
    detail = {"previous": current, "undoes": undoes, "by": by}
    return archive.record_event(Event(deployment.name, ROLLBACK, target, detail, clock(), origin))


# -- a running deployment ---------------------------------------------------------------------


@dataclass
class _Applied:
    seq: int = 0  # the newest champion event this process applied


# Per runtime, not per follower: promote() and the follower both apply, and must agree on
# what is newest. Weak, so a runtime's entry goes with it.
_applied: weakref.WeakKeyDictionary[DeploymentRuntime, _Applied] = weakref.WeakKeyDictionary()


def _state(runtime: DeploymentRuntime) -> _Applied:
    state = _applied.get(runtime)
    if state is None:
        state = _applied[runtime] = _Applied()
    return state


def apply(runtime: DeploymentRuntime, event: Event) -> bool:
    """Serve ``event.model`` as the champion here, unless a newer event was applied already.

    Returns whether the champion changed. A model the deployment file no longer allows is
    logged and skipped: the current champion keeps serving.
    """
    state = _state(runtime)
    if event.seq <= state.seq or event.model is None:
        return False
    state.seq = event.seq
    if event.model == runtime.champion_name:
        return False
    try:
        previous = runtime.set_champion(event.model)
    except (NotFound, InputError) as exc:
        log.warning("deployment '%s': event %d not applied: %s", runtime.name, event.seq, exc)
        return False
    log.info(
        "deployment '%s': champion %s → %s (%s, event %d from %s)",
        runtime.name, previous, event.model, event.kind, event.seq, event.origin,
    )  # fmt: skip
    return True


async def promote(
    runtime: DeploymentRuntime,
    model: str,
    *,
    evidence: dict[str, Any] | None = None,
    origin: str | None = None,
    by: By = "admin",
) -> Event:
    """Make ``model`` the champion of ``runtime``'s deployment, here and (through the
    archive) in every other process. :class:`NotFound` for an unknown model,
    :class:`InputError` for one that cannot answer (a canary, a decoy, a split)."""
    check_promotable(runtime.deployment, model)  # before touching the archive
    event = await asyncio.to_thread(
        record_promotion,
        runtime.archive,
        runtime.deployment,
        model,
        origin=origin or runtime.instance,
        evidence=evidence,
        by=by,
    )
    apply(runtime, event)
    return event


async def rollback(
    runtime: DeploymentRuntime, *, origin: str | None = None, by: By = "admin"
) -> Event:
    """Go back to the champion before the latest promotion; :class:`Conflict` if none."""
    event = await asyncio.to_thread(
        record_rollback,
        runtime.archive,
        runtime.deployment,
        origin=origin or runtime.instance,
        by=by,
    )
    apply(runtime, event)
    return event


class EventFollower:
    """Applies the champion events other processes record, polling every ``interval`` s.

    ``start()`` first catches up (a restarted process serves the current champion before
    it serves anything), then polls in a background task until ``stop()``.
    """

    def __init__(self, runtime: DeploymentRuntime, *, interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.runtime = runtime
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"EventFollower({self.runtime.name!r}, interval={self.interval})"

    async def start(self) -> None:
        if self._task is not None:
            return
        await self.poll()  # an archive that fails here fails the start, loudly
        self._task = asyncio.create_task(self._run(), name=f"follow-events-{self.runtime.name}")

    async def stop(self) -> None:
        """Stop polling. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def poll(self) -> bool:
        """Apply whatever is newer than what this process applied; whether it changed."""
        runtime = self.runtime
        events = await asyncio.to_thread(
            runtime.archive.events,
            runtime.name,
            after_seq=_state(runtime).seq,
            kinds=CHAMPION_KINDS,
        )
        # The latest decides the champion: the ones before it were superseded.
        return apply(runtime, events[-1]) if events else False

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except ArchiveError as exc:
                # The archive is down for a moment: keep serving the champion we have.
                log.warning("deployment '%s': cannot read events: %s", self.runtime.name, exc)
            except Exception:
                # A bug must not end the following for good (nobody awaits this task).
                log.exception("deployment '%s': cannot follow events", self.runtime.name)
