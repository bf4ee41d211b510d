"""CPU priority for work nobody waits on: the archive writer, the model process.

On Linux each thread has its own scheduling policy and niceness, and new threads inherit
their creator's, so these calls lower the calling thread (and what it starts later), never
the event loop that answers users. Elsewhere, or where the container forbids it, they
change nothing and say so.
"""

from __future__ import annotations

import os

__all__ = ["lower_priority"]


def lower_priority(priority: str) -> str:
    """Lower the calling thread's CPU priority; returns what it got.

    ``idle`` asks for ``SCHED_IDLE`` (run only when no normal thread wants the CPU) and
    falls back to niceness 19; ``nice:<n>`` adds ``n`` to the niceness. Returns ``idle``,
    ``nice:<n>`` (the resulting niceness) or ``normal``.
    """
    if priority == "idle":
        policy = getattr(os, "SCHED_IDLE", None)
        if policy is not None:
            try:
                os.sched_setscheduler(0, policy, os.sched_param(0))
                return "idle"
            except OSError:
                pass  # not allowed here: the nicest niceness instead
        priority = "nice:19"
    if priority.startswith("nice:"):
        try:
            return f"nice:{os.nice(int(priority.removeprefix('nice:')))}"
        except (OSError, AttributeError, ValueError):
            return "normal"
    return "normal"
