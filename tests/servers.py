"""Real backing services for tests: throwaway server processes on free ports.

Only Redis so far. A throwaway server keeps nothing on disk and can be stopped and started
again on the same port, which is how tests simulate an outage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["RedisServer", "free_port", "need", "reachable", "redis_url_for_tests"]

HOW_TO_GET_REDIS = (
    "no Redis for the tests: install redis-server (apt-get install redis-server, "
    "brew install redis) or run one on 127.0.0.1:6379"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def reachable(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether a Redis answers PING at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def need(message: str) -> NoReturn:
    """Skip for lack of a service; fail instead on CI, where a skip would hide the gap."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class RedisServer:
    """``redis-server`` on a free port in ``directory``, without persistence."""

    def __init__(self, directory: Path, *, binary: str = "redis-server") -> None:
        self.directory = directory
        self.binary = binary
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if self._process is not None:
            return
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not reachable("127.0.0.1", self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def redis_url_for_tests(directory: Path) -> tuple[str, RedisServer | None]:
    """A throwaway server if ``redis-server`` is installed, else a local one on 6379.

    Returns the URL and the server to stop (None for a Redis the tests do not own); skips
    (fails on CI) when there is neither.
    """
    binary = shutil.which("redis-server")
    if binary is not None:
        server = RedisServer(directory, binary=binary)
        server.start()
        return server.url, server
    if reachable("127.0.0.1", 6379):
        return "redis://127.0.0.1:6379/0", None
    need(HOW_TO_GET_REDIS)


def delete_keys(redis_url: str, match: str) -> None:
    """Delete the keys matching ``match`` (a SCAN pattern): a test's own, on a shared Redis."""
    from redis import Redis

    with Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=match, count=1000))
        if keys:
            client.delete(*keys)
