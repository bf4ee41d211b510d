"""Fast synchronous models compute on the event loop; slow ones, and shadows next to the
API, on their own thread (rendezvous.inline)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import loop_models
from rendezvous.config import parse_deployment
from rendezvous.inline import FAST_S, PROBE, STALL_S, InlinePolicy
from rendezvous.service import Rendezvous

FAST, SLOW = FAST_S / 10, FAST_S * 2


@pytest.fixture
def declared_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner times calls by what the models declare (see loop_models), not by this
    machine's clock: a busy moment must not make a fast call look slow."""
    monkeypatch.setattr("rendezvous.runner.time", loop_models.CLOCK)
    monkeypatch.setattr("rendezvous.runner.usage", loop_models.CLOCK.usage)


def test_a_fast_model_moves_to_the_loop_after_a_streak_of_fast_calls() -> None:
    policy = InlinePolicy(None)
    for _ in range(PROBE - 1):
        policy.observe(FAST)
    assert not policy.on_loop
    policy.observe(FAST)
    assert policy.on_loop


def test_a_slow_call_on_the_loop_sends_the_model_back_for_twice_as_long() -> None:
    policy = InlinePolicy(None)
    for _ in range(PROBE):
        policy.observe(FAST)
    policy.observe(SLOW)
    assert not policy.on_loop
    for _ in range(2 * PROBE - 1):
        policy.observe(FAST)
    assert not policy.on_loop
    policy.observe(FAST)
    assert policy.on_loop


def on_loop() -> InlinePolicy:
    policy = InlinePolicy(None)
    for _ in range(PROBE):
        policy.observe(FAST)
    assert policy.on_loop
    return policy


def test_one_held_up_call_per_probe_is_forgiven() -> None:
    policy = on_loop()
    policy.observe(SLOW, cpu=FAST)  # the thread was held up, not the model
    assert policy.on_loop
    for _ in range(PROBE):
        policy.observe(FAST)
    policy.observe(SLOW, cpu=FAST)  # PROBE calls later: forgiven again
    assert policy.on_loop
    for _ in range(PROBE - 1):
        policy.observe(FAST)
    policy.observe(SLOW, cpu=FAST)  # a second one too soon: back to the thread
    assert not policy.on_loop


def test_a_call_the_machine_held_up_is_forgiven_every_time() -> None:
    policy = on_loop()
    for elapsed in (SLOW, STALL_S * 2, SLOW, SLOW):  # in a row, and longer than STALL_S
        policy.observe(elapsed, cpu=FAST, blocked=False)  # no CPU, no wait: not the model
        assert policy.on_loop
    policy.observe(SLOW, cpu=FAST, blocked=True)  # waited: forgiven once per PROBE calls
    assert policy.on_loop
    policy.observe(SLOW, cpu=FAST, blocked=True)
    assert not policy.on_loop


@pytest.mark.parametrize(
    ("elapsed", "cpu", "blocked"),
    [(SLOW, SLOW, False), (STALL_S * 2, FAST, True), (STALL_S * 2, FAST, None),
     (SLOW, None, None)],
    ids=["the model computed long", "waited too long", "held up too long", "CPU not measured"],
)  # fmt: skip
def test_other_slow_calls_are_not_forgiven(
    elapsed: float, cpu: float | None, blocked: bool | None
) -> None:
    policy = on_loop()
    policy.observe(elapsed, cpu, blocked)
    assert not policy.on_loop


def test_a_call_held_up_on_the_thread_counts_toward_the_streak() -> None:
    policy = InlinePolicy(None)
    for i in range(PROBE):
        held_up = i % 2 == 0
        policy.observe(SLOW if held_up else FAST, cpu=FAST, blocked=False)
    assert policy.on_loop


def test_a_slow_call_on_the_thread_restarts_the_streak() -> None:
    policy = InlinePolicy(None)
    for _ in range(PROBE - 1):
        policy.observe(FAST)
    policy.observe(SLOW, cpu=FAST, blocked=True)  # waited: for the GIL, a lock, I/O
    for _ in range(PROBE - 1):
        policy.observe(FAST)
    assert not policy.on_loop


def test_a_new_version_proves_itself_again_and_is_forgiven_again() -> None:
    policy = InlinePolicy(None)
    for _ in range(PROBE):
        policy.observe(FAST)
    policy.observe(SLOW, cpu=FAST)  # forgiven: uses up this PROBE's forgiveness
    policy.reset()
    assert not policy.on_loop
    for _ in range(PROBE):
        policy.observe(FAST)
    policy.observe(SLOW, cpu=FAST)
    assert policy.on_loop


@pytest.mark.parametrize("fixed", [True, False])
def test_a_fixed_choice_holds_whatever_the_calls_take(fixed: bool) -> None:
    policy = InlinePolicy(fixed)
    for elapsed in [SLOW] * 3 + [FAST] * (4 * PROBE):
        policy.observe(elapsed)
        assert policy.on_loop is fixed


@pytest.mark.parametrize(
    ("source", "inline", "expected"),
    [
        ("loop_models:where", None, "loop"),
        ("loop_models:slow_where", None, "thread"),
        ("loop_models:held_up_where", None, "loop"),
        ("loop_models:where", False, "thread"),
    ],
    ids=["fast", "slow", "held up on its thread", "inline: false"],
)
async def test_where_a_champion_computes(
    tmp_path: Path, source: str, inline: bool | None, expected: str, declared_time: None
) -> None:
    model: dict[str, Any] = {"name": "m", "kind": "python", "source": source, "role": "champion"}
    if inline is not None:
        model["inline"] = inline
    shadow = {"name": "s", "kind": "python", "source": "loop_models:where",
              "isolation": "thread"}  # fmt: skip
    spec = {"name": "dep", "schema": {"features": ["x"]}, "archive": "memory",
            "deadline_ms": 5000, "models": [model, shadow]}  # fmt: skip
    async with Rendezvous([parse_deployment(spec, base_dir=tmp_path)]) as rv:
        runtime = rv.get("dep")
        answers = [(await runtime.predict_one([float(i)])).prediction for i in range(PROBE + 4)]
        deadline = time.monotonic() + 5
        while not runtime.idle:  # the shadow finishes after the answers
            assert time.monotonic() < deadline, "the shadow did not drain"
            await asyncio.sleep(0.01)
        runtime.archive.flush()
        shadows = [s.prediction for s in runtime.archive.scores_for_model("dep", "s")]
    assert answers[0] == "thread"  # every model starts on its thread
    assert answers[-3:] == [expected] * 3
    assert shadows and set(shadows) == {"thread"}  # a shadow beside the API never moves


@pytest.mark.parametrize(
    ("source", "after"),
    [("loop_models:blocks_later", ["loop", "loop", "thread"]),
     ("loop_models:burns_later", ["loop", "thread", "thread"]),
     ("loop_models:held_up_later", ["loop", "loop", "loop"])],
    ids=["blocked: forgiven once", "computing: sent back at once", "held up: forgiven"],
)  # fmt: skip
async def test_the_executor_tells_a_held_up_call_from_a_slow_model(
    tmp_path: Path, source: str, after: list[str], declared_time: None
) -> None:
    slow_from = loop_models.SLOW_FROM
    model = {"name": "m", "kind": "python", "source": source, "role": "champion"}
    spec = {"name": "dep", "schema": {"features": ["x"]}, "archive": "memory",
            "deadline_ms": 5000, "models": [model]}  # fmt: skip
    async with Rendezvous([parse_deployment(spec, base_dir=tmp_path)]) as rv:
        runtime = rv.get("dep")
        answers = [(await runtime.predict_one([float(i)])).prediction for i in range(PROBE + 5)]
    assert answers[PROBE:slow_from] == ["loop", "loop"]  # fast on the loop
    assert answers[slow_from:] == after
