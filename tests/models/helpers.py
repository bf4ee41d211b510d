"""Shared by the model tests: the feature names, deployments, a thread-hopping predict."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer

from rendezvous.config import Deployment, ModelConfig, parse_deployment
from rendezvous.models import AsyncModel, Model, Output, load_model

FEATURES: list[str] = [str(n) for n in load_breast_cancer().feature_names]


def deploy(base_dir: Path, *models: dict[str, Any], schema: Any = None) -> Deployment:
    """A deployment whose first model is the champion and the rest challengers."""
    entries = [
        {"name": f"m{i}", "role": "champion" if i == 0 else "challenger", **m}
        for i, m in enumerate(models)
    ]
    data = {"name": "test", "schema": schema or {"features": FEATURES}, "models": entries}
    return parse_deployment(data, base_dir=base_dir)


def load(base_dir: Path, entry: dict[str, Any], schema: Any = None) -> Model | AsyncModel:
    dep = deploy(base_dir, entry, schema=schema)
    return load_model(dep.models[0], dep)


def config(
    base_dir: Path, entry: dict[str, Any], schema: Any = None
) -> tuple[ModelConfig, Deployment]:
    dep = deploy(base_dir, entry, schema=schema)
    return dep.models[0], dep


async def predict(model: Model | AsyncModel, rows: np.ndarray[Any, Any]) -> Output:
    """Sync models run on a worker thread, as the executor runs them."""
    if isinstance(model, AsyncModel):
        return await model.predict(rows)
    return await asyncio.to_thread(model.predict, rows)


async def close(model: Model | AsyncModel) -> None:
    if isinstance(model, AsyncModel):
        await model.aclose()
    else:
        model.close()
