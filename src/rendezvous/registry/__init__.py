"""The model registry: versioned artifacts with metadata and aliases, and change events.

```python
registry = FileRegistry("registry/")
info = registry.publish("fraud", "model.joblib", trigger="initial")
registry.set_alias("fraud", "champion", info.version)
model = load_version(registry, "fraud", "champion", cfg, deployment)
```
"""

from __future__ import annotations

from .base import CHAMPION, Artifact, Registry
from .errors import ArtifactMismatch, CorruptRegistry, RegistryError
from .filesystem import FileRegistry
from .metadata import TrainingWindow, Trigger, Validation, VersionInfo
from .notifications import Event, EventKind, Listener, LocalNotifier, Notifier
from .serving import load_version
from .watcher import Watcher

__all__ = [
    "CHAMPION",
    "Artifact",
    "ArtifactMismatch",
    "CorruptRegistry",
    "Event",
    "EventKind",
    "FileRegistry",
    "Listener",
    "LocalNotifier",
    "Notifier",
    "Registry",
    "RegistryError",
    "TrainingWindow",
    "Trigger",
    "Validation",
    "VersionInfo",
    "Watcher",
    "load_version",
]
