"""The registry's errors live in the one exception tree, :mod:`rendezvous.errors`."""

from __future__ import annotations

from ..errors import ArtifactMismatch, CorruptRegistry, RegistryError

__all__ = ["ArtifactMismatch", "CorruptRegistry", "RegistryError"]
