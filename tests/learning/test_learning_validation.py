"""The pieces under the engine: losses and the publish rule, data windows, the hold-out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rendezvous.learning import Engine, LearningConfig
from rendezvous.learning.validation import HeldOut, decide, loss
from rendezvous.learning.window import TrainingWindow

MakeEngine = Callable[..., Engine]


def test_losses_are_scale_free() -> None:
    assert loss("classification", ["a", "b", "b", "a"], ["a", "b", "a", "a"]) == 0.25
    targets = [1.0, 2.0, 3.0, 4.0]
    assert loss("regression", targets, targets) == 0.0
    assert loss("regression", [2.5] * 4, targets) == pytest.approx(1.0)  # the mean: 1
    scaled = [1000 * t for t in targets]
    assert loss("regression", [2500.0] * 4, scaled) == pytest.approx(1.0)
    assert loss("regression", [1.0, 3.0], [2.0, 2.0]) == 1.0  # no spread: mean abs error


def test_a_candidate_may_be_worse_by_the_tolerance_only() -> None:
    assert decide(0.10, 0.10, 0.0) == (
        True,
        "not worse than the serving version beyond the tolerance",
    )
    assert decide(0.12, 0.10, 0.02 + 1e-12)[0]
    accepted, reason = decide(0.13, 0.10, 0.02)
    assert not accepted and reason == "worse than the serving version by 0.03 > 0.02"


def test_window_policies() -> None:
    sliding = TrainingWindow("sliding", 3)
    since = TrainingWindow("since_drift", 3)
    everything = TrainingWindow("all", 3)
    for window in (sliding, since, everything):
        for i in range(5):
            window.add((float(i),), i)
    assert sliding.data() == ([(2.0,), (3.0,), (4.0,)], [2, 3, 4])
    assert since.data() == ([(2.0,), (3.0,), (4.0,)], [2, 3, 4])
    assert len(everything) == 5
    assert (sliding.on_drift(), since.on_drift(), everything.on_drift()) == (False, True, False)
    assert (len(sliding), len(since), len(everything)) == (3, 0, 5)


def test_held_out_keeps_the_last_of_each_kind() -> None:
    held = HeldOut(2)
    for i in range(4):
        held.add((float(i),), i, flagged=i % 2 == 0)
    assert held.data() == ([(0.0,), (2.0,), (1.0,), (3.0,)], [0, 2, 1, 3])
    for i in range(4, 8):
        held.add((float(i),), i, flagged=True)
    assert held.data()[1] == [6, 7, 1, 3]
    held.clear()
    assert len(held) == 0


@pytest.mark.parametrize(("fraction", "held"), [(0.0, 0), (0.1, 10), (0.25, 25), (0.5, 50)])
def test_the_hold_out_is_an_exact_fraction(
    make_engine: MakeEngine, fraction: float, held: int
) -> None:
    engine = make_engine(LearningConfig.manual(validation_fraction=fraction))
    engine.register_model("m", "linear")
    for i in range(100):
        engine.add_training_example("m", [float(i)], float(i))
    engine.process_pending()
    info = engine.get_model_info("m")
    assert (info.n_validation_examples, info.n_training_examples) == (held, 100 - held)
