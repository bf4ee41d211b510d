"""The learner as a real process: killed with SIGKILL in the middle of a training.

Serving (this test's process) keeps answering throughout; a restarted learner continues
from the durable log, and the published versions count every example exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from deploy_learning_helpers import HERE, assert_counted_once, registry_of, write_file
from learner_slow_models import GatedRegressor

from rendezvous.collector import Answer
from rendezvous.config import load_deployment
from rendezvous.feedback import record_feedback
from rendezvous.registry import CHAMPION
from rendezvous.runtime import DeploymentRuntime
from rendezvous.server import free_port
from rendezvous.service import Rendezvous

pytestmark = pytest.mark.slow

MIN_SAMPLES = 40


def start_learner(file: Path, log: Path, *options: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rendezvous", "learner", str(file), "--poll", "0.05",
             "--log-level", "warning", *options],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def feed(runtime: DeploymentRuntime, rng: np.random.Generator, n: int) -> None:
    for _ in range(n):
        x = float(rng.uniform(0, 10))
        answer = await runtime.predict_one([x])
        await record_feedback(runtime, [(answer.request_id, x + float(rng.normal(0, 0.1)))])


async def test_a_learner_killed_mid_training_is_continued_by_the_next(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 10, (100, 1))
    joblib.dump(GatedRegressor(str(gate)).fit(x, x[:, 0]), tmp_path / "gated.joblib")
    spec = {
        "name": "durable",
        "schema": {"features": ["x"]},
        "archive": f"sqlite:///{tmp_path / 'archive.db'}",
        "deadline_ms": 5000,
        "models": [{
            "name": "lin", "kind": "sklearn", "source": "gated.joblib", "role": "champion",
            # every candidate is published: this test is about durability, not validation
            "learning": {"min_samples": MIN_SAMPLES, "drift": None, "tolerance": 1.0},
        }],
    }  # fmt: skip
    file = write_file(spec, tmp_path)
    registry = registry_of(load_deployment(file))
    log = tmp_path / "learner.log"
    answers: list[Answer] = []
    failures: list[BaseException] = []
    done = asyncio.Event()

    async with Rendezvous.from_files([file]) as service:
        runtime = service.get("durable")

        async def load() -> None:  # a client that never stops asking
            while not done.is_set():
                try:
                    answers.append(await runtime.predict_one([1.0]))
                except Exception as exc:
                    failures.append(exc)
                await asyncio.sleep(0.002)

        client = asyncio.create_task(load())
        first = start_learner(file, log)
        try:
            await until(lambda: bool(registry.models()), "version 1 from the first learner")
            gate.write_text("closed")
            await feed(runtime, rng, MIN_SAMPLES + 20)
            await until(lambda: Path(f"{gate}.started").exists(), "a training to start")
            first.send_signal(signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
        answered_before = len(answers)
        await feed(runtime, rng, 20)  # no learner at all: serving goes on
        gate.unlink()

        port = free_port()
        second = start_learner(file, log, "--metrics-port", str(port))
        try:
            await feed(runtime, rng, 2 * MIN_SAMPLES - 40)
            last = 3 * MIN_SAMPLES  # every example stored so far
            await until(
                lambda: registry.versions("durable.lin")[-1].extra["examples"]["last_seq"] == last,
                "the second learner to count every example",
            )
            await until(
                lambda: (
                    service.followers["durable"].serving.get("lin")
                    == registry.resolve("durable.lin", CHAMPION)
                ),
                "serving to follow the champion",
            )
            await asyncio.sleep(0.1)
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, log.read_text()
        done.set()
        await client
        seqs = [e.seq for e in runtime.archive.examples("durable")]

    assert failures == []
    assert len(answers) > answered_before > 0
    assert all(a.reason == "champion" for a in answers)
    assert seqs == list(range(1, 3 * MIN_SAMPLES + 1))
    versions = registry.versions("durable.lin")
    # the killed training is carried out by the second learner, on the same examples
    assert [v.extra["examples"]["last_seq"] for v in versions] == [0, 40, 80, 120]
    assert_counted_once(registry, "durable.lin", seqs)
    assert int(answers[-1].version) == 4  # serving followed the second learner's versions
    # the second learner's own metrics: it took in only what the first had not observed
    assert 'rendezvous_learner_cursor{deployment="durable"} 120.0' in metrics
    assert 'rendezvous_learner_examples_total{deployment="durable",model="lin"} 80.0' in metrics
    assert 'rendezvous_learner_serving_version{deployment="durable",model="lin"} 4.0' in metrics
