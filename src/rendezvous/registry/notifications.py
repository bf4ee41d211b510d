"""How the rest of the system learns that a version was published or an alias moved.

A :class:`Notifier` carries :class:`Event` s from whoever changed the registry to every
subscriber. :class:`LocalNotifier` does it inside one process; a notifier over a broker
(Redis pub/sub) implements the same three methods and serialises events with
:meth:`Event.to_json` / :meth:`Event.from_json`. Processes that share only a filesystem use
:class:`~rendezvous.registry.watcher.Watcher` instead.

A subscriber's exception is logged and swallowed: the version is already published when
subscribers hear of it, so one broken listener must neither fail the publisher nor keep the
others from hearing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol

import orjson

__all__ = ["Event", "EventKind", "Listener", "LocalNotifier", "Notifier"]

log = logging.getLogger("rendezvous.registry")


class EventKind(StrEnum):
    PUBLISHED = "published"  # a new version exists (no alias moved)
    ALIAS = "alias"  # an alias now points at ``version``
    ROLLBACK = "rollback"  # the champion alias was moved back to ``version``


@dataclass(frozen=True, slots=True)
class Event:
    """One change: ``alias`` is ``None`` for :attr:`EventKind.PUBLISHED`."""

    model: str
    version: str
    kind: EventKind
    alias: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        raw: Any = orjson.loads(data)
        alias = raw.get("alias")
        return cls(
            model=str(raw["model"]),
            version=str(raw["version"]),
            kind=EventKind(raw["kind"]),
            alias=None if alias is None else str(alias),
        )


class Listener(Protocol):
    def __call__(self, event: Event, /) -> None: ...


class Notifier(Protocol):
    """Delivers events to subscribers; where they travel (a process, a broker) is its business."""

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; never raises because of a subscriber."""

    def subscribe(self, callback: Listener) -> None:
        """Call ``callback(event)`` for every event from now on."""

    def unsubscribe(self, callback: Listener) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""


class LocalNotifier:
    """Calls subscribers synchronously, on the publishing thread, in subscription order.

    A subscriber that must act on an event loop hands the event over itself
    (``loop.call_soon_threadsafe``): the publisher may be any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def publish(self, event: Event) -> None:
        with self._lock:
            # A copy: a listener may unsubscribe itself (or others) while being called.
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("registry listener %r failed on %s", listener, event)

    def subscribe(self, callback: Listener) -> None:
        with self._lock:
            self._listeners.append(callback)

    def unsubscribe(self, callback: Listener) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def __repr__(self) -> str:
        return f"<LocalNotifier listeners={len(self._listeners)}>"
