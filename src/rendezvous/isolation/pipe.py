"""The pipes to a model process: frames out on its stdin, frames in from its stdout.

A subprocess protocol rather than asyncio's stream reader: one callback per read takes every
whole frame that arrived, where ``readexactly`` would cost two awaits a frame on the loop
that also answers users.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Mapping
from typing import cast

from .frames import HEADER, Outgoing, ToParent, decoder_to_parent, encode

__all__ = ["ChildPipe"]


class ChildPipe(asyncio.SubprocessProtocol):
    """One running ``python -m rendezvous.isolation``; frames go to ``on_frame``."""

    def __init__(self, on_frame: Callable[[ToParent], None]) -> None:
        self.on_frame = on_frame
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._decoder = decoder_to_parent()
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None

    @classmethod
    async def spawn(cls, on_frame: Callable[[ToParent], None], env: Mapping[str, str]) -> ChildPipe:
        loop = asyncio.get_running_loop()
        _, pipe = await loop.subprocess_exec(
            lambda: cls(on_frame),
            sys.executable, "-m", "rendezvous.isolation",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            env=dict(env),
        )  # fmt: skip
        return pipe

    # -- protocol callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.SubprocessTransport, transport)
        self._stdin = cast(asyncio.WriteTransport, self._transport.get_pipe_transport(0))

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self._buf
        buf += data
        at, size = 0, len(buf)
        while size - at >= 4:
            (length,) = HEADER.unpack_from(buf, at)
            end = at + 4 + length
            if end > size:
                break
            self.on_frame(self._decoder.decode(memoryview(buf)[at + 4 : end]))
            at = end
        del buf[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        # after the process exited *and* its pipes closed: every frame it wrote is in
        assert self._transport is not None
        code = self._transport.get_returncode()
        if not self.exited.done():
            self.exited.set_result(-1 if code is None else code)

    # -- what the host does with it -----------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._transport.get_pid() if self._transport is not None else None

    @property
    def alive(self) -> bool:
        return not self.exited.done()

    @property
    def unread(self) -> int:
        """Bytes written and not yet taken by the child."""
        return self._stdin.get_write_buffer_size() if self._stdin is not None else 0

    def send(self, frame: Outgoing) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(encode(frame))

    def close(self) -> None:
        """End of input: the child drains, flushes and exits."""
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.close()

    def kill(self) -> None:
        if self._transport is not None and self.alive:
            self._transport.kill()

    def dispose(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def __repr__(self) -> str:
        return f"<ChildPipe pid={self.pid}>"
