"""100 version swaps under concurrent predictions: none fails, none goes back in time, and
every answer is the one its reported version gives.

Version k is trained on targets that are all equal to k, so a linear model of version k
predicts exactly k: an answer whose prediction and version disagree would be a torn swap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from rendezvous.learning import Engine, LearningConfig

MakeEngine = Callable[..., Engine]

SWAPS = 100
THREADS = 4
BATCH = 20  # examples per version; the sliding window holds exactly one version's worth
ROWS = [[0.5, -1.0, 2.0], [3.0, 0.0, -2.5], [-1.5, 1.5, 0.25]]


def test_swaps_under_concurrent_load(make_engine: MakeEngine) -> None:
    config = LearningConfig.manual(
        window="sliding",
        window_size=BATCH,
        validation_fraction=0.0,
        drift_detection=False,
        keep_versions=SWAPS + 1,
    )
    engine = make_engine(config)
    engine.register_model("m", "linear", n_features=3)
    rng = np.random.default_rng(0)

    def train_version(k: int) -> int:
        for row in rng.normal(size=(BATCH, 3)).tolist():
            engine.add_training_example("m", row, float(k))
        decision = engine.train_model("m")
        assert decision.accepted and decision.version == k
        return k

    train_version(1)
    stop = threading.Event()
    answers: list[list[tuple[int, int, float]]] = [[] for _ in range(THREADS)]
    failures: list[BaseException] = []
    latest_seen = [0] * THREADS

    def predict_loop(t: int) -> None:
        i = 0
        while not stop.is_set():
            row = i % len(ROWS)
            try:
                if t == 0 and i % 2:  # one thread mixes in batches: one version per batch
                    batch = engine.predict_batch("m", ROWS)
                    assert len({a.model_version for a in batch}) == 1
                    answer = batch[row]
                else:
                    answer = engine.predict("m", ROWS[row])
            except BaseException as exc:
                failures.append(exc)
                return
            answers[t].append((answer.model_version, row, answer.prediction))
            latest_seen[t] = answer.model_version
            i += 1
            # Hand the GIL over between predictions: without it the trainer thread waits a
            # full switch interval for each of its many GIL acquisitions inside fit().
            time.sleep(0)

    threads = [threading.Thread(target=predict_loop, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        for k in range(2, SWAPS + 2):
            train_version(k)
            # Each swap happens under load: wait until a predicting thread has answered with it.
            deadline = time.monotonic() + 30.0
            while max(latest_seen) < k and not failures:
                assert time.monotonic() < deadline, f"no thread saw version {k}"
                time.sleep(0.0005)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30.0)

    assert failures == []
    assert engine.get_model_info("m").version == SWAPS + 1
    seen = {version for per_thread in answers for version, _, _ in per_thread}
    assert seen >= set(range(2, SWAPS + 2))
    # What each version's snapshot computes for each row, asked again now.
    expected = {
        v: [engine.get_snapshot("m", v).predict(row).prediction for row in ROWS] for v in seen
    }
    for per_thread in answers:
        versions = [version for version, _, _ in per_thread]
        assert versions == sorted(versions), "a thread saw an older version after a newer one"
        for version, row, prediction in per_thread:
            assert prediction == pytest.approx(expected[version][row], abs=1e-9)
            assert prediction == pytest.approx(version, abs=1e-9)
