"""``rendezvous serve`` with learning models: a learner child process, stopped on exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from deploy_learning_helpers import regression_spec, write_file
from typer.testing import CliRunner

from rendezvous.cli import app
from rendezvous.errors import RegistryError
from rendezvous.learning.cursor import LearnerLock
from rendezvous.server import free_port

runner = CliRunner()


def test_a_learner_needs_an_archive_it_can_share(tmp_path: Path) -> None:
    file = write_file(regression_spec(tmp_path, learning={}), tmp_path)
    for argv in (["serve", str(file)], ["learner", str(file)]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert "archive" in result.output
        assert "memory" in result.output


def test_the_learner_command_wants_a_learning_model(tmp_path: Path) -> None:
    spec = regression_spec(tmp_path, archive=f"sqlite:///{tmp_path / 'a.db'}")
    result = runner.invoke(app, ["learner", str(write_file(spec, tmp_path))])
    assert result.exit_code == 2
    assert "learning" in result.output


@pytest.mark.slow
def test_serve_runs_a_learner_and_stops_it(tmp_path: Path) -> None:
    spec = regression_spec(
        tmp_path, learning={"min_samples": None}, archive=f"sqlite:///{tmp_path / 'a.db'}"
    )
    file = write_file(spec, tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "rendezvous", "serve", str(file), "--port", str(port),
             "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1/deployments/prices"
    try:
        deadline = time.monotonic() + 60

        def version() -> str | None:
            try:
                models = httpx.get(base).json()["models"]
            except httpx.TransportError:
                return None
            return str(models[0]["version"])

        # the learner child published the file's model as version 1; serving follows it
        while version() != "1":
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "version 1 never served"
            time.sleep(0.1)
        asked = httpx.post(f"{base}/train", json={"model": "lin"})
        assert asked.status_code == 202, asked.text
        while True:  # the learner carries the request out: nothing to train on yet
            events = httpx.get(f"{base}/events", params={"kinds": "validation"}).json()
            if events["events"]:
                break
            assert time.monotonic() < deadline, "the training request was never carried out"
            time.sleep(0.1)
        (decision,) = events["events"]
        assert decision["detail"]["trigger"] == "manual"
        assert decision["detail"]["accepted"] is False
        assert decision["detail"]["reason"] == "no training examples yet"
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn drains, then re-raises the signal, which ends the process at once
        assert proc.wait(30) in (0, -signal.SIGTERM)
    deadline = time.monotonic() + 30
    # the learner went with the server: its lock is free
    lock = LearnerLock(tmp_path / "registry" / ".learners" / "prices.lock")
    while True:
        try:
            lock.acquire()
            break
        except RegistryError:
            assert time.monotonic() < deadline, "the learner outlived the server"
            time.sleep(0.1)
    lock.release()
