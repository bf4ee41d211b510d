"""The one exception tree of rendezvous-ml.

Every error a user can meet derives from :class:`RendezvousError`; backend errors are
translated at the boundary (``raise BusError(...) from exc``) so callers never need to
know which library sat underneath.

```
RendezvousError
├── ConfigError                 a deployment file or a configuration is invalid (every problem)
├── InputError                  a request's input does not fit the deployment's schema  → 422
│   ├── MalformedBody           a request body is not valid JSON                        → 400
│   └── PayloadTooLarge         a request body is over the size limit                   → 413
├── NotFound                    unknown deployment, model or version                    → 404
├── Conflict                    refused in the current state (nothing to roll back)     → 409
├── Overloaded                  the server cannot accept more work right now            → 503
├── ModelError                  a model failed to load or to predict
│   └── ModelLoadError          a model file or import string could not be loaded
├── BusError                    the message bus failed
├── ArchiveError                the archive failed                                      → 503
├── RegistryError               the model registry refused or failed an operation
│   ├── CorruptRegistry         a metadata or aliases file is unreadable (carries its path)
│   └── ArtifactMismatch        an artifact's bytes no longer match the sha256 published
└── MissingDependency           an optional extra is not installed (says which pip install)
```
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ArchiveError",
    "ArtifactMismatch",
    "BusError",
    "ConfigError",
    "Conflict",
    "CorruptRegistry",
    "InputError",
    "MalformedBody",
    "MissingDependency",
    "ModelError",
    "ModelLoadError",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "Problem",
    "RegistryError",
    "RendezvousError",
]


class RendezvousError(Exception):
    """Base class of every error raised by rendezvous-ml.

    ``status`` is the HTTP status the API answers with; ``exit_code`` the CLI's.
    """

    status: int = 500
    exit_code: int = 1


class Problem:
    """One problem at one place: ``loc`` is a field path such as ``models[2].source``."""

    __slots__ = ("loc", "msg")

    def __init__(self, loc: str, msg: str) -> None:
        self.loc = loc
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}" if self.loc else self.msg

    def __repr__(self) -> str:
        return f"Problem({self.loc!r}, {self.msg!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and (self.loc, self.msg) == (other.loc, other.msg)

    def __hash__(self) -> int:
        return hash((self.loc, self.msg))


class ConfigError(RendezvousError):
    """A deployment file or a configuration object is invalid.

    ``problems`` lists every problem, each with its field path.
    """

    exit_code = 2

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


class InputError(RendezvousError):
    """A request's input does not fit: ``loc`` names the field, the message what was expected."""

    status = 422

    def __init__(self, message: str, loc: str = "") -> None:
        self.loc = loc
        self.message = message
        super().__init__(f"{loc}: {message}" if loc else message)


class MalformedBody(InputError):
    status = 400


class PayloadTooLarge(InputError):
    status = 413


class NotFound(RendezvousError):
    status = 404


class Conflict(RendezvousError):
    """The request is well formed but the current state refuses it (nothing to roll back)."""

    status = 409


class Overloaded(RendezvousError):
    status = 503


class ModelError(RendezvousError):
    pass


class ModelLoadError(ModelError):
    exit_code = 2


class BusError(RendezvousError):
    pass


class ArchiveError(RendezvousError):
    status = 503  # the archive is a dependency: unavailable, not a bug in the request


class RegistryError(RendezvousError):
    """The registry refused or failed an operation (a bad name, an unusable artifact)."""


class CorruptRegistry(RegistryError):
    """A stored file cannot be read back: ``path`` says which, the message why."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{path}: {problem}")


class ArtifactMismatch(RegistryError):
    """An artifact changed after it was published: serving it would serve unknown bytes."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(f"{path}: sha256 is {actual}, but {expected} was published")


class MissingDependency(RendezvousError):
    """An optional part needs a package that is not installed."""

    exit_code = 2

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'rendezvous-ml[{extra}]'"
        )
