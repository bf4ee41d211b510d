"""Pipelines on the request path: commands packed and replies parsed by hiredis.

redis-py's asyncio pipeline spends ~200 us of client CPU on a round trip of five small
commands (encoding each argument, a callback and hooks per command, a coroutine per reply);
the same bytes packed with ``hiredis.pack_command`` and parsed with ``hiredis.Reader`` cost
~30 us. A request crosses Redis about twice on each side of the bus, so this was the
largest part of the Redis bus's client cost. Only the protocol's framing is done here, by
hiredis (which redis-py uses too when installed): redis-py still opens every connection
(URL options, AUTH, SELECT, TLS, client name) and runs every command off the request path.

A wire whose command failed or was cancelled half-way is closed, never reused: its next
replies would answer the wrong commands. Deadlines cost no timer per pipeline (an
``asyncio.timeout`` costs ~8 us on uvloop here, as much as the rest of a pipeline's
client work): a watchdog task looks at the busy wires every ``TICK_S`` and aborts the
connection of any past its deadline, and the command fails with :class:`TimeoutError`. No
task is cancelled, so no cancellation can be lost either.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from ..errors import BusError

__all__ = ["Command", "Wires"]

Command = tuple[bytes | str | int | float, ...]

_READ_SIZE = 65_536
TICK_S = 0.05  # how late a deadline may be noticed
# hiredis' stub types the command as a 1-tuple; it takes any length
_pack = cast(Callable[[Command], bytes], hiredis.pack_command)


def _reply_error(text: str) -> Exception:
    # as redis-py maps them, for the errors this bus tells apart: a Redis still loading its
    # data after a restart is not up yet; anything else is the command's own failure
    if text.startswith("LOADING"):
        return BusyLoadingError(text)
    return ResponseError(text)


class Wire:
    """One connection that runs pipelines: every command written at once, replies in order."""

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        # redis-py connected and authenticated these streams; it exposes no public handle
        reader = getattr(connection, "_reader", None)
        writer = getattr(connection, "_writer", None)
        if not isinstance(reader, asyncio.StreamReader) or not isinstance(
            writer, asyncio.StreamWriter
        ):
            raise BusError(
                "this redis-py version hides its connection streams; the Redis bus was "
                "tested with redis-py 5 to 8"
            )
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader(replyError=_reply_error)
        self.deadline = math.inf  # loop time by which the pipeline in flight must be answered
        self._expired = False

    @property
    def alive(self) -> bool:
        """False once the server closed the connection (it restarted, or dropped us)."""
        return not self._reader.at_eof() and not self._writer.is_closing()

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Run ``commands``; their replies, an error reply as its exception (not raised)."""
        try:
            return await self._run(commands)
        except (OSError, RedisConnectionError) as exc:
            if self._expired:
                raise TimeoutError("no reply from Redis by the deadline") from exc
            raise

    def expire(self) -> None:
        """Past its deadline: abort the connection, failing the command in flight."""
        self._expired = True
        self._writer.transport.abort()

    async def _run(self, commands: Sequence[Command]) -> list[Any]:
        self._writer.write(b"".join(map(_pack, commands)))
        await self._writer.drain()
        replies: list[Any] = []
        parser, wanted = self._parser, len(commands)
        while len(replies) < wanted:
            reply = parser.gets()
            if reply is False:  # hiredis' "not complete yet"; None is a nil reply
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    raise RedisConnectionError("Connection closed by server.")
                parser.feed(data)
            else:
                replies.append(reply)
        return replies

    def close(self) -> None:
        """Close without waiting (safe while a cancellation unwinds)."""
        self._writer.close()
        # redis-py's own bookkeeping, so it neither reuses nor warns about the connection
        self.connection._reader = self.connection._writer = None


class Wires:
    """The wires of one client: an idle one is reused, a new one opened when none is."""

    def __init__(self, client: Redis) -> None:
        self._pool = client.connection_pool
        self._idle: list[Wire] = []
        self._busy: set[Wire] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._closed = False

    async def execute(self, commands: Sequence[Command], timeout: float) -> list[Any]:
        """Run ``commands`` on one wire; :class:`TimeoutError` if they take over ``timeout``
        s (connecting included)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wire = self._take()
        while True:
            reused = wire is not None
            if wire is None:
                async with asyncio.timeout_at(deadline):  # rare: a new connection
                    wire = await self._open()
            wire.deadline = deadline
            busy = wire
            self._busy.add(busy)
            if self._watchdog is None:
                self._watchdog = loop.create_task(self._watch(), name="redis-wires-watchdog")
            try:
                replies = await wire.execute(commands)
                break
            except BaseException as exc:
                wire.close()
                if not reused or not isinstance(exc, (RedisConnectionError, ConnectionError)):
                    raise
                # an idle connection can die unnoticed (Redis restarted since): the others
                # likely did too; one more try on a new one is what redis-py's retry does
                self.clear()
                wire = None
            finally:
                self._busy.discard(busy)
        if self._closed:
            wire.close()
        else:
            self._idle.append(wire)
        return replies

    def clear(self) -> None:
        """Close the idle wires (the connection was lost: they are likely dead)."""
        idle, self._idle = self._idle, []
        for wire in idle:
            wire.close()

    def close(self) -> None:
        """Close the idle wires, and the busy ones as they come back."""
        self._closed = True
        self.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def _watch(self) -> None:
        """Expire the busy wires past their deadline; stop once none is busy."""
        loop = asyncio.get_running_loop()
        try:
            while self._busy:
                await asyncio.sleep(TICK_S)
                now = loop.time()
                for wire in [w for w in self._busy if w.deadline <= now]:
                    wire.expire()
        finally:
            self._watchdog = None

    def _take(self) -> Wire | None:
        while self._idle:
            wire = self._idle.pop()
            if wire.alive:
                return wire
            wire.close()
        return None

    async def _open(self) -> Wire:
        connection = self._pool.connection_class(**self._pool.connection_kwargs)
        await connection.connect()  # type: ignore[no-untyped-call]  # unannotated upstream
        try:
            return Wire(connection)
        except BusError:
            await connection.disconnect()
            raise
