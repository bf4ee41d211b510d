"""What one call cost the thread that made it: wall time, CPU time, whether it waited.

The inline policy (``inline.py``) judges a model by its calls on the event loop, and a slow
call is not always the model's doing: the garbage collector may have run in the middle of
it, or the machine may have held the thread up. These figures let it tell those apart.

CPU time comes from ``time.thread_time()``: the CPU time ``getrusage`` reports for a thread is
sampled at ticks and adjusted (2.5 ms for a 0.3 ms call, seen here). ``getrusage`` gives the
voluntary context switches (sleeps, I/O, lock and GIL waits), on Linux. Each is a system
call; :func:`usage` costs about 2 µs here, twice per call timed.
"""

from __future__ import annotations

import gc
import time
from typing import Any, NamedTuple

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)  # Linux only

__all__ = ["COLLECTOR", "CallCost", "CollectorClock", "Usage", "usage"]


class Usage(NamedTuple):
    """What the calling thread has used so far (see :func:`usage`)."""

    wall: float  # perf_counter
    cpu: float  # the thread's CPU time
    waits: int | None  # its voluntary context switches; None where they cannot be counted
    collecting: float  # seconds the garbage collector has run, in any thread


class CallCost(NamedTuple):
    """What one call cost its thread, the collector's pauses left out."""

    elapsed: float
    cpu: float
    blocked: bool | None  # whether the thread waited for something; None: unknown

    @classmethod
    def between(cls, before: Usage, after: Usage) -> CallCost:
        collecting = after.collecting - before.collecting
        blocked = None
        if before.waits is not None and after.waits is not None:
            blocked = after.waits > before.waits
        return cls(
            after.wall - before.wall - collecting, after.cpu - before.cpu - collecting, blocked
        )


class CollectorClock:
    """Adds up the garbage collector's pauses, from ``gc.callbacks`` (two calls each)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            self._installed = True
            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started


COLLECTOR = CollectorClock()


def usage() -> Usage:
    """The calling thread's usage now."""
    waits = None if _RUSAGE_THREAD is None else resource.getrusage(_RUSAGE_THREAD).ru_nvcsw
    return Usage(time.perf_counter(), time.thread_time(), waits, COLLECTOR.total)
