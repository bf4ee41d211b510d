"""The rendezvous schedule: who answers, and why, by the deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from rendezvous.collector import Answer, Collector, ScheduleStep
from rendezvous.messages import Score


def ok(rid: str, model: str, prediction: object = 1, version: str = "v1") -> Score:
    return Score(rid, "d", model, version, prediction)


def failed(rid: str, model: str) -> Score:
    return Score(rid, "d", model, "v1", None, error="ValueError: boom")


def collector(
    *steps: ScheduleStep, deadline_s: float = 0.5, default: dict[str, object] | None = None
) -> Collector:
    return Collector(
        steps or (ScheduleStep("champ"), ScheduleStep("chal")),
        champion="champ",
        deadline_s=deadline_s,
        default=default,
    )


async def test_champion_answer_is_returned_at_once() -> None:
    c = collector()
    future = c.open("r1")
    c.deliver([ok("r1", "champ", 7, "v3")])
    answer = await asyncio.wait_for(future, 0.1)
    assert (answer.prediction, answer.model, answer.version) == (7, "champ", "v3")
    assert answer.reason == "champion"
    assert not answer.fallback
    assert c.waiting == 0


async def test_a_challenger_answering_first_waits_for_the_champion() -> None:
    c = collector()
    future = c.open("r1")
    c.deliver([ok("r1", "chal", 0)])
    await asyncio.sleep(0.02)
    assert not future.done()  # the champion is preferred and still inside the deadline
    c.deliver([ok("r1", "champ", 1)])
    assert (await future).model == "champ"


async def test_a_failing_champion_falls_back_to_the_next_model_that_answered() -> None:
    c = collector()
    future = c.open("r1")
    c.deliver([ok("r1", "chal", 0)])
    c.deliver([failed("r1", "champ")])
    answer = await asyncio.wait_for(future, 0.1)
    assert answer.model == "chal"
    assert answer.reason == "fallback:chal"
    assert answer.fallback
    assert answer.detail is not None and "champ: ValueError: boom" in answer.detail


async def test_a_failing_champion_waits_for_the_fallback_to_answer() -> None:
    c = collector()
    future = c.open("r1")
    c.deliver([failed("r1", "champ")])
    await asyncio.sleep(0.01)
    assert not future.done()
    c.deliver([ok("r1", "chal", 0)])
    assert (await asyncio.wait_for(future, 0.1)).reason == "fallback:chal"


async def test_a_wait_budget_moves_on_to_the_next_model() -> None:
    c = collector(ScheduleStep("champ", wait_s=0.05), ScheduleStep("chal"), deadline_s=2.0)
    future = c.open("r1")
    c.deliver([ok("r1", "chal", 0)])
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    answer = await asyncio.wait_for(future, 1.0)
    assert answer.reason == "fallback:chal"
    assert 0.04 <= loop.time() - t0 < 1.0  # decided when the budget ran out, not at deadline


async def test_nothing_in_time_gives_the_default_at_the_deadline() -> None:
    c = collector(deadline_s=0.1, default={"prediction": 0, "probabilities": [1.0, 0.0]})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    answer = await c.open("r1")
    elapsed = loop.time() - t0
    assert answer.reason == "default"
    assert answer.prediction == 0
    assert answer.probabilities == [1.0, 0.0]
    assert answer.model is None
    assert 0.09 <= elapsed < 0.2
    assert answer.detail == "champ: no answer in time; chal: no answer in time"


async def test_at_the_deadline_any_answered_model_beats_the_default() -> None:
    c = collector(deadline_s=0.05, default={"prediction": 0})
    future = c.open("r1")
    c.deliver([ok("r1", "chal", 1)])
    answer = await future
    assert answer.reason == "fallback:chal"


async def test_every_model_failing_answers_the_default_without_waiting() -> None:
    c = collector(deadline_s=5.0, default={"prediction": -1})
    future = c.open("r1")
    c.deliver([failed("r1", "champ"), failed("r1", "chal")])
    answer = await asyncio.wait_for(future, 0.1)
    assert answer.reason == "default"
    assert answer.prediction == -1


async def test_no_default_means_an_error_choice() -> None:
    c = collector(deadline_s=0.05)
    answer = await c.open("r1")
    assert answer.reason == "error"
    assert answer.prediction is None


async def test_scores_of_models_outside_the_schedule_never_answer() -> None:
    c = collector(ScheduleStep("champ"), deadline_s=0.05, default={"prediction": 0})
    future = c.open("r1")
    c.deliver([ok("r1", "canary", 1)])
    assert (await future).reason == "default"


async def test_late_and_unknown_scores_are_ignored() -> None:
    c = collector()
    future = c.open("r1")
    c.deliver([ok("r1", "champ")])
    await future
    c.deliver([ok("r1", "chal"), ok("nobody", "champ")])  # must not raise
    assert c.waiting == 0


async def test_mailboxes_are_independent() -> None:
    c = collector()
    futures = {rid: c.open(rid) for rid in ("a", "b", "c")}
    c.deliver([ok("b", "champ", "B"), ok("a", "champ", "A"), ok("c", "champ", "C")])
    answers: dict[str, Answer] = {rid: await f for rid, f in futures.items()}
    assert {rid: a.prediction for rid, a in answers.items()} == {"a": "A", "b": "B", "c": "C"}


async def test_close_forgets_a_mailbox() -> None:
    c = collector(deadline_s=0.05)
    future = c.open("r1")
    c.close("r1")
    assert c.waiting == 0
    await asyncio.sleep(0.08)
    assert not future.done()  # its deadline timer was cancelled too


def test_an_empty_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        Collector([], champion="x", deadline_s=1.0)


def test_reported_latency_is_finer_than_uvloops_clock() -> None:
    # uvloop's clock moves in whole milliseconds: an answer measured by it reports 0.0 (or
    # 1.0) for the sub-millisecond answers that are the common case. The reported latency
    # lies between what a precise clock saw around the open and the answer.
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[float, float, float]:
        c = collector()
        before_open = time.perf_counter()
        future = c.open("r1")
        after_open = time.perf_counter()
        while time.perf_counter() - after_open < 0.0003:  # some work, same loop turn
            pass
        before_answer = time.perf_counter()
        c.deliver([ok("r1", "champ")])
        after_answer = time.perf_counter()
        answer = await future
        return answer.latency_ms, before_answer - after_open, after_answer - before_open

    latency_ms, shortest, longest = uvloop.run(scenario())
    assert shortest * 1000 <= latency_ms <= longest * 1000
