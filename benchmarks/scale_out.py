"""Scale-out benchmark: the memory bus against the Redis bus, then 1 against 2 workers.

1. The HTTP benchmark's model and load (LogisticRegression on breast_cancer, one row per
   request, concurrency 8 and 64), champion alone and with two shadows: one process with
   the memory bus, against one API process + one worker process per model + an archiver
   over a Redis bus (a throwaway redis-server).
2. A CPU-bound model (pure Python, a few ms of CPU per row, so threads cannot share it
   under the GIL): 1 worker process against 2.

    .venv/bin/python benchmarks/scale_out.py [--seconds 10] [--repeats 3]

Needs redis-server. Load comes from wrk where installed, as in the HTTP benchmark, else
from its Python client (much heavier: figures from the two do not compare). Nothing is
pinned here: worker processes need both cores. Each comparison runs its variants in turn
``--repeats`` times and reports the medians: on a small shared machine one run moves by
more than the differences measured.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _harness import Processes, Result, Server, closed_loop, free_port
from http_serving import HEADER, PATH, build, median, row

HERE = Path(__file__).parent


def rendezvous_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rendezvous", *args, "--log-level", "warning"]


def redis_up(procs: Processes) -> str:
    port = free_port()
    procs.start(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"])
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0"


def with_bus(deployment: Path, bus: str, name: str, **over: object) -> Path:
    data = yaml.safe_load(deployment.read_text())
    data["bus"] = bus
    data.update(over)
    out = deployment.with_name(f"{name}.yaml")
    out.write_text(yaml.safe_dump(data))
    return out


def cpu_bound(tmp: Path, bus: str) -> tuple[Path, bytes]:
    (tmp / "heavy.py").write_text(
        "def score(row):\n"
        "    # about 3 ms of pure-Python CPU per row\n"
        "    acc = 0.0\n"
        "    for i in range(60_000):\n"
        "        acc += (row['x0'] * i) % 7\n"
        "    return int(acc) % 2\n"
    )
    dep = {
        "name": "bench",
        "schema": {"n_features": 4},
        "bus": bus,
        "archive": "sqlite:///heavy.db",
        "deadline_ms": 10_000,
        "models": [
            {
                "name": "heavy",
                "kind": "python",
                "source": "heavy:score",
                "role": "champion",
                "batch": {"max_size": 8},
            }
        ],
    }
    path = tmp / "heavy.yaml"
    path.write_text(yaml.safe_dump(dep))
    return path, b'{"input": [1.5, 2.0, 3.0, 4.0]}'


def distributed(file: Path, workers: dict[str, int], procs: Processes) -> Server:
    for model, n in workers.items():
        for _ in range(n):
            procs.start(rendezvous_cmd("worker", str(file), "--model", model))
    procs.start(rendezvous_cmd("archiver", str(file)))
    return Server(rendezvous_cmd("serve", str(file), "--port", "{port}"), "/v1/deployments",
                  pin=False)  # fmt: skip


def measure(
    server: Server, body: bytes, seconds: float, concs: tuple[int, ...]
) -> dict[int, Result]:
    with server:
        time.sleep(1.0)  # workers join their groups
        port = server.port
        closed_loop(port, PATH, body, connections=8, seconds=2, pin=False)  # warm-up
        return {
            c: closed_loop(port, PATH, body, connections=c, seconds=seconds, pin=False)
            for c in concs
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        sys.exit("redis-server is needed: apt-get install redis-server")
    mem: dict[str, dict[int, Result]] = {}
    red: dict[str, dict[int, Result]] = {}
    with tempfile.TemporaryDirectory() as tmpdir, Processes() as procs:
        tmp = Path(tmpdir)
        _, champion, shadows, body = build(tmp)
        redis = redis_up(procs)
        for label, file, workers in (
            ("champion", champion, {"lr": 1}),
            ("+2 shadows", shadows, {"lr": 1, "lr_c01": 1, "lr_c10": 1}),
        ):
            runs: dict[str, list[dict[int, Result]]] = {"memory": [], "redis": []}
            for rep in range(args.repeats):
                memory = Server(rendezvous_cmd("serve", str(file), "--port", "{port}"),
                                "/v1/deployments", pin=False)  # fmt: skip
                runs["memory"].append(measure(memory, body, args.seconds, (8, 64)))
                prefix = f"{redis}?prefix={label[:5]}{rep}"
                over_redis = with_bus(file, prefix, f"{file.stem}-redis{rep}")
                with Processes() as workers_procs:
                    server = distributed(over_redis, workers, workers_procs)
                    runs["redis"].append(measure(server, body, args.seconds, (8, 64)))
            mem[label] = {c: median([r[c] for r in runs["memory"]]) for c in (8, 64)}
            red[label] = {c: median([r[c] for r in runs["redis"]]) for c in (8, 64)}
        print("memory bus (1 process) vs redis bus (1 API process, 1 worker process per model,"
              " an archiver), ratios against memory:")  # fmt: skip
        print(HEADER)
        for label in mem:
            for conc in (8, 64):
                print(row("memory", f"c={conc}", mem[label][conc], None) + f"  {label}")
                print(row("redis", f"c={conc}", red[label][conc], mem[label][conc]) + f"  {label}")

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        heavy_runs: dict[int, list[Result]] = {1: [], 2: []}
        for rep in range(args.repeats):
            for n_workers in (1, 2):
                with Processes() as procs:
                    redis = redis_up(procs)
                    prefix = f"{redis}?prefix=heavy{n_workers}-{rep}"
                    heavy, heavy_body = cpu_bound(tmp, prefix)
                    server = distributed(heavy, {"heavy": n_workers}, procs)
                    result = measure(server, heavy_body, args.seconds, (16,))[16]
                    heavy_runs[n_workers].append(result)
        results = {n: median(runs) for n, runs in heavy_runs.items()}
        speedups = [b.rps / a.rps for a, b in zip(heavy_runs[1], heavy_runs[2], strict=True)]
        print("\nCPU-bound model (~3 ms of Python per row), c=16, ratios against 1 worker:")
        print(HEADER)
        print(row("1 worker", "c=16", results[1], None))
        print(row("2 workers", "c=16", results[2], results[1]))

    p50_gap = red["champion"][8].p50_ms - mem["champion"][8].p50_ms
    speedup = results[2].rps / results[1].rps
    print(f"\ntargets (medians of {args.repeats} runs): redis p50 - memory p50 at c=8 = "
          f"{p50_gap:+.2f} ms (<= +1 ms); 2 workers / 1 worker req/s = {speedup:.2f} (>= 1.6;"
          f" run by run: {', '.join(f'{v:.2f}' for v in speedups)})")  # fmt: skip


if __name__ == "__main__":
    main()
