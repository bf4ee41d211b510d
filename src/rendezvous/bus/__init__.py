"""Bus backends, chosen by name or URL: ``memory`` (in-process) or ``redis://…``."""

from __future__ import annotations

from ..errors import BusError
from .base import Bus, DropHandler, ScoreHandler
from .memory import MemoryBus

__all__ = ["Bus", "DropHandler", "MemoryBus", "ScoreHandler", "open_bus"]


def open_bus(url: str) -> Bus:
    """A bus for ``url``: ``memory`` or ``redis://host:port/db``."""
    if url == "memory":
        return MemoryBus()
    if url.startswith(("redis://", "rediss://")):
        raise BusError(
            f"bus '{url}': the Redis Streams backend is not available in this version; "
            "use bus: memory"
        )
    raise BusError(f"bus '{url}': expected 'memory' or a redis://host:port/db URL")
