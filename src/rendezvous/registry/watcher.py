"""Learn of registry changes made by other processes, by polling the registry's directory.

Processes that share a registry directory (one host, or a shared filesystem) need no broker:
a :class:`Watcher` compares what it saw last with what is there now and fires the same
:class:`~rendezvous.registry.notifications.Event` s the publishing process fired. A poll is
cheap: one directory listing per model and one ``stat`` of its ``aliases.json``, which is
only read when the stat changed.

It reports every change, including those this process made itself; subscribe either to the
registry (changes made through it) or to a watcher (changes made by anyone), not both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ._layout import AliasState, Layout
from .errors import CorruptRegistry, RegistryError
from .filesystem import FileRegistry
from .metadata import check_model
from .notifications import Event, EventKind, Listener, LocalNotifier, Notifier

__all__ = ["Watcher"]

log = logging.getLogger("rendezvous.registry")

_Stat = tuple[int, int, int, int]


@dataclass(slots=True)
class _Seen:
    versions: set[int] = field(default_factory=set)
    stat: _Stat | None = None
    aliases: dict[str, tuple[str, int]] = field(default_factory=dict)  # version, moves


class Watcher:
    """Polls a filesystem registry every ``interval`` seconds once started.

    ``models`` limits the watch to those names (default: every model, including ones
    published for the first time later). What exists at construction is the baseline:
    only later changes fire events. Listeners run on the watcher's thread (or the caller's,
    for :meth:`poll`).
    """

    def __init__(
        self,
        registry: FileRegistry | str | os.PathLike[str],
        *,
        interval: float = 1.0,
        models: Iterable[str] | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        if interval <= 0:
            raise RegistryError(f"watcher interval must be positive, got {interval}")
        root = registry.root if isinstance(registry, FileRegistry) else Path(registry)
        self._layout = Layout(root)
        self.interval = interval
        self.notifier: Notifier = notifier if notifier is not None else LocalNotifier()
        self._models = None if models is None else [check_model(m) for m in models]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, _Seen] = {}
        for model in self._watched():
            self._diff(model, self._seen.setdefault(model, _Seen()))

    def __repr__(self) -> str:
        return f"Watcher({str(self._layout.root)!r}, interval={self.interval})"

    def subscribe(self, callback: Listener) -> None:
        self.notifier.subscribe(callback)

    def unsubscribe(self, callback: Listener) -> None:
        self.notifier.unsubscribe(callback)

    def poll(self) -> list[Event]:
        """Look once; fire and return the events for every change since the last look."""
        with self._lock:
            events: list[Event] = []
            for model in self._watched():
                events += self._diff(model, self._seen.setdefault(model, _Seen()))
        for event in events:
            self.notifier.publish(event)
        return events

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name="rendezvous-registry-watcher", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and wait for a poll in progress; calling it again does nothing."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Watcher:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.poll()
            except Exception:
                # A shared filesystem hiccups; the next poll sees whatever was missed.
                log.exception("polling registry %s failed", self._layout.root)

    # -- looking --------------------------------------------------------------------------

    def _watched(self) -> list[str]:
        return self._models if self._models is not None else self._layout.model_dirs()

    def _diff(self, model: str, seen: _Seen) -> list[Event]:
        # Aliases are read before versions are listed: an alias only ever points at a version
        # published before it moved, so that version is in the listing and its event first.
        aliases, stat = self._aliases(model, seen)
        numbers = set(self._layout.version_numbers(model))
        events = [
            Event(model, str(n), EventKind.PUBLISHED) for n in sorted(numbers - seen.versions)
        ]
        if aliases is not None:
            now = {a: (v, aliases.moves.get(a, 0)) for a, v in aliases.aliases.items()}
            # Only the last move of an alias between two looks is seen; that is the one
            # that says where it points now.
            for alias, (version, moves) in sorted(now.items()):
                if seen.aliases.get(alias) != (version, moves):
                    kind = aliases.kinds.get(alias, EventKind.ALIAS)
                    events.append(Event(model, version, kind, alias))
            seen.aliases = now
        seen.versions = numbers
        seen.stat = stat
        return events

    def _aliases(self, model: str, seen: _Seen) -> tuple[AliasState | None, _Stat | None]:
        """The alias state if the file changed since ``seen`` (``None`` if it did not)."""
        try:
            st = os.stat(self._layout.aliases_file(model))
        except FileNotFoundError:
            return None, None
        # The file is replaced, never rewritten in place: a change shows in the inode and the
        # change time even when size and modification time come out the same.
        stat = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        if stat == seen.stat:
            return None, stat
        try:
            return self._layout.read_aliases(model), stat
        except CorruptRegistry:
            log.exception("skipping unreadable aliases of model '%s'", model)
            return None, seen.stat
