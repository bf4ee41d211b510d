"""The filesystem registry: versions as directories, published by an atomic rename.

Layout (see ``_layout``): ``<root>/<model>/<version>/`` holds ``metadata.json`` and the
artifact; ``<root>/<model>/aliases.json`` the aliases. Several processes may share a root on
one host or a shared filesystem:

* a version is written completely in ``<root>/.tmp`` and renamed to its number, so readers
  see all of it or none of it;
* the number is allocated by the rename itself: renaming onto a version that exists fails,
  and the publisher retries with the next number. No lock, no gaps, no duplicates;
* ``aliases.json`` is read, changed and replaced under a per-model file lock.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import orjson

from ..errors import NotFound
from ._files import file_lock, sha256_file, write_synced
from ._layout import AliasState, Layout
from .base import CHAMPION, Artifact, Registry
from .errors import ArtifactMismatch, CorruptRegistry, RegistryError
from .metadata import (
    TrainingWindow,
    Trigger,
    Validation,
    VersionInfo,
    check_alias,
    check_filename,
    check_model,
    dump_json,
    is_version,
    load_json,
    valid_name,
)
from .notifications import Event, EventKind, Notifier

__all__ = ["FileRegistry"]

# Enough to undo a run of bad releases; bounded so a file rewritten on every promotion
# does not grow for ever.
HISTORY_LIMIT = 100


class FileRegistry(Registry):
    """A registry in the directory ``root`` (created if missing).

    ``clock`` stamps ``created`` (seconds since the epoch); ``notifier`` carries events to
    subscribers (in-process by default).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        super().__init__(notifier=notifier)
        self.root = Path(root)
        self._layout = Layout(self.root)
        self._clock = clock
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileRegistry({str(self.root)!r})"

    def models(self) -> list[str]:
        return [m for m in self._layout.model_dirs() if self._layout.version_numbers(m)]

    # -- versions -------------------------------------------------------------------------

    def publish(
        self,
        model: str,
        artifact: Artifact,
        *,
        filename: str | None = None,
        trigger: Trigger | str = Trigger.MANUAL,
        parent: str | int | None = None,
        training: TrainingWindow | None = None,
        validation: Validation | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> VersionInfo:
        check_model(model)
        name = check_filename(_filename(artifact, filename))
        cause = _trigger(trigger)
        parent_version = None if parent is None else self.resolve(model, parent)
        extras = _extras(extra)
        self._layout.tmp.mkdir(exist_ok=True)  # cheap, and survives someone clearing it
        staging = Path(tempfile.mkdtemp(dir=self._layout.tmp, prefix=f"{model}-"))
        try:
            _write_artifact(artifact, staging / name)
            sha256, size = sha256_file(staging / name, sync=True)
            self._layout.model_dir(model).mkdir(exist_ok=True)
            created = self._clock()
            while True:
                numbers = self._layout.version_numbers(model)
                version = str(numbers[-1] + 1 if numbers else 1)
                info = VersionInfo(
                    model=model,
                    version=version,
                    created=created,
                    artifact=name,
                    sha256=sha256,
                    size=size,
                    trigger=cause,
                    parent=parent_version,
                    training=training,
                    validation=validation,
                    extra=extras,
                )
                write_synced(staging / "metadata.json", dump_json(info))
                if _claim(staging, self._layout.version_dir(model, version)):
                    break
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._notify(Event(model, info.version, EventKind.PUBLISHED))
        return info

    def versions(self, model: str) -> list[VersionInfo]:
        numbers = self._layout.version_numbers(model)
        if not numbers:
            raise self._unknown_model(model)
        return [self._read(model, str(n)) for n in numbers]

    def get(self, model: str, version: str | int) -> VersionInfo:
        version = str(version)
        if not (valid_name(model) and is_version(version)):
            raise self._unknown_version(model, version)
        if not self._layout.metadata(model, version).is_file():
            raise self._unknown_version(model, version)
        return self._read(model, version)

    def resolve(self, model: str, ref: str | int) -> str:
        if str(ref) == "latest":  # the listing suffices: no metadata to read
            numbers = self._layout.version_numbers(model)
            if not numbers:
                raise self._unknown_model(model)
            return str(numbers[-1])
        return super().resolve(model, ref)

    def load_artifact(self, model: str, version: str | int) -> Path:
        info = self.get(model, version)
        path = self._layout.version_dir(model, info.version) / info.artifact
        try:
            actual, _ = sha256_file(path)
        except OSError as exc:
            raise CorruptRegistry(path, f"cannot read the artifact ({exc.strerror})") from exc
        if actual != info.sha256:
            raise ArtifactMismatch(path, info.sha256, actual)
        return path

    # -- aliases --------------------------------------------------------------------------

    def aliases(self, model: str) -> dict[str, str]:
        if not self._layout.version_numbers(model):
            raise self._unknown_model(model)
        return dict(self._layout.read_aliases(model).aliases)

    def set_alias(self, model: str, alias: str, version: str | int) -> None:
        check_alias(alias)
        with self._locked(model):
            target = self.resolve(model, version)
            state = self._layout.read_aliases(model)
            _move(state, alias, target, EventKind.ALIAS)
            self._layout.write_aliases(model, state)
        self._notify(Event(model, target, EventKind.ALIAS, alias))

    def rollback(self, model: str, to: str | int | None = None) -> str:
        with self._locked(model):
            state = self._layout.read_aliases(model)
            current = state.aliases.get(CHAMPION)
            if current is None:
                raise NotFound(f"model '{model}' has no champion to roll back")
            history = state.history.setdefault(CHAMPION, [])
            if to is None:
                while history and history[-1] == current:
                    history.pop()
                if not history:
                    raise NotFound(
                        f"model '{model}' has no earlier champion to roll back to (champion "
                        f"is version {current}); name a version with rollback(model, to=...)"
                    )
                target = history.pop()
            else:
                target = self.resolve(model, to)
                if target in history:  # retrace: forget the champions rolled back over
                    del history[_last_index(history, target) :]
            state.move(CHAMPION, target, EventKind.ROLLBACK)
            self._layout.write_aliases(model, state)
        self._notify(Event(model, target, EventKind.ROLLBACK, CHAMPION))
        return target

    # -- helpers --------------------------------------------------------------------------

    def _locked(self, model: str) -> AbstractContextManager[None]:
        if not self._layout.version_numbers(check_model(model)):
            raise self._unknown_model(model)
        return file_lock(self._layout.lock_file(model))

    def _read(self, model: str, version: str) -> VersionInfo:
        path = self._layout.metadata(model, version)
        info = load_json(path)
        if (info.model, info.version) != (model, version):
            raise CorruptRegistry(
                path, f"describes {info.model} version {info.version}, not {model} {version}"
            )
        if not valid_name(info.artifact):  # a path there could point anywhere on the host
            raise CorruptRegistry(path, f"invalid artifact file name {info.artifact!r}")
        return info

    def _unknown_model(self, model: str) -> NotFound:
        known = ", ".join(self.models()) or "none"
        return NotFound(f"unknown model '{model}' in registry {self.root} (models: {known})")

    def _unknown_version(self, model: str, version: str) -> NotFound:
        numbers = self._layout.version_numbers(model)
        if not numbers:
            return self._unknown_model(model)
        return NotFound(
            f"model '{model}' has no version '{version}' (versions: {_span(numbers)}); "
            "look aliases up with resolve()"
        )


def _claim(staging: Path, target: Path) -> bool:
    """Rename the complete version into place; False if another publisher took the number."""
    try:
        os.rename(staging, target)
    except OSError as exc:
        # A directory cannot be renamed onto a non-empty one: EEXIST or ENOTEMPTY by platform.
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True


def _move(state: AliasState, alias: str, target: str, kind: EventKind) -> None:
    old = state.aliases.get(alias)
    if old is not None and old != target:
        history = state.history.setdefault(alias, [])
        history.append(old)
        del history[:-HISTORY_LIMIT]
    state.move(alias, target, kind)


def _last_index(items: list[str], value: str) -> int:
    return len(items) - 1 - items[::-1].index(value)


def _filename(artifact: Artifact, filename: str | None) -> str:
    if filename is not None:
        return filename
    if isinstance(artifact, str | os.PathLike):
        return Path(artifact).name
    raise RegistryError("publish needs filename= for an artifact given as bytes or a writer")


def _write_artifact(artifact: Artifact, dest: Path) -> None:
    if isinstance(artifact, bytes):
        dest.write_bytes(artifact)
    elif isinstance(artifact, str | os.PathLike):
        source = Path(artifact)
        if not source.is_file():
            raise RegistryError(f"artifact file not found: {source}")
        shutil.copyfile(source, dest)
    else:
        artifact(dest)
        if not dest.is_file():
            raise RegistryError(f"the artifact writer {artifact!r} did not write {dest.name}")


def _trigger(value: Trigger | str) -> Trigger:
    try:
        return Trigger(value)
    except ValueError:
        allowed = ", ".join(t.value for t in Trigger)
        raise RegistryError(f"invalid trigger {value!r}: expected one of {allowed}") from None


def _extras(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if extra is None:
        return {}
    try:
        # Round-tripped: what get() returns later is exactly what was stored.
        data: dict[str, Any] = orjson.loads(orjson.dumps(dict(extra)))
    except TypeError as exc:
        raise RegistryError(f"publish extra= must be JSON-serialisable: {exc}") from exc
    return data


def _span(numbers: list[int]) -> str:
    if len(numbers) > 10 and numbers[-1] - numbers[0] + 1 == len(numbers):
        return f"{numbers[0]}…{numbers[-1]}"
    return ", ".join(map(str, numbers))
