"""The model process: shadows compute in a child process at idle CPU priority.

Embedded mode (memory bus): challengers and canaries compute in one child per deployment,
the champion in the serving process. These tests drive the whole request path through
the service object and check where each model computes, that every accepted request gets
exactly one score per model (also across a crash, a promotion and a new version), and
that a slow shadow never delays the champion.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from isolation_models import SLEEP_S, LockedVersioned, Versioned

from rendezvous.archive.base import Archive
from rendezvous.collector import Answer
from rendezvous.config import Deployment, ModelKind, Role, parse_deployment
from rendezvous.errors import ConfigError
from rendezvous.executor import ModelExecutor
from rendezvous.isolation import host
from rendezvous.isolation.host import ModelProcess
from rendezvous.messages import Score
from rendezvous.runtime import DeploymentRuntime
from rendezvous.service import Rendezvous
from support import deployment

HERE = Path(__file__).parent
LINUX = sys.platform.startswith("linux")


def dep(models: list[dict[str, Any]], **over: Any) -> Deployment:
    """A deployment over the models of isolation_models.py (this directory)."""
    return deployment(models, base_dir=HERE, **over)


def iso(name: str, fn: str, role: str = "challenger", **over: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "python",
        "source": f"isolation_models:{fn}",
        "role": role,
        **over,
    }


def rows(n: int, start: int = 0) -> list[list[float]]:
    return [[float(i), 1.0] for i in range(start, start + n)]


async def until(cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def settle(runtime: DeploymentRuntime, timeout: float = 5.0) -> None:
    """Until nothing is queued here or in the model process (scores archived too)."""
    await until(lambda: runtime.idle, "the runtime is idle", timeout)


def archive_of(runtime: DeploymentRuntime) -> Archive:
    runtime.archive.flush()
    return runtime.archive


def process_of(runtime: DeploymentRuntime) -> ModelProcess:
    process = runtime.model_process
    assert process is not None, "no model process"
    return process


def child_pid(process: ModelProcess) -> int:
    pid = process.pid
    assert pid is not None
    return pid


def per_model(archive: Archive, request_id: str) -> Counter[str]:
    return Counter(s.model for s in archive.scores_for_request(request_id))


def scores_of(archive: Archive, request_id: str, model: str) -> list[Score]:
    return [s for s in archive.scores_for_request(request_id) if s.model == model]


def one_score(archive: Archive, request_id: str, model: str) -> Score:
    """The one score of ``model`` for the request: none missing, none twice."""
    found = scores_of(archive, request_id, model)
    assert len(found) == 1, f"{request_id}: {len(found)} scores of '{model}', expected 1"
    return found[0]


def seq(answer: Answer) -> int:
    """The runtime's request counter: ids end in ``-<n>``, in acceptance order."""
    return int(answer.request_id.rsplit("-", 1)[1])


class Traffic:
    """Requests in the background, a few rows at a time, until stopped."""

    def __init__(self, runtime: DeploymentRuntime, per_call: int = 3) -> None:
        self.runtime = runtime
        self.per_call = per_call
        self.answers: list[Answer] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Traffic:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            self.answers.extend(await self.runtime.predict(rows(self.per_call, i)))
            i += self.per_call
            await asyncio.sleep(0.005)


# -- placement -----------------------------------------------------------------------------


async def test_challengers_and_canaries_compute_in_an_idle_child_process(start: Any) -> None:
    rv = await start(
        dep(
            [
                iso("champ", "sign", "champion"),
                iso("chal", "negated"),
                iso("canary", "sign", "canary"),
                iso("threaded", "negated", isolation="thread"),
            ]
        )
    )
    runtime = rv.get("dep")
    process = process_of(runtime)
    assert set(process.assigned) == {"chal", "canary"}
    assert process.running
    # the champion and the thread-isolated challenger compute here; the others do not
    assert set(runtime.executors) == {"champ", "threaded"}
    assert all(isinstance(runtime.executors[n], ModelExecutor) for n in ("champ", "threaded"))
    # every model is still loaded here (the API describes them)
    assert set(runtime.models) == {"champ", "chal", "canary", "threaded"}

    pid = child_pid(process)
    assert pid != os.getpid()
    os.kill(pid, 0)  # a live process

    answers = await runtime.predict(rows(10, start=-5))  # computes, so threads exist
    await settle(runtime)
    archive = archive_of(runtime)
    for a in answers:
        assert per_model(archive, a.request_id) == {
            "champ": 1,
            "chal": 1,
            "canary": 1,
            "threaded": 1,
        }

    if LINUX:
        assert process.child_priority == "idle"
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # the child's main thread
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the serving process is not lowered


@pytest.mark.skipif(not LINUX, reason="SCHED_IDLE is Linux only")
async def test_every_thread_of_the_child_runs_at_idle_priority(start: Any) -> None:
    rv = await start(dep([iso("champ", "sign", "champion"), iso("chal", "negated")]))
    runtime = rv.get("dep")
    pid = child_pid(process_of(runtime))
    await runtime.predict(rows(10))  # computes, so the executor threads exist
    await settle(runtime)
    threads = {int(t): f"/proc/{pid}/task/{t}" for t in os.listdir(f"/proc/{pid}/task")}
    policies = {t: os.sched_getscheduler(t) for t in threads}
    assert len(policies) > 1
    assert set(policies.values()) == {os.SCHED_IDLE}, policies


async def test_no_model_process_when_every_shadow_stays_in_the_serving_process(
    start: Any,
) -> None:
    rv = await start(
        dep([iso("champ", "sign", "champion"), iso("chal", "negated", isolation="thread")])
    )
    runtime = rv.get("dep")
    assert runtime.model_process is None
    assert set(runtime.executors) == {"champ", "chal"}


# -- scores --------------------------------------------------------------------------------


async def test_memory_archive_every_request_gets_one_score_per_model(start: Any) -> None:
    rv = await start(
        dep(
            [iso("champ", "sign", "champion"), iso("chal", "negated"), iso("can", "sign", "canary")]
        )
    )
    runtime = rv.get("dep")
    process = process_of(runtime)
    assert not process.archive_in_child  # the serving process archives what the child sends
    answers = await runtime.predict(rows(40, start=-20))
    assert {a.model for a in answers} == {"champ"}
    await settle(runtime)
    archive = archive_of(runtime)
    versions = {n: m.version for n, m in runtime.models.items()}
    for a in answers:
        scores = archive.scores_for_request(a.request_id)
        assert Counter(s.model for s in scores) == {"champ": 1, "chal": 1, "can": 1}
        assert all(s.ok and s.version == versions[s.model] for s in scores)
        by_model = {s.model: s for s in scores}
        positive = seq(a) - 20 > 0  # row i of rows(40, -20) has a == i
        assert by_model["chal"].prediction == (0 if positive else 1)
        assert by_model["can"].prediction == (1 if positive else 0)
    assert archive.counts("dep")["scores"] == 3 * len(answers)


async def test_sqlite_archive_shadow_scores_are_written_by_the_child(
    start: Any, tmp_path: Path
) -> None:
    rv = await start(
        dep(
            [iso("champ", "sign", "champion"), iso("chal", "negated")],
            archive=f"sqlite:///{tmp_path / 'a.db'}",
        )
    )
    runtime = rv.get("dep")
    process = process_of(runtime)
    assert process.archive_in_child
    # what the serving process itself archives for the model process (error scores only)
    by_parent: list[Score] = []
    forward = process._archive

    def spy(scores: Sequence[Score]) -> None:
        by_parent.extend(scores)
        forward(scores)

    process._archive = spy
    answers = await runtime.predict(rows(30))
    await settle(runtime)
    assert by_parent == []
    archive = archive_of(runtime)  # reads the database file the child wrote to
    version = runtime.models["chal"].version
    for a in answers:
        chal = one_score(archive, a.request_id, "chal")  # exactly one: no duplicates
        assert chal.ok and chal.version == version
        assert per_model(archive, a.request_id) == {"champ": 1, "chal": 1}
    assert archive.counts("dep") == {"requests": 30, "scores": 60, "inputs": 0, "examples": 0}


async def test_stop_flushes_the_childs_scores_to_sqlite(tmp_path: Path) -> None:
    from rendezvous.archive import open_archive

    url = f"sqlite:///{tmp_path / 'a.db'}"
    rv = Rendezvous([dep([iso("champ", "sign", "champion"), iso("chal", "negated")], archive=url)])
    await rv.start()
    answers = await rv.get("dep").predict(rows(100))
    await rv.stop()  # no settle: the child drains and flushes on stop
    archive = open_archive(url)
    archive.start()
    try:
        assert archive.counts("dep")["scores"] == 200
        chal = archive.scores_for_model("dep", "chal")
        assert sorted(s.request_id for s in chal) == sorted(a.request_id for a in answers)
    finally:
        archive.stop()


# -- answering -----------------------------------------------------------------------------


async def test_a_raising_champion_falls_back_to_a_challenger_in_the_child(start: Any) -> None:
    rv = await start(dep([iso("champ", "boom", "champion"), iso("backup", "negated")]))
    runtime = rv.get("dep")
    assert set(process_of(runtime).assigned) == {"backup"}
    answer = await runtime.predict_one([1.0, 1.0])
    assert answer.reason == "fallback:backup"
    assert (answer.model, answer.prediction) == ("backup", 0)
    assert answer.version == runtime.models["backup"].version
    assert answer.detail is not None and "boom" in answer.detail
    await settle(runtime)
    archive = archive_of(runtime)
    champ = one_score(archive, answer.request_id, "champ")
    assert champ.error is not None and "boom" in champ.error
    backup = one_score(archive, answer.request_id, "backup")
    assert backup.ok and backup.prediction == 0


async def test_a_failing_champion_hands_work_over_at_once(start: Any) -> None:
    # A 1 s hand-over window, and a deadline so long that the checks for requests still
    # waited for come late too (every 625 ms): only handing over the moment the champion
    # fails lets the challenger answer at once.
    backup = iso("backup", "negated", batch={"linger_ms": 1000})
    rv = await start(dep([iso("champ", "boom", "champion"), backup], deadline_ms=5000))
    runtime = rv.get("dep")
    t0 = time.perf_counter()
    answers = await runtime.predict(rows(5))
    elapsed = time.perf_counter() - t0
    assert [a.reason for a in answers] == ["fallback:backup"] * 5
    assert elapsed < 0.5  # not the window's 1 s


async def test_a_champion_too_slow_for_the_deadline_falls_back_within_it(start: Any) -> None:
    # The champion neither answers nor fails in time, and the hand-over window is longer
    # than the deadline: only a request still waited for going over early (by a quarter of
    # the deadline) lets the challenger answer before the deadline.
    backup = iso("backup", "negated", batch={"linger_ms": 1000})
    deadline_ms = 400
    rv = await start(
        dep([iso("champ", "glacial", "champion"), backup], deadline_ms=deadline_ms)
    )  # fmt: skip
    runtime = rv.get("dep")
    for i in range(3):  # one after the other: each opens a new window
        t0 = time.perf_counter()
        answer = await runtime.predict_one([float(i + 1), 1.0])
        elapsed_ms = (time.perf_counter() - t0) * 1000
        assert (answer.reason, answer.model, answer.prediction) == ("fallback:backup", "backup", 0)
        assert elapsed_ms < deadline_ms + 100  # by the deadline, not the champion's 1 s


async def test_answered_requests_wait_for_the_window_and_go_over_together(start: Any) -> None:
    # The champion answers each at once: nothing is waited for, so the checks that hand a
    # waited-for request over early leave these to the window, and the shadow computes
    # them in one batch.
    shadow = iso("shadow", "negated", batch={"linger_ms": 1000})
    rv = await start(dep([iso("champ", "sign", "champion"), shadow], deadline_ms=1000))
    runtime = rv.get("dep")
    answers = []
    for i in range(5):  # 100 ms apart: several checks of the window pass meanwhile
        answers.append(await runtime.predict_one([float(i + 1), 1.0]))
        await asyncio.sleep(0.1)
    assert [a.reason for a in answers] == ["champion"] * 5
    await settle(runtime)
    archive = archive_of(runtime)
    shadow_scores = [one_score(archive, a.request_id, "shadow") for a in answers]
    assert [s.batch_size for s in shadow_scores] == [5] * 5


async def test_a_slow_shadow_in_the_child_does_not_delay_champion_answers(start: Any) -> None:
    shadow = iso("shadow", "slow_batch", options={"mode": "batch"})
    rv = await start(dep([iso("champ", "sign", "champion"), shadow]))
    runtime = rv.get("dep")
    assert set(process_of(runtime).assigned) == {"shadow"}
    latencies: list[float] = []
    answers: list[Answer] = []
    for i in range(20):  # sequential: each would wait a shadow call if the shadow held it
        t0 = time.perf_counter()
        answer = await runtime.predict_one([float(i + 1), 0.0])
        latencies.append(time.perf_counter() - t0)
        assert (answer.model, answer.reason) == ("champ", "champion")
        answers.append(answer)
    assert max(latencies) < SLEEP_S / 2
    await settle(runtime)
    archive = archive_of(runtime)
    shadow_scores = [one_score(archive, a.request_id, "shadow") for a in answers]
    assert all(s.ok for s in shadow_scores)
    # the shadow really was that slow while the champion answered
    assert min(s.latency_ms for s in shadow_scores) >= SLEEP_S * 1000 * 0.9


# -- crash ---------------------------------------------------------------------------------


@pytest.mark.skipif(not LINUX, reason="SIGSTOP")
async def test_a_model_process_that_stops_reading_sheds_its_oldest_work(
    start: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child stops (as a starved one does): once the pipe is full, what waits in the
    # serving process past the shadow's queue size becomes dropped-work scores, counted,
    # instead of piling up; the champion answers throughout.
    monkeypatch.setattr(host, "MAX_UNREAD_BYTES", 0)
    shadow = iso("shadow", "negated", queue_size=20)
    rv = await start(dep([iso("champ", "sign", "champion"), shadow]))
    runtime = rv.get("dep")
    process = process_of(runtime)
    pid = child_pid(process)
    os.kill(pid, signal.SIGSTOP)
    answers: list[Answer] = []
    try:
        for k in range(30):
            answers.extend(await runtime.predict(rows(100, k * 100)))
            await asyncio.sleep(0.01)
        await until(lambda: rv.metrics.dropped.labels("dep", "shadow")._value.get() > 0,
                    "work is shed")  # fmt: skip
    finally:
        os.kill(pid, signal.SIGCONT)
    assert [a.reason for a in answers] == ["champion"] * len(answers)
    await settle(runtime, timeout=20)
    archive = archive_of(runtime)
    scores = [one_score(archive, a.request_id, "shadow") for a in answers]
    dropped = [s for s in scores if not s.ok]
    assert dropped and all(s.error is not None and s.error.startswith("dropped:") for s in dropped)
    assert rv.metrics.dropped.labels("dep", "shadow")._value.get() == len(dropped)
    assert scores[-1].ok  # the newest work was kept


@pytest.mark.parametrize("archive", ["memory", "sqlite"])
async def test_a_killed_model_process_leaves_error_scores_and_restarts(
    start: Any, tmp_path: Path, archive: str
) -> None:
    url = "memory" if archive == "memory" else f"sqlite:///{tmp_path / 'a.db'}"
    rv = await start(
        dep(
            [
                iso("champ", "sign", "champion"),
                iso("chal", "steady_batch", options={"mode": "batch"}),
                iso("can", "negated", "canary"),
            ],
            archive=url,
        )
    )
    runtime = rv.get("dep")
    process = process_of(runtime)
    first = child_pid(process)
    async with Traffic(runtime) as traffic:
        await until(lambda: len(traffic.answers) >= 30 and not process.idle, "work is in the child")
        os.kill(first, signal.SIGKILL)
        await until(
            lambda: process.restarts >= 1 and process.running, "the child restarts", timeout=10
        )
        assert child_pid(process) != first
        restarted = len(traffic.answers)
        await until(lambda: len(traffic.answers) >= restarted + 30, "traffic after the restart")
    answers = traffic.answers
    after = await runtime.predict(rows(10))
    await settle(runtime, timeout=10)
    archive_ = archive_of(runtime)

    errors: list[Score] = []
    for a in answers + after:
        assert a.model == "champ"
        assert per_model(archive_, a.request_id) == {"champ": 1, "chal": 1, "can": 1}
        for model in ("chal", "can"):
            score = one_score(archive_, a.request_id, model)
            if not score.ok:
                assert score.error is not None and "model process" in score.error
                errors.append(score)
    assert errors, "the kill found no work in the child"
    assert archive_.counts("dep")["requests"] == len(answers) + len(after)
    # after the restart, requests are computed normally again
    for a in after:
        assert all(s.ok for s in archive_.scores_for_request(a.request_id))
    assert process.restarts == 1


# -- promotion -----------------------------------------------------------------------------


async def test_a_promoted_challenger_moves_into_the_serving_process(start: Any) -> None:
    rv = await start(dep([iso("champ", "sign", "champion"), iso("chal", "negated")]))
    runtime = rv.get("dep")
    process = process_of(runtime)
    assert "chal" not in runtime.executors
    before = await runtime.predict(rows(20, start=1))
    assert {a.model for a in before} == {"champ"}
    assert runtime.set_champion("chal") == "champ"
    during = await runtime.predict(rows(20, start=1))  # while the move may be under way
    await until(
        lambda: "chal" in runtime.executors and "chal" not in process.assigned,
        "the challenger computes in the serving process",
    )
    after = await runtime.predict(rows(20, start=1))
    assert all((a.model, a.reason, a.prediction) == ("chal", "champion", 0) for a in during)
    assert all((a.model, a.reason, a.prediction) == ("chal", "champion", 0) for a in after)
    local = runtime.executors["chal"]
    assert isinstance(local, ModelExecutor)
    assert len(after) <= local.handled <= len(during) + len(after)
    await settle(runtime)
    archive = archive_of(runtime)
    for a in before + during + after:
        assert per_model(archive, a.request_id) == {"champ": 1, "chal": 1}
        assert all(s.ok for s in archive.scores_for_request(a.request_id))


# -- models that cannot go to the child ----------------------------------------------------


async def test_a_model_that_cannot_be_pickled_computes_in_the_serving_process(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="rendezvous.isolation"):
        rv = await start(
            dep(
                [
                    iso("champ", "sign", "champion"),
                    iso("locked", "locked"),
                    iso("chal", "negated"),
                ]
            )
        )
    runtime = rv.get("dep")
    process = process_of(runtime)
    assert set(process.assigned) == {"chal"}
    assert set(runtime.executors) == {"champ", "locked"}
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "rendezvous.isolation"
    ]
    assert any(
        "'locked' computes in the serving process" in m and "cannot be pickled" in m
        for m in warnings
    ), warnings
    answers = await runtime.predict(rows(10))
    await settle(runtime)
    archive = archive_of(runtime)
    for a in answers:
        assert per_model(archive, a.request_id) == {"champ": 1, "locked": 1, "chal": 1}
        score = one_score(archive, a.request_id, "locked")
        assert score.ok and score.prediction == 1


# -- new versions --------------------------------------------------------------------------


async def versioned_chal(
    start: Any,
) -> tuple[DeploymentRuntime, ModelProcess, Archive, Callable[[], set[str]]]:
    """A champion and an isolated challenger at version v1, and the versions it scored with."""
    rv = await start(dep([iso("champ", "sign", "champion"), iso("chal", "sign", version="v1")]))
    runtime = rv.get("dep")
    archive = runtime.archive

    def chal_versions() -> set[str]:
        archive.flush()
        return {s.version for s in archive.scores_for_model("dep", "chal")}

    return runtime, process_of(runtime), archive, chal_versions


async def test_a_new_version_of_an_isolated_model_is_installed_in_the_child(
    start: Any,
) -> None:
    runtime, process, archive, chal_versions = await versioned_chal(start)

    async with Traffic(runtime) as traffic:
        await until(lambda: chal_versions() == {"v1"}, "v1 scores")
        runtime.swap("chal", Versioned("chal", "v2"))
        current = runtime.current_model("chal")
        assert current is not None and current.version == "v2"
        await until(lambda: "v2" in chal_versions(), "v2 scores")
        seen = len(traffic.answers)
        await until(lambda: len(traffic.answers) >= seen + 15, "traffic after the swap")
    answers = traffic.answers
    assert "chal" in process.assigned and "chal" not in runtime.executors  # still isolated
    await settle(runtime)
    archive.flush()
    versions: list[str] = []
    for a in sorted(answers, key=seq):
        score = one_score(archive, a.request_id, "chal")  # none lost, none twice
        assert score.ok
        if score.version == "v2":
            assert score.prediction == "v2"  # computed by the object that says v2
        versions.append(score.version)
    # in acceptance order: v1 until the new version is in, v2 from then on
    switch = versions.index("v2")
    assert set(versions[:switch]) == {"v1"} and set(versions[switch:]) == {"v2"}
    assert versions[-1] == "v2"


async def test_a_new_version_that_cannot_be_pickled_moves_into_the_serving_process(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    runtime, process, archive, chal_versions = await versioned_chal(start)

    def moved() -> bool:
        return "chal" in runtime.executors and "chal" not in process.assigned

    async def burst() -> list[Answer]:
        """A request on every turn of the loop until the move is done: none may fall
        between the model process letting the model go and the serving process taking it."""
        pending: list[asyncio.Future[Answer]] = []
        deadline = time.monotonic() + 5.0
        while not moved() and time.monotonic() < deadline:
            pending.append(asyncio.ensure_future(runtime.predict_one([1.0, 1.0])))
            await asyncio.sleep(0)
        return list(await asyncio.gather(*pending))

    with caplog.at_level(logging.ERROR, logger="rendezvous.runtime"):
        async with Traffic(runtime) as traffic:
            await until(lambda: chal_versions() == {"v1"}, "v1 scores")
            during = asyncio.ensure_future(burst())
            await asyncio.sleep(0)
            runtime.swap("chal", LockedVersioned("chal", "v3"))
            await until(moved, "chal computes in the serving process")
            burst_answers = await during
            await until(lambda: "v3" in chal_versions(), "v3 scores")
            seen = len(traffic.answers)
            await until(lambda: len(traffic.answers) >= seen + 15, "traffic after the move")
    assert any("'chal' moves into the serving process" in r.getMessage() for r in caplog.records), (
        caplog.records
    )
    assert burst_answers
    await settle(runtime)
    archive.flush()
    versions = []
    for a in sorted(traffic.answers + burst_answers, key=seq):
        score = one_score(archive, a.request_id, "chal")  # none lost, none twice
        assert score.ok
        versions.append(score.version)
    switch = versions.index("v3")
    assert set(versions[:switch]) == {"v1"} and set(versions[switch:]) == {"v3"}


# -- configuration ---------------------------------------------------------------------------


def _problems(models: list[dict[str, Any]]) -> list[str]:
    data = {"name": "d", "schema": {"features": ["a", "b"]}, "models": models}
    with pytest.raises(ConfigError) as info:
        parse_deployment(data)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ({"role": "champion"}, "champion"),
        ({"role": "split", "share": 0.5}, "split"),
        ({"role": "challenger", "inline": True}, "inline"),
        ({"role": "challenger", "kind": "http", "source": "http://h/v1/predict"}, "http"),
    ],
)
def test_isolation_process_where_it_cannot_apply_is_rejected(
    model: dict[str, Any], words: str
) -> None:
    bad = {"name": "bad", "kind": "python", "source": "m:f", "isolation": "process", **model}
    models = [bad] if model["role"] == "champion" else [
        {"name": "champ", "kind": "python", "source": "m:f", "role": "champion"},
        bad,
    ]  # fmt: skip
    where = f"models[{models.index(bad)}].isolation: 'process'"
    found = [p for p in _problems(models) if p.startswith(where)]
    assert len(found) == 1, _problems(models)  # one problem, at the field, saying why
    assert words in found[0], found


def test_isolation_defaults_to_the_model_process_for_shadows_only() -> None:
    d = parse_deployment(
        {
            "name": "d",
            "schema": {"features": ["a", "b"]},
            "models": [
                {"name": "champ", "kind": "python", "source": "m:f", "role": "champion"},
                {"name": "chal", "kind": "python", "source": "m:f"},
                {"name": "can", "kind": "python", "source": "m:f", "role": "canary"},
                {"name": "proc", "kind": "python", "source": "m:f", "isolation": "process"},
                {"name": "thr", "kind": "python", "source": "m:f", "isolation": "thread"},
                {"name": "inl", "kind": "python", "source": "m:f", "inline": True},
                {"name": "web", "kind": "http", "source": "http://h/v1/predict"},
            ],
        }
    )
    placed = {m.name for m in d.models if m.in_model_process()}
    assert placed == {"chal", "can", "proc"}
    assert d.model("web").kind is ModelKind.HTTP
    # a champion demoted to a challenger by a promotion may compute there
    assert d.model("champ").in_model_process(Role.CHALLENGER)
    assert not d.model("chal").in_model_process(Role.CHAMPION)
