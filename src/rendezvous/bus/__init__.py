"""Bus backends, chosen by name or URL: ``memory`` (in-process) or ``redis://…``."""

from __future__ import annotations

from ..errors import BusError, MissingDependency
from .base import Bus, DropHandler, ScoreHandler
from .memory import MemoryBus

__all__ = ["Bus", "DropHandler", "MemoryBus", "ScoreHandler", "open_bus"]


def open_bus(url: str) -> Bus:
    """A bus for ``url``: ``memory`` or ``redis://host:port/db`` (``rediss://`` for TLS)."""
    if url == "memory":
        return MemoryBus()
    if url.startswith(("redis://", "rediss://")):
        try:
            from .redis import RedisBus  # lazy: redis is an optional extra
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] not in ("redis", "hiredis"):
                raise
            raise MissingDependency("redis", "redis", "the Redis bus") from exc
        return RedisBus(url)
    raise BusError(f"bus '{url}': expected 'memory' or a redis://host:port/db URL")
