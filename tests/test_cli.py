"""The command line: validate, serve (a real process on a free port), demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from rendezvous.cli import app
from rendezvous.server import free_port
from support import FIXTURES

runner = CliRunner()


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def good(tmp_path: Path) -> Path:
    return write(
        tmp_path / "ok.yaml",
        {
            "name": "ok",
            "schema": {"features": ["a", "b"]},
            "archive": f"sqlite:///{tmp_path / 'ok.db'}",
            "models": [
                {"name": "m", "kind": "python", "source": "e2e_models:sign", "role": "champion"}
            ],
        },
    )


@pytest.fixture(autouse=True)
def _importable_test_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def test_validate_says_ok(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(good(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "deployment 'ok', 1 models" in result.output


def test_validate_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    bad = write(
        tmp_path / "bad.yaml",
        {
            "name": "bad",
            "schema": {"features": ["a"]},
            "deadline": 5,
            "models": [
                {"name": "m", "kind": "python", "source": "e2e_models:sign", "role": "champion"},
                {"name": "x", "kind": "sklearn", "source": "missing.joblib"},
            ],
        },
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "2 problem(s)" in result.output
    assert "deadline: unknown key" in result.output
    assert f"models[1].source: file not found: {tmp_path / 'missing.joblib'}" in result.output


def test_validate_loads_models_and_names_the_one_that_fails(tmp_path: Path) -> None:
    data = yaml.safe_load(good(tmp_path).read_text())
    data["models"].append({"name": "ghost", "kind": "python", "source": "e2e_models:nothing"})
    path = write(tmp_path / "ghost.yaml", data)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "models[1].source" in result.output
    assert "nothing" in result.output
    assert runner.invoke(app, ["validate", "--no-load", str(path)]).exit_code == 0


def test_serve_runs_a_real_server_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(FIXTURES)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rendezvous", "serve", str(good(tmp_path)), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        answers = [
            httpx.post(f"{url}/v1/deployments/ok/predict", json={"input": [i - 5, 0]}).json()
            for i in range(10)
        ]
        assert [a["prediction"] for a in answers] == [0] * 6 + [1] * 4
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    # uvicorn drains, then re-raises the signal: 130 is the shell's code for Ctrl-C
    assert proc.returncode in (0, 130), out
    assert "Application shutdown complete" in out
    # a clean stop flushed every accepted request to the archive
    from rendezvous.archive import open_archive

    archive = open_archive(f"sqlite:///{tmp_path / 'ok.db'}")
    archive.start()
    try:
        assert archive.counts("ok") == {"requests": 10, "scores": 10, "inputs": 0, "examples": 0}
    finally:
        archive.stop()


def test_serve_refuses_a_bad_file_with_its_problems(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", {"name": "bad"})
    result = runner.invoke(app, ["serve", str(bad)])
    assert result.exit_code == 2
    assert "schema: required key is missing" in result.output
    assert "models: required key is missing" in result.output


def test_demo_prints_the_per_model_table(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rendezvous",
            "demo",
            "--directory",
            str(tmp_path / "demo"),
            "--requests",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    for model, role in [("rules", "champion"), ("logreg", "challenger"), ("forest", "challenger"),
                        ("river", "canary"), ("decoy", "decoy")]:  # fmt: skip
        assert any(model in line and role in line for line in out.splitlines()), out
    assert "300 inputs" in out  # the decoy archived every input
    assert "300 requests answered" in out
    assert str(tmp_path / "demo" / "archive.db") in out.replace("\n", "")
    assert "quality against labels" in out  # the labels went back as feedback
    assert "promotion: accuracy" in out  # and the demo ends with the comparison

    # the README's walk-through on the demo deployment
    dep = str(tmp_path / "demo" / "deployment.yaml")
    compared = runner.invoke(app, ["compare", dep, "--last", "300", "--metric", "accuracy"])
    assert compared.exit_code == 0, compared.output
    assert "logreg" in compared.output and "accuracy" in compared.output
    onnx = str(tmp_path / "demo" / "forest.onnx")
    replayed = runner.invoke(
        app, ["replay", dep, "--model", "forest2", "--kind", "onnx", "--source", onnx]
    )
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 300 archived requests through forest2" in replayed.output
    promoted = runner.invoke(app, ["promote", dep, "--model", "logreg"])
    assert promoted.exit_code == 0, promoted.output
    rolled = runner.invoke(app, ["rollback", dep])
    assert rolled.exit_code == 0, rolled.output
    assert "rules" in rolled.output


async def _serve_some(path: Path, n: int) -> None:
    from rendezvous import Rendezvous, load_deployment

    async with Rendezvous([load_deployment(path)]) as rv:
        await rv.get(load_deployment(path).name).predict(
            [[float(i) - n / 2, 1.0] for i in range(n)]
        )


def test_compare_prints_the_models_side_by_side(tmp_path: Path) -> None:
    import asyncio

    data = yaml.safe_load(good(tmp_path).read_text())
    data["models"].append({"name": "contrarian", "kind": "python", "source": "e2e_models:negated"})
    path = write(tmp_path / "two.yaml", data)
    asyncio.run(_serve_some(path, 40))
    result = runner.invoke(app, ["compare", str(path), "--last", "40"])
    assert result.exit_code == 0, result.output
    assert "contrarian" in result.output
    assert "0.0%" in result.output or "0%" in result.output  # it never agrees with the champion


def test_replay_scores_archived_requests_with_a_new_model(tmp_path: Path) -> None:
    import asyncio

    path = good(tmp_path)
    asyncio.run(_serve_some(path, 30))
    args = ["replay", str(path), "--model", "candidate", "--kind", "python",
            "--source", "e2e_models:negated"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "replayed 30 archived requests through candidate" in result.output
    assert "30 scored" in result.output
    again = runner.invoke(app, args)
    assert "0 scored" in again.output and "30 already done" in again.output


def test_bad_times_are_refused_naming_the_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(good(tmp_path)), "--since", "yesterday-ish"])
    assert result.exit_code == 2
    assert "--since" in result.output
