"""The whole request path in one process: API-less, through the service object."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from typing import Any

import pytest

from rendezvous.archive.base import Archive
from rendezvous.errors import InputError
from rendezvous.executor import ModelExecutor
from rendezvous.models.base import Matrix, Model, ModelInfo, Output
from rendezvous.service import Rendezvous
from support import FIXTURES, deployment, py


def archive_of(rv: Rendezvous, name: str = "dep") -> Archive:
    archive = rv.get(name).archive
    archive.flush()
    return archive


async def settle(rv: Rendezvous, name: str = "dep", timeout: float = 5.0) -> None:
    """Wait until every executor has drained its queue (shadows finish after answers)."""
    runtime = rv.get(name)
    deadline = time.monotonic() + timeout
    while not runtime.idle:
        assert time.monotonic() < deadline, "executors did not drain"
        await asyncio.sleep(0.01)


async def test_champion_answers_and_every_model_is_archived(start: Any) -> None:
    dep = deployment(
        [
            py("champ", "sign", "champion"),
            py("chal", "negated"),
            py("canary", "sign", "canary"),
            {"name": "decoy", "kind": "decoy", "role": "decoy"},
        ]
    )
    rv = await start(dep)
    runtime = rv.get("dep")
    answers = await runtime.predict([[1.0, 2.0], [-1.0, 0.5], {"a": 3, "b": 4}])
    assert [a.prediction for a in answers] == [1, 0, 1]
    assert {a.reason for a in answers} == {"champion"}
    assert {a.model for a in answers} == {"champ"}
    await settle(rv)
    archive = archive_of(rv)
    for answer in answers:
        scores = archive.scores_for_request(answer.request_id)
        assert sorted(s.model for s in scores) == ["canary", "chal", "champ"]  # one each
        assert all(s.ok for s in scores)
        decoy = archive.decoy_inputs(answer.request_id)
        assert len(decoy) == 1
        record = archive.get_request(answer.request_id)
        assert record is not None
        assert record.features == decoy[0].features  # what the models saw
        assert (record.model, record.reason) == ("champ", "champion")
    assert archive.counts("dep") == {"requests": 3, "scores": 9, "inputs": 3, "examples": 0}


async def test_a_sleeping_shadow_does_not_delay_champion_answers(start: Any) -> None:
    dep = deployment([py("champ", "sign", "champion"), py("shadow", "sleepy")])
    rv = await start(dep)
    runtime = rv.get("dep")
    latencies: list[float] = []
    for i in range(20):  # sequential: each would wait 200 ms if the shadow held it
        t0 = time.perf_counter()
        answer = await runtime.predict_one([float(i), 0.0])
        latencies.append(time.perf_counter() - t0)
        assert answer.model == "champ"
    # all 20 together would take 4 s on the shadow; the user waited far less than one sleep
    assert max(latencies) < 0.2
    assert sum(latencies) < 1.0


async def test_a_raising_champion_falls_back_and_says_so(start: Any) -> None:
    dep = deployment([py("champ", "boom", "champion"), py("backup", "negated")])
    rv = await start(dep)
    answer = await rv.get("dep").predict_one([1.0, 1.0])
    assert answer.model == "backup"
    assert answer.reason == "fallback:backup"
    assert answer.prediction == 0
    assert answer.detail is not None and "ValueError: boom" in answer.detail
    await settle(rv)
    [champ] = [
        s for s in archive_of(rv).scores_for_request(answer.request_id) if s.model == "champ"
    ]
    assert champ.error is not None and "boom" in champ.error


async def test_all_models_too_slow_gives_the_default_by_the_deadline(start: Any) -> None:
    dep = deployment(
        [py("champ", "glacial", "champion"), py("other", "glacial")],
        deadline_ms=100,
        default={"prediction": 42},
    )
    rv = await start(dep)
    t0 = time.perf_counter()
    answers = await rv.get("dep").predict([[1.0, 1.0], [2.0, 2.0]])
    elapsed = time.perf_counter() - t0
    assert [(a.prediction, a.reason, a.model) for a in answers] == [(42, "default", None)] * 2
    assert elapsed < 0.1 + 0.15  # the deadline plus a small margin, never the models' 1 s


async def test_an_executor_survives_model_errors_row_by_row(start: Any) -> None:
    dep = deployment([py("champ", "picky", "champion")], default={"prediction": -1})
    rv = await start(dep)
    answers = await rv.get("dep").predict([[float(i), 0.0] for i in range(10, 16)])
    by_row = dict(zip(range(10, 16), answers, strict=True))
    assert by_row[13].reason == "default"
    assert all(a.prediction == 1 for i, a in by_row.items() if i != 13)
    # and it keeps serving afterwards
    assert (await rv.get("dep").predict_one([1.0, 1.0])).prediction == 1


async def test_requests_that_queue_up_are_micro_batched(start: Any) -> None:
    dep = deployment([py("champ", "sign", "champion")])
    rv = await start(dep)
    answers = await rv.get("dep").predict([[float(i), 0.0] for i in range(200)])
    assert len(answers) == 200
    await settle(rv)
    sizes = Counter(s.batch_size for s in archive_of(rv).scores_for_model("dep", "champ"))
    assert max(sizes) > 1  # requests that waited were computed together
    assert max(sizes) <= 64  # never more than max_size


async def test_a_lagging_shadow_drops_its_oldest_work_and_counts_it(start: Any) -> None:
    dep = deployment(
        [py("champ", "sign", "champion"), py("shadow", "sleepy", queue_size=2,
                                               batch={"max_size": 1})],
    )  # fmt: skip
    rv = await start(dep)
    runtime = rv.get("dep")
    answers = await runtime.predict([[float(i), 0.0] for i in range(12)])
    assert all(a.model == "champ" for a in answers)
    await settle(rv)  # the shadow computes in the model process, which reports its drops
    dropped = rv.metrics.dropped.labels("dep", "shadow")._value.get()
    assert dropped >= 8  # 12 arrived at once; the shadow holds one, queues two
    shadow = archive_of(rv).scores_for_model("dep", "shadow")
    assert len(shadow) == 12  # dropped work still leaves an error score: nothing is silent
    assert sum(1 for s in shadow if s.error == "dropped: model queue full") == dropped


async def test_enrichers_shape_what_models_see_and_what_is_archived(
    start: Any, tmp_path: Any
) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,b\nc1,10\nc2,-5\n")
    dep = deployment(
        [py("champ", "sign", "champion")],
        features=["a", "b", "total"],
        base_dir=tmp_path,
        enrichers=[
            {"kind": "lookup", "table": "customers.csv", "key": "customer_id"},
            {"kind": "function", "source": "e2e_models:add_total"},
        ],
    )
    sys.path.insert(0, str(FIXTURES))  # the function enricher lives with the test models
    rv = await start(dep)
    answer = await rv.get("dep").predict_one({"a": 2, "customer_id": "c2"})
    await settle(rv)
    record = archive_of(rv).get_request(answer.request_id)
    assert record is not None and record.features == [2, -5, -3]
    with pytest.raises(InputError, match="no row with customer_id='c9'"):
        await rv.get("dep").predict_one({"a": 2, "customer_id": "c9"})


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([1.0], r"input: expected 2 features, got 1"),
        ([1.0, "x"], r'input\[1\]: expected a number, got string "x"'),
        ({"a": 1.0}, r"input\.b: missing feature"),
        ({"a": 1.0, "b": None}, r"input\.b: expected a number, got null"),
        ({"a": 1.0, "b": 2, "c": 3}, r"input: unknown field\(s\) \['c'\]"),
        ("abc", r"input: expected a list of 2 numbers or an object"),
        ([True, 1.0], r"input\[0\]: expected a number, got boolean true"),
        ([float("nan"), 1.0], r"input\[0\]: expected a number, got nan \(not a finite number\)"),
        ({"a": 1.0, "b": float("-inf")}, r"input\.b: expected a number, got -inf"),
    ],
)
async def test_bad_rows_are_refused_naming_the_field(start: Any, row: Any, message: str) -> None:
    rv = await start(deployment([py("champ", "sign", "champion")]))
    with pytest.raises(InputError, match=message):
        await rv.get("dep").predict_one(row)
    assert rv.get("dep").collector.waiting == 0  # nothing half-accepted


class _Versioned(Model):
    def __init__(self, version: str) -> None:
        super().__init__(ModelInfo("champ", version, "test", ("a", "b")))

    def predict(self, rows: Matrix) -> Output:
        return Output([self.version] * len(rows))


async def test_scores_carry_the_version_of_the_object_that_computed_them(start: Any) -> None:
    rv = await start(deployment([py("champ", "sign", "champion")]))
    runtime = rv.get("dep")
    assert isinstance(runtime.executors["champ"], ModelExecutor)
    runtime.swap("champ", _Versioned("v2"))
    answer = await runtime.predict_one([1.0, 1.0])
    assert (answer.version, answer.prediction) == ("v2", "v2")
    assert runtime.current_model("champ") is not None
    assert runtime.current_model("champ").version == "v2"  # type: ignore[union-attr]
    runtime.swap("champ", _Versioned("v3"))
    answer = await runtime.predict_one([1.0, 1.0])
    assert (answer.version, answer.prediction) == ("v3", "v3")


async def test_stop_flushes_everything_accepted_to_sqlite(tmp_path: Any) -> None:
    from rendezvous.archive import open_archive

    dep = deployment(
        [py("champ", "sign", "champion"), py("shadow", "negated")],
        archive=f"sqlite:///{tmp_path / 'a.db'}",
    )
    rv = Rendezvous([dep])
    await rv.start()
    answers = await rv.get("dep").predict([[float(i), 1.0] for i in range(300)])
    await rv.stop()  # no settle: stop must drain executors and flush the archive
    archive = open_archive(f"sqlite:///{tmp_path / 'a.db'}")
    archive.start()
    try:
        assert archive.counts("dep") == {"requests": 300, "scores": 600, "inputs": 0, "examples": 0}
        assert {r.id for r in archive.requests("dep")} == {a.request_id for a in answers}
    finally:
        archive.stop()


async def test_replicas_of_a_model_share_its_load(tmp_path: Any) -> None:
    from rendezvous.roles import Roles

    dep = deployment([py("champ", "sign", "champion")])
    async with Rendezvous([dep], roles=Roles(replicas=3)) as rv:
        runtime = rv.get("dep")
        assert len(runtime.replicas) == 3
        for _ in range(20):  # waves of concurrent requests, so replicas overlap
            await runtime.predict([[1.0, 0.0]] * 10)
        handled = [e.handled for e in runtime.replicas]
        assert sum(handled) == 200
        assert sum(1 for h in handled if h > 0) >= 2


def test_a_memory_bus_cannot_split_roles_across_processes() -> None:
    from rendezvous.errors import ConfigError
    from rendezvous.roles import Roles

    dep = deployment([py("champ", "sign", "champion")])
    with pytest.raises(ConfigError, match="a memory bus runs every part in one process"):
        Rendezvous([dep], roles=Roles.api_only())


async def test_an_undeliverable_request_gets_the_default_at_once(start: Any) -> None:
    from rendezvous.errors import BusError

    dep = deployment([py("champ", "sign", "champion")], default={"prediction": 7})
    rv = await start(dep)
    runtime = rv.get("dep")

    async def broken(request: object) -> None:
        raise BusError("connection refused")

    runtime.bus.publish = broken  # type: ignore[method-assign]  # an outage, in one line
    t0 = time.perf_counter()
    answer = await runtime.predict_one([1.0, 1.0])
    assert (answer.prediction, answer.reason) == (7, "default")
    assert answer.detail is not None and "bus unavailable: connection refused" in answer.detail
    assert time.perf_counter() - t0 < 0.5  # not held until the 1 s deadline
    runtime.archive.flush()
    assert runtime.archive.counts("dep")["requests"] == 1  # accepted, so archived
