"""A worker process that runs one executor and nothing else computes on its event loop:
a thread hand-off would cost a wake-up per batch and protect nobody. Any other process keeps
models on their own threads, so a slow model cannot hold up what shares the loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from rendezvous.config import parse_deployment
from rendezvous.roles import Roles
from rendezvous.service import Rendezvous


@pytest.mark.parametrize(
    ("roles", "inline", "expected"),
    [
        (Roles.worker(["where"]), None, "loop"),
        (Roles.worker(["where"]), False, "thread"),  # the deployment file has the last word
        (Roles.worker(["where"], replicas=2), None, "thread"),  # two executors share the loop
        (Roles.worker(["where", "other"]), None, "thread"),
    ],
    ids=["one executor", "inline: false", "two replicas", "two models"],
)
async def test_only_a_process_with_a_sole_executor_computes_on_the_loop(
    tmp_path: Path,
    redis_url: str,
    deployment_name: str,
    roles: Roles,
    inline: bool | None,
    expected: str,
) -> None:
    name = deployment_name
    model = {"kind": "python", "source": "loop_models:where", "inline": inline}
    spec = {
        "name": name,
        "schema": {"features": ["x"]},
        "bus": redis_url,
        "archive": "memory",
        "deadline_ms": 5000,
        "models": [
            {"name": "where", "role": "champion", **model},
            {"name": "other", **model},
        ],
    }
    dep = parse_deployment(spec, base_dir=tmp_path)
    async with (
        Rendezvous([dep], roles=Roles.api_only()) as api,
        Rendezvous([dep], roles=roles),
    ):
        answers = [await api.get(name).predict_one([float(i)]) for i in range(3)]
    assert [(a.model, a.prediction) for a in answers] == [("where", expected)] * 3
