"""The Bus: an input stream every model reads in full, and scores flowing back.

Semantics every backend keeps (the conformance suite in ``tests/bus`` checks them):

* ``publish`` puts a request on its deployment's input stream (``publish_nowait`` too,
  reporting a failure to a callback instead of waiting). Every *group* joined to the
  deployment receives every request published after it joined; the consumers of one
  group (replicas of one model) share that group's requests, each delivered to one of them.
* A group's backlog is bounded (``capacity``). When a slow group falls behind, its oldest
  requests are dropped and reported to ``on_drop``, never queued without bound, so a lagging
  shadow cannot hold memory or time that the champion needs.
* ``receive`` returns what is waiting (up to ``max_items``) as soon as anything is there, or
  an empty list after ``timeout`` seconds. ``ack`` confirms a batch once its scores are out;
  ``complete`` does both, in that order.
* ``publish_scores`` delivers scores to the handler subscribed for their ``reply_to`` (the
  collector of the API process that waits) and to every handler subscribed to all scores
  (the archive), or to the deployments such a subscriber names.
* Drops are reported at the latest when a consumer of the group next takes work (at
  publish time for the memory bus).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence

from ..errors import BusError
from ..messages import Request, Score

__all__ = ["Bus", "DropHandler", "FailureHandler", "ScoreHandler"]

ScoreHandler = Callable[[Sequence[Score]], None]
DropHandler = Callable[[Request], None]
FailureHandler = Callable[[BusError], None]

_publishing: set[asyncio.Task[None]] = set()  # publish_nowait's tasks, held until done


class Bus(ABC):
    """Base class of bus backends. Use as ``async with bus:`` or ``start()``/``stop()``."""

    url: str = ""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect. Idempotent."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Disconnect. Idempotent."""

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ready(self) -> bool:
        """Whether the bus can carry traffic right now (reported by ``/v2/health/ready``)."""
        return True

    @abstractmethod
    async def join(
        self,
        deployment: str,
        group: str,
        *,
        capacity: int = 1000,
        on_drop: DropHandler | None = None,
    ) -> None:
        """Make ``group`` receive every request published to ``deployment`` from now on."""

    @abstractmethod
    async def publish(self, request: Request) -> None:
        """Put one request on its deployment's input stream."""

    def publish_nowait(self, request: Request, on_failure: FailureHandler) -> None:
        """Publish without waiting for the bus to confirm: ``on_failure`` is called on the
        event loop if the request turns out undeliverable. Raises :class:`BusError` at once
        when the bus knows it cannot carry traffic. This default runs :meth:`publish` in a
        task; a backend that batches its writes does better."""

        async def publish() -> None:
            try:
                await self.publish(request)
            except Exception as exc:  # the contract says BusError; a callback must hear of any
                on_failure(exc if isinstance(exc, BusError) else BusError(str(exc)))

        task = asyncio.get_running_loop().create_task(publish())
        _publishing.add(task)
        task.add_done_callback(_publishing.discard)

    @abstractmethod
    async def receive(
        self,
        deployment: str,
        group: str,
        consumer: str,
        *,
        max_items: int,
        timeout: float,
    ) -> list[Request]:
        """Take up to ``max_items`` waiting requests of ``group``; wait up to ``timeout`` s."""

    async def ack(  # noqa: B027 - in-memory delivery needs no acknowledgement
        self, deployment: str, group: str, requests: Sequence[Request]
    ) -> None:
        """Confirm that ``requests`` were handled and their scores published."""

    async def complete(
        self, deployment: str, group: str, requests: Sequence[Request], scores: Sequence[Score]
    ) -> None:
        """An executor's end of a batch: publish its ``scores``, then acknowledge
        ``requests``; never the acknowledgement without the scores. A backend may return
        before either reaches its server (Redis sends both with the next read); a failure
        then leaves the requests unacknowledged, for redelivery."""
        await self.publish_scores(scores)
        await self.ack(deployment, group, requests)

    @abstractmethod
    async def publish_scores(self, scores: Sequence[Score]) -> None:
        """Send scores to their ``reply_to`` collector and to every all-scores subscriber."""

    @abstractmethod
    def subscribe(
        self,
        handler: ScoreHandler,
        *,
        reply_to: str | None,
        deployments: Collection[str] | None = None,
    ) -> None:
        """Call ``handler`` with scores for ``reply_to``; or, with ``reply_to=None``, with
        every score of ``deployments`` (every deployment on the bus when None).

        An archive names its deployments: over a shared bus, a subscriber to everything
        would also take scores that another process's archive is meant to store.
        """

    def backlog(self, deployment: str, group: str) -> int:
        """Requests waiting for ``group`` (0 where the backend cannot tell cheaply)."""
        return 0
