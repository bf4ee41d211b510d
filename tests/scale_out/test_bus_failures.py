"""An API process over Redis does not wait for Redis to confirm a publish; a publish that
fails still gets its request answered at once by the schedule's last resort, and archived."""

from __future__ import annotations

import time
from pathlib import Path

from redis import Redis

from rendezvous.config import parse_deployment
from rendezvous.roles import Roles
from rendezvous.service import Rendezvous


async def test_a_publish_that_fails_after_the_fact_is_answered_by_the_default_at_once(
    tmp_path: Path, redis_url: str, deployment_name: str
) -> None:
    name = deployment_name
    spec = {
        "name": name,
        "schema": {"features": ["x"]},
        "bus": redis_url,
        "archive": f"sqlite:///{tmp_path / 'archive.db'}",
        "deadline_ms": 3000,
        "default": {"prediction": -1},
        "models": [{"name": "m", "role": "champion", "kind": "python",
                    "source": "loop_models:where"}],
    }  # fmt: skip
    dep = parse_deployment(spec, base_dir=tmp_path)
    async with Rendezvous([dep], roles=Roles.api_only()) as api:
        with Redis.from_url(redis_url) as raw:  # the input stream turns into a string:
            raw.set(f"rv:{{{name}}}:in", "not a stream")  # every XADD fails, WRONGTYPE
        runtime = api.get(name)
        t0 = time.perf_counter()
        answer = await runtime.predict_one([1.0])
        waited = time.perf_counter() - t0
        assert (answer.prediction, answer.reason) == (-1, "default")
        assert answer.detail is not None and "WRONGTYPE" in answer.detail
        assert waited < 1.5  # reported by the publish, not found at the 3 s deadline
        failed = api.metrics.registry.get_sample_value(
            "rendezvous_bus_errors_total", {"deployment": name}
        )
        assert failed == 1
        runtime.archive.flush()
        assert runtime.archive.counts(name)["requests"] == 1
