"""HTTP serving benchmark: rendezvous against a bare Starlette endpoint, in one run.

Same scikit-learn LogisticRegression on breast_cancer (30 features, one row per request):

  (a) bare      Starlette + uvicorn calling ``model.predict`` per request
  (b) champion  rendezvous with the champion only
  (c) shadows   rendezvous with the champion + 2 shadow models (archive on, as in production)

Closed loop at concurrency 8 and 64 (req/s, p50, p99, ratios to (a)) with wrk, or with an
async Python generator where wrk is not installed; req/s counts answers only (a refusal such
as a 503 shows in the errors column, never as throughput). Then an open loop at the same
offered load for (b) and (c) to compare p99, at two loads: half the bare endpoint's
capacity, and half the capacity of the slower of (b) and (c). Servers are pinned to CPU 0
(a model process they start inherits that), the load generator to CPU 1.

A p99 over a few seconds on a small shared machine moves by 2x from one run to the next,
and the machine's speed drifts by more than that within a minute (a neighbour on the host,
a host daemon): so in the open loop (b) and (c) run side by side, idle but for the load,
which goes to each in turn in half-second segments (A B B A …) until each has had
``--seconds``; this is repeated ``--repeats`` times with fresh servers. The target figure
is the median over the repeats of each pair's p99 ratio (the ratio of the medians is
printed beside it): one pair's ratio alone moves between 0.7 and 1.5 here.

The open loop's last column, "gen late", is the p99 of how late the generator itself got
to a request (its own loop busy, or the host preempting it: a memory-monitoring kernel
thread takes a few ms of a core every half second on these machines). It is part of every
latency in the row, falls on both servers alike, and is none of theirs: a p99 not far
above it says the server's own tail is small.

    .venv/bin/python benchmarks/http_serving.py [--seconds 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

import joblib
import yaml
from _harness import Result, Server, closed_loop, open_loop, open_loop_in_turns
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).parent
PATH = "/v1/deployments/bench/predict"


def build(tmp: Path) -> tuple[Path, Path, Path, bytes]:
    data = load_breast_cancer()
    x, y = data.data, data.target
    for name, c in (("lr", 1.0), ("lr_c01", 0.1), ("lr_c10", 10.0)):
        joblib.dump(LogisticRegression(C=c, max_iter=10_000).fit(x, y), tmp / f"{name}.joblib")

    def deployment(file: str, shadows: bool) -> Path:
        models = [{"name": "lr", "kind": "sklearn", "source": "lr.joblib", "role": "champion"}]
        if shadows:
            models += [
                {"name": "lr_c01", "kind": "sklearn", "source": "lr_c01.joblib"},
                {"name": "lr_c10", "kind": "sklearn", "source": "lr_c10.joblib"},
            ]
        dep = {
            "name": "bench",
            "schema": {"n_features": 30},
            "archive": f"sqlite:///{file}.db",
            "deadline_ms": 1000,
            "models": models,
        }
        path = tmp / f"{file}.yaml"
        path.write_text(yaml.safe_dump(dep))
        return path

    body = ('{"input": [' + ", ".join(f"{v:.6g}" for v in x[0]) + "]}").encode()
    return tmp / "lr.joblib", deployment("champion", False), deployment("shadows", True), body


def rendezvous(deployment: Path) -> Server:
    argv = [sys.executable, "-m", "rendezvous", "serve", str(deployment), "--port", "{port}",
            "--log-level", "warning"]  # fmt: skip
    return Server(argv, "/v1/deployments")


def bare(model: Path) -> Server:
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", "{port}",
            "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning", "--app-dir", str(HERE)]  # fmt: skip
    return Server(argv, "/health", env={"BARE_MODEL": str(model)})


def row(name: str, load: str, r: Result, base: Result | None, *, late: bool = False) -> str:
    rps = f"{r.rps / base.rps:.2f}x" if base else "1.00x"
    p99 = f"{r.p99_ms / base.p99_ms:.2f}x" if base else "1.00x"
    return (
        f"{name:<10} {load:>8} {r.rps:9.0f} {rps:>8} {r.p50_ms:8.2f} {r.p99_ms:8.2f}"
        f" {p99:>8} {r.errors:6d}" + (f" {r.late_p99_ms:8.2f}" if late else "")
    )


HEADER = (
    f"{'variant':<10} {'load':>8} {'req/s':>9} {'vs base':>8} {'p50 ms':>8} {'p99 ms':>8}"
    f" {'p99 vs':>8} {'errors':>6}"
)
# the open loop's last column: p99 of the generator's own lateness (see Result.late_p99_ms)
OPEN_HEADER = HEADER + f" {'gen late':>8}"


def shadow_work(db: Path) -> tuple[int, int]:
    """(computed, dropped) shadow scores archived so far in (c)'s archive."""
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT sum(error IS NULL), sum(error LIKE 'dropped:%') FROM scores WHERE model != 'lr'"
        ).fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def coverage(before: tuple[int, int], after: tuple[int, int]) -> str:
    done, dropped = after[0] - before[0], after[1] - before[1]
    total = done + dropped
    share = 100.0 * done / total if total else 0.0
    return f"{share:.1f}% of {total} shadow scores computed, {dropped} dropped"


def median(results: list[Result]) -> Result:
    """Each figure's median over the runs."""
    return Result(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        statistics.median(r.late_p99_ms for r in results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument(
        "--load", type=float, default=0.5, help="open-loop rate as a share of a capacity"
    )
    parser.add_argument("--repeats", type=int, default=5, help="open-loop runs per variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        model, champion, shadows, body = build(Path(tmpdir))
        variants = {
            "(a) bare": (lambda: bare(model), "/predict"),
            "(b) champ": (lambda: rendezvous(champion), PATH),
            "(c) +2 sh": (lambda: rendezvous(shadows), PATH),
        }
        closed: dict[tuple[str, int], Result] = {}
        for name, (make, path) in variants.items():
            with make() as server:
                closed_loop(server.port, path, body, connections=8, seconds=2)  # warm-up
                for conc in (8, 64):
                    closed[name, conc] = closed_loop(
                        server.port, path, body, connections=conc, seconds=args.seconds
                    )
        db = Path(tmpdir) / "shadows.db"
        after_closed = shadow_work(db)
        print("closed loop, ratios against (a):")
        print(HEADER)
        for conc in (8, 64):
            base = closed["(a) bare", conc]
            for name in variants:
                print(
                    row(name, f"c={conc}", closed[name, conc], None if name == "(a) bare" else base)
                )

        # the same offered load for (b) and (c), below what either can serve: half of what
        # the bare endpoint sustains, and half of the slower rendezvous variant's capacity
        a64, b64, c64 = (closed[k, 64].rps for k in variants)
        rates = {"a/2": args.load * a64, "min(b,c)/2": args.load * min(b64, c64)}
        print("\nopen loop at the same offered load, ratios against (b):")
        print(OPEN_HEADER)
        ratios: dict[str, float] = {}
        for label, rate in rates.items():
            runs: dict[str, list[Result]] = {"(b) champ": [], "(c) +2 sh": []}
            for _ in range(args.repeats):  # fresh servers each time
                with contextlib.ExitStack() as stack:
                    servers = [stack.enter_context(variants[name][0]()) for name in runs]
                    for server in servers:
                        open_loop(server.port, PATH, body, rate=rate, seconds=2)  # warm-up
                    # both up, the load on each in turn: drifts of the machine hit both
                    ports = [server.port for server in servers]
                    turns = open_loop_in_turns(ports, PATH, body, rate=rate, seconds=args.seconds)
                for (name, results), r in zip(runs.items(), turns, strict=True):
                    results.append(r)
                    print(row(name, f"{rate:.0f}/s", r, None, late=True) + f"  {label} (one run)")
            b, c = (median(results) for results in runs.values())
            print(row("(b) champ", f"{rate:.0f}/s", b, None, late=True) + f"  {label} median")
            print(row("(c) +2 sh", f"{rate:.0f}/s", c, b, late=True) + f"  {label} median")
            # each repeat is a pair measured side by side: its ratio shares the drift it saw
            pairs = [cr.p99_ms / br.p99_ms for br, cr in zip(*runs.values(), strict=True)]
            ratios[label] = statistics.median(pairs)
            print(
                f"p99 (c)/(b) per repeat: {', '.join(f'{r:.2f}' for r in pairs)}; median "
                f"{ratios[label]:.2f} (ratio of the medians above: {c.p99_ms / b.p99_ms:.2f})"
            )
        # shadows compute on idle CPU only: say how much of their work they did
        print(f"\n(c) shadows, closed loop: {coverage((0, 0), after_closed)}")
        print(f"(c) shadows, open loop: {coverage(after_closed, shadow_work(db))}")
        print(
            f"\ntargets: (b)/(a) req/s at c=64 = {b64 / a64:.2f} (>= 1.2); "
            f"(c)/(a) = {c64 / a64:.2f} (>= 1.0); open-loop p99 (c)/(b), median of pairs = "
            + ", ".join(f"{v:.2f} at {k}" for k, v in ratios.items())
            + " (<= 1.1)"
        )


if __name__ == "__main__":
    main()
