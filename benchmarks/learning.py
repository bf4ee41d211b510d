"""Continuous learning benchmark, all figures measured in this run.

1. and 2. run ``learning_inprocess.py``: in-process predict latency of a linear model
   (10 features) against scikit-learn's single-row ``predict`` on the same coefficients,
   and prequential accuracy on abrupt, gradual and incremental drift streams (a static
   model, the Engine learning continuously, River's HoeffdingAdaptiveTree and ARF).
3. HTTP p99 while the learner retrains continuously, against idle: the same deployment
   (LogisticRegression on breast_cancer, ``learning: {min_samples: 100}``) served twice at
   the same open-loop rate, with the same stream of labelled examples posted meanwhile;
   once with ``--no-learner`` (idle), once with the learner process retraining on every
   100 new examples.

    .venv/bin/python benchmarks/learning.py [--seconds 10] [--rate 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import joblib
import yaml
from _harness import Result, Server, open_loop
from http_serving import HEADER, row
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

PATH = "/v1/deployments/learn/predict"


def build(tmp: Path) -> tuple[Path, bytes, list[list[float]], list[int]]:
    x, y = load_breast_cancer(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=10_000).fit(x, y), tmp / "lr.joblib")
    dep = {
        "name": "learn",
        "schema": {"n_features": 30},
        "archive": "sqlite:///learn.db",
        "deadline_ms": 1000,
        "models": [
            {"name": "lr", "kind": "sklearn", "source": "lr.joblib", "role": "champion",
             "learning": {"min_samples": 100, "drift": None,
                          "window": {"policy": "sliding", "size": 2000}}},
        ],
    }  # fmt: skip
    path = tmp / "learn.yaml"
    path.write_text(yaml.safe_dump(dep))
    body = ('{"input": [' + ", ".join(f"{v:.6g}" for v in x[0]) + "]}").encode()
    return path, body, x.tolist(), y.tolist()


def feed(url: str, rows: list[list[float]], labels: list[int], stop: threading.Event) -> int:
    """Post 50 labelled examples every 0.1 s until stopped: a retrain every ~0.2 s."""
    sent = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            picks = [(sent + i) % len(rows) for i in range(50)]
            batch = [{"input": rows[j], "label": labels[j]} for j in picks]
            client.post("/v1/deployments/learn/examples", json={"examples": batch})
            sent += 50
            stop.wait(0.1)
    return sent


def measure(file: Path, body: bytes, rows: list[list[float]], labels: list[int], *,
            learner: bool, rate: float, seconds: float) -> tuple[Result, int]:  # fmt: skip
    argv = [sys.executable, "-m", "rendezvous", "serve", str(file), "--port", "{port}",
            "--log-level", "warning", "--learner" if learner else "--no-learner"]  # fmt: skip
    with Server(argv, "/v1/deployments", pin=False) as server:
        url = f"http://127.0.0.1:{server.port}"
        stop = threading.Event()
        sent: list[int] = []
        feeder = threading.Thread(target=lambda: sent.append(feed(url, rows, labels, stop)))
        feeder.start()
        try:
            open_loop(server.port, PATH, body, rate=rate, seconds=2)  # warm-up
            result = open_loop(server.port, PATH, body, rate=rate, seconds=seconds)
        finally:
            stop.set()
            feeder.join()
        versions = 0
        if learner:
            registry = file.parent / "registry" / "learn.lr"
            versions = len([p for p in registry.iterdir() if p.name.isdigit()])
        return result, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="predict requests/s")
    parser.add_argument("--skip-inprocess", action="store_true")
    args = parser.parse_args()
    if not args.skip_inprocess:
        import learning_inprocess

        learning_inprocess.latency()
        learning_inprocess.accuracy()
    results: dict[str, Result] = {}
    versions = 0
    for name, learner in (("idle", False), ("learning", True)):
        with tempfile.TemporaryDirectory() as tmpdir:
            file, body, rows, labels = build(Path(tmpdir))
            results[name], n = measure(file, body, rows, labels, learner=learner,
                                       rate=args.rate, seconds=args.seconds)  # fmt: skip
            versions = max(versions, n)
    print(f"\nHTTP predict at {args.rate:.0f} req/s (open loop) with labelled examples streaming"
          f" in; the learner published {versions} versions during its run:")  # fmt: skip
    print(HEADER)
    print(row("idle", f"{args.rate:.0f}/s", results["idle"], None))
    print(row("learning", f"{args.rate:.0f}/s", results["learning"], results["idle"]))
    ratio = results["learning"].p99_ms / results["idle"].p99_ms
    print(f"\ntarget: p99 while retraining / p99 idle = {ratio:.2f} (<= 1.2)")


if __name__ == "__main__":
    main()
