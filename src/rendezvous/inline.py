"""Whether a synchronous model's next call runs on the event loop or on its own thread.

A thread hand-off costs about 60 µs of CPU and two wake-ups per batch, here: more than a
linear model's whole call (about 12 µs for one row). Running such a model on the loop saves
that, but a slow call there holds up everything else the loop does. So the choice follows
what the model has shown: after ``PROBE`` calls in a row on its thread that each took under
``FAST_S``, calls run on the loop; a slow call on the loop sends the model back to its
thread, and each such relapse doubles the streak of fast calls needed to come back. A model
that is sometimes slow thus stays on its thread, and costs the loop at most a few slow calls
over its lifetime.

One kind of slow call is forgiven: one that used under ``FAST_S`` of CPU and under
``STALL_S`` of wall time, at most once per ``PROBE`` calls. A fast model's call looks slow
like that several times a minute here when its thread is held up, not the model: preempted,
or waiting for the GIL that another thread took while numpy had released it. Sending the
model back for each of those put it on its thread for much of a busy run, and its hand-offs
cost more than the stalls they were meant to avoid (open-loop p99 with two shadows, in three
interleaved A/B runs: 1.2-1.5x the champion-only p99, 0.86-0.98x once forgiven). The price
is bounded: a model that blocks (I/O, sleep) costs the loop at most one call under
``STALL_S`` per ``PROBE`` calls before a second such call sends it back.
"""

from __future__ import annotations

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

    @property
    def on_loop(self) -> bool:
        """Whether the next call runs on the event loop."""
        return self._on_loop

    def observe(self, elapsed: float, cpu: float | None = None) -> None:
        """Record how long a call took where it ran (seconds, the model's own time) and, when
        measured, the CPU time its thread spent in it."""
        if self.fixed is not None:
            return
        if elapsed < FAST_S:
            self._streak += 1
            self._since_forgiven += 1
            if not self._on_loop and self._streak >= PROBE << self._relapses:
                self._on_loop = True
            return
        self._streak = 0
        if not self._on_loop:
            return
        held_up = cpu is not None and cpu < FAST_S and elapsed < STALL_S
        if held_up and self._since_forgiven >= PROBE:
            self._since_forgiven = 0
            return
        self._on_loop = False
        self._relapses = min(self._relapses + 1, _MAX_RELAPSES)

    def reset(self) -> None:
        """A new model (version): it proves itself again, from the thread."""
        self._streak = self._relapses = 0
        self._since_forgiven = PROBE
        self._on_loop = self.fixed is True
