"""The Registry interface: versioned model artifacts, their metadata, and aliases.

A model name owns a sequence of versions ``"1"``, ``"2"``, … (strings, numbered from 1 in
publication order, never reused). An alias (``champion``, ``challenger``, any name) points at
one version and can move; ``latest`` always means the newest version. Every change is
announced to subscribers as an :class:`~rendezvous.registry.notifications.Event`.

Unknown models, versions and aliases raise :class:`~rendezvous.errors.NotFound` naming what
was asked for and what exists.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import NotFound
from .metadata import TrainingWindow, Trigger, Validation, VersionInfo, is_version
from .notifications import Event, Listener, LocalNotifier, Notifier

__all__ = ["CHAMPION", "Artifact", "Registry"]

log = logging.getLogger("rendezvous.registry")

CHAMPION = "champion"

# A file to copy, the artifact's bytes, or a function that writes the artifact to the path
# it is given (``lambda p: joblib.dump(estimator, p)``: no extra copy of a big model).
Artifact = str | os.PathLike[str] | bytes | Callable[[Path], object]


class Registry(ABC):
    """Versions, metadata and aliases of models; notifies subscribers of every change."""

    def __init__(self, *, notifier: Notifier | None = None) -> None:
        self.notifier: Notifier = notifier if notifier is not None else LocalNotifier()

    @abstractmethod
    def models(self) -> list[str]:
        """Names of the models that have at least one version, sorted."""

    @abstractmethod
    def publish(
        self,
        model: str,
        artifact: Artifact,
        *,
        filename: str | None = None,
        trigger: Trigger | str = Trigger.MANUAL,
        parent: str | int | None = None,
        training: TrainingWindow | None = None,
        validation: Validation | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> VersionInfo:
        """Store ``artifact`` as the next version of ``model`` and announce it.

        ``filename`` names the stored file; it defaults to the source file's name and is
        required for bytes and writer functions. ``extra`` is any JSON-serialisable mapping.
        A version is visible completely or not at all, and two publishers never get the
        same number.
        """

    @abstractmethod
    def versions(self, model: str) -> list[VersionInfo]:
        """Every version of ``model``, oldest first."""

    @abstractmethod
    def get(self, model: str, version: str | int) -> VersionInfo:
        """The metadata of one version (``resolve`` first to look one up by alias)."""

    @abstractmethod
    def load_artifact(self, model: str, version: str | int) -> Path:
        """Path of the version's artifact file, after checking its sha256."""

    @abstractmethod
    def aliases(self, model: str) -> dict[str, str]:
        """Every alias of ``model`` and the version it points at."""

    @abstractmethod
    def set_alias(self, model: str, alias: str, version: str | int) -> None:
        """Point ``alias`` at ``version`` (a version, another alias, or ``latest``)."""

    @abstractmethod
    def rollback(self, model: str, to: str | int | None = None) -> str:
        """Point the champion back at ``to``, or at the champion before the current one.

        Returns the version now champion. Rolling back retraces the champion's history:
        calling it again goes further back, never forth, because a rollback drops the
        versions it leaves from that history instead of remembering them.
        """

    def resolve(self, model: str, ref: str | int) -> str:
        """The version ``ref`` names: a version number, an alias, or ``latest``."""
        ref = str(ref)
        if ref == "latest":
            existing = self.versions(model)
            if not existing:
                raise NotFound(f"model '{model}' has no versions")
            return existing[-1].version
        if is_version(ref):
            return self.get(model, ref).version
        aliases = self.aliases(model)
        if ref not in aliases:
            known = ", ".join(f"{a} → {v}" for a, v in sorted(aliases.items())) or "none"
            raise NotFound(f"model '{model}' has no alias '{ref}' (aliases: {known})")
        return aliases[ref]

    def subscribe(self, callback: Listener) -> None:
        """Call ``callback(event)`` after every change made through this registry's notifier."""
        self.notifier.subscribe(callback)

    def unsubscribe(self, callback: Listener) -> None:
        self.notifier.unsubscribe(callback)

    def _notify(self, event: Event) -> None:
        # The change is already durable: a notifier failing (a broker down) must not turn a
        # successful publish into an error the caller would retry, publishing twice.
        try:
            self.notifier.publish(event)
        except Exception:
            log.exception("notifying %s failed", event)
