"""Where the open loop's slowest requests come from: who held each CPU while they waited.

A diagnostic for the p99 of ``http_serving.py``'s open loop, not a benchmark: it runs (b)
and (c) side by side as that script does, at one offered load, records every request's
due, start and answer times, and records the scheduler's switches on every CPU meanwhile
(``perf record -k mono -e sched:sched_switch -a``: needs perf, ``apt-get install
linux-perf``, and root or ``kernel.perf_event_paranoid <= -1``). The slowest 1 % of each
server's requests are grouped into episodes (requests due within 5 ms of each other); for
the largest episodes it prints how late the generator itself was and which threads held
CPU 0 (the servers) and CPU 1 (the generator) from 4 ms before the episode to 2 ms after.
Before that, for every request, its latency from when the generator got to it, grouped by
what held CPU 0 at that moment (idle, the serving loop, the model process, ...).

    .venv/bin/python benchmarks/tail_episodes.py [--rate 4000] [--seconds 6] [--top 12]

What it showed on the 2-core machines here: most episodes are the host's (a DAMON kernel
thread, ``kdamond``, every ~0.5 s for 2-7 ms, on whichever CPU it lands), in (b) and (c)
alike; the generator's own lateness is ~1 ms at p99. And (c)'s requests that start while
its model process holds CPU 0 are no slower than those that find CPU 0 idle: preempting
a model process costs a request next to nothing; (c) is slower in every group alike.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from _harness import open_loop, open_loop_in_turns
from http_serving import PATH, build, rendezvous

SWITCH = re.compile(
    r"\s*\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:.*?==> next_comm=(.*?) next_pid=(\d+)"
)
EPISODE_GAP_S = 0.005


def cpu_holders(data: Path) -> list[tuple[int, float, float, str]]:
    """(cpu, from, to, "comm:tid") for every stretch a thread held a CPU."""
    out = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "cpu,time,event,trace"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    last: dict[int, tuple[float, str]] = {}
    spans = []
    for line in out.splitlines():
        m = SWITCH.match(line)
        if m is None:
            continue
        cpu, at = int(m[1]), float(m[2])
        if cpu in last:
            began, who = last[cpu]
            spans.append((cpu, began, at, who))
        last[cpu] = (at, f"{m[3]}:{m[4]}")
    return spans


def thread_labels(tag: str, pid: int) -> dict[str, str]:
    """Names for the threads of a server (and of the model process it started)."""
    labels = {}
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for proc, what in [(pid, "serving"), *((int(c), "model process") for c in children)]:
        for tid in (int(t) for t in os.listdir(f"/proc/{proc}/task")):
            role = "loop" if tid == pid else "main" if tid == proc else f"thread {tid}"
            labels[f"python:{tid}"] = f"{tag} {what} {role}"
    return labels


def by_holder(started: np.ndarray, done: np.ndarray, spans: list[tuple[int, float, float, str]],
              labels: dict[str, str]) -> None:  # fmt: skip
    """Latency from the generator's start, by what held CPU 0 when the request started.

    Tells a cost paid per request that lands on a busy CPU (preempting a model process, say)
    from one every request pays: the first shows as one group far slower than "idle"."""
    cpu0 = sorted((began, ended, who) for cpu, began, ended, who in spans if cpu == 0)
    begins = np.array([span[0] for span in cpu0])
    at = np.searchsorted(begins, started, side="right") - 1
    latency = (done - started) * 1000
    groups: dict[str, list[float]] = defaultdict(list)
    for k, i in enumerate(at):
        who = "?"
        if i >= 0 and cpu0[i][1] >= started[k]:
            who = cpu0[i][2]
            who = "idle" if who.startswith("swapper") else labels.get(who, who.split(":")[0])
            who = re.sub(r"thread \d+", "thread", who)  # a server's threads, as one
        groups[who].append(latency[k])
    print("  latency from the generator's start, by what held CPU 0 then:")
    for who, values in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:6]:
        share = 100 * len(values) / len(latency)
        p50, p99 = np.percentile(values, [50, 99])
        print(f"    {who:<34} {share:5.1f} %  p50 {p50:5.2f} ms  p99 {p99:5.2f} ms")


def report(name: str, trace: np.ndarray, spans: list[tuple[int, float, float, str]],
           top: int, labels: dict[str, str]) -> None:  # fmt: skip
    due, started, done = trace.T
    latency = (done - due) * 1000
    p99 = float(np.percentile(latency, 99))
    late = (started - due) * 1000
    print(f"\n{name}: p50 {np.percentile(latency, 50):.2f} ms, p99 {p99:.2f} ms; "
          f"generator late p99 {np.percentile(late, 99):.2f} ms")  # fmt: skip
    by_holder(started, done, spans, labels)
    slow = np.sort(due[latency >= p99])
    episodes = np.split(slow, np.where(np.diff(slow) > EPISODE_GAP_S)[0] + 1)
    print(f"  the slowest 1 % ({len(slow)} requests) in {len(episodes)} episodes; the largest:")
    for episode in sorted(episodes, key=len, reverse=True)[:top]:
        lo, hi = episode[0] - 0.004, episode[-1] + 0.002
        inside = (due >= episode[0]) & (due <= episode[-1])
        held: dict[str, float] = defaultdict(float)
        for cpu, began, ended, who in spans:
            if ended > lo and began < hi and not who.startswith("swapper"):
                held[f"cpu{cpu} {labels.get(who, who)}"] += (min(ended, hi) - max(began, lo)) * 1000
        holders = sorted(held.items(), key=lambda kv: -kv[1])[:5]
        print(
            f"  {len(episode):3d} requests, worst {latency[inside].max():5.2f} ms, generator "
            f"late up to {late[inside].max():5.2f} ms | "
            + ", ".join(f"{who} {ms:.1f} ms" for who, ms in holders)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=float, default=4000.0, help="offered load, requests/s")
    parser.add_argument("--seconds", type=float, default=6.0, help="load on each server")
    parser.add_argument("--top", type=int, default=12, help="episodes shown per server")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        sys.exit("needs perf: apt-get install linux-perf")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        _, champion, shadows, body = build(tmp)
        names = ("(b) champion only", "(c) champion + 2 shadows")
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(rendezvous(d)) for d in (champion, shadows)]
            for server in servers:
                open_loop(server.port, PATH, body, rate=args.rate, seconds=2)  # warm-up
            data = tmp / "switches.data"
            # long enough for both turns and their pauses; stopped once the load is done
            perf = subprocess.Popen(
                ["perf", "record", "-k", "mono", "-e", "sched:sched_switch", "-a",
                 "-o", str(data), "--", "sleep", str(4 * args.seconds + 30)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(1.0)  # perf is recording
            labels: dict[str, str] = {}
            for tag, server in zip(("(b)", "(c)"), servers, strict=True):
                assert server.proc is not None
                labels |= thread_labels(tag, server.proc.pid)
            open_loop_in_turns([s.port for s in servers], PATH, body, rate=args.rate,
                               seconds=args.seconds, trace=str(tmp / "trace"))  # fmt: skip
            perf.send_signal(signal.SIGINT)  # perf writes what it has and exits
            _, err = perf.communicate()
            if b"Captured and wrote" not in err:  # its exit code is the interrupted sleep's
                sys.exit(f"perf record failed: {err.decode()[-2000:]}")
        spans = cpu_holders(data)
        for k, name in enumerate(names):
            report(name, np.load(tmp / f"trace.{k}.npy"), spans, args.top, labels)


if __name__ == "__main__":
    main()
