"""``rendezvous promote`` and ``rendezvous rollback``: recorded in the archive, followed by
every serving process."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rendezvous.archive import SQLiteArchive
from rendezvous.cli import app
from rendezvous.service import Rendezvous
from support import FIXTURES

runner = CliRunner()


@pytest.fixture(autouse=True)
def _importable_test_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def deployment_file(tmp_path: Path, archive: str | None = None) -> Path:
    def py(name: str, role: str) -> dict[str, Any]:
        return {"name": name, "kind": "python", "source": "e2e_models:sign", "role": role}

    path = tmp_path / "fraud.yaml"
    spec = {
        "name": "fraud",
        "schema": {"features": ["a", "b"]},
        "archive": archive or "sqlite:///fraud.db",  # relative: next to the file
        "models": [py("rules", "champion"), py("xgb", "challenger"), py("ref", "canary")],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def last_json(output: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return event


def test_promote_records_the_event_and_prints_it(tmp_path: Path) -> None:
    file = deployment_file(tmp_path)

    result = runner.invoke(app, ["promote", str(file), "--model", "xgb"])

    assert result.exit_code == 0, result.output
    assert "promoted 'xgb' in 'fraud' (was 'rules')" in result.output
    event = last_json(result.output)
    assert (event["kind"], event["model"], event["deployment"]) == ("promote", "xgb", "fraud")
    assert event["detail"] == {"previous": "rules", "evidence": {}, "by": "admin"}
    assert event["origin"].startswith("cli@")
    with SQLiteArchive(tmp_path / "fraud.db") as archive:
        (stored,) = archive.events("fraud")
    assert stored.seq == event["seq"]


def test_rollback_goes_back_then_fails_with_nothing_to_undo(tmp_path: Path) -> None:
    file = deployment_file(tmp_path)
    promoted = last_json(runner.invoke(app, ["promote", str(file), "--model", "xgb"]).output)

    result = runner.invoke(app, ["rollback", str(file)])

    assert result.exit_code == 0, result.output
    assert "rolled back to 'rules' in 'fraud' (was 'xgb')" in result.output
    event = last_json(result.output)
    assert (event["kind"], event["model"]) == ("rollback", "rules")
    assert event["detail"]["undoes"] == promoted["seq"]

    again = runner.invoke(app, ["rollback", str(file)])
    assert again.exit_code == 1
    assert "nothing to roll back" in again.output


@pytest.mark.parametrize(
    ("model", "says"), [("ref", "'ref' is a canary"), ("nope", "has no model 'nope'")]
)
def test_a_model_that_cannot_be_champion_is_refused(tmp_path: Path, model: str, says: str) -> None:
    file = deployment_file(tmp_path)
    result = runner.invoke(app, ["promote", str(file), "--model", model])
    assert result.exit_code == 1
    assert says in result.output
    with SQLiteArchive(tmp_path / "fraud.db") as archive:
        assert archive.events("fraud") == []


def test_a_memory_archive_cannot_be_reached_from_a_command(tmp_path: Path) -> None:
    file = deployment_file(tmp_path, archive="memory")
    result = runner.invoke(app, ["promote", str(file), "--model", "xgb"])
    assert result.exit_code == 2
    assert "use its HTTP API" in result.output


def test_a_bad_file_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rollback", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2


async def test_a_serving_process_follows_the_command_within_a_second(tmp_path: Path) -> None:
    file = deployment_file(tmp_path)
    async with Rendezvous.from_files([file], follow_interval=0.05) as rv:
        runtime = rv.get("fraud")
        assert runtime.champion_name == "rules"

        result = await asyncio.to_thread(
            runner.invoke, app, ["promote", str(file), "--model", "xgb"]
        )
        assert result.exit_code == 0, result.output

        deadline = time.monotonic() + 1.0
        while runtime.champion_name != "xgb":
            assert time.monotonic() < deadline, "the serving process did not follow"
            await asyncio.sleep(0.02)
        answer = await runtime.predict_one([1.0, 0.0])
        assert (answer.model, answer.reason) == ("xgb", "champion")


def test_compare_sets_the_challengers_against_the_current_champion(tmp_path: Path) -> None:
    file = deployment_file(tmp_path)
    runner.invoke(app, ["promote", str(file), "--model", "xgb"])
    result = runner.invoke(app, ["compare", str(file)])
    assert result.exit_code == 0, result.output
    assert "agreement with the champion xgb" in result.output
