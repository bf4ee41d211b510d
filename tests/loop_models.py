"""Models that say where they computed: on the event loop's thread, or on another."""

from __future__ import annotations

import threading
import time

from rendezvous.inline import PROBE


def where(row: dict[str, float]) -> str:
    return "loop" if threading.current_thread() is threading.main_thread() else "thread"


def slow_where(row: dict[str, float]) -> str:
    time.sleep(0.002)  # over inline.FAST_S: never earns a place on the loop
    return where(row)


SLOW_FROM = PROBE + 2  # on the loop after PROBE fast calls, then two more fast ones


def blocks_later(row: dict[str, float]) -> str:
    if row["x"] >= SLOW_FROM:
        time.sleep(0.001)  # blocked, not computing: over FAST_S of wall, far under of CPU
    return where(row)


def burns_later(row: dict[str, float]) -> str:
    if row["x"] >= SLOW_FROM:
        start = time.thread_time()
        while time.thread_time() - start < 0.001:  # over FAST_S of the thread's own CPU
            pass
    return where(row)
