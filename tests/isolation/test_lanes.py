"""Lanes: how the model process cuts ``Work`` frames into each model's batches.

In-process, on the test's event loop: what each model computed, in which batches, and
that every request queued for a lane gets exactly one score (computed, failed or dropped).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from rendezvous.config import BatchConfig
from rendezvous.isolation.lanes import Frame, Lane
from rendezvous.messages import Request, Score
from rendezvous.metrics import Metrics
from rendezvous.models.base import Matrix, Model, ModelInfo, Output
from rendezvous.runner import ModelRunner


class Recorder(Model):
    """Predicts each row's first feature; keeps the batches it saw."""

    def __init__(self, name: str = "m", version: str = "v1", *, mutate: bool = False) -> None:
        super().__init__(ModelInfo(name, version, "python", ("a", "b")))
        self.batches: list[Matrix] = []
        self.mutate = mutate
        self.gate = threading.Event()
        self.gate.set()

    def predict(self, rows: Matrix) -> Output:
        self.gate.wait(5.0)
        if rows.shape[1] != 2:
            raise ValueError(f"expected 2 features, got {rows.shape[1]}")
        self.batches.append(rows.copy())
        if self.mutate:
            rows *= -1.0  # in place: must not reach any other model
        if (rows[:, 0] == 13.0).any():
            raise ValueError("unlucky row")
        return Output([float(v) for v in rows[:, 0]])


class Sink:
    def __init__(self) -> None:
        self.scores: list[Score] = []

    def __call__(self, scores: Sequence[Score]) -> None:
        self.scores.extend(scores)

    def by_request(self) -> dict[str, Score]:
        out = {s.request_id: s for s in self.scores}
        assert len(out) == len(self.scores), "a request got two scores from one lane"
        return out


def lane(
    model: Model, sink: Sink, *, max_size: int = 64, capacity: int = 1000, inline: bool = True
) -> Lane:
    runner = ModelRunner("dep", model, metrics=Metrics(CollectorRegistry()), inline=inline)
    return Lane(runner, batch=BatchConfig(max_size=max_size), capacity=capacity, emit=sink)


def frame(start: int, n: int) -> Frame:
    now = time.time()
    return Frame(
        [Request(f"r{i}", "dep", [float(i), 1.0], now, "c") for i in range(start, start + n)]
    )


def started(*lanes: Lane) -> list[Lane]:
    for one in lanes:
        one.start()
    return list(lanes)


def put_all(lanes: list[Lane], shared: Frame) -> None:
    for one in lanes:
        one.put(shared)


async def until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5.0
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


async def test_every_lane_scores_every_request_of_a_frame_once() -> None:
    models = [Recorder("m1", "v1"), Recorder("m2", "v7")]
    sinks = [Sink(), Sink()]
    lanes = started(*(lane(m, s) for m, s in zip(models, sinks, strict=True)))
    put_all(lanes, frame(0, 10))
    await until(lambda: all(len(s.scores) == 10 for s in sinks), "both lanes scored the frame")
    for model, sink in zip(models, sinks, strict=True):
        got = sink.by_request()
        assert [got[f"r{i}"].prediction for i in range(10)] == [float(i) for i in range(10)]
        assert {s.model for s in sink.scores} == {model.name}
        assert {s.version for s in sink.scores} == {model.version}
        assert all(s.ok and s.batch_size == 10 for s in sink.scores)
    for one in lanes:
        await one.stop()


async def test_batches_are_cut_at_max_size_across_frames() -> None:
    model, sink = Recorder(), Sink()
    one = lane(model, sink, max_size=4, inline=False)  # on its thread: it blocks
    model.gate.clear()  # everything queues behind the first call
    one.start()
    one.put(frame(0, 3))
    await until(lambda: one.backlog == 0, "the first batch is in a call")
    one.put(frame(3, 3))
    one.put(frame(6, 3))
    model.gate.set()
    await until(lambda: len(sink.scores) == 9, "every request is scored")
    # the first call took the lone frame; then 4 rows across two frames, then the rest
    assert [len(b) for b in model.batches] == [3, 4, 2]
    assert [b[:, 0].tolist() for b in model.batches[1:]] == [[3, 4, 5, 6], [7, 8]]
    assert sorted(sink.by_request()) == sorted(f"r{i}" for i in range(9))
    await one.stop()


async def test_past_its_capacity_a_lane_drops_the_oldest_with_an_error_score() -> None:
    model, sink = Recorder(), Sink()
    one = lane(model, sink, max_size=2, capacity=4, inline=False)  # on its thread: it blocks
    model.gate.clear()
    one.start()
    one.put(frame(0, 2))
    await until(lambda: one.backlog == 0, "the first batch is in a call")
    one.put(frame(2, 3))
    one.put(frame(5, 3))  # 6 queued for 4 places: r2 and r3 go
    dropped = [s for s in sink.scores if s.error is not None]
    assert [s.request_id for s in dropped] == ["r2", "r3"]
    assert all(s.error == "dropped: model queue full" and s.version == "v1" for s in dropped)
    model.gate.set()
    await until(lambda: len(sink.scores) == 8, "every request has its score")
    got = sink.by_request()
    computed = sorted(r for r, s in got.items() if s.ok)
    assert computed == ["r0", "r1", "r4", "r5", "r6", "r7"]
    await one.stop()


async def test_a_failing_row_fails_alone() -> None:
    model, sink = Recorder(), Sink()
    one = lane(model, sink)
    one.start()
    one.put(frame(10, 6))  # r13 raises
    await until(lambda: len(sink.scores) == 6, "every request has its score")
    got = sink.by_request()
    assert got["r13"].error == "ValueError: unlucky row"
    assert [got[f"r{i}"].prediction for i in (10, 11, 12, 14, 15)] == [10.0, 11.0, 12.0, 14.0, 15.0]
    await one.stop()


async def test_a_malformed_row_in_a_frame_fails_alone() -> None:
    now = time.time()
    requests = [Request(f"r{i}", "dep", [float(i), 1.0], now, "c") for i in range(3)]
    requests.insert(1, Request("short", "dep", [5.0], now, "c"))
    shared = Frame(requests)
    assert shared.rows is None  # ragged: no shared matrix
    model, sink = Recorder(), Sink()
    one = lane(model, sink)
    one.start()
    one.put(shared)
    await until(lambda: len(sink.scores) == 4, "every request has its score")
    got = sink.by_request()
    assert got["short"].error == "ValueError: expected 2 features, got 1"
    assert [got[f"r{i}"].prediction for i in range(3)] == [0.0, 1.0, 2.0]
    await one.stop()


async def test_a_model_that_changes_its_input_does_not_change_what_others_see() -> None:
    mutating, other = Recorder("mut", mutate=True), Recorder("other")
    sinks = [Sink(), Sink()]
    lanes = started(lane(mutating, sinks[0]), lane(other, sinks[1]))
    shared = frame(0, 5)
    put_all(lanes, shared)
    await until(lambda: all(len(s.scores) == 5 for s in sinks), "both lanes scored")
    assert [s.prediction for s in sinks[1].scores] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert shared.rows is not None and shared.rows[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    for one in lanes:
        await one.stop()


async def test_scores_name_the_version_that_computed_them_across_a_swap() -> None:
    old, new, sink = Recorder(version="v1"), Recorder(version="v2"), Sink()
    one = lane(old, sink, max_size=2, inline=False)
    old.gate.clear()
    one.start()
    one.put(frame(0, 2))
    await until(lambda: one.backlog == 0, "the first batch is in a call")
    one.put(frame(2, 2))
    one.runner.swap(new)  # the batch in hand stays v1's
    old.gate.set()
    await until(lambda: len(sink.scores) == 4, "every request has its score")
    got = sink.by_request()
    assert [got[f"r{i}"].version for i in range(4)] == ["v1", "v1", "v2", "v2"]
    await one.stop()


async def test_a_slow_lane_does_not_hold_up_another() -> None:
    slow, fast = Recorder("slow"), Recorder("fast")
    sinks = [Sink(), Sink()]
    slow.gate.clear()
    lanes = started(lane(slow, sinks[0], inline=False), lane(fast, sinks[1]))
    for start in (0, 3):
        put_all(lanes, frame(start, 3))
    await until(lambda: len(sinks[1].scores) == 6, "the fast lane scored everything")
    assert sinks[0].scores == []
    slow.gate.set()
    await until(lambda: len(sinks[0].scores) == 6, "the slow lane caught up")
    for one in lanes:
        await one.stop()


async def test_stop_computes_what_is_queued() -> None:
    model, sink = Recorder(), Sink()
    one = lane(model, sink, max_size=2)
    one.start()
    for start in range(0, 12, 3):
        one.put(frame(start, 3))
    await one.stop()
    assert sorted(sink.by_request()) == sorted(f"r{i}" for i in range(12))
    assert all(s.ok for s in sink.scores)


@pytest.mark.parametrize("n", [1, 7])
def test_a_frame_builds_its_feature_matrix_once(n: int) -> None:
    shared = frame(0, n)
    assert shared.rows is not None
    np.testing.assert_array_equal(shared.rows, [[float(i), 1.0] for i in range(n)])
