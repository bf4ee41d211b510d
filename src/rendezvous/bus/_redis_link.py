"""A Redis connection that knows whether it is up, and wins it back when it is not.

A supervisor task checks the link every ``health_interval``. Once a command fails for want
of a connection, the link is down: ``ready`` turns False, callers on the request path fail
fast instead of waiting on a dead socket, and the supervisor pings with exponential backoff
until Redis answers, runs ``on_reconnect`` and declares the link up again.

:meth:`Link.send` coalesces the writes of one event-loop turn into one pipeline: a hundred
concurrent requests cost one round trip and one connection, not a hundred of each. Writes
nobody waits for (:meth:`Link.post`) ride instead with the next read, if one comes first
(:meth:`Link.read`): an executor's scores, its acknowledgement and its next XREADGROUP
then take one round trip. These three run on lean wires (``_redis_wire``), at a sixth of
the CPU of redis-py's pipeline; the client (:attr:`Link.client`) serves everything else.

Every command has a deadline: ``command_timeout``, plus what a read may block. The wires
enforce theirs by aborting the connection (see ``_redis_wire``); commands through the client
run under :meth:`Link.deadline` (``asyncio.timeout``). Neither uses redis-py's
``socket_timeout``: on Python 3.11, redis-py enforces that timeout with ``asyncio.wait_for``,
which swallows a cancellation arriving as a command completes (CPython gh-86296), and a
reader task that cannot be cancelled never stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import BusError
from ._redis_wire import Command, Wires
from .base import FailureHandler

__all__ = ["FAILURES", "Link", "is_down"]

log = logging.getLogger("rendezvous.bus.redis")

# What a Redis command can raise: OSError covers the builtin TimeoutError of a deadline.
FAILURES = (RedisError, OSError)
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
_RECONNECT_MIN_S = 0.05
_RECONNECT_MAX_S = 2.0

Check = Callable[[Redis], Awaitable[None]]
# writes, and who learns how they went: the caller awaiting the future, else the handler
Out = tuple[list[Command], "asyncio.Future[None] | None", FailureHandler | None]


def is_down(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (not the command) failed."""
    # a full pool says this process is busy, not that Redis is away
    return isinstance(exc, _DOWN) and not isinstance(exc, MaxConnectionsError)


class Link:
    """One Redis client with a health state. ``open()`` connects; ``close()`` is idempotent.

    ``check`` runs every ``health_interval`` while up (at least a PING); ``on_reconnect``
    runs before the link is declared up again after an outage.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        command_timeout: float,
        health_interval: float,
        check: Check,
        on_reconnect: Check,
    ) -> None:
        self.url = url
        self.name = name  # the bus URL without its password, for messages
        self.command_timeout = command_timeout
        self.health_interval = health_interval
        self._check = check
        self._on_reconnect = on_reconnect
        self._client: Redis | None = None
        self._wires: Wires | None = None
        self._up = asyncio.Event()
        self._trouble = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._outbox: list[Out] = []
        self._flusher: asyncio.Task[None] | None = None
        self._kicked = False  # a flusher start is scheduled

    @property
    def client(self) -> Redis:
        if self._client is None:
            raise BusError(f"bus '{self.name}' is not started")
        return self._client

    @property
    def opened(self) -> bool:
        return self._client is not None

    @property
    def up(self) -> bool:
        return self._client is not None and self._up.is_set()

    async def open(self) -> None:
        if self._client is not None:
            return
        client = Redis.from_url(
            self.url,
            socket_timeout=None,  # see the module docstring: deadline() bounds commands
            protocol=2,  # RESP3 buys this bus nothing and costs ~10 us per command
            socket_connect_timeout=min(self.command_timeout, 1.0),
            # one quick retry on a fresh connection: after a Redis restart, pooled
            # connections are dead while the server is back; longer waits blow deadlines
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1, (RedisConnectionError,)),
        )
        try:
            async with self.deadline():
                await client.ping()
        except FAILURES as exc:
            await client.aclose()
            raise BusError(f"bus '{self.name}': cannot reach Redis: {exc}") from exc
        self._client = client
        self._wires = Wires(client)
        self._up.set()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"redis:{self.name}")

    async def close(self) -> None:
        if self._client is None:
            return
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._kick()  # posted writes not taken by a read yet still go out
        if self._flusher is not None:  # its callers are owed an answer
            await asyncio.wait([self._flusher])
        client, self._client = self._client, None
        self._up.clear()
        if self._wires is not None:
            self._wires.close()
            self._wires = None
        await client.aclose()

    async def send(self, commands: list[Command]) -> None:
        """Run the writes ``commands``, with whatever else came meanwhile."""
        future = asyncio.get_running_loop().create_future()
        self._outbox.append((commands, future, None))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name=f"redis-out:{self.name}")
        await future

    def post(self, commands: list[Command], on_failure: FailureHandler) -> None:
        """Like :meth:`send`, without waiting: it goes out with the next pipeline, and a
        failure goes to ``on_failure``."""
        self._outbox.append((commands, None, on_failure))
        if self._flusher is None and not self._kicked:
            # the flusher starts on the next loop turn, if a read has not taken the writes
            # by then: an executor posts its scores and reads at once, and a task started
            # for nothing costs it more than the rest of the post
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        self._kicked = False
        if self._outbox and self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name=f"redis-out:{self.name}")

    async def read(self, command: Command, block: float = 0.0) -> Any:
        """Run one read ``command`` (blocking up to ``block`` s) and return its reply, after
        the posted writes not sent yet, in the same pipeline. If a write someone awaits is
        waiting too, all are left to the flusher: that caller must not wait on a blocking
        read, and writes must leave in the order they came."""
        posted: list[Out] = []
        if all(future is None for _, future, _ in self._outbox):
            posted, self._outbox = self._outbox, []
        reply = (await self._execute(posted, command, block=block))[0]
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def _flush(self) -> None:
        try:
            while self._outbox:
                batch, self._outbox = self._outbox, []
                with contextlib.suppress(*FAILURES, BusError):  # each caller has its failure
                    await self._execute(batch)
        finally:
            self._flusher = None

    async def _execute(self, batch: list[Out], *read: Command, block: float = 0.0) -> list[Any]:
        """Run the writes of ``batch``, then ``read``, in one round trip; settle each write's
        future with its outcome and return the replies to ``read``."""
        commands = [command for writes, _, _ in batch for command in writes]
        commands += read
        try:
            if self._wires is None:
                raise BusError(f"bus '{self.name}' is not started")
            replies = await self._wires.execute(commands, self.command_timeout + block)
        except (*FAILURES, BusError) as exc:
            for _, future, on_failure in batch:
                self._settle(future, on_failure, exc)
            raise
        start = 0
        for writes, future, on_failure in batch:
            end = start + len(writes)
            failed = [r for r in replies[start:end] if isinstance(r, Exception)]
            start = end
            self._settle(future, on_failure, failed[0] if failed else None)
        return replies[start:]

    def _settle(
        self,
        future: asyncio.Future[None] | None,
        on_failure: FailureHandler | None,
        failure: Exception | None,
    ) -> None:
        if future is None:
            if failure is not None and on_failure is not None:
                try:
                    on_failure(self.error("writing", failure))
                except Exception:  # the other writes of the batch are owed their outcome
                    log.exception("bus '%s': a failure handler failed", self.name)
        elif future.done():  # its caller went away; the writes went out anyway
            return
        elif failure is None:
            future.set_result(None)
        else:  # one exception object per caller: tracebacks are not shared
            error = self.error("writing", failure)
            error.__cause__ = failure
            future.set_exception(error)

    def deadline(self, extra: float = 0.0) -> asyncio.Timeout:
        """Bound one command: ``command_timeout`` plus what it may block (``extra``)."""
        return asyncio.timeout(self.command_timeout + extra)

    def lost(self, exc: BaseException) -> None:
        """A command found the connection broken: go down and start winning it back."""
        if self._up.is_set():
            log.warning("bus '%s': connection lost (%s); reconnecting", self.name, exc)
        if self._wires is not None:
            self._wires.clear()
        self._up.clear()
        self._trouble.set()

    async def wait_up(self, timeout: float | None = None) -> bool:
        """Whether the link is up, waiting up to ``timeout`` s (None: as long as it takes)."""
        if self.up:
            return True
        if timeout is not None and timeout <= 0:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
        except TimeoutError:
            return False
        return self._client is not None

    def check_up(self) -> None:
        """Fail fast while down: waiting on a dead connection would blow every deadline."""
        if self._client is None:
            raise BusError(f"bus '{self.name}' is not started")
        if not self._up.is_set():
            raise BusError(f"bus '{self.name}': Redis is unreachable; reconnecting")

    def error(self, action: str, exc: BaseException) -> BusError:
        """The :class:`BusError` for a failed command, noting an outage on the way."""
        if is_down(exc):
            self.lost(exc)
        return BusError(f"bus '{self.name}': {action} failed: {exc or type(exc).__name__}")

    async def _supervise(self) -> None:
        delay = _RECONNECT_MIN_S
        while True:
            if self._up.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.health_interval):
                        await self._trouble.wait()
                self._trouble.clear()
                if not self._up.is_set():
                    continue
                try:
                    async with self.deadline():
                        await self._check(self.client)
                except FAILURES as exc:
                    if is_down(exc):
                        self.lost(exc)
                    else:
                        log.warning("bus '%s': health check failed: %s", self.name, exc)
                continue
            try:
                async with self.deadline():
                    await self.client.ping()
                    await self._on_reconnect(self.client)
            except FAILURES:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX_S)
                continue
            delay = _RECONNECT_MIN_S
            self._up.set()
            log.info("bus '%s': reconnected", self.name)
