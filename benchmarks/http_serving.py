"""HTTP serving benchmark: rendezvous against a bare Starlette endpoint, in one run.

Same scikit-learn LogisticRegression on breast_cancer (30 features, one row per request):

  (a) bare      Starlette + uvicorn calling ``model.predict`` per request
  (b) champion  rendezvous with the champion only
  (c) shadows   rendezvous with the champion + 2 shadow models (archive on, as in production)

Closed loop with wrk at concurrency 8 and 64 (req/s, p50, p99, ratios to (a)), then an
open loop at the same offered load for (b) and (c) to compare p99. Servers are pinned to
CPU 0, the load generator to CPU 1.

    .venv/bin/python benchmarks/http_serving.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import joblib
import numpy as np
import yaml
from _harness import Result, Server, open_loop, wrk
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


def row(name: str, conc: int | str, r: Result, base: Result | None) -> str:
    ratio = f"{r.rps / base.rps:5.2f}x" if base else "  1.00x"
    p99_ratio = f"{r.p99_ms / base.p99_ms:5.2f}x" if base else "  1.00x"
    return (f"{name:<10} {conc!s:>6} {r.rps:9.0f} {ratio:>8} {r.p50_ms:8.2f} "
            f"{r.p99_ms:8.2f} {p99_ratio:>8} {r.errors:6d}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument("--load", type=float, default=0.6,
                        help="open-loop offered load as a share of (b)'s req/s at c=64")  # fmt: skip
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model, champion, shadows, body = build(tmp)
        results: dict[tuple[str, int], Result] = {}
        servers = {"(a) bare": (bare(model), "/predict"), "(b) champ": (rendezvous(champion), PATH),
                   "(c) +2 sh": (rendezvous(shadows), PATH)}  # fmt: skip
        for name, (server, path) in servers.items():
            with server:
                wrk(f"http://127.0.0.1:{server.port}{path}", body, connections=8, seconds=2)
                for conc in (8, 64):
                    url = f"http://127.0.0.1:{server.port}{path}"
                    results[name, conc] = wrk(url, body, connections=conc, seconds=args.seconds)
        header = (f"{'variant':<10} {'conc':>6} {'req/s':>9} {'vs (a)':>8} {'p50 ms':>8} "
                  f"{'p99 ms':>8} {'p99 vs':>8} {'errors':>6}")  # fmt: skip
        print("closed loop (wrk):")
        print(header)
        for conc in (8, 64):
            base = results["(a) bare", conc]
            for name in servers:
                print(row(name, conc, results[name, conc], None if name.startswith("(a)") else base))
        rate = args.load * results["(b) champ", 64].rps
        print(f"\nopen loop at the same offered load ({rate:.0f} req/s), p99 of (c) vs (b):")
        print(header)
        opened: dict[str, Result] = {}
        for name in ("(b) champ", "(c) +2 sh"):
            server, path = servers[name]
            server = rendezvous(champion if name.startswith("(b)") else shadows)
            with server:
                open_loop(server.port, PATH, body, rate=rate, seconds=2)  # warm-up
                opened[name] = open_loop(server.port, PATH, body, rate=rate, seconds=args.seconds)
            base = opened.get("(b) champ") if name.startswith("(c)") else None
            print(row(name, f"{rate:.0f}/s", opened[name], base))
        b64, c64, a64 = (results[k, 64].rps for k in ("(b) champ", "(c) +2 sh", "(a) bare"))
        print("\ntargets: (b) >= 1.2x (a) at c=64: "
              f"{b64 / a64:.2f}x; (c) >= 1.0x (a) at c=64: {c64 / a64:.2f}x; "
              f"open-loop p99 (c)/(b) <= 1.1: {opened['(c) +2 sh'].p99_ms / opened['(b) champ'].p99_ms:.2f}")  # noqa: E501
    _ = np  # numpy is imported for joblib's pickles


if __name__ == "__main__":
    main()
