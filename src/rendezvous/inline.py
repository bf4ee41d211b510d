"""Whether a synchronous model's next call runs on the event loop or on its own thread.

A thread hand-off costs about 60 µs of CPU and two wake-ups per batch, here: more than a
linear model's whole call (about 12 µs for one row). Running such a model on the loop saves
that, but a slow call there holds up everything else the loop does. So the choice follows
what the model has shown: after ``PROBE`` calls in a row on its thread that each took under
``FAST_S``, calls run on the loop; a slow call on the loop sends the model back to its
thread, and each such relapse doubles the streak of fast calls needed to come back. A model
that is sometimes slow thus stays on its thread, and costs the loop at most a few slow calls
over its lifetime.

Some slow calls are not the model's doing, and are forgiven:

- Time the garbage collector took during the call is left out: a collection runs wherever
  the allocation that triggers it happens, and pauses the loop as long whichever call it is.
- A call whose thread neither used ``FAST_S`` of CPU nor waited for anything (it made no
  voluntary context switch: no sleep, I/O, lock or GIL wait) was held up by the machine:
  preempted, interrupted, or its virtual CPU descheduled by the host. The loop would have
  been held up wherever the model computed, so such a call counts as a fast one, on the loop
  and on the thread alike. Seen here: with a model process computing shadows on the same
  CPU, several one-row calls a second took 0.5-2 ms of wall time for 0.1 ms of CPU and no
  context switch at all; sending the champion back to its thread for each put it there for
  most of an open-loop run, and the thread's hand-offs (a wake-up and a preemption per
  batch) cost the loop more than the stalls did.
- A call that waited under ``STALL_S`` of wall time with under ``FAST_S`` of CPU is forgiven
  at most once per ``PROBE`` calls: mostly the GIL, taken by another thread while numpy had
  released it. (Three interleaved A/B runs, open loop with two shadows: p99 1.2-1.5x the
  champion-only p99 before, 0.86-0.98x once forgiven.) A model that blocks (I/O, sleep) thus
  costs the loop at most one call under ``STALL_S`` per ``PROBE`` calls before a second such
  call sends it back. Where the switches cannot be counted (no ``RUSAGE_THREAD``), every
  held-up call is treated so.
"""

from __future__ import annotations

from .call_cost import COLLECTOR

__all__ = ["FAST_S", "PROBE", "STALL_S", "InlinePolicy"]

FAST_S = 0.0005  # a call this short on the loop delays others less than one HTTP request
PROBE = 64  # fast calls in a row before the first move to the loop
STALL_S = 0.005  # the held-up calls measured here took up to ~4 ms of wall time
_MAX_RELAPSES = 10  # the streak needed stops doubling here (64 x 1024 calls)


class InlinePolicy:
    """``fixed=True``: always on the loop; ``False``: never; ``None``: as the model shows."""

    def __init__(self, fixed: bool | None) -> None:
        self.fixed = fixed
        self._streak = 0
        self._relapses = 0
        self._since_forgiven = PROBE
        self._on_loop = fixed is True
        if fixed is None:
            COLLECTOR.install()  # only a policy that judges calls needs the collector's pauses

    @property
    def on_loop(self) -> bool:
        """Whether the next call runs on the event loop."""
        return self._on_loop

    def observe(
        self, elapsed: float, cpu: float | None = None, blocked: bool | None = None
    ) -> None:
        """Record how long a call took where it ran (seconds, the model's own time) and, when
        measured, the CPU time its thread spent in it and whether the thread waited for
        something meanwhile."""
        if self.fixed is not None:
            return
        held_up = blocked is False and cpu is not None and cpu < FAST_S  # by the machine
        if elapsed < FAST_S or held_up:
            self._streak += 1
            self._since_forgiven += 1
            if not self._on_loop and self._streak >= PROBE << self._relapses:
                self._on_loop = True
            return
        self._streak = 0
        if not self._on_loop:
            return
        waited = cpu is not None and cpu < FAST_S and elapsed < STALL_S
        if waited and self._since_forgiven >= PROBE:
            self._since_forgiven = 0
            return
        self._on_loop = False
        self._relapses = min(self._relapses + 1, _MAX_RELAPSES)

    def reset(self) -> None:
        """A new model (version): it proves itself again, from the thread."""
        self._streak = self._relapses = 0
        self._since_forgiven = PROBE
        self._on_loop = self.fixed is True
