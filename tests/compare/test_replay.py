"""Replay writes exactly one score per archived request of the window, and never twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import compare_models
import pytest
from compare_data import DEP, T0, Traffic, deployment

from rendezvous.archive import Archive, MemoryArchive, SQLiteArchive
from rendezvous.compare import Window, compare
from rendezvous.config import ModelConfig
from rendezvous.errors import InputError, ModelLoadError
from rendezvous.models import load_model
from rendezvous.replay import replay

NOW = T0 + 86_400.0  # replays run long after the traffic they score


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    archive: Archive = (
        MemoryArchive() if request.param == "memory" else SQLiteArchive(tmp_path / "replay.db")
    )
    archive.start()
    yield archive
    archive.stop()


def _traffic(archive: Archive, n: int = 50) -> None:
    traffic = Traffic(archive)
    for i in range(n):
        traffic.request(f"r{i}", T0 + i, features=[float(i - 25), 1.0])
        traffic.score(f"r{i}", "champ", T0 + i + 0.01, prediction=int(i > 25))
    traffic.flush()


def _candidate(source: str = "compare_models:counted", **kw: object) -> ModelConfig:
    return ModelConfig(name="candidate", kind="python", source=source, **kw)  # type: ignore[arg-type]


def test_one_score_per_request_in_the_window(store: Archive) -> None:
    _traffic(store)
    dep, cfg = deployment(), _candidate()
    result = replay(store, dep, cfg, since=T0 + 10, until=T0 + 40, batch_size=7, clock=lambda: NOW)
    version = load_model(cfg, dep).version
    assert result.to_dict() == {
        "model": "candidate", "version": version, "requests": 30, "skipped": 0,
        "scored": 30, "errors": 0,
    }  # fmt: skip

    scores = store.scores_for_model(DEP, "candidate")
    assert sorted(s.request_id for s in scores) == sorted(f"r{i}" for i in range(10, 40))
    for s in scores:
        i = int(s.request_id[1:])
        assert s.ok and s.prediction == int(i - 25 > 0)  # the features as archived
        assert (s.version, s.queue_ms, s.reply_to, s.computed_at) == (version, 0.0, "", NOW)
        assert s.deployment == DEP and 1 <= s.batch_size <= 7 and s.latency_ms >= 0


def test_running_it_again_adds_nothing(store: Archive) -> None:
    _traffic(store)
    dep, cfg = deployment(), _candidate()
    replay(store, dep, cfg, since=T0 + 10, until=T0 + 40, clock=lambda: NOW)
    calls = compare_models.CALLS["rows"]
    again = replay(store, dep, cfg, since=T0 + 10, until=T0 + 40, clock=lambda: NOW + 1)
    assert (again.scored, again.skipped, again.requests) == (0, 30, 30)
    assert compare_models.CALLS["rows"] == calls  # nothing was even computed
    wider = replay(store, dep, cfg, clock=lambda: NOW + 2)
    assert (wider.scored, wider.skipped, wider.requests) == (20, 30, 50)
    ids = [s.request_id for s in store.scores_for_model(DEP, "candidate")]
    assert len(ids) == len(set(ids)) == 50


def test_a_new_version_is_scored_again(store: Archive) -> None:
    _traffic(store, n=5)
    dep = deployment()
    replay(store, dep, _candidate(version="a"), clock=lambda: NOW)
    second = replay(store, dep, _candidate(version="b"), clock=lambda: NOW)
    assert second.scored == 5
    versions = sorted(s.version for s in store.scores_for_model(DEP, "candidate"))
    assert versions == ["a"] * 5 + ["b"] * 5


def test_a_bad_row_fails_alone(store: Archive) -> None:
    _traffic(store)
    result = replay(store, deployment(), _candidate("compare_models:fussy"), batch_size=16)
    assert (result.scored, result.errors) == (50, 1)
    failed = [s for s in store.scores_for_model(DEP, "candidate") if not s.ok]
    assert [s.request_id for s in failed] == ["r38"]  # the row with a == 13
    assert failed[0].error is not None and "unlucky row" in failed[0].error


def test_a_batch_model(store: Archive) -> None:
    _traffic(store, n=10)
    cfg = _candidate("compare_models:doubled", options={"mode": "batch"})
    replay(store, deployment(), cfg, batch_size=4)
    got = {s.request_id: s.prediction for s in store.scores_for_model(DEP, "candidate")}
    assert got == {f"r{i}": 2.0 * (i - 25) for i in range(10)}


def test_replayed_scores_are_compared_with_the_champion(store: Archive) -> None:
    _traffic(store)
    replay(store, deployment(), _candidate(), clock=lambda: NOW)
    result = compare(store, deployment(), Window(last=50), models=["candidate"])
    assert [m.model for m in result.models] == ["champ", "candidate"]
    candidate = result.model("candidate")
    assert candidate.role == "replayed" and candidate.operations.scored == 50
    assert candidate.agreement is not None
    assert candidate.agreement.agreement == 1.0  # both say i > 25


def test_bad_arguments(store: Archive) -> None:
    with pytest.raises(InputError):
        replay(store, deployment(), _candidate(), batch_size=0)
    with pytest.raises(InputError):
        replay(store, deployment(), _candidate(), since=T0 + 1, until=T0)
    with pytest.raises(ModelLoadError):
        replay(store, deployment(), _candidate("compare_models:nowhere"))
