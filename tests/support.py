"""Helpers shared by tests: deployments over the test models in tests/fixtures."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rendezvous.config import Deployment, parse_deployment
from rendezvous.priority import request_slice

FIXTURES = Path(__file__).parent / "fixtures"
LINUX = sys.platform.startswith("linux")
T = TypeVar("T")


def deployment(
    models: list[dict[str, Any]],
    *,
    features: list[str] | None = None,
    base_dir: Path = FIXTURES,
    **over: Any,
) -> Deployment:
    """A deployment over the test models in tests/fixtures/e2e_models.py."""
    data: dict[str, Any] = {
        "name": "dep",
        "schema": {"features": features or ["a", "b"]},
        "archive": "memory",
        "deadline_ms": 1000,
        "models": models,
    }
    data.update(over)
    return parse_deployment(data, base_dir=base_dir)


def py(name: str, fn: str, role: str = "challenger", **over: Any) -> dict[str, Any]:
    return {"name": name, "kind": "python", "source": f"e2e_models:{fn}", "role": role, **over}


def in_new_thread(function: Callable[[], T]) -> T:
    """``function()`` on a thread of its own, so the test process's threads keep theirs."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(function())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


def custom_slices() -> bool:
    """Whether this kernel keeps a slice a thread asks for (EEVDF custom slices, 6.12+)."""
    return LINUX and in_new_thread(lambda: request_slice(0.004))
