"""``rendezvous demo``: a whole deployment, served over real HTTP, driven, then compared.

1. trains a rule-based champion's rivals on scikit-learn's bundled breast-cancer data;
2. serves the deployment on a free local port (uvicorn, real HTTP);
3. sends a few thousand requests from held-out rows, with a progress bar, then their true
   labels as feedback, as production does when the ground truth arrives;
4. prints, from the archive alone, a table per model (answers, latency, agreement with the
   champion, fallbacks, accuracy), then the champion-vs-challengers comparison with a
   paired promotion test per challenger.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..api.app import create_app
from ..archive import open_archive
from ..compare import PromotionPolicy, Window, compare, render
from ..config import load_deployment
from ..server import BackgroundServer
from ..service import Rendezvous
from .build import DemoData, build_demo
from .report import ModelRow, model_rows

__all__ = ["run_demo"]


async def _drive(
    url: str, data: DemoData, n_requests: int, concurrency: int, progress: Progress
) -> dict[str, Any]:
    """Send ``n_requests`` rows; return {request_id: true label}."""
    task = progress.add_task("requests", total=n_requests)
    labels: dict[str, Any] = {}
    failures: list[str] = []
    counter = iter(range(n_requests))
    rows = data.rows.tolist()
    predict = f"{url}/v1/deployments/breast-cancer/predict"

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            row = dict(zip(data.features, rows[i % len(rows)], strict=True))
            response = await client.post(predict, json={"input": row})
            if response.status_code != 200:
                failures.append(response.text)
            else:
                labels[response.json()["request_id"]] = int(data.labels[i % len(rows)])
            progress.advance(task)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        if failures:
            raise RuntimeError(f"{len(failures)} requests failed; first: {failures[0]}")
        # the ground truth arrives later, as it does in production: label every answer
        await _feedback(client, url, labels, progress)
    return labels


async def _feedback(
    client: httpx.AsyncClient, url: str, labels: dict[str, Any], progress: Progress
) -> None:
    task = progress.add_task("labels", total=len(labels))
    items = [{"request_id": rid, "label": label} for rid, label in labels.items()]
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        response = await client.post(
            f"{url}/v1/deployments/breast-cancer/feedback", json={"feedback": chunk}
        )
        if response.status_code != 200:
            raise RuntimeError(f"feedback failed: {response.text}")
        progress.advance(task, len(chunk))


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _table(rows: list[ModelRow], decoy_inputs: int, decoys: list[str]) -> Table:
    table = Table(
        title="breast-cancer: every model on the same live traffic",
        caption="latency: acceptance → score; agree: same prediction as the champion; "
        "accuracy: against the labels the demo knows",
    )
    for column in ("model", "role", "version", "scores", "errors", "p50 ms", "p99 ms",
                   "agree", "answered", "fallback", "accuracy"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("model", "role") else "right",
                         no_wrap=True)  # fmt: skip
    for r in rows:
        table.add_row(
            r.model, r.role, r.version[:10], str(r.scores), str(r.errors),
            _fmt(r.p50_ms, "{:.2f}"), _fmt(r.p99_ms, "{:.2f}"),
            _fmt(r.agreement, "{:.1%}"), str(r.answered), str(r.fallbacks),
            _fmt(r.accuracy, "{:.1%}"),
        )  # fmt: skip
    for name in decoys:
        table.add_row(name, "decoy", "-", f"{decoy_inputs} inputs", *["-"] * 7)
    return table


def run_demo(
    directory: Path,
    *,
    n_requests: int = 3000,
    concurrency: int = 16,
    console: Console | None = None,
) -> list[ModelRow]:
    console = console or Console()
    t0 = time.monotonic()
    with console.status("training the demo's models on scikit-learn's breast-cancer data…"):
        data = build_demo(directory)
    console.print(f"deployment file: [bold]{data.deployment_file}[/]")
    dep = load_deployment(data.deployment_file)
    since = time.time()
    app = create_app(Rendezvous([dep]))
    with BackgroundServer(app) as server:
        console.print(f"serving on {server.url} (docs: {server.url}/docs)")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=console) as progress:
            labels = asyncio.run(_drive(server.url, data, n_requests, concurrency, progress))
    # the server has stopped: the archive holds everything that was accepted
    archive = open_archive(dep.archive, base_dir=dep.base_dir)
    archive.start()
    try:
        rows = model_rows(archive, dep, labels=labels, since=since)
        decoys = [m.name for m in dep.models if not m.computes]
        inputs = archive.counts(dep.name)["inputs"]
        comparison = compare(
            archive,
            dep,
            Window(since=since),
            policy=PromotionPolicy("accuracy", min_pairs=200, alpha=0.05),
        )
    finally:
        archive.stop()
    console.print(_table(rows, inputs, decoys))
    console.print("\n[bold]Champion vs challengers[/] (rendezvous compare, from the archive):")
    for table in render(comparison):
        console.print(table)
    console.print(
        f"{len(labels)} requests answered in {time.monotonic() - t0:.1f}s; "
        f"archive: [bold]{data.archive_path}[/] "
        "(SQLite: requests, scores, decoy_inputs, examples, events)"
    )
    return rows
