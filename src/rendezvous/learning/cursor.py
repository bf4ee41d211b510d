"""A learner's durable progress, and the lock that keeps one learner per deployment.

Both live in the registry directory, beside the versions the learner publishes
(``<registry>/.learners/<deployment>.json`` and ``.lock``; the registry ignores dot-names).

The cursor says how far the learner has *observed* the archive's logs: labelled examples
up to ``examples_seq`` were scored for drift and live error, training requests up to
``events_seq`` were carried out. It is replaced atomically, so a learner killed at any
moment finds the old cursor or the new one. What a version learnt from is not the cursor's
business: each version's metadata says which examples it counted (``after_seq`` to
``last_seq``), and a restarted learner rebuilds its windows from the archive by seq.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from ..errors import RegistryError
from ..registry._files import atomic_write

__all__ = ["CursorFile", "LearnerLock", "Progress"]


@dataclass(frozen=True, slots=True)
class Progress:
    """``replay_from``: a restart replays the examples after this seq (up to
    ``examples_seq``) to rebuild its windows; older ones are in no window any more."""

    examples_seq: int = 0
    events_seq: int = 0
    replay_from: int = 0


class CursorFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Progress:
        try:
            data = orjson.loads(self.path.read_bytes())
            return Progress(
                int(data["examples_seq"]), int(data["events_seq"]), int(data["replay_from"])
            )
        except FileNotFoundError:
            return Progress()
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"{self.path}: unreadable learner cursor ({exc})") from exc

    def save(self, progress: Progress) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "examples_seq": progress.examples_seq,
            "events_seq": progress.events_seq,
            "replay_from": progress.replay_from,
        }
        atomic_write(self.path, orjson.dumps(data))


class LearnerLock:
    """An exclusive ``flock`` held while a learner runs; the kernel drops it when the
    process dies, even by ``kill -9``, so a crashed learner never blocks its successor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+b")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().decode(errors="replace").strip() or "?"
            f.close()
            raise RegistryError(
                f"another learner (pid {holder}) runs this deployment: {self.path} is locked"
            ) from None
        f.truncate(0)
        f.write(str(os.getpid()).encode())
        f.flush()
        self._file = f

    def release(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()
