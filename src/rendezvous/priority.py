"""CPU priority: lower for work nobody waits on (the archive writer, the model process),
a longer time slice for the event loop that answers users.

On Linux each thread has its own scheduling policy and niceness, and new threads inherit
their creator's, so these calls lower the calling thread (and what it starts later), never
the event loop that answers users. Elsewhere, or where the container forbids it, they
change nothing and say so.
"""

from __future__ import annotations

import ctypes
import functools
import os
import struct
import sys
from collections.abc import Callable

__all__ = ["lower_priority", "request_slice", "time_slice"]

# struct sched_attr (linux/sched/types.h, first version: 48 bytes) and its system calls
_SCHED_ATTR = struct.Struct("IIQiIQQQ")
_SCHED_FLAG_RESET_ON_FORK = 0x01
_NR_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
_NR_SCHED_GETATTR = {"x86_64": 315, "aarch64": 275}


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


def request_slice(seconds: float) -> bool:
    """Ask for a time slice of ``seconds`` for the calling thread; whether it took effect.

    Linux's fair scheduler (EEVDF, 6.12 and later) lets a thread ask for the length of the
    slice it runs before the scheduler looks again at who else wants the CPU
    (``sched_attr.sched_runtime``, 0.1-100 ms; the default was 1.4 ms here). Why the event
    loop asks for a longer one: when its slice ends while another thread waits for the
    CPU, the scheduler may hand the CPU over for a whole slice, even to an idle-priority
    process such as the model process. Threads and processes it starts later get the
    default slice (``SCHED_FLAG_RESET_ON_FORK``): only this thread keeps the CPU longer.
    No privilege is needed; elsewhere, or for a real-time thread, it does nothing.
    """
    call = _syscall(_NR_SCHED_SETATTR)
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    if call is None or policy not in (os.SCHED_OTHER, getattr(os, "SCHED_BATCH", None)):
        return False
    runtime = round(seconds * 1e9)
    nice = os.getpriority(os.PRIO_PROCESS, 0)  # the calling thread's, on Linux: kept
    attr = _SCHED_ATTR.pack(
        _SCHED_ATTR.size, policy, _SCHED_FLAG_RESET_ON_FORK, nice, 0, runtime, 0, 0
    )
    if call(0, ctypes.create_string_buffer(attr, len(attr)), 0) != 0:
        return False
    return time_slice() == runtime / 1e9  # kernels before custom slices ignore the value


def time_slice() -> float | None:
    """The calling thread's time slice (seconds), None where it cannot be known."""
    call = _syscall(_NR_SCHED_GETATTR)
    if call is None:
        return None
    buf = ctypes.create_string_buffer(_SCHED_ATTR.size)
    if call(0, buf, _SCHED_ATTR.size, 0) != 0:
        return None
    runtime: int = _SCHED_ATTR.unpack(buf.raw)[5]
    return runtime / 1e9


def _syscall(numbers: dict[str, int]) -> Callable[..., int] | None:
    """``syscall(number, …)`` for this machine's architecture, or None."""
    number = numbers.get(os.uname().machine) if sys.platform.startswith("linux") else None
    if number is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    return functools.partial(libc.syscall, number)
