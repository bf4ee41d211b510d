"""Fixtures for the HTTP API: deployments with real models, a live server, an ASGI client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
import uvicorn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from starlette.types import ASGIApp

from rendezvous.api.app import create_app
from rendezvous.config import Deployment, parse_deployment
from rendezvous.service import Rendezvous

HERE = Path(__file__).parent


@contextmanager
def serve_in_thread(app: ASGIApp, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL.

    The socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and binding it. The app's lifespan runs in the server's own loop.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    # ws="none": the websockets implementations warn on import, and tests turn warnings into
    # errors; the API speaks no websocket.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server stopped during startup (see its log)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {timeout}s")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


@pytest.fixture(scope="session")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    """The breast cancer data set (shipped with scikit-learn): features and labels."""
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def cancer_model(
    cancer: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path]:
    """A fitted classifier and the joblib file it was saved to."""
    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    path = tmp_path_factory.mktemp("models") / "cancer.joblib"
    joblib.dump(model, path)
    return model, path


@pytest.fixture(scope="session")
def make_deployments(cancer_model: tuple[Any, Path]) -> Callable[[Path], list[Deployment]]:
    """Deployments for one service; each service gets its own archive folder."""
    _, model_path = cancer_model

    def make(folder: Path) -> list[Deployment]:
        return [
            _deployment("cancer", {"n_features": 30}, "logreg", "sklearn", str(model_path)),
            _deployment(
                "rules",
                {"features": ["amount", "age"]},
                "risk",
                "python",
                "_api_models:risk",
                archive=f"sqlite:///{folder / 'rules.db'}",
            ),
            _deployment("big", {"features": ["amount"]}, "is_big", "python", "_api_models:is_big"),
            _deployment("broken", {"n_features": 2}, "explode", "python", "_api_models:explode"),
        ]

    return make


def _deployment(
    name: str,
    schema: dict[str, Any],
    model: str,
    kind: str,
    source: str,
    *,
    archive: str = "memory",
) -> Deployment:
    """A deployment of one champion; python sources import from this folder."""
    spec = {
        "name": name,
        "schema": schema,
        "archive": archive,
        # generous, so that a slow machine never turns an answer into a fallback
        "deadline_ms": 5000,
        "models": [{"name": model, "kind": kind, "source": source, "role": "champion"}],
    }
    return parse_deployment(spec, base_dir=HERE)


@pytest.fixture(scope="module")
def server(
    make_deployments: Callable[[Path], list[Deployment]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The base URL of a live server for the module's tests."""
    service = Rendezvous(make_deployments(tmp_path_factory.mktemp("server")))
    with serve_in_thread(create_app(service)) as url:
        yield url


@pytest.fixture
async def service(
    make_deployments: Callable[[Path], list[Deployment]], tmp_path: Path
) -> AsyncIterator[Rendezvous]:
    """A started service (ASGITransport does not run the app's lifespan)."""
    async with Rendezvous(make_deployments(tmp_path)) as rv:
        yield rv


@pytest.fixture
async def client(service: Rendezvous) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the app around ``service``."""
    transport = httpx.ASGITransport(app=create_app(service, max_body_bytes=64 * 1024))
    async with httpx.AsyncClient(transport=transport, base_url="http://rendezvous") as c:
        yield c
