"""A local cluster of real processes: API servers, model workers, an archiver.

Every process is ``python -m rendezvous …`` started from the same deployment file, exactly
as a user would start them on several hosts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from redis import Redis

from servers import free_port

FIXTURES = Path(__file__).parent.parent / "fixtures"


def deployment_file(
    directory: Path, *, bus: str, archive: str, deadline_ms: float = 1500, **over: Any
) -> Path:
    data: dict[str, Any] = {
        "name": "scale",
        "schema": {"features": ["a", "b"]},
        "bus": bus,
        "archive": archive,
        "deadline_ms": deadline_ms,
        "default": {"prediction": -1},
        "models": [
            {"name": "champ", "kind": "python", "source": "e2e_models:sign", "role": "champion"},
            {"name": "shadow", "kind": "python", "source": "e2e_models:negated"},
        ],
    }
    data.update(over)
    path = directory / "scale.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Cluster:
    """Start, kill and stop the processes of one deployment."""

    def __init__(self, file: Path, log_dir: Path, *, prefix: str, deployment: str = "scale"):
        self.file = file
        # the Redis keys of the deployment (see rendezvous.bus.redis)
        self.stream = f"{prefix}:{{{deployment}}}:in"
        self.scores = f"{prefix}:{{{deployment}}}:scores"
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_urls: list[str] = []
        self.env = {**os.environ, "PYTHONPATH": str(FIXTURES)}

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.log").open("wb") as log:  # the child keeps its own fd
            proc = subprocess.Popen(
                [sys.executable, "-m", "rendezvous", *args, str(self.file),
                 "--log-level", "warning"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.procs[name] = proc
        return proc

    def api(self, name: str) -> str:
        port = free_port()
        self.spawn(name, "serve", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        self.api_urls.append(url)
        return url

    def worker(self, name: str, model: str) -> None:
        self.spawn(name, "worker", "--model", model)

    def archiver(self, name: str = "archiver") -> None:
        self.spawn(name, "archiver")

    def wait_ready(
        self, redis_url: str, stream: str, groups: set[str], timeout: float = 60
    ) -> None:
        """Until every API answers ready and every model's group exists on the stream."""
        deadline = time.monotonic() + timeout
        pending_apis = list(self.api_urls)
        while pending_apis:
            self.check_alive()
            try:
                if httpx.get(f"{pending_apis[0]}/v2/health/ready").status_code == 200:
                    pending_apis.pop(0)
                    continue
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "API processes did not become ready"
            time.sleep(0.1)
        with Redis.from_url(redis_url) as r:
            while True:
                self.check_alive()
                try:
                    names = {g["name"].decode() for g in r.xinfo_groups(stream)}
                except Exception:
                    names = set()
                if groups <= names:
                    return
                assert time.monotonic() < deadline, f"groups {groups - names} never joined"
                time.sleep(0.1)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None and proc.returncode not in (-signal.SIGKILL,):
                raise AssertionError(f"{name} exited with {proc.returncode}: {self.log(name)}")

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, timeout: float = 30) -> dict[str, int | None]:
        """SIGTERM everything still running (APIs first, archiver last), wait, report codes."""
        order = sorted(self.procs, key=lambda n: (n == "archiver", not n.startswith("api")))
        codes: dict[str, int | None] = {}
        for name in order:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            codes[name] = proc.returncode
        return codes
