"""Shared pieces of the benchmarks: servers in subprocesses, wrk, an open-loop generator.

Servers run pinned to CPU 0 and the load generator to CPU 1 (when ``taskset`` exists), so
every variant gets the same single core however many threads it uses.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Processes", "Result", "Server", "closed_loop", "open_loop", "open_loop_in_turns", "wrk"]

TASKSET = shutil.which("taskset")
# Between two servers' turns: longer than the archive writers' flush intervals (0.1 s in the
# serving process, 0.2 s in a model process), so what one server still writes after its
# turn is done before the other's begins.
GAP_S = 0.3


def pinned(cpu: int, argv: Sequence[str]) -> list[str]:
    if TASKSET and (os.cpu_count() or 1) > 1:
        return [TASKSET, "-c", str(cpu), *argv]
    return list(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A server subprocess on a free port; waits until it answers ``probe``."""

    def __init__(
        self,
        argv: Sequence[str],
        probe: str,
        *,
        env: dict[str, str] | None = None,
        pin: bool = True,
    ):
        self.pin = pin
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.probe = probe
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        argv = pinned(0, self.argv) if self.pin else self.argv
        self.proc = subprocess.Popen(argv, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"server exited: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(f"GET {self.probe} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("server did not start")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    # open loop only: p99 of how late the generator itself got to a request (its own
    # stalls: the host preempting it, its loop busy with answers); part of every latency
    # above, falling on every server it loads alike, and none of the server's doing
    late_p99_ms: float = 0.0


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


class Processes:
    """Helper processes (workers, Redis) started together and stopped together."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.procs.append(
            subprocess.Popen(
                list(argv),
                env={**os.environ, **(env or {})},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wrk(url: str, body: bytes, *, connections: int, seconds: float, pin: bool = True) -> Result:
    """Closed-loop load with wrk (C, one thread): maximum throughput at a concurrency."""
    script = Path(f"/tmp/rendezvous-wrk-{os.getpid()}.lua")
    payload = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{payload}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "-s", str(script), url]  # fmt: skip
    out = subprocess.run(
        pinned(1, argv) if pin else argv, capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    refused = int(bad.group(1)) if bad else 0
    errors = refused + (sum(map(int, errs.groups())) if errs else 0)
    # answers only: wrk's Requests/sec counts a 503 too, and a refusal is not throughput
    return Result(rps * (total - refused) / max(total, 1), p50, p99, errors)


class _Conn(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive client: one request in flight, latency from send."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        # the server closed it (an idle keep-alive connection, say): an error, not a hang
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(RuntimeError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return
        m = re.search(rb"content-length:\s*(\d+)", head, re.I)
        need = int(m.group(1)) if m else 0
        if len(rest) >= need and self.waiter is not None and not self.waiter.done():
            ok = head.startswith(b"HTTP/1.1 200")
            self.buf = rest[need:]
            if ok:
                self.waiter.set_result(None)
            else:
                self.waiter.set_exception(RuntimeError(head.split(b"\r\n")[0].decode()))


async def _open_loop(host: str, port: int, path: str, body: bytes, rate: float,
                     seconds: float, connections: int) -> Result:  # fmt: skip
    (result,) = await _alternating(host, [port], path, body, rate, seconds, seconds, connections)
    return result


async def _alternating(host: str, ports: list[int], path: str, body: bytes, rate: float,
                       seconds: float, segment: float, connections: int,
                       trace: str | None = None) -> list[Result]:  # fmt: skip
    """Open loop at ``rate`` for ``seconds`` per server, the servers taking turns in
    segments of ``segment`` seconds (A B B A …, a pause of ``GAP_S`` before each turn when
    there are several; one server gets one segment of ``seconds``, as before).

    With ``trace``, each server's answered requests are saved to ``{trace}.{k}.npy`` as rows
    of (due, started, done) on ``time.perf_counter()``'s clock (CLOCK_MONOTONIC on Linux,
    the clock ``perf record -k mono`` stamps events with)."""
    loop = asyncio.get_running_loop()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: list[asyncio.Queue[_Conn]] = []
    for port in ports:
        idle.append(asyncio.Queue())
        for _ in range(connections):
            _, proto = await loop.create_connection(_Conn, host, port)
            idle[-1].put_nowait(proto)
    latencies: list[list[float]] = [[] for _ in ports]
    lateness: list[list[float]] = [[] for _ in ports]
    traced: list[list[tuple[float, float, float]]] = [[] for _ in ports]
    errors = [0 for _ in ports]

    async def one(k: int, scheduled: float) -> None:
        started = time.perf_counter()
        lateness[k].append(started - scheduled)
        conn = await idle[k].get()
        if conn.transport is None or conn.transport.is_closing():  # closed while idle
            _, conn = await loop.create_connection(_Conn, host, ports[k])
        conn.waiter = loop.create_future()
        assert conn.transport is not None
        conn.transport.write(request)
        try:
            await conn.waiter
            # measured from the moment the request was due: queueing counts (no
            # coordinated omission)
            done = time.perf_counter()
            latencies[k].append(done - scheduled)
            if trace is not None:
                traced[k].append((scheduled, started, done))
        except RuntimeError:
            errors[k] += 1
        idle[k].put_nowait(conn)

    turns = list(range(len(ports)))
    order = (turns + turns[::-1]) * math.ceil(seconds / segment / 2)
    order = order[: max(1, round(seconds / segment)) * len(ports)]
    per_segment = int(rate * min(segment, seconds))
    # The generator must not stall on its own: a collection walking thousands of live tasks
    # would make every request due meanwhile look late (the server's p99 would be the
    # generator's). Nothing here makes cycles, so collection waits for the end.
    gc.disable()
    tasks: set[asyncio.Future[None]] = set()
    elapsed = [0.0 for _ in ports]
    start = time.perf_counter()
    for k in order:
        if len(ports) > 1:
            await asyncio.sleep(GAP_S)
        begin = time.perf_counter()
        for i in range(per_segment):
            due = begin + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(one(k, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elapsed[k] += per_segment / rate
    while tasks:
        await asyncio.gather(*tasks)
    if len(ports) == 1:
        elapsed[0] = time.perf_counter() - start
    gc.enable()
    if trace is not None:
        for k, rows in enumerate(traced):
            np.save(f"{trace}.{k}.npy", np.array(rows).reshape(-1, 3))
    results = []
    for lat, late, errs, took in zip(latencies, lateness, errors, elapsed, strict=True):
        arr = np.array(lat) * 1000
        results.append(Result(len(lat) / took, float(np.percentile(arr, 50)),
                              float(np.percentile(arr, 99)), errs,
                              float(np.percentile(np.array(late) * 1000, 99))))  # fmt: skip
    return results


async def _closed_loop(host: str, port: int, path: str, body: bytes, connections: int,
                       seconds: float) -> Result:  # fmt: skip
    loop = asyncio.get_running_loop()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        transport, conn = await loop.create_connection(_Conn, host, port)
        while time.perf_counter() < stop_at:
            conn.waiter = loop.create_future()
            sent = time.perf_counter()
            transport.write(request)
            try:
                await conn.waiter
                latencies.append(time.perf_counter() - sent)
            except RuntimeError:
                errors += 1
        transport.close()

    gc.disable()  # as in _open_loop: no pause of the generator's own in the figures
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    gc.enable()
    arr = np.array(latencies) * 1000
    return Result(len(latencies) / elapsed, float(np.percentile(arr, 50)),
                  float(np.percentile(arr, 99)), errors)  # fmt: skip


def _generate(function: str, args: tuple[object, ...], pin: bool = True) -> Any:
    # a separate process, pinned to the other core (unless ``pin`` is False), so the
    # generator never shares the server's CPU
    code = (
        f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import _harness as h, uvloop; "
        f"r = uvloop.run(h.{function}(*{args!r})); "
        "print(json.dumps([x.__dict__ for x in r] if isinstance(r, list) else r.__dict__))"
    )
    argv = [sys.executable, "-c", code]
    proc = subprocess.run(pinned(1, argv) if pin else argv, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def open_loop(port: int, path: str, body: bytes, *, rate: float, seconds: float,
              connections: int = 64) -> Result:  # fmt: skip
    """Fixed offered load (requests/s), latency measured from each request's due time."""
    return Result(**_generate("_open_loop", ("127.0.0.1", port, path, body, rate, seconds,
                                             connections)))  # fmt: skip


def open_loop_in_turns(ports: Sequence[int], path: str, body: bytes, *, rate: float,
                       seconds: float, segment: float = 0.5, connections: int = 64,
                       trace: str | None = None) -> list[Result]:  # fmt: skip
    """The same fixed offered load on each of several running servers, in turns of
    ``segment`` seconds until each has had ``seconds``: a drift of the machine (a noisy
    neighbour, a host daemon) lands on all of them alike instead of on whichever ran then.
    ``trace``: see :func:`_alternating`."""
    args = ("127.0.0.1", list(ports), path, body, rate, seconds, segment, connections, trace)
    return [Result(**r) for r in _generate("_alternating", args)]


def closed_loop(port: int, path: str, body: bytes, *, connections: int, seconds: float,
                pin: bool = True) -> Result:  # fmt: skip
    """Maximum throughput at a concurrency: wrk where installed (C, much lighter than any
    Python client), otherwise an async Python client in its own process."""
    if shutil.which("wrk"):
        url = f"http://127.0.0.1:{port}{path}"
        return wrk(url, body, connections=connections, seconds=seconds, pin=pin)
    args = ("127.0.0.1", port, path, body, connections, seconds)
    return Result(**_generate("_closed_loop", args, pin))
