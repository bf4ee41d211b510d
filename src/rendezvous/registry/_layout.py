"""Where the filesystem registry keeps things, shared by the registry and its watcher.

```
<root>/.tmp/                    versions being written (renamed into place when complete)
<root>/<model>/.lock            serialises alias changes across threads and processes
<root>/<model>/aliases.json     aliases, their history and how each last moved
<root>/<model>/<version>/       metadata.json and the artifact file
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import TypeAdapter, ValidationError

from ._files import atomic_write
from .errors import CorruptRegistry
from .metadata import valid_name
from .notifications import EventKind

__all__ = ["METADATA", "AliasState", "Layout"]

METADATA = "metadata.json"
ALIASES = "aliases.json"


@dataclass(slots=True)
class AliasState:
    """The content of ``aliases.json``: ``history`` lists earlier targets, oldest first."""

    aliases: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)
    # How each alias last moved and how many times it has, so a watcher in another process
    # can tell a rollback apart, and see a move even when the alias came back to where it was.
    kinds: dict[str, EventKind] = field(default_factory=dict)
    moves: dict[str, int] = field(default_factory=dict)

    def move(self, alias: str, version: str, kind: EventKind) -> None:
        self.aliases[alias] = version
        self.kinds[alias] = kind
        self.moves[alias] = self.moves.get(alias, 0) + 1


_ALIAS_ADAPTER = TypeAdapter(AliasState)


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"

    def model_dir(self, model: str) -> Path:
        return self.root / model

    def version_dir(self, model: str, version: str | int) -> Path:
        return self.root / model / str(version)

    def metadata(self, model: str, version: str | int) -> Path:
        return self.version_dir(model, version) / METADATA

    def aliases_file(self, model: str) -> Path:
        return self.root / model / ALIASES

    def lock_file(self, model: str) -> Path:
        return self.root / model / ".lock"

    def model_dirs(self) -> list[str]:
        """Every model directory, including one whose first version is still being written."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())

    def version_numbers(self, model: str) -> list[int]:
        """Published versions, ascending: only complete versions ever carry a number name."""
        if not valid_name(model):  # e.g. '../x': nothing outside the root is ever a model
            return []
        try:
            entries = list(os.scandir(self.model_dir(model)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(int(e.name) for e in entries if e.name.isdigit() and e.is_dir())

    def read_aliases(self, model: str) -> AliasState:
        path = self.aliases_file(model)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return AliasState()
        except OSError as exc:
            raise CorruptRegistry(path, f"cannot read aliases ({exc.strerror})") from exc
        try:
            return _ALIAS_ADAPTER.validate_json(data)
        except ValidationError as exc:
            raise CorruptRegistry(
                path, f"invalid aliases file ({exc.error_count()} errors: {exc.errors()[0]['msg']})"
            ) from exc

    def write_aliases(self, model: str, state: AliasState) -> None:
        data = orjson.dumps(
            _ALIAS_ADAPTER.dump_python(state, mode="json"), option=orjson.OPT_INDENT_2
        )
        atomic_write(self.aliases_file(model), data)
