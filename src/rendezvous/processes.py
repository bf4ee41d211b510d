"""Processes without HTTP (workers, archivers) and the local set ``serve --workers`` starts.

A headless process runs its part of the service until SIGTERM or SIGINT, then stops the
way ``uvicorn`` stops an API process: executors finish the batch in hand and what is
queued for them, acknowledge it, and the archive is flushed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .service import Rendezvous

__all__ = ["LocalWorkers", "run_headless"]

log = logging.getLogger("rendezvous.processes")


async def _run(service: Rendezvous, stop_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await service.start()
    log.info("started %r", service)
    try:
        await stopping.wait()
    finally:
        log.info("stopping %r", service)
        await service.stop(stop_timeout)


def run_headless(service: Rendezvous, *, stop_timeout: float = 10.0) -> None:
    """Run ``service`` (no HTTP) until SIGTERM/SIGINT; stop gracefully."""
    try:
        import uvloop

        uvloop.run(_run(service, stop_timeout))
    except ImportError:  # uvloop is optional on some platforms
        asyncio.run(_run(service, stop_timeout))


class LocalWorkers:
    """Child processes for ``serve --workers N``: N workers per model, and one archiver."""

    def __init__(self, files: Sequence[Path], models: Sequence[str], per_model: int) -> None:
        self.commands: list[list[str]] = []
        base = [sys.executable, "-m", "rendezvous"]
        paths = [str(f) for f in files]
        for model in models:
            for _ in range(per_model):
                self.commands.append([*base, "worker", *paths, "--model", model])
        self.commands.append([*base, "archiver", *paths])
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for argv in self.commands:
            self.procs.append(subprocess.Popen(argv))
        log.info("started %d local worker processes", len(self.procs))

    def stop(self, timeout: float = 15.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in %.0fs; killing it", proc.pid, timeout)
                proc.kill()
        self.procs.clear()
