"""A model that says where it computed: on the event loop's thread, or on another."""

from __future__ import annotations

import threading


def where(row: dict[str, float]) -> str:
    return "loop" if threading.current_thread() is threading.main_thread() else "thread"
