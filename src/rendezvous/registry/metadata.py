"""What the registry records about a version: where it came from and why it was published.

Every version carries its lineage (the parent it was retrained from, the window of labelled
examples it learnt on, what triggered the retraining) and the evidence that it deserved to be
published (the candidate's and the serving version's validation scores, and the decision), so
an operator can answer "why is this model serving?" from the registry alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from .errors import CorruptRegistry, RegistryError

__all__ = [
    "RESERVED_REFS",
    "TrainingWindow",
    "Trigger",
    "Validation",
    "VersionInfo",
    "check_alias",
    "check_filename",
    "check_model",
    "dump_json",
    "is_version",
    "load_json",
    "valid_name",
]

# The same rule as a deployment's model names: the name becomes a directory.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_VERSION = re.compile(r"^[1-9][0-9]*$")
# ``latest`` always means the newest version, so no alias may take that name.
RESERVED_REFS = frozenset({"latest"})


class Trigger(StrEnum):
    """Why a version was trained: the learner's schedule, drift, a person, or the start."""

    MIN_SAMPLES = "min_samples"
    INTERVAL = "interval"
    DRIFT = "drift"
    MANUAL = "manual"
    INITIAL = "initial"


@dataclass(frozen=True, slots=True)
class TrainingWindow:
    """The labelled examples a version learnt from: times are seconds since the epoch."""

    n_examples: int
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True, slots=True)
class Validation:
    """The candidate's and the serving version's scores on the same data, and the verdict."""

    decision: str
    candidate: dict[str, float] = field(default_factory=dict)
    serving: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One published version: ``metadata.json`` of ``<root>/<model>/<version>/``."""

    model: str
    version: str
    created: float
    artifact: str  # the artifact's file name inside the version
    sha256: str
    size: int
    trigger: Trigger = Trigger.MANUAL
    parent: str | None = None
    training: TrainingWindow | None = None
    validation: Validation | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.version)


_ADAPTER = TypeAdapter(VersionInfo)


def dump_json(info: VersionInfo) -> bytes:
    return orjson.dumps(_ADAPTER.dump_python(info, mode="json"), option=orjson.OPT_INDENT_2)


def load_json(path: Path) -> VersionInfo:
    """Read ``metadata.json``; anything unreadable is a :class:`CorruptRegistry` naming it."""
    try:
        return _ADAPTER.validate_json(path.read_bytes())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise CorruptRegistry(path, f"invalid version metadata ({problems})") from exc
    except OSError as exc:
        raise CorruptRegistry(path, f"cannot read version metadata ({exc.strerror})") from exc


def valid_name(name: str) -> bool:
    """Whether ``name`` can be a model, alias or file name: never a path outside its place."""
    return isinstance(name, str) and bool(_NAME.match(name))


def check_model(name: str) -> str:
    if not valid_name(name):
        raise RegistryError(
            f"invalid model name {name!r}: letters, digits, '_', '.', '-' (first a letter or "
            "digit, at most 128)"
        )
    return name


def check_alias(name: str) -> str:
    # A number would read as a version and 'latest' is taken: resolve must never guess.
    if not isinstance(name, str) or not _NAME.match(name) or name.isdigit():
        raise RegistryError(
            f"invalid alias {name!r}: letters, digits, '_', '.', '-', not only digits"
        )
    if name in RESERVED_REFS:
        raise RegistryError(f"invalid alias {name!r}: reserved, it always means the newest")
    return name


def check_filename(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name == "metadata.json":
        raise RegistryError(
            f"invalid artifact file name {name!r}: a plain file name such as 'model.joblib'"
        )
    return name


def is_version(ref: str) -> bool:
    return bool(_VERSION.match(ref))
