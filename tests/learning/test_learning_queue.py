"""A full training queue follows its policy, and nothing is lost without being reported."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from rendezvous.errors import Overloaded
from rendezvous.learning import Engine, LearningConfig
from rendezvous.learning.queue import Example, ExampleQueue

MakeEngine = Callable[..., Engine]


def _example(i: int) -> Example:
    return Example((float(i),), float(i), False)


def test_drop_oldest_keeps_the_newest_and_counts_the_dropped(make_engine: MakeEngine) -> None:
    engine = make_engine(LearningConfig.manual(max_queue_size=3, validation_fraction=0.0))
    engine.register_model("m", "linear")
    for i in range(5):
        engine.add_training_example("m", [float(i)], float(i))
    info = engine.get_model_info("m")
    assert (info.queue_size, info.dropped_examples, info.rejected_examples) == (3, 2, 0)
    engine.train_model("m")
    assert engine.get_model_info("m").n_training_examples == 3
    # The window holds examples 2, 3, 4: a line through them is y = x.
    assert engine.predict("m", [10.0]).prediction == pytest.approx(10.0)


def test_reject_raises_overloaded_at_once_and_counts(make_engine: MakeEngine) -> None:
    engine = make_engine(LearningConfig.manual(max_queue_size=2, queue_full="reject"))
    engine.register_model("m", "linear")
    engine.add_training_example("m", [1.0], 1.0)
    engine.add_training_example("m", [2.0], 2.0)
    with pytest.raises(Overloaded, match=r"model 'm': the training queue is full \(2 examples\)"):
        engine.add_training_example("m", [3.0], 3.0)
    info = engine.get_model_info("m")
    assert (info.queue_size, info.dropped_examples, info.rejected_examples) == (2, 0, 1)
    engine.process_pending()
    engine.add_training_example("m", [3.0], 3.0)  # room again once the learner took them


def test_block_gives_up_after_its_timeout() -> None:
    queue = ExampleQueue("m", 1, "block", timeout=0.01)
    queue.put(_example(0))
    with pytest.raises(Overloaded, match=r"after waiting 0\.01 s; queue_full='block'"):
        queue.put(_example(1))
    assert queue.rejected == 1 and len(queue) == 1


def test_block_waits_for_the_learner_to_make_room() -> None:
    queue = ExampleQueue("m", 1, "block", timeout=30.0)
    queue.put(_example(0))
    done: list[BaseException | None] = []

    def producer() -> None:
        try:
            queue.put(_example(1))
            done.append(None)
        except BaseException as exc:  # pragma: no cover - reported below
            done.append(exc)

    thread = threading.Thread(target=producer)
    thread.start()
    deadline = time.monotonic() + 30.0
    while not queue._not_full._waiters:  # type: ignore[attr-defined]  # the producer blocks
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert not done
    drained = queue.drain()
    thread.join(timeout=30.0)
    assert done == [None]
    assert [e.target for e in drained + queue.drain()] == [0.0, 1.0]
    assert queue.rejected == 0 and queue.dropped == 0


def test_block_through_the_engine_with_the_learner_running() -> None:
    config = LearningConfig.manual(max_queue_size=5, queue_full="block", block_timeout_sec=30.0)
    with Engine(config, poll_interval_sec=0.01) as engine:
        engine.register_model("m", "linear")
        for i in range(200):
            engine.add_training_example("m", [float(i)], float(i))
    info = engine.get_model_info("m")
    assert info.n_examples_seen == 200
    assert (info.dropped_examples, info.rejected_examples) == (0, 0)
