"""Models that say where they computed: on the event loop's thread, or on another."""

from __future__ import annotations

import threading
import time


def where(row: dict[str, float]) -> str:
    return "loop" if threading.current_thread() is threading.main_thread() else "thread"


def slow_where(row: dict[str, float]) -> str:
    time.sleep(0.002)  # over inline.FAST_S: never earns a place on the loop
    return where(row)
