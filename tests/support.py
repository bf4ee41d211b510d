"""Helpers shared by tests: deployments over the test models in tests/fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rendezvous.config import Deployment, parse_deployment

FIXTURES = Path(__file__).parent / "fixtures"


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
