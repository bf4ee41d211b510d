"""Running the ASGI app on uvicorn: in the foreground (``rendezvous serve``) or on a
background thread (the demo, benchmarks and tests, which drive it over real HTTP)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["BackgroundServer", "free_port", "serve"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _config(app: Any, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        ws="none",  # no websocket routes; its modules warn on import
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def serve(app: Any, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until interrupted; SIGINT/SIGTERM drain in-flight requests, then flush."""
    # Model threads compete with the event loop for the GIL; a shorter switch interval
    # bounds how long a score waits to be handed back (5 ms by default).
    sys.setswitchinterval(0.001)
    uvicorn.Server(_config(app, host, port, log_level)).run()


class BackgroundServer:
    """``with BackgroundServer(app) as srv:`` serves on ``srv.url`` until the block ends."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int | None = None,
        log_level: str = "warning",
    ) -> None:  # fmt: skip
        self.host = host
        self.port = port or free_port(host)
        self.server = uvicorn.Server(_config(app, host, self.port, log_level))
        self._thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped while starting (see its log)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not start within {timeout}s")
            time.sleep(0.01)

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
