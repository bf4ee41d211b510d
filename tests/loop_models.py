"""Models that say where they computed: on the event loop's thread, or on another.

What a call costs is not measured here but declared: each model advances ``CLOCK`` by the
wall and CPU time its call stands for (and says whether it waited for something), and tests
that let timing decide put ``CLOCK`` in place of the executor's clocks (fixture
``declared_time``). The inline policy then sees the same figures on any machine, however
busy.
"""

from __future__ import annotations

import threading
import time

from rendezvous.call_cost import Usage
from rendezvous.inline import FAST_S, PROBE


class Clock:
    """The executor's clocks, as far as the models below advance them; timestamps stay real."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.waits = 0

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu

    @staticmethod
    def time() -> float:
        return time.time()

    def usage(self) -> Usage:
        return Usage(self.wall, self.cpu, self.waits, 0.0)

    def take(self, wall: float, cpu: float, *, waited: bool = False) -> None:
        self.wall += wall
        self.cpu += cpu
        self.waits += waited


CLOCK = Clock()
QUICK = FAST_S / 10  # a linear model's call
SLOW = FAST_S * 2


def where(row: dict[str, float]) -> str:
    CLOCK.take(QUICK, QUICK)
    return "loop" if threading.current_thread() is threading.main_thread() else "thread"


def slow_where(row: dict[str, float]) -> str:
    CLOCK.take(SLOW * 2, 0.0, waited=True)  # over FAST_S every time: never on the loop
    return where(row)


def held_up_where(row: dict[str, float]) -> str:
    CLOCK.take(SLOW * 2, 0.0)  # slow by the wall clock, but the machine's doing: no CPU, no wait
    return where(row)


SLOW_FROM = PROBE + 2  # on the loop after PROBE fast calls, then two more fast ones


def blocks_later(row: dict[str, float]) -> str:
    if row["x"] >= SLOW_FROM:
        CLOCK.take(SLOW, 0.0, waited=True)  # blocked, not computing: over FAST_S of wall
    return where(row)


def held_up_later(row: dict[str, float]) -> str:
    if row["x"] >= SLOW_FROM:
        CLOCK.take(SLOW, 0.0)  # neither computing nor waiting: the machine held it up
    return where(row)


def burns_later(row: dict[str, float]) -> str:
    if row["x"] >= SLOW_FROM:
        CLOCK.take(SLOW, SLOW)  # computing: over FAST_S of the thread's own CPU
    return where(row)
