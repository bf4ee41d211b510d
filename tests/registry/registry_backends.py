"""Registry backends the conformance suite runs over, and work for spawned processes.

A backend is done when ``test_registry_conformance.py`` passes with it listed in
``BACKENDS``. ``open`` must be a module-level function: spawned processes receive it by
name and open the same registry (same ``root``) on their side.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from rendezvous.registry import FileRegistry, Registry
from rendezvous.registry.notifications import Notifier

Clock = Callable[[], float]


def open_file_registry(
    root: Path, clock: Clock = time.time, notifier: Notifier | None = None
) -> Registry:
    return FileRegistry(root, clock=clock, notifier=notifier)


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[..., Registry]  # (root, clock=…, notifier=…) → a registry

    def __str__(self) -> str:
        return self.name


BACKENDS = [Backend("filesystem", open_file_registry)]


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- run in spawned processes ---------------------------------------------------------------


def publish_many(
    open_registry: Callable[..., Registry],
    root: str,
    model: str,
    count: int,
    barrier: Barrier,
    results: Queue[Any],
) -> None:
    """Publish ``count`` versions as fast as possible once every publisher is ready."""
    registry = open_registry(Path(root))
    barrier.wait(timeout=60)
    tag = f"pid-{os.getpid()}"
    versions = [
        registry.publish(model, f"{tag}-{i}".encode(), filename="a.bin").version
        for i in range(count)
    ]
    results.put((tag, versions))


def change_registry(open_registry: Callable[..., Registry], root: str) -> None:
    """What a learner in another process does: publish, promote, roll back."""
    registry = open_registry(Path(root))
    registry.publish("remote", b"one", filename="m.bin", trigger="initial")
    registry.publish("remote", b"two", filename="m.bin", trigger="drift")
    registry.set_alias("remote", "champion", "1")
    registry.set_alias("remote", "champion", "2")
    registry.set_alias("remote", "challenger", "1")
    registry.rollback("remote")
