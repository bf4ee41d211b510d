"""A comparison window: the last N requests of a deployment, or a span of time.

``Window(last=1000)`` or ``Window(since=t0, until=t1)`` (``[since, until)``, wall-clock
seconds; either bound may be left open). The window selects *requests* by the time they
were received; their scores and labels follow from the request ids.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..archive.base import Archive, RequestRecord
from ..errors import InputError

__all__ = ["Window", "pages"]

# First look-back of a "last N" search. It grows fourfold each time it finds too few
# requests, so a busy deployment is answered with a handful of small queries and an idle
# one with a few more, never by reading the whole archive.
_FIRST_LOOKBACK_S = 60.0


@dataclass(frozen=True, slots=True)
class Window:
    """The last ``last`` requests, or the requests received in ``[since, until)``."""

    last: int | None = None
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if self.last is not None:
            if isinstance(self.last, bool) or not isinstance(self.last, int) or self.last < 1:
                raise InputError(f"expected an integer >= 1, got {self.last!r}", loc="last")
            if self.since is not None or self.until is not None:
                raise InputError("give either 'last' or 'since'/'until', not both", loc="last")
            return
        if self.since is None and self.until is None:
            raise InputError("give 'last' (a number of requests) or 'since'/'until'", loc="window")
        for loc, value in (("since", self.since), ("until", self.until)):
            if value is not None and not math.isfinite(value):
                raise InputError(f"expected a finite time in seconds, got {value!r}", loc=loc)
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InputError(
                f"'since' ({self.since}) must be before 'until' ({self.until})", "since"
            )

    def to_dict(self) -> dict[str, Any]:
        if self.last is not None:
            return {"last": self.last}
        return {"since": self.since, "until": self.until}

    def requests(
        self,
        archive: Archive,
        deployment: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> list[RequestRecord]:
        """The window's archived requests, oldest first."""
        if self.last is None:
            return archive.requests(deployment, since=self.since, until=self.until)
        return _last(archive, deployment, self.last, clock())


def _last(archive: Archive, deployment: str, n: int, now: float) -> list[RequestRecord]:
    # The archive answers oldest first, so "the newest n" is found by looking back from now
    # over longer and longer spans until one holds n requests or reaches the oldest.
    oldest = archive.requests(deployment, limit=1)
    if not oldest:
        return []
    first = oldest[0].received_at
    lookback = _FIRST_LOOKBACK_S
    while True:
        since = now - lookback
        if since <= first:
            return archive.requests(deployment)[-n:]
        found = archive.requests(deployment, since=since)
        if len(found) >= n:
            return found[-n:]
        lookback *= 4


def pages(
    archive: Archive,
    deployment: str,
    since: float | None,
    until: float | None,
    size: int = 10_000,
) -> Iterator[list[RequestRecord]]:
    """The requests received in ``[since, until)``, oldest first, at most ``size`` at a time.

    For batch jobs over long spans: memory stays bounded by ``size``. A page ends just before
    its last timestamp, and the requests sharing that timestamp are read on their own, so
    requests received in the same instant are neither skipped nor repeated.
    """
    cursor = since
    while True:
        page = archive.requests(deployment, since=cursor, until=until, limit=size)
        if len(page) < size:
            if page:
                yield page
            return
        edge = page[-1].received_at
        before = [r for r in page if r.received_at < edge]
        if before:
            yield before
        after = math.nextafter(edge, math.inf)
        if until is not None:
            after = min(after, until)
        yield archive.requests(deployment, since=edge, until=after)
        if until is not None and after >= until:
            return
        cursor = after
